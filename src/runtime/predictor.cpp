// Inference without LibTorch: the network runs tile by tile through the packed f32 or int8 kernels of
// kernels.hpp, then the task's output transform (sigmoid, softmax or de-standardization) runs in double.
// A block-diagonal layer, as merge_mean_output builds, runs as one kernel call per diagonal block in f32 and
// in int8 (block_diagonal.hpp).

#include "lepton/predictor.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/log.hpp"
#include "runtime/block_diagonal.hpp"
#include "runtime/kernels.hpp"
#include "runtime/model_detail.hpp"
#include "runtime/text_detail.hpp"

namespace lepton {

namespace detail {

struct CompiledLayer {
  LayerPrecision precision = LayerPrecision::F32;
  Activation activation = Activation::Identity;
  std::size_t outputs = 0;
  std::size_t output_stride = 0;  // Row stride of the layer's output buffer: the kernels' padded width.
  BlockedF32Layer f32;
  BlockedI8Layer i8;
};

struct CompiledNetwork {
  const KernelTable* kernels = nullptr;
  std::vector<CompiledLayer> layers;
  std::size_t tile_rows = 0;
  std::size_t inputs = 0;
  std::vector<InputProduct> products;  // computed after the inputs, before the first layer
  std::size_t outputs = 0;
  std::size_t widest_output = 0;       // max output_stride
  std::size_t widest_int8_input = 0;   // max padded_inputs of the int8 layers
  bool quantized = false;
};

}  // namespace detail

namespace {

// ---- Validation.

void check_quantized_layer(const DenseLayer& layer, std::size_t index) {
  const QuantizedWeights& quantized = layer.quantized;
  if (quantized.values.size() != layer.outputs * layer.inputs || quantized.scales.size() != layer.outputs) {
    throw InvalidArgument(fmt::format("Predictor: int8 layer {} has {} weights and {} scales, expected {} x {} "
                                      "and {}; quantize the layer with lepton::quantize",
                                      index, quantized.values.size(), quantized.scales.size(), layer.outputs,
                                      layer.inputs, layer.outputs));
  }
  for (std::size_t i = 0; i < quantized.values.size(); ++i) {
    if (quantized.values[i] < -detail::kInt8Max) {
      throw InvalidArgument(fmt::format("Predictor: int8 layer {} weight {} is -128, but weights must lie in "
                                        "[-127, 127]",
                                        index, i));
    }
  }
  for (std::size_t o = 0; o < quantized.scales.size(); ++o) {
    if (!std::isfinite(quantized.scales[o]) || quantized.scales[o] <= 0.0f) {
      throw InvalidArgument(fmt::format("Predictor: int8 layer {} weight scale {} is {}, expected a finite "
                                        "number > 0",
                                        index, o, quantized.scales[o]));
    }
  }
  if (!std::isfinite(quantized.input_scale) || quantized.input_scale < 0.0f) {
    throw InvalidArgument(fmt::format("Predictor: int8 layer {} input scale is {}, expected 0 (per row) or a "
                                      "finite number > 0",
                                      index, quantized.input_scale));
  }
}

void check_artifact(const ModelArtifact& artifact) {
  try {
    artifact.network.validate();
  } catch (const InvalidArgument& error) {
    throw InvalidArgument(fmt::format("Predictor: invalid network: {}", error.what()));
  }

  const std::size_t encoded_width = artifact.preprocessor.encoded_width();
  if (artifact.network.inputs() != encoded_width) {
    throw InvalidArgument(fmt::format("Predictor: the network has {} inputs but the preprocessor encodes {} "
                                      "columns; build the first layer with {} inputs",
                                      artifact.network.inputs(), encoded_width, encoded_width));
  }

  const std::size_t outputs = detail::expected_outputs(artifact.task, artifact.target);
  if (artifact.network.outputs() != outputs) {
    throw InvalidArgument(fmt::format("Predictor: the network has {} outputs but task {} needs {}",
                                      artifact.network.outputs(), detail::task_name(artifact.task), outputs));
  }

  for (std::size_t i = 0; i < artifact.network.layers.size(); ++i) {
    if (artifact.network.layers[i].precision == LayerPrecision::Int8) {
      check_quantized_layer(artifact.network.layers[i], i);
    }
  }
}

void check_options(const PredictorOptions& options) {
  if (options.tile_rows < 1 || options.tile_rows > 4096) {
    throw InvalidArgument(fmt::format("PredictorOptions: tile_rows is {}, expected a value in [1, 4096]",
                                      options.tile_rows));
  }
}

// ---- Compilation: pack every layer once, for the chosen kernels.

std::shared_ptr<const detail::CompiledNetwork> compile(const Mlp& network, const PredictorOptions& options) {
  auto compiled = std::make_shared<detail::CompiledNetwork>();
  compiled->kernels = &detail::kernels_for(options.simd.value_or(default_simd_level()));
  compiled->tile_rows = options.tile_rows;
  compiled->inputs = network.inputs();
  compiled->products = network.products;
  compiled->outputs = network.outputs();

  for (const DenseLayer& layer : network.layers) {
    detail::CompiledLayer entry;
    entry.precision = layer.precision;
    entry.activation = layer.activation;
    entry.outputs = layer.outputs;
    if (layer.precision == LayerPrecision::Int8) {
      entry.i8 = detail::pack_blocked_i8(layer);
      entry.output_stride = entry.i8.output_stride;
      compiled->widest_int8_input = std::max(compiled->widest_int8_input, entry.i8.padded_inputs);
      compiled->quantized = true;
    } else {
      entry.f32 = detail::pack_blocked_f32(layer);
      entry.output_stride = entry.f32.output_stride;
    }
    compiled->widest_output = std::max(compiled->widest_output, entry.output_stride);
    compiled->layers.push_back(std::move(entry));
  }
  return compiled;
}

// ---- Activations that the kernels do not fuse. Every level runs this same code, so it cannot make
// levels or batch sizes disagree.

void apply_activation(Activation activation, float* values, std::size_t rows, std::size_t cols,
                      std::size_t stride) {
  if (activation == Activation::Identity || activation == Activation::Relu) {
    return;
  }
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = values + r * stride;
    for (std::size_t c = 0; c < cols; ++c) {
      if (activation == Activation::Tanh) {
        row[c] = std::tanh(row[c]);
      } else {
        // Exact GELU, x * Phi(x), as torch.nn.GELU(approximate="none").
        row[c] = 0.5f * row[c] * (1.0f + std::erf(row[c] * 0.70710678118654752f));
      }
    }
  }
}

// ---- Output transforms.

// Sigmoid without overflow, because the argument of exp() is never positive.
double stable_sigmoid(double logit) {
  if (logit >= 0) {
    return 1.0 / (1.0 + std::exp(-logit));
  }
  const double e = std::exp(logit);
  return e / (1.0 + e);
}

// Softmax of one row, shifted by its maximum so that exp() cannot overflow.
void stable_softmax(const double* logits, std::size_t classes, double* probability) {
  const double max_logit = *std::max_element(logits, logits + classes);
  double sum = 0;
  for (std::size_t k = 0; k < classes; ++k) {
    probability[k] = std::exp(logits[k] - max_logit);
    sum += probability[k];
  }
  for (std::size_t k = 0; k < classes; ++k) {
    probability[k] /= sum;
  }
}

void predict_binary(const double* logits, double threshold, Predictions& predictions) {
  predictions.classes = 2;
  predictions.threshold = threshold;
  predictions.probability.resize(predictions.rows);
  predictions.label_index.resize(predictions.rows);
  predictions.value.clear();
  for (std::size_t r = 0; r < predictions.rows; ++r) {
    const double probability = stable_sigmoid(logits[r]);
    predictions.probability[r] = probability;
    predictions.label_index[r] = probability >= threshold ? 1 : 0;
  }
}

void predict_multiclass(const double* logits, std::size_t classes, Predictions& predictions) {
  predictions.classes = classes;
  predictions.probability.resize(predictions.rows * classes);
  predictions.label_index.resize(predictions.rows);
  predictions.value.clear();
  for (std::size_t r = 0; r < predictions.rows; ++r) {
    const double* row = logits + r * classes;
    stable_softmax(row, classes, predictions.probability.data() + r * classes);
    predictions.label_index[r] = static_cast<std::int64_t>(std::max_element(row, row + classes) - row);
  }
}

void predict_regression(const double* outputs, const TargetEncoding& target, Predictions& predictions) {
  predictions.classes = 0;
  predictions.value.resize(predictions.rows);
  predictions.probability.clear();
  predictions.label_index.clear();
  for (std::size_t r = 0; r < predictions.rows; ++r) {
    predictions.value[r] = outputs[r] * target.scale + target.mean;
  }
}

void check_matrix(const Matrix& encoded, std::size_t width) {
  if (encoded.cols != width) {
    throw InvalidArgument(fmt::format("predict: model expects {} encoded columns, got {}; encode raw records "
                                      "with Predictor::encode",
                                      width, encoded.cols));
  }
  if (encoded.data.size() != encoded.rows * encoded.cols) {
    throw InvalidArgument(fmt::format("predict: the matrix has {} values but claims {} x {}; keep data.size() "
                                      "equal to rows x cols",
                                      encoded.data.size(), encoded.rows, encoded.cols));
  }
}

// ---- Single-record encoding, the same arithmetic as Preprocessor::transform.

bool is_missing_text(std::string_view text, const std::vector<std::string>& markers) {
  return std::any_of(markers.begin(), markers.end(), [&](const std::string& marker) { return text == marker; });
}

// Parses like lepton::parse_number, on a view, so that a long cell does not allocate a std::string.
bool parse_number_view(std::string_view digits, double& value) {
  if (digits.size() > 1 && digits[0] == '+' && digits[1] != '-' && digits[1] != '+') {
    digits.remove_prefix(1);
  }
  if (digits.empty()) {
    return false;
  }
  const char* end = digits.data() + digits.size();
  const auto [stop, error] = std::from_chars(digits.data(), end, value, std::chars_format::general);
  return error == std::errc() && stop == end && std::isfinite(value);
}

// The value of a numeric cell, or nullopt for a missing one.
std::optional<double> numeric_value(const FeatureTransform& feature, const Value& value,
                                    const std::vector<std::string>& markers) {
  switch (value.kind()) {
    case Value::Kind::Missing:
      return std::nullopt;
    case Value::Kind::Number: {
      const double number = value.number();
      if (std::isnan(number)) return std::nullopt;
      if (!std::isfinite(number)) {
        throw InvalidArgument(fmt::format("predict: column '{}' has value {}, expected a finite number or a "
                                          "missing value",
                                          feature.column, number));
      }
      return number;
    }
    case Value::Kind::Text: {
      const std::string_view text = detail::trim_blanks(value.text());
      if (is_missing_text(text, markers)) return std::nullopt;
      double number = 0;
      if (!parse_number_view(text, number)) {
        throw ParseError(fmt::format("predict: column '{}' has value '{}', expected a number for this numeric "
                                     "feature",
                                     feature.column, text));
      }
      return number;
    }
  }
  return std::nullopt;
}

void encode_numeric(const FeatureTransform& feature, const Value& value,
                    const std::vector<std::string>& markers, float* out) {
  const std::optional<double> number = numeric_value(feature, value, markers);
  // A missing value is imputed with the training median, as Preprocessor::transform does.
  const double imputed = number.value_or(feature.fill);
  out[feature.offset] = static_cast<float>((imputed - feature.mean) / feature.scale);
  if (feature.log_column) out[feature.offset + 1] = static_cast<float>(feature.log_input(imputed));
}

std::size_t category_index(const std::vector<std::string>& categories, std::string_view text) {
  const auto found = std::lower_bound(categories.begin(), categories.end(), text,
                                      [](const std::string& a, std::string_view b) { return a < b; });
  if (found == categories.end() || *found != text) {
    return categories.size();
  }
  return static_cast<std::size_t>(found - categories.begin());
}

void encode_categorical(const FeatureTransform& feature, const Value& value,
                        const std::vector<std::string>& markers, float* out) {
  std::fill(out + feature.offset, out + feature.offset + feature.width, 0.0f);

  // A number becomes its shortest round-trip text, as the CSV cell "3" for 3.0.
  char buffer[32];
  std::string_view text;
  bool missing = false;
  switch (value.kind()) {
    case Value::Kind::Missing:
      missing = true;
      break;
    case Value::Kind::Number: {
      missing = std::isnan(value.number());
      const auto result = fmt::format_to_n(buffer, sizeof buffer, "{}", value.number());
      text = std::string_view(buffer, std::min(result.size, sizeof buffer));
      break;
    }
    case Value::Kind::Text:
      text = detail::trim_blanks(value.text());
      missing = is_missing_text(text, markers);
      break;
  }

  const std::size_t index = category_index(feature.categories, missing ? feature.fill_category : text);
  if (index == feature.categories.size()) {
    if (log_level() <= LogLevel::Warning) {
      log(LogLevel::Warning, fmt::format("predict: category '{}' of column '{}' was not seen in training and "
                                         "encodes as all zeros",
                                         text, feature.column));
    }
    return;
  }
  out[feature.offset + index] = 1.0f;
}

// A text value: its tokens' bucket shares, standardized. A number counts as its shortest round-trip text, and a
// missing value as a text without tokens.
void encode_text(const FeatureTransform& feature, const Value& value, const std::vector<std::string>& markers,
                 float* out) {
  char buffer[32];
  std::string_view text;
  switch (value.kind()) {
    case Value::Kind::Missing:
      break;
    case Value::Kind::Number: {
      if (std::isnan(value.number())) break;
      const auto result = fmt::format_to_n(buffer, sizeof buffer, "{}", value.number());
      text = std::string_view(buffer, std::min(result.size, sizeof buffer));
      break;
    }
    case Value::Kind::Text:
      text = detail::trim_blanks(value.text());
      if (is_missing_text(text, markers)) text = std::string_view();
      break;
  }
  detail::encode_text_cell(feature, text, out);
}

}  // namespace

