// The explainers' model abstraction: batched functions and the double-precision MLP adapter.

// The reference forward pass must not fuse acc + w * x into one FMA, or results stop matching a plain
// scalar reference bit for bit when the build enables FMA instructions (-march=native and similar).
#pragma GCC optimize("fp-contract=off")

#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/explain_detail.hpp"
#include "runtime/model_detail.hpp"

namespace lepton {

DoubleMatrix DoubleMatrix::from(const Matrix& matrix) {
  DoubleMatrix result(matrix.rows, matrix.cols);
  std::copy(matrix.data.begin(), matrix.data.end(), result.data.begin());
  return result;
}

DoubleMatrix DoubleMatrix::from_rows(const std::vector<std::vector<double>>& rows) {
  const std::size_t cols = rows.empty() ? 0 : rows.front().size();
  DoubleMatrix result(rows.size(), cols);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].size() != cols) {
      throw InvalidArgument(fmt::format(
          "DoubleMatrix::from_rows: row {} has {} values but row 0 has {}; give every row the same length",
          r, rows[r].size(), cols));
    }
    std::copy(rows[r].begin(), rows[r].end(), result.row(r));
  }
  return result;
}

DoubleMlp DoubleMlp::from(const Mlp& mlp) {
  DoubleMlp result;
  for (const DenseLayer& layer : mlp.layers) {
    DoubleDenseLayer converted;
    converted.inputs = layer.inputs;
    converted.outputs = layer.outputs;
    converted.weight.assign(layer.weight.begin(), layer.weight.end());
    converted.bias.assign(layer.bias.begin(), layer.bias.end());
    converted.activation = layer.activation;
    result.layers.push_back(std::move(converted));
  }
  result.products = mlp.products;
  return result;
}

std::string to_string(OutputLink link) {
  switch (link) {
    case OutputLink::Identity: return "identity";
    case OutputLink::Logistic: return "logistic";
    case OutputLink::Softmax: return "softmax";
  }
  return "unknown";
}

namespace detail {

double apply_activation(Activation activation, double value) {
  switch (activation) {
    case Activation::Identity: return value;
    case Activation::Relu: return std::max(value, 0.0);
    case Activation::Tanh: return std::tanh(value);
    case Activation::Gelu: return 0.5 * value * (1.0 + std::erf(value / std::sqrt(2.0)));
  }
  return value;
}

double activation_derivative(Activation activation, double value) {
  switch (activation) {
    case Activation::Identity: return 1.0;
    // The subgradient at 0 is taken as 0, as torch does.
    case Activation::Relu: return value > 0.0 ? 1.0 : 0.0;
    case Activation::Tanh: {
      const double t = std::tanh(value);
      return 1.0 - t * t;
    }
    case Activation::Gelu: {
      // Exact (erf) GELU, torch.nn.GELU's default: d/dx x Phi(x) = Phi(x) + x phi(x).
      const double cdf = 0.5 * (1.0 + std::erf(value / std::sqrt(2.0)));
      const double pdf = std::exp(-0.5 * value * value) / std::sqrt(2.0 * M_PI);
      return cdf + value * pdf;
    }
  }
  return 1.0;
}

void apply_link(OutputLink link, double* logits, std::size_t count) {
  if (link == OutputLink::Logistic) {
    for (std::size_t k = 0; k < count; ++k) logits[k] = 1.0 / (1.0 + std::exp(-logits[k]));
    return;
  }
  if (link == OutputLink::Softmax) {
    // Subtracting the maximum keeps exp from overflowing without changing the result.
    const double top = *std::max_element(logits, logits + count);
    double total = 0.0;
    for (std::size_t k = 0; k < count; ++k) {
      logits[k] = std::exp(logits[k] - top);
      total += logits[k];
    }
    for (std::size_t k = 0; k < count; ++k) logits[k] /= total;
  }
}

std::string step_gradient_message(const char* caller) {
  return fmt::format("{}: the network computes step inputs, whose gradient is 0 on both sides of the step and "
                     "misses the jump; explain it with exact, kernel or permutation SHAP: ExactExplainer, "
                     "KernelExplainer or PermutationExplainer, or lepton explain --method exact, kernel or "
                     "permutation",
                     caller);
}

void expand_row(const DoubleMlp& network, const double* row, double* expanded) {
  const std::size_t inputs = network.inputs();
  std::copy(row, row + inputs, expanded);
  for (std::size_t k = 0; k < network.products.size(); ++k) expanded[inputs + k] = network.products[k].value(row);
}

void forward_logits(const DoubleMlp& network, const double* row, double* logits, std::vector<double>& scratch) {
  std::size_t widest = 0;
  for (const DoubleDenseLayer& layer : network.layers) widest = std::max({widest, layer.inputs, layer.outputs});
  scratch.resize(2 * widest);
  double* current = scratch.data();
  double* next = scratch.data() + widest;
  expand_row(network, row, current);

  for (const DoubleDenseLayer& layer : network.layers) {
    for (std::size_t j = 0; j < layer.outputs; ++j) {
      const double* weights = layer.weight.data() + j * layer.inputs;
      double acc = layer.bias[j];
      for (std::size_t i = 0; i < layer.inputs; ++i) {
        const double product = weights[i] * current[i];
        acc = acc + product;
      }
      next[j] = apply_activation(layer.activation, acc);
    }
    std::swap(current, next);
  }

  std::copy(current, current + network.outputs(), logits);
}

void check_network(const DoubleMlp& network, OutputLink link) {
  if (network.layers.empty()) {
    throw InvalidArgument("ExplainModel::from_mlp: the network has no layers; pass a trained Mlp");
  }
  for (std::size_t l = 0; l < network.layers.size(); ++l) {
    const DoubleDenseLayer& layer = network.layers[l];
    if (layer.inputs == 0 || layer.outputs == 0) {
      throw InvalidArgument(fmt::format("ExplainModel::from_mlp: layers[{}] has shape {} x {}; both must be positive",
                                        l, layer.outputs, layer.inputs));
    }
    if (layer.weight.size() != layer.inputs * layer.outputs || layer.bias.size() != layer.outputs) {
      throw InvalidArgument(fmt::format(
          "ExplainModel::from_mlp: layers[{}] has {} weights and {} biases, expected {} x {} = {} and {}", l,
          layer.weight.size(), layer.bias.size(), layer.outputs, layer.inputs, layer.inputs * layer.outputs,
          layer.outputs));
    }
    if (l > 0 && network.layers[l - 1].outputs != layer.inputs) {
      throw InvalidArgument(fmt::format(
          "ExplainModel::from_mlp: layers[{}] takes {} inputs but layers[{}] emits {}; the shapes must chain", l,
          layer.inputs, l - 1, network.layers[l - 1].outputs));
    }
  }
  if (link == OutputLink::Logistic && network.outputs() != 1) {
    throw InvalidArgument(fmt::format(
        "ExplainModel::from_mlp: link logistic needs 1 logit but the network emits {}; use softmax or identity",
        network.outputs()));
  }
  check_products(network.products, network.layers.front().inputs, "ExplainModel::from_mlp");
}

}  // namespace detail

