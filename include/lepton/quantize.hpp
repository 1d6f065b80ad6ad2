#pragma once
/// Post-training int8 quantization of a model artifact, with an accuracy gate against the f32 model.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/matrix.hpp"
#include "lepton/metrics.hpp"
#include "lepton/model.hpp"

namespace lepton {

/// Source of the int8 scale of a layer's input activations.
enum class ActivationScaling {
  PerRow,      ///< max|x| / 127 of each row at run time (dynamic quantization). The default.
  MinMax,      ///< max|x| over the calibration rows, fixed in the file (static quantization).
  Percentile,  ///< The given percentile of |x| over the calibration rows; larger values clamp to +-127.
};

std::string to_string(ActivationScaling scaling);

/// Options of quantize().
struct QuantizationOptions {
  ActivationScaling activations = ActivationScaling::PerRow;
  /// Percentile of |x| for ActivationScaling::Percentile, in (0, 100].
  double percentile = 99.99;
  /// Objective metric of the gate. Empty means the artifact's configuration "objective" when it names a
  /// metric, else F1 (binary), macro F1 (multiclass) or R2 (regression).
  std::string objective;
  /// Largest allowed drop of the objective on the validation rows, in the metric's units (0.005 is half a
  /// point of F1). For metrics where lower is better, a rise counts as a drop. Range [0, 1].
  /// NOTE: on AI4I's 2,000 validation rows (68 failures) one flipped failure moves F1 by about 0.013, more than
  /// this default, so the gate can move layers back to f32 over a single row near the threshold.
  double tolerance = 0.005;
  /// Action when the drop exceeds the tolerance. True moves the most harmful layers back to f32, one at a
  /// time, until the drop fits. False throws ConstraintError with the numbers.
  bool fallback_to_f32 = true;

  QuantizationOptions& with_activations(ActivationScaling scaling) { activations = scaling; return *this; }
  QuantizationOptions& with_percentile(double value) { percentile = value; return *this; }
  QuantizationOptions& with_objective(std::string name) { objective = std::move(name); return *this; }
  QuantizationOptions& with_tolerance(double value) { tolerance = value; return *this; }
  QuantizationOptions& with_fallback_to_f32(bool enabled) { fallback_to_f32 = enabled; return *this; }
};

/// The output and measurements of quantize(), also stored in the artifact under $.extensions.quantization.
struct QuantizationResult {
  ModelArtifact artifact;                     ///< The mixed-precision model, ready for save_artifact.
  std::vector<LayerPrecision> precisions;     ///< Per layer.
  std::string objective;                      ///< Metric name, e.g. "f1".
  double f32_metric = 0;                      ///< Objective of the f32 model on the validation rows.
  double int8_metric = 0;                     ///< Objective of the returned model on the validation rows.
  double metric_drop = 0;                     ///< Worsening of the objective (>= 0 means worse).
  double label_agreement = 1;                 ///< Share of validation rows whose label equals the f32 label.
  double max_abs_output_difference = 0;       ///< Largest |int8 - f32| of a raw network output.
  std::size_t validation_rows = 0;

  nlohmann::json to_json() const;
};

/// Quantizes every layer to int8 (weights symmetric per output channel, int32 accumulation), calibrates
/// static activation scales on `calibration` when the options ask for them, and gates the result on
/// `validation` rows against `validation_labels` (class ids). Layers fall back to f32 while the drop exceeds
/// the tolerance. Throws InvalidArgument for mismatched shapes or options, and ConstraintError when the gate
/// fails and fallback is off. `calibration` may be empty for ActivationScaling::PerRow.
QuantizationResult quantize(const ModelArtifact& f32, const Matrix& calibration, const Matrix& validation,
                            const std::vector<std::int64_t>& validation_labels, const QuantizationOptions& options = {});

/// Same for regression: `validation_values` are target values in target units.
QuantizationResult quantize(const ModelArtifact& f32, const Matrix& calibration, const Matrix& validation,
                            const std::vector<double>& validation_values, const QuantizationOptions& options = {});

/// Quantizes one layer's weights: scale[o] = max|W[o]| / 127 (1 for an all-zero row), q = round(W / scale).
QuantizedWeights quantize_weights(const DenseLayer& layer);

}  // namespace lepton
