#pragma once
/// In-process inference from a model artifact, without LibTorch.

#include <cstddef>
#include <cstdint>
#include <string>
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

/// Runs a loaded model. All methods are const and safe to call concurrently on one instance.
class Predictor {
 public:
  explicit Predictor(ModelArtifact artifact);

  /// Loads the artifact at `path` (see load_artifact for the errors).
  static Predictor load(const std::string& path);

  const ModelArtifact& artifact() const noexcept { return artifact_; }

  /// Replays the stored preprocessing on raw records; columns are matched by name, in any order.
  Matrix encode(const Table& records) const;

  /// Raw network outputs (logits or standardized value) for encoded rows: rows x outputs, in double.
  std::vector<double> forward(const Matrix& encoded) const;

  /// Predicts from encoded rows. Throws InvalidArgument when the width does not match the model.
  Predictions predict(const Matrix& encoded) const;

  /// Predicts from raw records.
  Predictions predict(const Table& records) const;

 private:
  ModelArtifact artifact_;
};

}  // namespace lepton
