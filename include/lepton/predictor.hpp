#pragma once
/// In-process inference from a model artifact, without LibTorch: f32 and int8 dense layers on scalar,
/// AVX2 or AVX-512 VNNI kernels chosen at run time.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lepton/matrix.hpp"
#include "lepton/model.hpp"
#include "lepton/table.hpp"

namespace lepton {

/// Model outputs for a batch of rows.
struct Predictions {
  Task task = Task::BinaryClassification;
  std::size_t rows = 0;
  std::size_t classes = 0;                 ///< 2 for binary, K for multiclass, 0 for regression.
  std::vector<double> probability;         ///< Binary: P(positive) per row. Multiclass: rows x classes.
  std::vector<std::int64_t> label_index;   ///< Classification: predicted class id per row.
  std::vector<double> value;               ///< Regression: prediction per row, in target units.
  double threshold = 0.5;                  ///< Binary: the decision threshold that produced label_index.
};

/// Instruction sets of the predictor's kernels, from lowest to highest.
enum class SimdLevel {
  Scalar = 0,  ///< Portable C++, the reference for the other levels.
  Avx2 = 1,    ///< AVX2 with FMA.
  Avx512 = 2,  ///< AVX-512 F, BW, VL and VNNI.
};

/// Returns "scalar", "avx2" or "avx512", the names that LEPTON_SIMD accepts.
std::string to_string(SimdLevel level);

/// The highest level that this CPU supports, detected once per process with libcpuinfo.
SimdLevel detected_simd_level();

/// The level that predictors use unless PredictorOptions names one: the detected level, lowered by the
/// environment variable LEPTON_SIMD=scalar|avx2|avx512 when it is set. A value above the detected level
/// or an unknown value is ignored with a warning in the log. Read once per process.
SimdLevel default_simd_level();

/// Per-predictor settings.
struct PredictorOptions {
  /// Kernel level. Empty means default_simd_level(). A level above detected_simd_level() is rejected.
  std::optional<SimdLevel> simd;
  /// Rows that pass through all layers together, so that the activations of a tile stay in L1 cache.
  /// It does not change any result, because the kernels compute every row on its own. Range [1, 4096].
  std::size_t tile_rows = 64;

  PredictorOptions& with_simd(SimdLevel level) { simd = level; return *this; }
  PredictorOptions& with_tile_rows(std::size_t rows) { tile_rows = rows; return *this; }
};

/// One raw cell of a record for single-record prediction: missing, a number or a text.
/// A text is parsed as a CSV cell would be: trimmed, matched against the CSV reader's default missing
/// markers ("", "NA", "N/A", "NaN", "nan", "?", "null", "NULL"), and parsed as a number for numeric features.
/// NOTE: a text Value does not own its characters; they must outlive the predict call.
class Value {
 public:
  enum class Kind { Missing, Number, Text };

  Value() = default;
  Value(double number) : kind_(Kind::Number), number_(number) {}
  Value(int number) : kind_(Kind::Number), number_(number) {}
  Value(std::string_view text) : kind_(Kind::Text), text_(text) {}
  Value(const char* text) : kind_(Kind::Text), text_(text) {}
  Value(const std::string& text) : kind_(Kind::Text), text_(text) {}

  static Value missing() { return Value(); }

  Kind kind() const noexcept { return kind_; }
  double number() const noexcept { return number_; }
  std::string_view text() const noexcept { return text_; }

 private:
  Kind kind_ = Kind::Missing;
  double number_ = 0;
  std::string_view text_;
};

/// The caller's column order for single-record calls, resolved once against the model's features.
/// Build it with Predictor::bind. It is immutable, so threads may share it.
class RecordSchema {
 public:
  RecordSchema() = default;

  /// Columns in the order in which predict() expects the values.
  const std::vector<std::string>& columns() const noexcept { return columns_; }

 private:
  friend class Predictor;
  std::vector<std::string> columns_;
  std::vector<std::size_t> feature_column_;  // per model feature: index into columns_
};

/// Caller-owned scratch memory for predict calls, in the style of a per-call object. One workspace serves
/// one thread at a time. It grows on first use; later calls with the same predictor reuse it and do not
/// allocate.
class Workspace {
 public:
  Workspace() = default;