// ---- Predictor.

Predictor::Predictor(ModelArtifact artifact, const PredictorOptions& options)
    : artifact_(std::move(artifact)), missing_markers_(CsvOptions{}.missing_markers) {
  check_artifact(artifact_);
  check_options(options);
  network_ = compile(artifact_.network, options);
}

Predictor Predictor::load(const std::string& path, const PredictorOptions& options) {
  return Predictor(load_artifact(path), options);
}

SimdLevel Predictor::simd_level() const noexcept {
  return network_->kernels->level;
}

bool Predictor::quantized() const noexcept {
  return network_->quantized;
}

std::vector<std::size_t> Predictor::layer_blocks() const {
  std::vector<std::size_t> blocks;
  for (const detail::CompiledLayer& layer : network_->layers) {
    const std::size_t parts = layer.precision == LayerPrecision::Int8 ? layer.i8.parts.size() : layer.f32.parts.size();
    blocks.push_back(std::max<std::size_t>(parts, 1));
  }
  return blocks;
}

Matrix Predictor::encode(const Table& records) const {
  return artifact_.preprocessor.transform(records);
}

void Predictor::run_network(const float* encoded, std::size_t rows, Workspace& workspace) const {
  const detail::CompiledNetwork& network = *network_;
  const detail::KernelTable& kernels = *network.kernels;
  const std::size_t tile = network.tile_rows;

  // resize() keeps the capacity, so after the first call of a given size nothing here allocates.
  workspace.front_.resize(tile * network.widest_output);
  workspace.back_.resize(tile * network.widest_output);
  workspace.quantized_.resize(tile * network.widest_int8_input);
  workspace.row_scale_.resize(tile);
  workspace.expanded_.resize(network.products.empty() ? 0 : tile * (network.inputs + network.products.size()));
  workspace.outputs_.resize(rows * network.outputs);

  for (std::size_t start = 0; start < rows; start += tile) {
    const std::size_t count = std::min(tile, rows - start);
    const float* input = encoded + start * network.inputs;
    std::size_t input_stride = network.inputs;
    if (!network.products.empty()) {
      append_products(network.products, input, count, network.inputs, workspace.expanded_.data());
      input = workspace.expanded_.data();
      input_stride = network.inputs + network.products.size();
    }
    float* output = workspace.front_.data();
    float* spare = workspace.back_.data();

    for (const detail::CompiledLayer& layer : network.layers) {
      if (layer.precision == LayerPrecision::Int8) {
        kernels.quantize_rows(input, input_stride, layer.i8.inputs, layer.i8.padded_inputs, count,
                              layer.i8.input_scale, workspace.quantized_.data(), workspace.row_scale_.data());
        detail::run_blocked_i8(kernels, layer.i8, workspace.quantized_.data(), workspace.row_scale_.data(), count,
                               output, layer.output_stride);
      } else {
        detail::run_blocked_f32(kernels, layer.f32, input, input_stride, count, output, layer.output_stride);
      }
      apply_activation(layer.activation, output, count, layer.outputs, layer.output_stride);

      input = output;
      input_stride = layer.output_stride;
      std::swap(output, spare);
    }

    double* destination = workspace.outputs_.data() + start * network.outputs;
    for (std::size_t r = 0; r < count; ++r) {
      for (std::size_t o = 0; o < network.outputs; ++o) {
        destination[r * network.outputs + o] = static_cast<double>(input[r * input_stride + o]);
      }
    }
  }
}