ExplainModel ExplainModel::from_function(std::size_t inputs, std::size_t outputs, BatchFunction function) {
  if (inputs == 0 || outputs == 0) {
    throw InvalidArgument(fmt::format(
        "ExplainModel::from_function: inputs = {} and outputs = {}; both must be positive", inputs, outputs));
  }
  if (!function) {
    throw InvalidArgument("ExplainModel::from_function: the function is empty; pass a callable");
  }
  ExplainModel model;
  model.inputs_ = inputs;
  model.outputs_ = outputs;
  model.function_ = std::move(function);
  return model;
}

ExplainModel ExplainModel::from_float_function(std::size_t inputs, std::size_t outputs,
                                               FloatBatchFunction function) {
  if (!function) {
    throw InvalidArgument("ExplainModel::from_float_function: the function is empty; pass a callable");
  }
  auto adapter = [inputs, function = std::move(function)](const double* rows, std::size_t count, double* out) {
    std::vector<float> rounded(rows, rows + count * inputs);
    function(rounded.data(), count, out);
  };
  return from_function(inputs, outputs, std::move(adapter));
}

ExplainModel ExplainModel::from_mlp(const Mlp& mlp, OutputLink link) {
  return from_mlp(DoubleMlp::from(mlp), link);
}

ExplainModel ExplainModel::from_mlp(DoubleMlp mlp, OutputLink link) {
  detail::check_network(mlp, link);

  auto plan = std::make_shared<detail::MlpPlan>();
  plan->network = std::move(mlp);
  plan->link = link;
  for (const DoubleDenseLayer& layer : plan->network.layers) {
    plan->float_weights.emplace_back(layer.weight.begin(), layer.weight.end());
    plan->float_biases.emplace_back(layer.bias.begin(), layer.bias.end());
    plan->widest = std::max({plan->widest, layer.inputs, layer.outputs});
  }
  for (std::size_t l = 1; l < plan->network.layers.size(); ++l) {
    const DoubleDenseLayer& layer = plan->network.layers[l];
    DenseLayer rounded;
    rounded.inputs = layer.inputs;
    rounded.outputs = layer.outputs;
    rounded.weight = plan->float_weights[l];
    rounded.bias = plan->float_biases[l];
    rounded.activation = layer.activation;
    plan->packed_layers.push_back(detail::pack_blocked_f32(rounded));
    plan->widest = std::max(plan->widest, plan->packed_layers.back().output_stride);
  }

  std::shared_ptr<const detail::MlpPlan> shared = plan;
  auto forward = [shared](const double* rows, std::size_t count, double* out) {
    const std::size_t d = shared->network.inputs();
    const std::size_t k = shared->network.outputs();
    std::vector<double> scratch;
    for (std::size_t r = 0; r < count; ++r) {
      detail::forward_logits(shared->network, rows + r * d, out + r * k, scratch);
      detail::apply_link(shared->link, out + r * k, k);
    }
  };

  ExplainModel model = from_function(shared->network.inputs(), shared->network.outputs(), std::move(forward));
  model.plan_ = std::move(shared);
  return model;
}

