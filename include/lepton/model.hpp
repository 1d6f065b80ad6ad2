#pragma once
/// The model artifact: one versioned file with preprocessing, architecture, weights, threshold,
/// metrics and provenance. docs/model-format.md documents the layout.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/crypto.hpp"
#include "lepton/preprocess.hpp"

namespace lepton {

enum class Activation { Identity, Relu, Gelu, Tanh };

std::string to_string(Activation activation);

/// Numeric format in which the predictor runs a dense layer.
enum class LayerPrecision { F32, Int8 };

std::string to_string(LayerPrecision precision);

/// Post-training int8 form of a layer: weights symmetric per output channel, int32 accumulation.
struct QuantizedWeights {
  std::vector<std::int8_t> values;  ///< outputs x inputs, each in [-127, 127].
  std::vector<float> scales;        ///< outputs, finite and > 0: W[o][k] ~ values[o * inputs + k] * scales[o].
  /// Activation scale of the layer's input, from calibration data (static quantization), so that
  /// q = round(x / input_scale) clamped to [-127, 127]. 0 selects one scale per row at run time,
  /// max|x| / 127 (dynamic quantization).
  float input_scale = 0;
};

/// A fully connected layer y = act(W x + b), with W row-major [out][in] like torch.nn.Linear.weight.
struct DenseLayer {
  std::size_t inputs = 0;
  std::size_t outputs = 0;
  std::vector<float> weight;  ///< outputs x inputs.
  std::vector<float> bias;    ///< outputs.
  Activation activation = Activation::Relu;
  LayerPrecision precision = LayerPrecision::F32;
  /// Used when precision is Int8. `weight` then contains the dequantized values, so that code which reads
  /// f32 weights (explainers, exporters) sees the function that the int8 layer computes, up to activation
  /// rounding.
  QuantizedWeights quantized;
};

/// An extra input that the network computes from two of its inputs before the first layer. Its factors are
/// L = left_scale * x[left] + left_shift and R = right_scale * x[right] + right_shift. When the scale and shift of
/// a factor are a standardized column's scale and mean, the factor is the raw value. The term combines them:
/// - the product L R, a raw quantity such as torque x speed, or the difference L - R when `difference` is set;
/// - with `step` set, 1 where that combination is above *step and 0 elsewhere: a threshold, such as a power
///   limit, that a network of ReLU units would otherwise blur;
/// - then standardized: (combination - mean) / scale.
/// A derived input that the network cannot fold into its first layer (see lepton/derived.hpp) becomes one of
/// these, so the network still takes the preprocessor's columns alone.
struct InputProduct {
  std::size_t left = 0, right = 0;  ///< Input columns, below Mlp::inputs().
  double left_scale = 1, left_shift = 0;
  double right_scale = 1, right_shift = 0;
  bool difference = false;          ///< L - R instead of L R.
  std::optional<double> step;       ///< Threshold of a step term; finite when set.
  double mean = 0, scale = 1;       ///< Standardization of the term; scale > 0.

  /// The raw factors of a row of float or double inputs.
  template <typename T>
  double left_factor(const T* row) const { return left_scale * static_cast<double>(row[left]) + left_shift; }
  template <typename T>
  double right_factor(const T* row) const { return right_scale * static_cast<double>(row[right]) + right_shift; }
  /// Returns the standardized term of factors l and r.
  double combine(double l, double r) const {
    double raw = difference ? l - r : l * r;
    if (step) raw = raw > *step ? 1.0 : 0.0;
    return (raw - mean) / scale;
  }
  /// Returns the standardized term of a row.
  template <typename T>
  double value(const T* row) const { return combine(left_factor(row), right_factor(row)); }
};

/// A multilayer perceptron. The last layer has Identity activation and emits logits
/// (1 for binary, K for multiclass) or the standardized regression value. When `products` is not empty,
/// the first layer reads the inputs followed by one column per product, in order.
struct Mlp {
  std::vector<DenseLayer> layers;
  std::vector<InputProduct> products;

