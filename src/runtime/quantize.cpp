// Post-training int8 quantization: per-output-channel weight scales, optional static activation scales
// from calibration rows, and the accuracy gate that moves harmful layers back to f32.

#include "lepton/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/evaluator.hpp"
#include "lepton/log.hpp"
#include "lepton/predictor.hpp"

namespace lepton {

namespace {

constexpr float kInt8Max = 127.0f;

// The validation truth of either task kind.
struct Truth {
  const std::vector<std::int64_t>* labels = nullptr;
  const std::vector<double>* values = nullptr;

  std::size_t size() const { return labels != nullptr ? labels->size() : values->size(); }
};

Metric resolve_objective(const ModelArtifact& artifact, const QuantizationOptions& options) {
  std::string name = options.objective;
  if (name.empty() && artifact.configuration.is_object()) {
    const auto found = artifact.configuration.find("objective");
    if (found != artifact.configuration.end() && found->is_string()) {
      name = found->get<std::string>();
    }
  }
  if (name.empty()) {
    switch (artifact.task) {
      case Task::BinaryClassification: return Metric::F1;
      case Task::MulticlassClassification: return Metric::MacroF1;
      case Task::Regression: return Metric::R2;
    }
  }

  Metric metric = Metric::F1;
  if (!parse_metric(name, metric)) {
    throw InvalidArgument(fmt::format("quantize: objective '{}' is not a known metric; use a name such as f1, "
                                      "roc_auc, accuracy, macro_f1, rmse or r2",
                                      name));
  }
  return metric;
}

void check_inputs(const ModelArtifact& artifact, const Matrix& calibration, const Matrix& validation,
                  const Truth& truth, const QuantizationOptions& options) {
  const std::size_t width = artifact.network.inputs();
  if (validation.rows == 0 || validation.cols != width || validation.data.size() != validation.rows * width) {
    throw InvalidArgument(fmt::format("quantize: validation is {} x {}, expected at least 1 row of {} encoded "
                                      "columns",
                                      validation.rows, validation.cols, width));
  }
  if (truth.size() != validation.rows) {
    throw InvalidArgument(fmt::format("quantize: {} validation targets for {} validation rows; pass one per row",
                                      truth.size(), validation.rows));
  }
  const bool is_static = options.activations != ActivationScaling::PerRow;
  if (is_static && (calibration.rows == 0 || calibration.cols != width ||
                    calibration.data.size() != calibration.rows * width)) {
    throw InvalidArgument(fmt::format("quantize: {} activation scaling needs calibration rows of {} encoded "
                                      "columns, got {} x {}",
                                      to_string(options.activations), width, calibration.rows, calibration.cols));
  }
  if (!(options.percentile > 0.0 && options.percentile <= 100.0)) {
    throw InvalidArgument(fmt::format("QuantizationOptions: percentile is {}, expected a value in (0, 100]",
                                      options.percentile));
  }
  if (!(options.tolerance >= 0.0 && options.tolerance <= 1.0)) {
    throw InvalidArgument(fmt::format("QuantizationOptions: tolerance is {}, expected a value in [0, 1]",
                                      options.tolerance));
  }
}

// ---- Calibration.

// Runs the f32 network on the calibration rows and returns |x| of every layer's input, one list per layer.
std::vector<std::vector<float>> collect_input_magnitudes(const Mlp& network, const Matrix& calibration) {
  std::vector<std::vector<float>> magnitudes(network.layers.size());
  // The first layer reads the calibration rows and their input products.
  std::size_t width = calibration.cols + network.products.size();
  std::vector<float> input(calibration.rows * width);
  append_products(network.products, calibration.data.data(), calibration.rows, calibration.cols, input.data());

  for (std::size_t l = 0; l < network.layers.size(); ++l) {
    const DenseLayer& layer = network.layers[l];
    magnitudes[l].reserve(input.size());
    for (const float value : input) {
      magnitudes[l].push_back(std::fabs(value));
    }

    std::vector<float> output(calibration.rows * layer.outputs);
    for (std::size_t r = 0; r < calibration.rows; ++r) {
      for (std::size_t o = 0; o < layer.outputs; ++o) {
        float sum = layer.bias[o];
        for (std::size_t k = 0; k < width; ++k) {
          sum += input[r * width + k] * layer.weight[o * width + k];
        }
        switch (layer.activation) {
          case Activation::Identity: break;
          case Activation::Relu: sum = std::max(sum, 0.0f); break;
          case Activation::Tanh: sum = std::tanh(sum); break;
          case Activation::Gelu: sum = 0.5f * sum * (1.0f + std::erf(sum * 0.70710678118654752f)); break;
        }
        output[r * layer.outputs + o] = sum;
      }
    }
    input = std::move(output);
    width = layer.outputs;
  }
  return magnitudes;
}

// Nearest-rank percentile of the magnitudes, in (0, 100].
float percentile_of(std::vector<float> values, double percentile) {
  const double rank = std::ceil(percentile / 100.0 * static_cast<double>(values.size()));
  const std::size_t index = static_cast<std::size_t>(std::max(rank, 1.0)) - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

// Static input scale of each layer, or 0 (one scale per row at run time).
std::vector<float> input_scales(const Mlp& network, const Matrix& calibration, const QuantizationOptions& options) {
  std::vector<float> scales(network.layers.size(), 0.0f);
  if (options.activations == ActivationScaling::PerRow) {
    return scales;
  }

  const std::vector<std::vector<float>> magnitudes = collect_input_magnitudes(network, calibration);
  for (std::size_t l = 0; l < scales.size(); ++l) {
    const float bound = options.activations == ActivationScaling::MinMax
                            ? *std::max_element(magnitudes[l].begin(), magnitudes[l].end())
                            : percentile_of(magnitudes[l], options.percentile);
    // An input that was 0 on every calibration row gives no scale; that layer keeps per-row scaling.
    scales[l] = bound > 0.0f && std::isfinite(bound) ? bound / kInt8Max : 0.0f;
  }
  return scales;
}

// ---- Candidates and their measurement.

ModelArtifact build_candidate(const ModelArtifact& f32, const std::vector<LayerPrecision>& precisions,
                              const std::vector<QuantizedWeights>& quantized) {
  ModelArtifact candidate = f32;
  for (std::size_t l = 0; l < precisions.size(); ++l) {
    DenseLayer& layer = candidate.network.layers[l];
    layer.precision = precisions[l];
    if (precisions[l] == LayerPrecision::Int8) {
      layer.quantized = quantized[l];
      for (std::size_t i = 0; i < layer.weight.size(); ++i) {
        layer.weight[i] = static_cast<float>(layer.quantized.values[i]) * layer.quantized.scales[i / layer.inputs];
      }
    } else {
      layer.quantized = QuantizedWeights{};
    }
  }
  return candidate;
}

struct Measurement {
  double metric = 0;
  double agreement = 1;
  double max_abs_output_difference = 0;
};

struct Reference {
  Metric objective = Metric::F1;
  double metric = 0;
  Predictions predictions;
  std::vector<double> outputs;
};

double score(const Predictions& predictions, const Truth& truth, Metric objective) {
  const Evaluation evaluation =
      truth.labels != nullptr ? evaluate(predictions, *truth.labels) : evaluate(predictions, *truth.values);
  return evaluation.value(objective);
}

Measurement measure(const ModelArtifact& candidate, const Matrix& validation, const Truth& truth,
                    const Reference& reference) {
  const Predictor predictor(candidate);
  const Predictions predictions = predictor.predict(validation);
  const std::vector<double> outputs = predictor.forward(validation);

  Measurement measurement;
  measurement.metric = score(predictions, truth, reference.objective);
  if (!predictions.label_index.empty()) {
    std::size_t same = 0;
    for (std::size_t r = 0; r < predictions.rows; ++r) {
      same += predictions.label_index[r] == reference.predictions.label_index[r] ? 1 : 0;
    }
    measurement.agreement = static_cast<double>(same) / static_cast<double>(predictions.rows);
  } else {
    measurement.agreement = std::numeric_limits<double>::quiet_NaN();
  }
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    measurement.max_abs_output_difference =
        std::max(measurement.max_abs_output_difference, std::fabs(outputs[i] - reference.outputs[i]));
  }
  return measurement;
}

double drop_of(const Reference& reference, double metric) {
  return higher_is_better(reference.objective) ? reference.metric - metric : metric - reference.metric;
}

std::string describe(const std::vector<LayerPrecision>& precisions) {
  std::string text;
  for (std::size_t l = 0; l < precisions.size(); ++l) {
    text += fmt::format("{}layer {} {}", l == 0 ? "" : ", ", l, to_string(precisions[l]));
  }
  return text;
}

// Moves one int8 layer at a time back to f32, each time the one whose return gives the smallest drop,
// until the drop fits the tolerance. Returns the final measurement.
Measurement fall_back(const ModelArtifact& f32, const std::vector<QuantizedWeights>& quantized,
                      const Matrix& validation, const Truth& truth, const Reference& reference, double tolerance,
                      std::vector<LayerPrecision>& precisions, Measurement current) {
  while (drop_of(reference, current.metric) > tolerance) {
    std::optional<std::size_t> best_layer;
    Measurement best;
    for (std::size_t l = 0; l < precisions.size(); ++l) {
      if (precisions[l] != LayerPrecision::Int8) {
        continue;
      }
      std::vector<LayerPrecision> trial = precisions;
      trial[l] = LayerPrecision::F32;
      const Measurement measured = measure(build_candidate(f32, trial, quantized), validation, truth, reference);
      if (!best_layer || drop_of(reference, measured.metric) < drop_of(reference, best.metric)) {
        best_layer = l;
        best = measured;
      }
    }
    if (!best_layer) {
      break;
    }

    log(LogLevel::Info, fmt::format("quantize: {} drop {:.4f} exceeds {:.4f}; layer {} falls back to f32 (drop "
                                    "then {:.4f})",
                                    to_string(reference.objective), drop_of(reference, current.metric), tolerance,
                                    *best_layer, drop_of(reference, best.metric)));
    precisions[*best_layer] = LayerPrecision::F32;
    current = best;
  }
  return current;
}

// The same model with every layer in f32, so that quantizing an already quantized artifact starts over
// from its dequantized weights.
ModelArtifact all_f32(const ModelArtifact& artifact) {
  ModelArtifact copy = artifact;
  for (DenseLayer& layer : copy.network.layers) {
    layer.precision = LayerPrecision::F32;
    layer.quantized = QuantizedWeights{};
  }
  return copy;
}

QuantizationResult quantize_with(const ModelArtifact& original, const Matrix& calibration, const Matrix& validation,
                                 const Truth& truth, const QuantizationOptions& options) {
  const ModelArtifact f32 = all_f32(original);
  const Predictor f32_predictor(f32);
  check_inputs(f32, calibration, validation, truth, options);

  Reference reference;
  reference.objective = resolve_objective(f32, options);
  reference.predictions = f32_predictor.predict(validation);
  reference.outputs = f32_predictor.forward(validation);
  reference.metric = score(reference.predictions, truth, reference.objective);

  const std::vector<float> scales = input_scales(f32.network, calibration, options);
  std::vector<QuantizedWeights> quantized;
  for (std::size_t l = 0; l < f32.network.layers.size(); ++l) {
    quantized.push_back(quantize_weights(f32.network.layers[l]));
    quantized.back().input_scale = scales[l];
  }

  std::vector<LayerPrecision> precisions(f32.network.layers.size(), LayerPrecision::Int8);
  Measurement measurement = measure(build_candidate(f32, precisions, quantized), validation, truth, reference);
  const double all_int8_drop = drop_of(reference, measurement.metric);
  if (all_int8_drop > options.tolerance && !options.fallback_to_f32) {
    throw ConstraintError(fmt::format("quantize: int8 lowers {} on the {} validation rows from {:.4f} to {:.4f}, a "
                                      "drop of {:.4f} over the tolerance of {:.4f} (label agreement {:.4f}); raise "
                                      "the tolerance, try static activation scales, or enable the f32 fallback",
                                      to_string(reference.objective), validation.rows, reference.metric,
                                      measurement.metric, all_int8_drop, options.tolerance, measurement.agreement));
  }
  measurement = fall_back(f32, quantized, validation, truth, reference, options.tolerance, precisions, measurement);

  QuantizationResult result;
  result.precisions = precisions;
  result.objective = to_string(reference.objective);
  result.f32_metric = reference.metric;
  result.int8_metric = measurement.metric;
  result.metric_drop = drop_of(reference, measurement.metric);
  result.label_agreement = measurement.agreement;
  result.max_abs_output_difference = measurement.max_abs_output_difference;
  result.validation_rows = validation.rows;

  result.artifact = build_candidate(f32, precisions, quantized);
  nlohmann::json record = result.to_json();
  record["activations"] = to_string(options.activations);
  record["percentile"] = options.percentile;
  record["tolerance"] = options.tolerance;
  record["all_int8_drop"] = all_int8_drop;
  result.artifact.extensions["quantization"] = std::move(record);

  log(LogLevel::Info, fmt::format("quantize: {}; {} {:.4f} -> {:.4f} (drop {:.4f}), label agreement {:.4f}",
                                  describe(precisions), result.objective, result.f32_metric, result.int8_metric,
                                  result.metric_drop, result.label_agreement));
  return result;
}

}  // namespace

std::string to_string(ActivationScaling scaling) {
  switch (scaling) {
    case ActivationScaling::PerRow: return "per_row";
    case ActivationScaling::MinMax: return "min_max";
    case ActivationScaling::Percentile: return "percentile";
  }
  throw InternalError(fmt::format("to_string: ActivationScaling value {} is out of range", static_cast<int>(scaling)));
}

nlohmann::json QuantizationResult::to_json() const {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerPrecision precision : precisions) {
    layers.push_back(to_string(precision));
  }
  const auto number_or_null = [](double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(); };
  return {{"layers", std::move(layers)},
          {"objective", objective},
          {"f32_metric", number_or_null(f32_metric)},
          {"int8_metric", number_or_null(int8_metric)},
          {"metric_drop", number_or_null(metric_drop)},
          {"label_agreement", number_or_null(label_agreement)},
          {"max_abs_output_difference", number_or_null(max_abs_output_difference)},
          {"validation_rows", validation_rows}};
}