void Predictor::finish(std::size_t rows, const Workspace& workspace, Predictions& out) const {
  out.task = artifact_.task;
  out.rows = rows;
  const double* outputs = workspace.outputs_.data();
  switch (artifact_.task) {
    case Task::BinaryClassification:
      predict_binary(outputs, artifact_.threshold, out);
      break;
    case Task::MulticlassClassification:
      predict_multiclass(outputs, network_->outputs, out);
      break;
    case Task::Regression:
      predict_regression(outputs, artifact_.target, out);
      break;
  }
}

std::vector<double> Predictor::forward(const Matrix& encoded) const {
  check_matrix(encoded, network_->inputs);
  Workspace workspace;
  run_network(encoded.data.data(), encoded.rows, workspace);
  return std::move(workspace.outputs_);
}

void Predictor::predict(const float* encoded, std::size_t rows, Workspace& workspace, Predictions& out) const {
  if (encoded == nullptr && rows > 0) {
    throw InvalidArgument(fmt::format("predict: encoded is null but rows is {}; pass rows x {} floats", rows,
                                      network_->inputs));
  }
  run_network(encoded, rows, workspace);
  finish(rows, workspace, out);
}

void Predictor::predict(const Matrix& encoded, Workspace& workspace, Predictions& out) const {
  check_matrix(encoded, network_->inputs);
  predict(encoded.data.data(), encoded.rows, workspace, out);
}

