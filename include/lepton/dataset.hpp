#pragma once
/// Schema inference, the data profile the configurator reads, and the stratified split.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/table.hpp"

namespace lepton {

/// The kind of machine-learning task.
enum class Task { BinaryClassification, MulticlassClassification, Regression };

/// Role of a column in the model.
enum class FeatureType { Numeric, Categorical, Text, Ignore };

/// Column kind inferred from the data, before the requirements override it.
enum class ColumnKind { Numeric, Categorical, Text, IdLike, Constant, Empty };

std::string to_string(Task task);
std::string to_string(FeatureType type);
std::string to_string(ColumnKind kind);

/// Summary statistics of one column.
struct ColumnProfile {
  std::string name;
  ColumnKind kind = ColumnKind::Numeric;
  std::size_t missing = 0;
  std::size_t distinct = 0;                  ///< Distinct non-missing texts.
  double min = 0, max = 0, mean = 0, std = 0;  ///< Numeric columns only; std with ddof = 0.
  std::map<std::string, std::size_t> top_categories;  ///< Categorical columns: up to 20 most frequent.
  std::string reason;                        ///< Why inference chose `kind`, e.g. "all 10000 values distinct".
};

/// Profile of a data set: the columns and, once a target is known, its classes and balance.
struct DataProfile {
  std::size_t rows = 0;
  std::vector<ColumnProfile> columns;
  std::string target;
  std::vector<std::string> classes;             ///< Sorted class labels (classification only).
  std::vector<std::size_t> class_counts;        ///< Rows per class, same order as `classes`.
  double minority_fraction = 0;                 ///< Smallest class count / rows (classification only).

  const ColumnProfile& column(const std::string& name) const;
  nlohmann::json to_json() const;
};

/// Profiles every column of `table`: kind, missing count, distinct count, numeric moments, top categories.
/// A numeric column whose values are all distinct integers in a run, or a text column whose values are
/// all distinct, is ID-like. `target` may be empty; when set, its classes are counted for `task`.
DataProfile profile_table(const Table& table, const std::string& target = "",
                          Task task = Task::BinaryClassification);

/// Row indices of the train, validation and test splits.
struct Split {
  std::vector<std::size_t> train, validation, test;
};

/// Fractions of a split. They must be positive and sum to 1.
struct SplitFractions {
  double train = 0.6, validation = 0.2, test = 0.2;
};

/// Splits rows so that every class keeps its share in each part (for regression, plain shuffled split).
/// Deterministic for a given seed on every platform (uses its own generator, not std::shuffle).
/// Throws InvalidArgument when a class has fewer rows than the three parts need.
Split stratified_split(const std::vector<std::int64_t>& labels, const SplitFractions& fractions,
                       std::uint64_t seed);

/// Splits `rows` without strata (regression).
Split random_split(std::size_t rows, const SplitFractions& fractions, std::uint64_t seed);

/// Assigns each row to one of `folds` folds for K-fold cross-validation, so that every class keeps its
/// share in each fold: the rows of each class are shuffled and dealt out in turn. Returns the fold id of
/// each row. Deterministic for a given seed. Throws InvalidArgument when folds < 2 or a class has fewer
/// rows than folds.
std::vector<std::size_t> stratified_folds(const std::vector<std::int64_t>& labels, std::size_t folds,
                                          std::uint64_t seed);

/// K-fold assignment without strata (regression). Throws InvalidArgument when folds < 2 or rows < folds.
std::vector<std::size_t> random_folds(std::size_t rows, std::size_t folds, std::uint64_t seed);

}  // namespace lepton