 private:
  friend class Predictor;
  std::vector<float> encoded_;      // rows x encoded width, for record calls
  std::vector<float> expanded_;     // tile_rows x (encoded width + products), when the network has products
  std::vector<float> front_;        // tile_rows x widest padded layer
  std::vector<float> back_;
  std::vector<std::int8_t> quantized_;  // tile_rows x widest padded int8 input
  std::vector<float> row_scale_;    // tile_rows
  std::vector<double> outputs_;     // rows x network outputs
};

namespace detail {
struct CompiledNetwork;
}

/// Runs a loaded model. All methods are const and safe to call concurrently on one instance.
/// A row gets bit-identical outputs whether it is predicted alone or inside any batch, on one SIMD level.
class Predictor {
 public:
  /// Validates the artifact and packs its layers for the chosen kernels. Copies share the packed layers.
  explicit Predictor(ModelArtifact artifact, const PredictorOptions& options = {});

  /// Loads the artifact at `path` (see load_artifact for the errors).
  static Predictor load(const std::string& path, const PredictorOptions& options = {});

  const ModelArtifact& artifact() const noexcept { return artifact_; }
  SimdLevel simd_level() const noexcept;
  /// True when at least one layer runs in int8.
  bool quantized() const noexcept;
  /// Diagonal blocks that each layer runs in, first layer first: 1 for a dense layer, and G > 1 for a
  /// block-diagonal layer that runs as G small layers (merge_mean_output's hidden layers), in f32 or int8.
  /// An int8 layer runs dense when its blocks' inputs are not a multiple of 4.
  std::vector<std::size_t> layer_blocks() const;

  /// Replays the stored preprocessing on raw records; columns are matched by name, in any order.
  Matrix encode(const Table& records) const;

  /// Raw network outputs (logits or standardized value) for encoded rows: rows x outputs, in double.
  std::vector<double> forward(const Matrix& encoded) const;

  /// Predicts from encoded rows. Throws InvalidArgument when the width does not match the model.
  Predictions predict(const Matrix& encoded) const;

  /// Predicts from raw records.
  Predictions predict(const Table& records) const;

  /// Predicts one raw record given as (column name, value) pairs in any order; extra columns are ignored.
  /// Convenient, but it resolves names and allocates on every call: bind() a RecordSchema for hot paths.
  Predictions predict(const std::vector<std::pair<std::string, Value>>& record) const;

  /// Resolves the caller's column names to the model's features. Throws InvalidArgument naming a feature
  /// column that is absent (with the closest name) or a name that appears twice.
  RecordSchema bind(const std::vector<std::string>& columns) const;

  /// Encodes one record, values[i] being the cell of schema.columns()[i], into `encoded` (encoded width
  /// floats). Throws InvalidArgument when `count` differs from the schema's width, and ParseError for a
  /// text that is not a number in a numeric feature.
  void encode(const RecordSchema& schema, const Value* values, std::size_t count, float* encoded) const;

  /// Predicts `rows` encoded rows (row-major, encoded width columns) into `out`. After the first call with
  /// a given batch size, it allocates nothing: `workspace` and `out` keep their capacity.
  void predict(const float* encoded, std::size_t rows, Workspace& workspace, Predictions& out) const;

  /// Same as above for a Matrix. Throws InvalidArgument when its width or size does not match.
  void predict(const Matrix& encoded, Workspace& workspace, Predictions& out) const;

  /// Predicts one raw record (see encode above) into `out` without allocating after the first call.
  void predict(const RecordSchema& schema, const Value* values, std::size_t count, Workspace& workspace,
               Predictions& out) const;

 private:
  void run_network(const float* encoded, std::size_t rows, Workspace& workspace) const;
  void finish(std::size_t rows, const Workspace& workspace, Predictions& out) const;

  ModelArtifact artifact_;
  std::shared_ptr<const detail::CompiledNetwork> network_;
  std::vector<std::string> missing_markers_;
};

}  // namespace lepton