Predictions Predictor::predict(const Matrix& encoded) const {
  Workspace workspace;
  Predictions predictions;
  predict(encoded, workspace, predictions);
  return predictions;
}

Predictions Predictor::predict(const Table& records) const {
  return predict(encode(records));
}

RecordSchema Predictor::bind(const std::vector<std::string>& columns) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (columns[i] == columns[j]) {
        throw InvalidArgument(fmt::format("Predictor::bind: column '{}' appears at positions {} and {}; name "
                                          "each column once",
                                          columns[i], j, i));
      }
    }
  }

  RecordSchema schema;
  schema.columns_ = columns;
  for (const FeatureTransform& feature : artifact_.preprocessor.features()) {
    const auto found = std::find(columns.begin(), columns.end(), feature.column);
    if (found == columns.end()) {
      const std::string closest = detail::closest_name(feature.column, columns);
      throw InvalidArgument(fmt::format("Predictor::bind: the model needs column '{}', which is not among the {} "
                                        "given columns{}",
                                        feature.column, columns.size(),
                                        closest.empty() ? "" : fmt::format(" (did you mean '{}'?)", closest)));
    }
    schema.feature_column_.push_back(static_cast<std::size_t>(found - columns.begin()));
  }
  return schema;
}

void Predictor::encode(const RecordSchema& schema, const Value* values, std::size_t count, float* encoded) const {
  const std::vector<FeatureTransform>& features = artifact_.preprocessor.features();
  if (count != schema.columns_.size() || schema.feature_column_.size() != features.size()) {
    throw InvalidArgument(fmt::format("predict: the record has {} values but the schema has {} columns for {} "
                                      "features; build the schema with this predictor's bind() and pass one "
                                      "value per column",
                                      count, schema.columns_.size(), features.size()));
  }

  for (std::size_t f = 0; f < features.size(); ++f) {
    const Value& value = values[schema.feature_column_[f]];
    if (features[f].type == FeatureType::Numeric) {
      encode_numeric(features[f], value, missing_markers_, encoded);
    } else if (features[f].type == FeatureType::Text) {
      encode_text(features[f], value, missing_markers_, encoded);
    } else {
      encode_categorical(features[f], value, missing_markers_, encoded);
    }
  }
}

void Predictor::predict(const RecordSchema& schema, const Value* values, std::size_t count, Workspace& workspace,
                        Predictions& out) const {
  workspace.encoded_.resize(network_->inputs);
  encode(schema, values, count, workspace.encoded_.data());
  predict(workspace.encoded_.data(), 1, workspace, out);
}

Predictions Predictor::predict(const std::vector<std::pair<std::string, Value>>& record) const {
  std::vector<std::string> columns;
  std::vector<Value> values;
  for (const auto& [name, value] : record) {
    columns.push_back(name);
    values.push_back(value);
  }

  const RecordSchema schema = bind(columns);
  Workspace workspace;
  Predictions predictions;
  predict(schema, values.data(), values.size(), workspace, predictions);
  return predictions;
}

}  // namespace lepton