  /// Columns that a caller passes: the first layer's inputs less the computed products.
  std::size_t inputs() const { return layers.empty() ? 0 : layers.front().inputs - products.size(); }
  std::size_t outputs() const { return layers.empty() ? 0 : layers.back().outputs; }
  std::size_t parameter_count() const;
  /// Throws InvalidArgument when consecutive shapes do not chain, a buffer has the wrong size,
  /// there are no layers, the last layer's activation is not Identity, or a product reads a column outside
  /// inputs() or has a scale that is not positive and finite.
  void validate() const;
};

/// Writes the first layer's input for `rows` rows of `inputs` columns: each row, then its products.
/// `out` has room for rows x (inputs + products.size()) floats.
void append_products(const std::vector<InputProduct>& products, const float* rows, std::size_t count,
                     std::size_t inputs, float* out);

/// Returns one network that computes the mean of the members' outputs (logits, before any sigmoid or
/// softmax). The hidden layers are placed side by side: the first layer stacks the members' rows, later
/// layers are block-diagonal, and the output layer averages. The result is exact. The block-diagonal layers
/// hold zeros in memory, but save_artifact stores only their blocks, and the predictor's f32 layers and the
/// explainers' fast path detect the blocks and skip the zeros, so they cost about the multiply-adds of the K
/// members together. A merged AI4I model of 10 members (8-640-320-1) takes about 1.7 us per row on AVX2 and
/// AVX-512 (docs/benchmarks.md). The explainers' double-precision reference path still multiplies the zeros.
/// Throws InvalidArgument when the members differ in inputs, outputs, depth or activations, or use int8.
Mlp merge_mean_output(const std::vector<Mlp>& members);

/// Origin of a model.
struct Provenance {
  std::string lepton_version;
  std::string created_utc;          ///< ISO 8601, e.g. "2026-12-04T22:10:00Z".
  std::string data_file;            ///< Path as given by the caller.
  std::string data_sha256;          ///< Hex SHA-256 of the data file's bytes.
  std::string requirements_sha256;  ///< Hex SHA-256 of the canonical requirements JSON.
  std::uint64_t seed = 0;

  nlohmann::json to_json() const;
  static Provenance from_json(const nlohmann::json& j, const std::string& json_path = "$");
};

/// Everything needed to run a trained model without the training data or LibTorch.
struct ModelArtifact {
  static constexpr std::uint32_t kFormatVersion = 1;

  Task task = Task::BinaryClassification;
  Preprocessor preprocessor;
  TargetEncoding target;
  Mlp network;
  double threshold = 0.5;        ///< Binary decision threshold on the positive-class probability.
  nlohmann::json configuration;  ///< Resolved model configuration with the reason for each choice.
  nlohmann::json metrics;        ///< Evaluation results, as written by the evaluator.
  Provenance provenance;
  nlohmann::json extensions = nlohmann::json::object();  ///< Sections added by later components.
};

/// Writes the artifact atomically: to "<path>.tmp-<pid>", then rename. Throws IoError on failure.
/// A layer whose weights outside G > 1 equal diagonal blocks are all +0.0f (0 in an int8 layer), such as a
/// merged network's hidden layers after the first, is stored as those blocks and loads back bit for bit.
void save_artifact(const ModelArtifact& artifact, const std::string& path);

/// Loads and validates an artifact. Every size, offset, dtype and shape is checked before data are read,
/// and the checksum is verified. Throws FileNotFound, IoError or ParseError naming the fault.
/// Encrypted and signed files are opened with LoadOptions::from_environment() (LEPTON_MODEL_KEY,
/// LEPTON_MODEL_KEY_FILE, LEPTON_TRUSTED_KEY_FILE).
ModelArtifact load_artifact(const std::string& path);

/// Writes the artifact atomically inside the envelopes of `options`: encrypted, then signed (crypto.hpp).
void save_artifact(const ModelArtifact& artifact, const std::string& path, const SaveOptions& options);

/// Loads a plain, encrypted or signed artifact. Throws ParseError when a required signature is missing,
/// invalid or untrusted, when an encrypted file comes without its key, and when decryption fails (a wrong
/// key, a changed byte, a truncated file).
ModelArtifact load_artifact(const std::string& path, const LoadOptions& options);

/// Same as load_artifact, for bytes already in memory. `source` names them in error messages.
ModelArtifact parse_artifact(const std::string& bytes, const std::string& source);

/// Serializes to the bytes that save_artifact writes.
std::string serialize_artifact(const ModelArtifact& artifact);

}  // namespace lepton