QuantizedWeights quantize_weights(const DenseLayer& layer) {
  QuantizedWeights quantized;
  quantized.values.resize(layer.outputs * layer.inputs);
  quantized.scales.resize(layer.outputs);

  for (std::size_t o = 0; o < layer.outputs; ++o) {
    const float* row = layer.weight.data() + o * layer.inputs;
    float max_abs = 0.0f;
    for (std::size_t k = 0; k < layer.inputs; ++k) {
      max_abs = std::max(max_abs, std::fabs(row[k]));
    }
    // An all-zero row quantizes to zeros with any scale; 1 keeps the scale valid (> 0).
    const float scale = max_abs > 0.0f ? max_abs / kInt8Max : 1.0f;
    quantized.scales[o] = scale;
    for (std::size_t k = 0; k < layer.inputs; ++k) {
      const float q = std::nearbyint(row[k] / scale);
      quantized.values[o * layer.inputs + k] = static_cast<std::int8_t>(std::clamp(q, -kInt8Max, kInt8Max));
    }
  }
  return quantized;
}

QuantizationResult quantize(const ModelArtifact& f32, const Matrix& calibration, const Matrix& validation,
                            const std::vector<std::int64_t>& validation_labels, const QuantizationOptions& options) {
  if (f32.task == Task::Regression) {
    throw InvalidArgument("quantize: the model is a regressor; pass validation target values, not class ids");
  }
  return quantize_with(f32, calibration, validation, Truth{&validation_labels, nullptr}, options);
}

QuantizationResult quantize(const ModelArtifact& f32, const Matrix& calibration, const Matrix& validation,
                            const std::vector<double>& validation_values, const QuantizationOptions& options) {
  if (f32.task != Task::Regression) {
    throw InvalidArgument("quantize: the model is a classifier; pass validation class ids, not target values");
  }
  return quantize_with(f32, calibration, validation, Truth{nullptr, &validation_values}, options);
}

}  // namespace lepton