void ExplainModel::evaluate(const double* rows, std::size_t count, double* outputs) const {
  if (count == 0) return;
  function_(rows, count, outputs);
}

DoubleMatrix ExplainModel::evaluate(const DoubleMatrix& rows) const {
  if (rows.cols != inputs_) {
    throw InvalidArgument(fmt::format(
        "ExplainModel::evaluate: rows have {} columns but the model takes {}; pass encoded rows", rows.cols,
        inputs_));
  }
  DoubleMatrix outputs(rows.rows, outputs_);
  evaluate(rows.data.data(), rows.rows, outputs.data.data());
  return outputs;
}

bool ExplainModel::has_gradient() const noexcept {
  if (!plan_) return false;
  const std::vector<InputProduct>& products = plan_->network.products;
  return std::none_of(products.begin(), products.end(), [](const InputProduct& p) { return p.step.has_value(); });
}

void ExplainModel::gradient(const double* row, std::size_t output, double* gradient) const {
  if (!plan_) {
    throw InvalidArgument(
        "ExplainModel::gradient: this model is a plain function without a gradient; build it with from_mlp");
  }
  if (!has_gradient()) throw InvalidArgument(detail::step_gradient_message("ExplainModel::gradient"));
  if (output >= outputs_) {
    throw InvalidArgument(fmt::format("ExplainModel::gradient: output {} is out of range; the model has {}",
                                      output, outputs_));
  }

  // Forward pass, keeping every layer's input and pre-activation for backpropagation.
  const DoubleMlp& network = plan_->network;
  const std::size_t layers = network.layers.size();
  std::vector<std::vector<double>> inputs(layers + 1);
  std::vector<std::vector<double>> pre(layers);
  inputs[0].resize(network.layers.front().inputs);
  detail::expand_row(network, row, inputs[0].data());
  for (std::size_t l = 0; l < layers; ++l) {
    const DoubleDenseLayer& layer = network.layers[l];
    pre[l].resize(layer.outputs);
    inputs[l + 1].resize(layer.outputs);
    for (std::size_t j = 0; j < layer.outputs; ++j) {
      double acc = layer.bias[j];
      for (std::size_t i = 0; i < layer.inputs; ++i) {
        const double product = layer.weight[j * layer.inputs + i] * inputs[l][i];
        acc = acc + product;
      }
      pre[l][j] = acc;
      inputs[l + 1][j] = detail::apply_activation(layer.activation, acc);
    }
  }

  // d output / d logits through the link.
  std::vector<double> upstream(outputs_, 0.0);
  std::vector<double> probabilities = inputs[layers];
  detail::apply_link(plan_->link, probabilities.data(), outputs_);
  if (plan_->link == OutputLink::Identity) {
    upstream[output] = 1.0;
  } else if (plan_->link == OutputLink::Logistic) {
    upstream[0] = probabilities[0] * (1.0 - probabilities[0]);
  } else {
    for (std::size_t j = 0; j < outputs_; ++j) {
      const double delta = j == output ? 1.0 : 0.0;
      upstream[j] = probabilities[output] * (delta - probabilities[j]);
    }
  }

  // Backpropagation: through the activation, then W^T.
  for (std::size_t l = layers; l-- > 0;) {
    const DoubleDenseLayer& layer = network.layers[l];
    std::vector<double> downstream(layer.inputs, 0.0);
    for (std::size_t j = 0; j < layer.outputs; ++j) {
      const double local = upstream[j] * detail::activation_derivative(layer.activation, pre[l][j]);
      if (local == 0.0) continue;
      for (std::size_t i = 0; i < layer.inputs; ++i) downstream[i] += layer.weight[j * layer.inputs + i] * local;
    }
    upstream = std::move(downstream);
  }

  // Each product's column passes its gradient on to the two columns that it reads. A step is flat on both
  // sides of its threshold, so it passes nothing, and GradientExplainer rejects such networks.
  for (std::size_t k = 0; k < network.products.size(); ++k) {
    const InputProduct& product = network.products[k];
    if (product.step) continue;
    const double through = upstream[inputs_ + k] / product.scale;
    const double left_slope = product.difference ? 1.0 : product.right_factor(row);
    const double right_slope = product.difference ? -1.0 : product.left_factor(row);
    upstream[product.left] += through * product.left_scale * left_slope;
    upstream[product.right] += through * product.right_scale * right_slope;
  }
  std::copy(upstream.begin(), upstream.begin() + static_cast<std::ptrdiff_t>(inputs_), gradient);
}

}  // namespace lepton
