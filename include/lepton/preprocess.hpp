#pragma once
/// Preprocessing fitted on the training split and replayed exactly at inference:
/// per-feature imputation, standardization, categorical one-hot encoding and hashed text token frequencies.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/dataset.hpp"
#include "lepton/matrix.hpp"
#include "lepton/table.hpp"

namespace lepton {

/// The request for one raw column: its name and how it enters the model.
struct FeatureSpec {
  std::string column;
  FeatureType type = FeatureType::Numeric;
  /// Numeric only: also encode log(value + shift) as a second column, for a feature whose effect is
  /// multiplicative, such as a concentration or a price. The training values must not be negative.
  bool log_column = false;
};

/// A log column's shift, as a fraction of the feature's standard deviation. It keeps a value of 0 finite, and
/// keeps values near 0 from stretching into a long tail that the network would have to fit. With 0.01 of the
/// standard deviation, AI4I's mean test F1 fell from 0.806 to 0.789 (docs/benchmarks.md). Where
/// the values are large against it, log(value + shift) still tracks log(value).
inline constexpr double kLogShiftFraction = 0.25;

/// Encoded columns of a text feature: hashed token-frequency buckets.
inline constexpr std::size_t kTextBuckets = 32;

/// Fitted state of one raw input column.
struct FeatureTransform {
  std::string column;
  FeatureType type = FeatureType::Numeric;
  // Numeric: z = (value - mean) / scale, where a missing value is replaced by `fill` (training median).
  double fill = 0, mean = 0, scale = 1;
  // Numeric with a log column (width 2): the second column is (log(max(value, 0) + log_shift) - log_mean) /
  // log_scale. Values below 0, which training never saw, count as 0.
  bool log_column = false;
  double log_shift = 0, log_mean = 0, log_scale = 1;
  // Categorical: one output per category, in this order. A missing value becomes `fill_category`
  // (training mode). An unseen category encodes as all zeros.
  std::vector<std::string> categories;
  std::string fill_category;
  // Text: `width` buckets. A cell's tokens (runs of ASCII letters and digits or of non-ASCII bytes, ASCII
  // lowercased) are hashed with 64-bit FNV-1a into the buckets. Each bucket's encoded value is its share of
  // the cell's tokens, standardized as (share - bucket_mean) / bucket_scale. A missing cell has no tokens.
  std::vector<double> bucket_mean, bucket_scale;
  std::size_t offset = 0;  ///< First encoded column that this feature writes.
  std::size_t width = 1;   ///< Encoded columns that this feature writes.

  /// A numeric feature's log column for `value` (after imputation); requires log_column.
  double log_input(double value) const;
};

/// Writes the token share of each of `buckets` hash buckets of `text` into `shares` (all zeros for a text
/// without tokens), as a text feature encodes a cell before standardizing.
void text_token_shares(std::string_view text, std::size_t buckets, double* shares);

/// Replayable preprocessing. Fit it on training rows only, then encode any table that has the columns.
class Preprocessor {
 public:
  Preprocessor() = default;

  /// Fits imputation, standardization and category lists on `rows` of `table`.
  /// Throws ParseError naming file:line:column for a non-numeric value in a numeric feature,
  /// and InvalidArgument for a missing column.
  static Preprocessor fit(const Table& table, const std::vector<FeatureSpec>& features,
                          const std::vector<std::size_t>& rows);

  /// Encodes every row of `table`, matching columns by name in any order; extra columns are ignored.
  Matrix transform(const Table& table) const;

  /// Encodes the listed rows of `table`.
  Matrix transform(const Table& table, const std::vector<std::size_t>& rows) const;

  std::size_t encoded_width() const noexcept { return width_; }
  const std::vector<FeatureTransform>& features() const noexcept { return features_; }

  /// Names of the encoded columns, e.g. "Torque [Nm]" or "Type=L".
  std::vector<std::string> encoded_names() const;

  nlohmann::json to_json() const;
  /// Restores a fitted state. Throws ParseError naming the JSON path of a bad field.
  static Preprocessor from_json(const nlohmann::json& state, const std::string& json_path = "$");

 private:
  std::vector<FeatureTransform> features_;
  std::size_t width_ = 0;
};

/// Maps target texts to what the loss consumes: class indices, or a standardized regression value.
struct TargetEncoding {
  Task task = Task::BinaryClassification;
  std::string column;
  std::vector<std::string> classes;  ///< Classification: sorted labels; index = class id.
  double mean = 0, scale = 1;        ///< Regression: y_model = (y - mean) / scale.

  /// Builds the encoding from the training rows. Throws InvalidArgument for a target with one class.
  static TargetEncoding fit(const Table& table, const std::string& column, Task task,
                            const std::vector<std::size_t>& rows);

  /// Class ids (classification) for the rows. Throws ParseError for a missing or unknown label.
  std::vector<std::int64_t> encode_labels(const Table& table, const std::vector<std::size_t>& rows) const;
  /// Raw regression values for the rows. Throws ParseError for a missing or non-numeric value.
  std::vector<double> encode_values(const Table& table, const std::vector<std::size_t>& rows) const;

  nlohmann::json to_json() const;
  static TargetEncoding from_json(const nlohmann::json& state, const std::string& json_path = "$");
};

}  // namespace lepton
