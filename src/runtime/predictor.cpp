// Inference without LibTorch: the MLP forward pass in float32 with Eigen, then the task's output
// transform (sigmoid, softmax or de-standardization) in double.

#include "lepton/predictor.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include <Eigen/Core>
#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/model_detail.hpp"

namespace lepton {

namespace {

using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic>;

void apply_activation(Activation activation, RowMajorMatrix& values) {
  switch (activation) {
    case Activation::Identity:
      return;
    case Activation::Relu:
      values = values.cwiseMax(0.0f);
      return;
    case Activation::Tanh:
      values = values.array().tanh();
      return;
    case Activation::Gelu:
      // Exact GELU, x * Phi(x), as torch.nn.GELU(approximate="none").
      values = values.unaryExpr([](float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); });
      return;
  }
  throw InternalError(fmt::format("apply_activation: Activation value {} is out of range",
                                  static_cast<int>(activation)));
}

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
}

void predict_binary(const std::vector<double>& logits, double threshold, Predictions& predictions) {
  predictions.classes = 2;
  predictions.threshold = threshold;
  predictions.probability.resize(predictions.rows);
  predictions.label_index.resize(predictions.rows);
  for (std::size_t r = 0; r < predictions.rows; ++r) {
    const double probability = stable_sigmoid(logits[r]);
    predictions.probability[r] = probability;
    predictions.label_index[r] = probability >= threshold ? 1 : 0;
  }
}

void predict_multiclass(const std::vector<double>& logits, std::size_t classes, Predictions& predictions) {
  predictions.classes = classes;
  predictions.probability.resize(predictions.rows * classes);
  predictions.label_index.resize(predictions.rows);
  for (std::size_t r = 0; r < predictions.rows; ++r) {
    const double* row = logits.data() + r * classes;
    stable_softmax(row, classes, predictions.probability.data() + r * classes);
    predictions.label_index[r] = static_cast<std::int64_t>(std::max_element(row, row + classes) - row);
  }
}

void predict_regression(const std::vector<double>& outputs, const TargetEncoding& target,
                        Predictions& predictions) {
  predictions.classes = 0;
  predictions.value.resize(predictions.rows);
  for (std::size_t r = 0; r < predictions.rows; ++r) {
    predictions.value[r] = outputs[r] * target.scale + target.mean;
  }
}

}  // namespace

Predictor::Predictor(ModelArtifact artifact) : artifact_(std::move(artifact)) {
  check_artifact(artifact_);
}

Predictor Predictor::load(const std::string& path) {
  return Predictor(load_artifact(path));
}

Matrix Predictor::encode(const Table& records) const {
  return artifact_.preprocessor.transform(records);
}

std::vector<double> Predictor::forward(const Matrix& encoded) const {
  const Mlp& network = artifact_.network;
  if (encoded.cols != network.inputs()) {
    throw InvalidArgument(fmt::format("predict: model expects {} encoded columns, got {}; encode raw records "
                                      "with Predictor::encode",
                                      network.inputs(), encoded.cols));
  }
  if (encoded.data.size() != encoded.rows * encoded.cols) {
    throw InvalidArgument(fmt::format("predict: the matrix has {} values but claims {} x {}; keep data.size() "
                                      "equal to rows x cols",
                                      encoded.data.size(), encoded.rows, encoded.cols));
  }

  // Each layer computes X W^T + b, with X rows x inputs and W outputs x inputs, both row-major.
  RowMajorMatrix activations =
      Eigen::Map<const RowMajorMatrix>(encoded.data.data(), static_cast<Eigen::Index>(encoded.rows),
                                       static_cast<Eigen::Index>(encoded.cols));
  for (const DenseLayer& layer : network.layers) {
    const Eigen::Map<const RowMajorMatrix> weight(layer.weight.data(), static_cast<Eigen::Index>(layer.outputs),
                                                  static_cast<Eigen::Index>(layer.inputs));
    const Eigen::Map<const RowVector> bias(layer.bias.data(), static_cast<Eigen::Index>(layer.outputs));

    RowMajorMatrix next = activations * weight.transpose();
    next.rowwise() += bias;
    apply_activation(layer.activation, next);
    activations = std::move(next);
  }

  return std::vector<double>(activations.data(), activations.data() + activations.size());
}

Predictions Predictor::predict(const Matrix& encoded) const {
  const std::vector<double> outputs = forward(encoded);

  Predictions predictions;
  predictions.task = artifact_.task;
  predictions.rows = encoded.rows;
  switch (artifact_.task) {
    case Task::BinaryClassification:
      predict_binary(outputs, artifact_.threshold, predictions);
      break;
    case Task::MulticlassClassification:
      predict_multiclass(outputs, artifact_.network.outputs(), predictions);
      break;
    case Task::Regression:
      predict_regression(outputs, artifact_.target, predictions);
      break;
  }
  return predictions;
}

Predictions Predictor::predict(const Table& records) const {
  return predict(encode(records));
}

}  // namespace lepton
