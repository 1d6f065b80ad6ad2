#pragma once
/// Derived inputs: differences of two numeric features, found by a screen on the training rows.
///
/// A difference such as process temperature minus air temperature is linear in the encoded inputs, so an
/// MLP could compute it. In practice, with a few hundred positive rows, it learns a sharp threshold on such a
/// quantity far better when the quantity is an input of its own. The trainer therefore receives the kept
/// differences as extra columns, and fold_derived() then folds them into the first layer. The exported model
/// takes the same encoded columns as before, and explanations stay on the user's raw features.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/matrix.hpp"
#include "lepton/model.hpp"
#include "lepton/preprocess.hpp"

namespace lepton {

/// One derived input: (minuend - subtrahend) in the raw units, standardized over the learning rows.
struct DerivedDifference {
  std::string minuend;             ///< Raw column names.
  std::string subtrahend;
  std::size_t minuend_input = 0;   ///< Encoded columns of the two features.
  std::size_t subtrahend_input = 0;
  /// Raw units per encoded unit of each feature (the preprocessor's scales), so that
  /// minuend_scale * z_minuend - subtrahend_scale * z_subtrahend is the raw difference up to a constant.
  double minuend_scale = 1, subtrahend_scale = 1;
  double mean = 0, scale = 1;      ///< Standardization of that quantity over the learning rows.
  /// Fraction by which the difference cut the screen's cross-validated log-loss when it was kept.
  double loss_reduction = 0;

  /// "minuend - subtrahend".
  std::string name() const;
  /// The standardized derived input of one encoded row.
  double value(const float* encoded_row) const;

  nlohmann::json to_json() const;
  /// Throws ParseError naming the JSON path of a bad field.
  static DerivedDifference from_json(const nlohmann::json& j, const std::string& json_path);
};

/// Settings of the screen.
struct DerivedSearchOptions {
  std::size_t bins = 16;              ///< Quantile bins per input of the additive screening model.
  std::size_t folds = 5;              ///< Cross-validation folds (stratified).
  double min_loss_reduction = 0.015;  ///< Keep a difference only if it cuts the log-loss by this fraction.
  std::size_t max_features = 3;       ///< At most this many differences are kept.
  double l2 = 1.0;                    ///< Ridge penalty on the bin weights.
  /// Larger learning sets are screened on a stratified sample of about this many rows, because the cost
  /// grows with rows x candidates.
  std::size_t max_rows = 20000;
  std::uint64_t seed = 0;             ///< Seeds the folds.

  DerivedSearchOptions& with_seed(std::uint64_t value) { seed = value; return *this; }
  DerivedSearchOptions& with_min_loss_reduction(double value) { min_loss_reduction = value; return *this; }
  DerivedSearchOptions& with_max_features(std::size_t value) { max_features = value; return *this; }
  DerivedSearchOptions& with_max_rows(std::size_t value) { max_rows = value; return *this; }
};

/// Screen result: what was kept, and the score of every candidate in the step that kept the last one.
struct DerivedSearchResult {
  std::vector<DerivedDifference> kept;
  double base_loss = 0;                 ///< Cross-validated log-loss per row without derived inputs.
  double final_loss = 0;                ///< ... with the kept ones.
  std::size_t candidates = 0;           ///< Pairs of numeric features screened.
  std::size_t screened_rows = 0;        ///< Rows the screening model was fitted on.
  /// Every screened difference with its loss reduction in the first step, best first.
  std::vector<std::pair<std::string, double>> first_step;
  /// The best difference of the step that kept nothing, with its loss reduction; empty when the screen
  /// stopped at max_features or ran out of candidates.
  std::string best_rejected;
  double best_rejected_reduction = 0;
};

/// Screens the differences of every pair of numeric features in `preprocessor` on the encoded learning rows
/// `encoded` with binary labels `labels` (0 or 1). The screening model is a ridge logistic regression on
/// quantile bins of every numeric feature and on the categories of every categorical one (an additive model,
/// so it gains from a difference only where the two features interact through it). Forward selection keeps the best difference while it cuts the
/// cross-validated log-loss by at least options.min_loss_reduction. Deterministic for a given seed.
/// Throws InvalidArgument for labels that are not 0/1, a size mismatch, max_rows < folds, or fewer rows of a
/// class than folds.
DerivedSearchResult search_derived_differences(const Preprocessor& preprocessor, const Matrix& encoded,
                                               const std::vector<std::int64_t>& labels,
                                               const DerivedSearchOptions& options = {});

/// Returns `encoded` with one column per derived input appended, in order.
Matrix append_derived(const Matrix& encoded, const std::vector<DerivedDifference>& derived);

/// Folds the derived inputs of a network trained on append_derived() columns into its first layer. The
/// result takes the encoded columns alone and computes the same function. Throws InvalidArgument when the
/// network's input width is not the encoded width plus derived.size(), or its first layer is int8.
Mlp fold_derived(const Mlp& network, const std::vector<DerivedDifference>& derived);

}  // namespace lepton
