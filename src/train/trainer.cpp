// The LibTorch trainer. This is the only translation unit that includes <torch/torch.h>.
//
// Forward and backward passes are written out by hand over one flat parameter buffer instead of going
// through autograd and torch::optim. An MLP this small is dominated by per-operator dispatch overhead, and
// the flat buffer lets AdamW update every parameter with 7 tensor operations per step. The arithmetic is
// that of torch.nn.Linear, BCEWithLogitsLoss / CrossEntropyLoss / MSELoss and torch.optim.AdamW.
#include "lepton/trainer.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <torch/torch.h>

#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "lepton/log.hpp"
#include "lepton/metrics.hpp"
#include "train/privacy_random.hpp"

namespace lepton {

namespace {

using Clock = std::chrono::steady_clock;

constexpr double kMinImprovement = 1e-4;  // Early stopping and "plateau": smaller gains count as none.
constexpr double kAdamBeta1 = 0.9;        // torch.optim.AdamW defaults.
constexpr double kAdamBeta2 = 0.999;
constexpr double kAdamEpsilon = 1e-8;
constexpr int kCheckpointVersion = 1;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---------------------------------------------------------------------------------------------------
// Input checks

std::size_t output_count(const ModelConfig& config, const TrainingData& train, const TrainingData& validation) {
  if (config.task == Task::Regression || config.task == Task::BinaryClassification) {
    return 1;
  }

  if (!config.class_weights.empty()) {
    return config.class_weights.size();
  }

  std::int64_t max_label = 0;
  for (const auto* data : {&train, &validation}) {
    for (const std::int64_t label : data->labels) {
      max_label = std::max(max_label, label);
    }
  }
  return static_cast<std::size_t>(max_label) + 1;
}

// Infinite epsilon and clipping norm are allowed: with noise_multiplier 0 they turn DP-SGD into plain
// per-sample-gradient SGD, which tests compare with ordinary training.
void check_privacy_config(const ModelConfig& config) {
  if (!config.privacy) {
    return;
  }

  const PrivacyBudget& budget = *config.privacy;
  if (!(budget.epsilon > 0.0)) {
    throw InvalidArgument(fmt::format("Trainer: config.privacy.epsilon is {}, expected a value > 0", budget.epsilon));
  }
  if (!(budget.delta > 0.0 && budget.delta < 1.0)) {
    throw InvalidArgument(fmt::format("Trainer: config.privacy.delta is {}, expected a value in (0, 1)", budget.delta));
  }
  if (!(budget.max_grad_norm > 0.0)) {
    throw InvalidArgument(fmt::format("Trainer: config.privacy.max_grad_norm is {}, expected a value > 0",
                                      budget.max_grad_norm));
  }
  if (!(config.noise_multiplier >= 0.0) || std::isinf(config.noise_multiplier)) {
    throw InvalidArgument(fmt::format("Trainer: config.noise_multiplier is {}, expected a finite value >= 0",
                                      config.noise_multiplier));
  }
  if (std::isinf(budget.max_grad_norm) && config.noise_multiplier > 0.0) {
    throw InvalidArgument(fmt::format("Trainer: config.privacy.max_grad_norm is infinite with noise_multiplier {}, "
                                      "which makes the noise infinite; set a finite clipping norm",
                                      config.noise_multiplier));
  }
}

void check_config(const ModelConfig& config, int threads) {
  auto reject = [](const std::string& field, const std::string& value, const std::string& expected) {
    throw InvalidArgument(fmt::format("Trainer: config.{} is {}, expected {}", field, value, expected));
  };

  if (config.hidden_units.empty()) {
    reject("hidden_units", "[]", "at least one hidden layer width");
  }
  for (std::size_t i = 0; i < config.hidden_units.size(); ++i) {
    if (config.hidden_units[i] == 0) {
      reject(fmt::format("hidden_units[{}]", i), "0", "a width of at least 1");
    }
  }
  if (!(config.dropout >= 0.0 && config.dropout < 1.0)) {
    reject("dropout", fmt::format("{}", config.dropout), "a value in [0, 1)");
  }
  if (!(config.weight_decay >= 0.0) || !std::isfinite(config.weight_decay)) {
    reject("weight_decay", fmt::format("{}", config.weight_decay), "a finite value >= 0");
  }
  if (!(config.learning_rate > 0.0) || !std::isfinite(config.learning_rate)) {
    reject("learning_rate", fmt::format("{}", config.learning_rate), "a finite value > 0");
  }
  if (config.optimizer != "adamw") {
    reject("optimizer", fmt::format("\"{}\"", config.optimizer), "\"adamw\", the only optimizer the trainer has");
  }
  if (config.lr_schedule != "constant" && config.lr_schedule != "cosine" && config.lr_schedule != "plateau") {
    reject("lr_schedule", fmt::format("\"{}\"", config.lr_schedule), "\"constant\", \"cosine\" or \"plateau\"");
  }
  if (config.batch_size == 0) {
    reject("batch_size", "0", "at least 1");
  }
  if (config.max_epochs == 0) {
    reject("max_epochs", "0", "at least 1");
  }
  if (!(config.positive_class_weight > 0.0) || !std::isfinite(config.positive_class_weight)) {
    reject("positive_class_weight", fmt::format("{}", config.positive_class_weight), "a finite value > 0");
  }
  for (std::size_t i = 0; i < config.class_weights.size(); ++i) {
    if (!(config.class_weights[i] > 0.0) || !std::isfinite(config.class_weights[i])) {
      reject(fmt::format("class_weights[{}]", i), fmt::format("{}", config.class_weights[i]), "a finite value > 0");
    }
  }
  if (threads < 1) {
    throw InvalidArgument(fmt::format("Trainer: options.threads is {}, expected at least 1", threads));
  }
  check_privacy_config(config);
}

void check_objective(const ModelConfig& config) {
  const Metric m = config.objective;
  bool allowed = false;
  switch (config.task) {
    case Task::BinaryClassification:
      allowed = m == Metric::F1 || m == Metric::RocAuc || m == Metric::PrAuc || m == Metric::Accuracy ||
                m == Metric::LogLoss;
      break;
    case Task::MulticlassClassification:
      allowed = m == Metric::F1 || m == Metric::MacroF1 || m == Metric::WeightedF1 || m == Metric::Accuracy ||
                m == Metric::RocAuc || m == Metric::LogLoss;
      break;
    case Task::Regression:
      allowed = m == Metric::Mae || m == Metric::Rmse || m == Metric::R2;
      break;
  }
  if (!allowed) {
    throw InvalidArgument(fmt::format("Trainer: config.objective \"{}\" does not apply to task \"{}\"; choose an "
                                      "objective of that task",
                                      to_string(m), to_string(config.task)));
  }
}

void check_split(const char* name, const TrainingData& data, const ModelConfig& config, std::size_t width,
                 std::size_t outputs) {
  if (data.features.rows == 0) {
    throw InvalidArgument(fmt::format("Trainer: the {} data has no rows; pass at least one row", name));
  }
  if (data.features.cols != width) {
    throw InvalidArgument(fmt::format("Trainer: the {} features have {} columns but the training features have {}; "
                                      "encode both with the same preprocessor",
                                      name, data.features.cols, width));
  }
  if (data.features.data.size() != data.features.rows * data.features.cols) {
    throw InvalidArgument(fmt::format("Trainer: the {} feature matrix contains {} values, expected rows x cols = {}",
                                      name, data.features.data.size(), data.features.rows * data.features.cols));
  }

  if (config.task == Task::Regression) {
    if (data.values.size() != data.features.rows) {
      throw InvalidArgument(fmt::format("Trainer: the {} data has {} regression values for {} feature rows; "
                                        "pass one value per row",
                                        name, data.values.size(), data.features.rows));
    }
    for (std::size_t r = 0; r < data.values.size(); ++r) {
      if (!std::isfinite(data.values[r])) {
        throw InvalidArgument(fmt::format("Trainer: {} target value at row {} is {}; remove or impute the row",
                                          name, r, data.values[r]));
      }
    }
  } else {
    if (data.labels.size() != data.features.rows) {
      throw InvalidArgument(fmt::format("Trainer: the {} data has {} labels for {} feature rows; pass one label "
                                        "per row",
                                        name, data.labels.size(), data.features.rows));
    }
    for (std::size_t r = 0; r < data.labels.size(); ++r) {
      const std::int64_t label = data.labels[r];
      if (label < 0 || static_cast<std::size_t>(label) >= std::max<std::size_t>(outputs, 2)) {
        throw InvalidArgument(fmt::format("Trainer: {} label at row {} is {}, expected a class id in [0, {}]",
                                          name, r, label, std::max<std::size_t>(outputs, 2) - 1));
      }
    }
  }

  for (std::size_t r = 0; r < data.features.rows; ++r) {
    for (std::size_t c = 0; c < data.features.cols; ++c) {
      const float value = data.features(r, c);
      if (std::isnan(value)) {
        throw InvalidArgument(fmt::format("Trainer: {} features contain NaN at row {} column {}; impute missing "
                                          "values before training",
                                          name, r, c));
      }
      if (std::isinf(value)) {
        throw InvalidArgument(fmt::format("Trainer: {} features contain {} at row {} column {}; remove or clip the "
                                          "value before training",
                                          name, value, r, c));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Process-wide thread settings, restored when training ends

using OpenBlasSetThreads = void (*)(int);
using OpenBlasGetThreads = int (*)();

// Sets LibTorch's intra-op threads and, when the loaded BLAS is OpenBLAS, its thread count, and restores
// both afterwards. Both settings are process-wide, so concurrent fits in one process share them.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : previous_torch_(torch::get_num_threads()) {
    torch::set_num_threads(threads);

    // Looked up at run time because Debian's libtorch reaches BLAS through the libblas.so.3 alternative,
    // which may or may not be OpenBLAS.
    set_blas_ = reinterpret_cast<OpenBlasSetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    auto get_blas = reinterpret_cast<OpenBlasGetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    if (set_blas_ != nullptr && get_blas != nullptr) {
      previous_blas_ = get_blas();
      set_blas_(threads);
    }
  }

  ~ThreadScope() {
    torch::set_num_threads(previous_torch_);
    if (set_blas_ != nullptr && previous_blas_ > 0) {
      set_blas_(previous_blas_);
    }
  }

  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_torch_;
  OpenBlasSetThreads set_blas_ = nullptr;
  int previous_blas_ = 0;
};

// ---------------------------------------------------------------------------------------------------
// Network over one flat parameter buffer

struct Network {
  Activation activation = Activation::Relu;  // Hidden layers; the output layer is linear.
  double dropout = 0;
  torch::Tensor parameters;  // Flat float32: W1, b1, W2, b2, ...
  torch::Tensor gradients;   // Same layout as `parameters`.
  std::vector<torch::Tensor> weights, biases;            // Views into `parameters`; weight is [out, in].
  std::vector<torch::Tensor> weight_grads, bias_grads;  // Views into `gradients`.
};

// Activations that the backward pass needs, per layer.
struct ForwardCache {
  std::vector<torch::Tensor> inputs;       // Input of each layer (after the previous activation and dropout).
  std::vector<torch::Tensor> pre;          // Pre-activation of each hidden layer.
  std::vector<torch::Tensor> post;         // Activation of each hidden layer, before dropout.
  std::vector<torch::Tensor> masks;        // Scaled dropout masks; undefined without dropout.
};

// Builds the layers with torch::nn::Linear so that initialization is PyTorch's (Kaiming-uniform weights,
// uniform biases), drawn from the global generator after torch::manual_seed(seed).
Network build_network(std::size_t inputs, const ModelConfig& config, std::size_t outputs) {
  torch::manual_seed(config.seed);

  std::vector<std::size_t> widths{inputs};
  widths.insert(widths.end(), config.hidden_units.begin(), config.hidden_units.end());
  widths.push_back(outputs);

  std::vector<torch::Tensor> initial;
  std::int64_t total = 0;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    torch::nn::Linear linear(static_cast<std::int64_t>(widths[i]), static_cast<std::int64_t>(widths[i + 1]));
    initial.push_back(linear->weight.detach().clone());
    initial.push_back(linear->bias.detach().clone());
    total += initial[initial.size() - 2].numel() + initial.back().numel();
  }

  Network net;
  net.activation = config.activation;
  net.dropout = config.dropout;
  net.parameters = torch::empty({total}, torch::kFloat32);
  net.gradients = torch::zeros({total}, torch::kFloat32);

  std::int64_t offset = 0;
  for (std::size_t i = 0; i < initial.size(); ++i) {
    const torch::Tensor& source = initial[i];
    torch::Tensor view = net.parameters.narrow(0, offset, source.numel()).view(source.sizes());
    torch::Tensor grad = net.gradients.narrow(0, offset, source.numel()).view(source.sizes());
    view.copy_(source);
    offset += source.numel();
    (i % 2 == 0 ? net.weights : net.biases).push_back(view);
    (i % 2 == 0 ? net.weight_grads : net.bias_grads).push_back(grad);
  }
  return net;
}

torch::Tensor activate(Activation activation, const torch::Tensor& x) {
  switch (activation) {
    case Activation::Relu:
      return torch::relu(x);
    case Activation::Gelu:
      return torch::gelu(x);
    case Activation::Tanh:
      return torch::tanh(x);
    case Activation::Identity:
      return x;
  }
  return x;
}

torch::Tensor activation_backward(Activation activation, const torch::Tensor& grad, const torch::Tensor& pre,
                                  const torch::Tensor& post) {
  switch (activation) {
    case Activation::Relu:
      return at::threshold_backward(grad, post, 0);
    case Activation::Gelu:
      return at::gelu_backward(grad, pre);
    case Activation::Tanh:
      return at::tanh_backward(grad, post);
    case Activation::Identity:
      return grad;
  }
  return grad;
}

// Forward pass in training mode; fills `cache` for backward. Dropout masks come from `generator`.
torch::Tensor forward_train(const Network& net, const torch::Tensor& x, at::Generator& generator,
                            ForwardCache& cache) {
  const std::size_t layers = net.weights.size();
  cache.inputs.resize(layers);
  cache.pre.resize(layers - 1);
  cache.post.resize(layers - 1);
  cache.masks.resize(layers - 1);

  torch::Tensor h = x;
  for (std::size_t i = 0; i + 1 < layers; ++i) {
    cache.inputs[i] = h;
    cache.pre[i] = torch::addmm(net.biases[i], h, net.weights[i].t());
    cache.post[i] = activate(net.activation, cache.pre[i]);
    h = cache.post[i];

    if (net.dropout > 0) {
      cache.masks[i] = torch::empty_like(h).bernoulli_(1.0 - net.dropout, generator).div_(1.0 - net.dropout);
      h = h * cache.masks[i];
    }
  }
  cache.inputs[layers - 1] = h;
  return torch::addmm(net.biases.back(), h, net.weights.back().t());
}

// Forward pass without dropout; returns the logits or the standardized regression value.
torch::Tensor forward_eval(const Network& net, const torch::Tensor& x) {
  torch::Tensor h = x;
  for (std::size_t i = 0; i + 1 < net.weights.size(); ++i) {
    h = activate(net.activation, torch::addmm(net.biases[i], h, net.weights[i].t()));
  }
  return torch::addmm(net.biases.back(), h, net.weights.back().t());
}

// Writes the gradient of the loss into net.gradients, given dLoss/dOutput of the batch.
void backward(Network& net, const ForwardCache& cache, torch::Tensor grad_output) {
  for (std::size_t i = net.weights.size(); i-- > 0;) {
    at::mm_out(net.weight_grads[i], grad_output.t(), cache.inputs[i]);
    at::sum_out(net.bias_grads[i], grad_output, {0});
    if (i == 0) {
      break;
    }

    torch::Tensor grad_input = torch::mm(grad_output, net.weights[i]);
    if (cache.masks[i - 1].defined()) {
      grad_input.mul_(cache.masks[i - 1]);
    }
    grad_output = activation_backward(net.activation, grad_input, cache.pre[i - 1], cache.post[i - 1]);
  }
}

// DP-SGD backward: writes the sum over rows of each row's gradient, clipped to L2 norm `max_grad_norm`, into
// net.gradients. `grad_output` holds each row's own dLoss/dOutput (not divided by the batch size).
//
// A Linear layer's per-row gradient is the outer product delta_n a_n^T plus the bias gradient delta_n, so its
// squared norm is |delta_n|^2 (|a_n|^2 + 1). The row norms therefore come from the deltas and the cached
// inputs, and the clipped sum is one GEMM with rows scaled by their clip factors. Peak extra memory is the
// deltas, rows x (sum of layer widths) floats, never rows x parameters.
void private_backward(Network& net, const ForwardCache& cache, torch::Tensor grad_output, double max_grad_norm) {
  const std::size_t layers = net.weights.size();
  std::vector<torch::Tensor> deltas(layers);
  torch::Tensor squared_norms = torch::zeros({grad_output.size(0)}, torch::kFloat32);

  for (std::size_t i = layers; i-- > 0;) {
    deltas[i] = grad_output;
    const torch::Tensor input_norms = cache.inputs[i].square().sum(1).add_(1.0);
    squared_norms.addcmul_(grad_output.square().sum(1), input_norms);
    if (i == 0) {
      break;
    }

    torch::Tensor grad_input = torch::mm(grad_output, net.weights[i]);
    if (cache.masks[i - 1].defined()) {
      grad_input.mul_(cache.masks[i - 1]);
    }
    grad_output = activation_backward(net.activation, grad_input, cache.pre[i - 1], cache.post[i - 1]);
  }

  // Opacus's clip factor: C / (norm + 1e-6), at most 1.
  const torch::Tensor clip = (max_grad_norm / (squared_norms.sqrt_() + 1e-6)).clamp_max_(1.0).unsqueeze(1);
  for (std::size_t i = 0; i < layers; ++i) {
    const torch::Tensor scaled = deltas[i] * clip;
    at::mm_out(net.weight_grads[i], scaled.t(), cache.inputs[i]);
    at::sum_out(net.bias_grads[i], scaled, {0});
  }
}

Mlp to_mlp(const Network& net) {
  Mlp mlp;
  for (std::size_t i = 0; i < net.weights.size(); ++i) {
    const torch::Tensor weight = net.weights[i].contiguous();
    const torch::Tensor bias = net.biases[i].contiguous();

    DenseLayer layer;
    layer.outputs = static_cast<std::size_t>(weight.size(0));
    layer.inputs = static_cast<std::size_t>(weight.size(1));
    layer.weight.assign(weight.data_ptr<float>(), weight.data_ptr<float>() + weight.numel());
    layer.bias.assign(bias.data_ptr<float>(), bias.data_ptr<float>() + bias.numel());
    layer.activation = i + 1 < net.weights.size() ? net.activation : Activation::Identity;
    mlp.layers.push_back(std::move(layer));
  }
  return mlp;
}

// ---------------------------------------------------------------------------------------------------
// AdamW on the flat buffer, with the update of torch.optim.AdamW (PyTorch 1.13, amsgrad=False).

struct AdamW {
  torch::Tensor first_moment;
  torch::Tensor second_moment;
  std::int64_t step = 0;

  explicit AdamW(std::int64_t size = 0)
      : first_moment(torch::zeros({size}, torch::kFloat32)), second_moment(torch::zeros({size}, torch::kFloat32)) {}

  void update(torch::Tensor& parameters, const torch::Tensor& gradients, double lr, double weight_decay) {
    ++step;
    const double correction1 = 1.0 - std::pow(kAdamBeta1, static_cast<double>(step));
    const double correction2 = 1.0 - std::pow(kAdamBeta2, static_cast<double>(step));

    parameters.mul_(1.0 - lr * weight_decay);
    first_moment.mul_(kAdamBeta1).add_(gradients, 1.0 - kAdamBeta1);
    second_moment.mul_(kAdamBeta2).addcmul_(gradients, gradients, 1.0 - kAdamBeta2);
    const torch::Tensor denominator = (second_moment.sqrt() / std::sqrt(correction2)).add_(kAdamEpsilon);
    parameters.addcdiv_(first_moment, denominator, -lr / correction1);
  }
};

// ---------------------------------------------------------------------------------------------------
// Loss: per-row targets prepared once, so that a batch is a contiguous slice of each tensor

// Per-row loss inputs, rows in the same order as the features.
//  binary:     coefficient = pos_weight*y + (1 - y), offset = pos_weight*y (both [N, 1]);
//              loss(z) = coefficient*softplus(z) - offset*z, which is BCE-with-logits with pos_weight.
//  multiclass: one_hot [N, K] and coefficient = class weight of the row [N, 1].
//  regression: target [N, 1].
struct LossTargets {
  torch::Tensor coefficient, offset, one_hot, target;

  LossTargets select(const torch::Tensor& index) const {
    LossTargets out;
    for (auto [from, to] : {std::pair{&coefficient, &out.coefficient}, std::pair{&offset, &out.offset},
                            std::pair{&one_hot, &out.one_hot}, std::pair{&target, &out.target}}) {
      if (from->defined()) {
        *to = from->index_select(0, index);
      }
    }
    return out;
  }

  LossTargets slice(std::int64_t start, std::int64_t length) const {
    LossTargets out;
    for (auto [from, to] : {std::pair{&coefficient, &out.coefficient}, std::pair{&offset, &out.offset},
                            std::pair{&one_hot, &out.one_hot}, std::pair{&target, &out.target}}) {
      if (from->defined()) {
        *to = from->narrow(0, start, length);
      }
    }
    return out;
  }
};

LossTargets make_targets(const ModelConfig& config, const TrainingData& data, std::size_t outputs) {
  const auto rows = static_cast<std::int64_t>(data.features.rows);
  LossTargets targets;

  if (config.task == Task::Regression) {
    targets.target = torch::from_blob(const_cast<double*>(data.values.data()), {rows, 1}, torch::kFloat64)
                         .to(torch::kFloat32);
    return targets;
  }

  const torch::Tensor labels =
      torch::from_blob(const_cast<std::int64_t*>(data.labels.data()), {rows}, torch::kInt64).clone();

  if (config.task == Task::BinaryClassification) {
    const torch::Tensor y = labels.to(torch::kFloat32).unsqueeze(1);
    const double pos_weight = config.positive_class_weight;
    targets.offset = y * pos_weight;
    targets.coefficient = targets.offset + (1.0 - y);
    return targets;
  }

  std::vector<float> weights(outputs, 1.0f);
  for (std::size_t k = 0; k < config.class_weights.size(); ++k) {
    weights[k] = static_cast<float>(config.class_weights[k]);
  }
  const torch::Tensor class_weight =
      torch::from_blob(weights.data(), {static_cast<std::int64_t>(outputs)}, torch::kFloat32).clone();
  targets.one_hot = torch::one_hot(labels, static_cast<std::int64_t>(outputs)).to(torch::kFloat32);
  targets.coefficient = class_weight.index_select(0, labels).unsqueeze(1);
  return targets;
}

// Loss of a batch in the same normalization as PyTorch's mean reduction, returned as a (sum, normalizer)
// pair so that epoch means weight every row equally: binary and regression divide by rows, weighted
// cross-entropy by the sum of row weights.
struct LossSum {
  double sum = 0;
  double normalizer = 0;
};

// Returns dLoss/dOutput of the batch mean loss and adds the batch's loss to `accumulated`.
torch::Tensor loss_gradient(Task task, const torch::Tensor& output, const LossTargets& t, LossSum& accumulated) {
  const auto rows = static_cast<double>(output.size(0));

  if (task == Task::BinaryClassification) {
    accumulated.sum +=
        ((t.coefficient * torch::softplus(output)).sum() - (t.offset * output).sum()).item<double>();
    accumulated.normalizer += rows;
    return torch::addcmul(-t.offset, torch::sigmoid(output), t.coefficient).div_(rows);
  }

  if (task == Task::MulticlassClassification) {
    const torch::Tensor log_probability = torch::log_softmax(output, 1);
    const double weight_sum = t.coefficient.sum().item<double>();
    accumulated.sum -= (log_probability * t.one_hot * t.coefficient).sum().item<double>();
    accumulated.normalizer += weight_sum;
    return (log_probability.exp_() - t.one_hot).mul_(t.coefficient).div_(weight_sum);
  }

  const torch::Tensor error = output - t.target;
  accumulated.sum += error.pow(2).sum().item<double>();
  accumulated.normalizer += rows;
  return error.mul(2.0 / rows);
}

// Returns each row's own dLoss/dOutput (the gradient of that row's term of the loss sum, which DP-SGD clips)
// and adds the batch's loss to `accumulated`.
torch::Tensor per_row_loss_gradient(Task task, const torch::Tensor& output, const LossTargets& t,
                                    LossSum& accumulated) {
  const auto rows = static_cast<double>(output.size(0));

  if (task == Task::BinaryClassification) {
    accumulated.sum +=
        ((t.coefficient * torch::softplus(output)).sum() - (t.offset * output).sum()).item<double>();
    accumulated.normalizer += rows;
    return torch::addcmul(-t.offset, torch::sigmoid(output), t.coefficient);
  }

  if (task == Task::MulticlassClassification) {
    const torch::Tensor log_probability = torch::log_softmax(output, 1);
    accumulated.sum -= (log_probability * t.one_hot * t.coefficient).sum().item<double>();
    accumulated.normalizer += t.coefficient.sum().item<double>();
    return (log_probability.exp_() - t.one_hot).mul_(t.coefficient);
  }

  const torch::Tensor error = output - t.target;
  accumulated.sum += error.pow(2).sum().item<double>();
  accumulated.normalizer += rows;
  return error.mul(2.0);
}

// ---------------------------------------------------------------------------------------------------
// Validation

struct Evaluation {
  double loss = 0;
  double metric = 0;
};

std::vector<double> to_vector(const torch::Tensor& t) {
  const torch::Tensor d = t.to(torch::kFloat64).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

double binary_objective(const ModelConfig& config, const std::vector<std::int64_t>& truth,
                        const std::vector<double>& probability) {
  switch (config.objective) {
    case Metric::RocAuc:
      return roc_auc(truth, probability);
    case Metric::PrAuc:
      return average_precision(truth, probability);
    case Metric::LogLoss:
      return binary_log_loss(truth, probability);
    default:
      break;
  }

  // Threshold-dependent metrics (F1, accuracy) are tracked at the threshold the pipeline will choose, so
  // that early stopping selects on the number the pipeline reports.
  const double threshold = config.threshold_strategy == "fixed_0.5"
                               ? 0.5
                               : choose_threshold(truth, probability, config.objective);
  const BinaryMetrics metrics = binary_metrics(truth, probability, threshold);
  return config.objective == Metric::Accuracy ? metrics.accuracy : metrics.f1;
}

double multiclass_objective(Metric objective, const std::vector<std::int64_t>& truth,
                            const std::vector<double>& probability, std::size_t classes) {
  const MulticlassMetrics metrics = multiclass_metrics(truth, probability, classes);
  switch (objective) {
    case Metric::Accuracy:
      return metrics.accuracy;
    case Metric::WeightedF1:
      return metrics.weighted_f1;
    case Metric::RocAuc:
      return metrics.roc_auc_ovr;
    case Metric::LogLoss:
      return metrics.log_loss;
    default:
      return metrics.macro_f1;  // F1 and MacroF1.
  }
}

// NOTE: regression metrics are computed on the standardized target, so MAE and RMSE are in units of the
// training standard deviation. The ranking of epochs, which is all early stopping uses, is unaffected.
double regression_objective(Metric objective, const std::vector<double>& truth,
                            const std::vector<double>& prediction) {
  const RegressionMetrics metrics = regression_metrics(truth, prediction);
  switch (objective) {
    case Metric::Mae:
      return metrics.mae;
    case Metric::Rmse:
      return metrics.rmse;
    default:
      return metrics.r2;
  }
}

Evaluation evaluate(const Network& net, const ModelConfig& config, const torch::Tensor& features,
                    const LossTargets& targets, const TrainingData& data) {
  torch::NoGradGuard no_grad;
  const torch::Tensor output = forward_eval(net, features);

  Evaluation result;
  LossSum loss;
  loss_gradient(config.task, output, targets, loss);
  result.loss = loss.sum / loss.normalizer;

  switch (config.task) {
    case Task::BinaryClassification:
      result.metric = binary_objective(config, data.labels, to_vector(torch::sigmoid(output).squeeze(1)));
      break;
    case Task::MulticlassClassification:
      result.metric = multiclass_objective(config.objective, data.labels, to_vector(torch::softmax(output, 1)),
                                           static_cast<std::size_t>(output.size(1)));
      break;
    case Task::Regression:
      result.metric = regression_objective(config.objective, data.values, to_vector(output.squeeze(1)));
      break;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Learning-rate schedule
//
// Warm-up (config.warmup_epochs, any schedule) raises the rate linearly per step from lr/warmup_steps to lr.
// "cosine" then decays per step to 0 at the last step of max_epochs. "plateau" halves the rate after
// max(1, patience / 3) epochs without validation improvement, so it changes per epoch.

struct ScheduleState {
  double plateau_rate = 0;            // Current rate of "plateau" after halvings.
  std::size_t plateau_bad_epochs = 0;  // Epochs since the last improvement or halving.
};

double learning_rate_at(const ModelConfig& config, const ScheduleState& schedule, std::int64_t step,
                        std::int64_t steps_per_epoch) {
  const double base = config.lr_schedule == "plateau" ? schedule.plateau_rate : config.learning_rate;
  const std::int64_t warmup = static_cast<std::int64_t>(config.warmup_epochs) * steps_per_epoch;
  if (step < warmup) {
    return base * static_cast<double>(step + 1) / static_cast<double>(warmup);
  }

  if (config.lr_schedule == "cosine") {
    const std::int64_t total = static_cast<std::int64_t>(config.max_epochs) * steps_per_epoch;
    const double progress =
        static_cast<double>(step - warmup) / static_cast<double>(std::max<std::int64_t>(1, total - warmup));
    return base * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
  }
  return base;
}

void update_plateau(const ModelConfig& config, ScheduleState& schedule, bool improved) {
  if (config.lr_schedule != "plateau") {
    return;
  }
  if (improved) {
    schedule.plateau_bad_epochs = 0;
    return;
  }

  // NOTE: with patience 0 (no early stopping) the rate halves after every epoch without improvement.
  const std::size_t plateau_patience = std::max<std::size_t>(1, config.patience / 3);
  if (++schedule.plateau_bad_epochs >= plateau_patience) {
    schedule.plateau_rate *= 0.5;
    schedule.plateau_bad_epochs = 0;
  }
}

// ---------------------------------------------------------------------------------------------------
// Training state and its checkpoint

struct TrainingState {
  std::size_t epochs_done = 0;
  std::int64_t step = 0;
  AdamW optimizer;
  ScheduleState schedule;
  torch::Tensor best_parameters;
  double best_metric = 0;
  std::size_t best_epoch = 0;
  std::size_t epochs_without_improvement = 0;
  std::vector<EpochRecord> history;
  std::string stop_reason;  // Set once training has ended; a resumed run then returns at once.
};

nlohmann::json record_to_json(const EpochRecord& r) {
  nlohmann::json j = {
      {"epoch", r.epoch},
      {"max_epochs", r.max_epochs},
      {"train_loss", r.train_loss},
      {"validation_loss", r.validation_loss},
      {"validation_metric", r.validation_metric},
      {"learning_rate", r.learning_rate},
      {"elapsed_seconds", r.elapsed_seconds},
      {"eta_seconds", r.eta_seconds},
      {"improved", r.improved},
  };
  if (r.members > 1) {
    j["member"] = r.member;
    j["members"] = r.members;
  }
  return j;
}

EpochRecord record_from_json(const nlohmann::json& j) {
  EpochRecord r;
  r.epoch = j.at("epoch").get<std::size_t>();
  r.max_epochs = j.at("max_epochs").get<std::size_t>();
  r.train_loss = j.at("train_loss").get<double>();
  r.validation_loss = j.at("validation_loss").get<double>();
  r.validation_metric = j.at("validation_metric").get<double>();
  r.learning_rate = j.at("learning_rate").get<double>();
  r.elapsed_seconds = j.at("elapsed_seconds").get<double>();
  r.eta_seconds = j.at("eta_seconds").get<double>();
  r.improved = j.at("improved").get<bool>();
  r.member = j.value("member", std::size_t{0});
  r.members = j.value("members", std::size_t{1});
  return r;
}

// Everything that decides what the next epoch computes, so that a resumed run continues bit-exactly.
// Doubles travel as JSON numbers, which nlohmann::json prints with round-trip precision.
void save_checkpoint(const std::string& path, const std::string& config_json, const Network& net,
                     const TrainingState& state, const at::Generator& shuffle_generator,
                     const std::optional<EncryptionKey>& key) {
  nlohmann::json history = nlohmann::json::array();
  for (const EpochRecord& record : state.history) {
    history.push_back(record_to_json(record));
  }
  const nlohmann::json meta = {{"version", kCheckpointVersion},
                               {"config", config_json},
                               {"epochs_done", state.epochs_done},
                               {"step", state.step},
                               {"adam_step", state.optimizer.step},
                               {"plateau_rate", state.schedule.plateau_rate},
                               {"plateau_bad_epochs", state.schedule.plateau_bad_epochs},
                               {"best_metric", state.best_metric},
                               {"best_epoch", state.best_epoch},
                               {"epochs_without_improvement", state.epochs_without_improvement},
                               {"stop_reason", state.stop_reason},
                               {"history", history}};

  torch::serialize::OutputArchive archive;
  archive.write("meta", c10::IValue(meta.dump()));
  archive.write("parameters", net.parameters, /*is_buffer=*/true);
  archive.write("first_moment", state.optimizer.first_moment, true);
  archive.write("second_moment", state.optimizer.second_moment, true);
  archive.write("best_parameters", state.best_parameters, true);
  archive.write("shuffle_generator", shuffle_generator.get_state(), true);

  std::ostringstream stream;
  try {
    archive.save_to(stream);
  } catch (const c10::Error& e) {
    throw IoError(fmt::format("Trainer: cannot serialize checkpoint \"{}\": {}", path, e.what_without_backtrace()));
  }

  // write_file_atomically renames a complete temporary file into place, so a crash never leaves half a file.
  const std::string bytes = stream.str();
  write_file_atomically(path, key ? encrypt_bytes(bytes, *key) : bytes);
}

// Returns the checkpoint's archive bytes, decrypted when a key is set. A plain checkpoint is rejected when a
// key is set, because an attacker who can write the folder could otherwise swap in their own weights.
std::string read_checkpoint_bytes(const std::string& path, const std::optional<EncryptionKey>& key) {
  const std::string bytes = read_file(path);
  if (key) {
    if (!is_encrypted(bytes)) {
      throw ParseError(fmt::format("Trainer: checkpoint \"{}\" is not encrypted, but a checkpoint key is set; "
                                   "delete it or set resume = false to start fresh",
                                   path));
    }
    return decrypt_bytes(bytes, *key, path);
  }
  if (is_encrypted(bytes)) {
    throw ParseError(fmt::format("Trainer: checkpoint \"{}\" is encrypted, but no checkpoint key is set; pass the "
                                 "key that wrote it (TrainerOptions::checkpoint_key)",
                                 path));
  }
  return bytes;
}

// Restores `net`, `state` and the shuffle generator from `path`. Throws InvalidArgument when the checkpoint
// was written for another configuration and ParseError when it cannot be read.
void load_checkpoint(const std::string& path, const std::string& config_json, Network& net, TrainingState& state,
                     at::Generator& shuffle_generator, const std::optional<EncryptionKey>& key) {
  torch::serialize::InputArchive archive;
  nlohmann::json meta;
  torch::Tensor parameters, first_moment, second_moment, best_parameters, generator_state;
  std::istringstream stream(read_checkpoint_bytes(path, key));
  try {
    archive.load_from(stream);
    c10::IValue meta_value;
    archive.read("meta", meta_value);
    meta = nlohmann::json::parse(meta_value.toStringRef());
    archive.read("parameters", parameters, true);
    archive.read("first_moment", first_moment, true);
    archive.read("second_moment", second_moment, true);
    archive.read("best_parameters", best_parameters, true);
    archive.read("shuffle_generator", generator_state, true);
  } catch (const c10::Error& e) {
    throw ParseError(fmt::format("Trainer: cannot read checkpoint \"{}\": {}; delete it or set resume = false to "
                                 "start fresh",
                                 path, e.what_without_backtrace()));
  } catch (const nlohmann::json::exception& e) {
    throw ParseError(fmt::format("Trainer: checkpoint \"{}\" has invalid metadata: {}; delete it or set resume = "
                                 "false to start fresh",
                                 path, e.what()));
  }

  if (meta.value("version", 0) != kCheckpointVersion) {
    throw InvalidArgument(fmt::format("Trainer: checkpoint \"{}\" has format version {}, expected {}; delete it or "
                                      "set resume = false to start fresh",
                                      path, meta.value("version", 0), kCheckpointVersion));
  }
  if (meta.value("config", std::string()) != config_json) {
    throw InvalidArgument(fmt::format("Trainer: checkpoint \"{}\" was written for a different model configuration; "
                                      "delete it, choose another checkpoint path, or set resume = false to start "
                                      "fresh",
                                      path));
  }
  if (parameters.numel() != net.parameters.numel() || first_moment.numel() != net.parameters.numel() ||
      second_moment.numel() != net.parameters.numel() || best_parameters.numel() != net.parameters.numel()) {
    throw InvalidArgument(fmt::format("Trainer: checkpoint \"{}\" contains {} parameters but the network has {}; the "
                                      "feature width differs, so delete it or set resume = false to start fresh",
                                      path, parameters.numel(), net.parameters.numel()));
  }

  try {
    net.parameters.copy_(parameters);
    state.optimizer.first_moment.copy_(first_moment);
    state.optimizer.second_moment.copy_(second_moment);
    state.best_parameters = best_parameters.clone();
    shuffle_generator.set_state(generator_state);

    state.epochs_done = meta.at("epochs_done").get<std::size_t>();
    state.step = meta.at("step").get<std::int64_t>();
    state.optimizer.step = meta.at("adam_step").get<std::int64_t>();
    state.schedule.plateau_rate = meta.at("plateau_rate").get<double>();
    state.schedule.plateau_bad_epochs = meta.at("plateau_bad_epochs").get<std::size_t>();
    state.best_metric = meta.at("best_metric").get<double>();
    state.best_epoch = meta.at("best_epoch").get<std::size_t>();
    state.epochs_without_improvement = meta.at("epochs_without_improvement").get<std::size_t>();
    state.stop_reason = meta.at("stop_reason").get<std::string>();
    state.history.clear();
    for (const nlohmann::json& record : meta.at("history")) {
      state.history.push_back(record_from_json(record));
    }
  } catch (const nlohmann::json::exception& e) {
    throw ParseError(fmt::format("Trainer: checkpoint \"{}\" has invalid metadata: {}; delete it or set resume = "
                                 "false to start fresh",
                                 path, e.what()));
  } catch (const c10::Error& e) {
    throw ParseError(fmt::format("Trainer: checkpoint \"{}\" has an invalid generator state: {}; delete it or set "
                                 "resume = false to start fresh",
                                 path, e.what_without_backtrace()));
  }
}

// ---------------------------------------------------------------------------------------------------
// Epoch loop

torch::Tensor features_tensor(const Matrix& m) {
  return torch::from_blob(const_cast<float*>(m.data.data()),
                          {static_cast<std::int64_t>(m.rows), static_cast<std::int64_t>(m.cols)}, torch::kFloat32)
      .clone();
}

bool stop_requested(const TrainerOptions& options) {
  return options.stop_requested != nullptr && options.stop_requested->load(std::memory_order_relaxed);
}

// The rank of an epoch's validation result against the best so far.
enum class EpochRank {
  Worse,         ///< Neither better on the objective nor a tie at lower validation loss.
  TieLowerLoss,  ///< The objective ties with the best (within kMinImprovement) at a lower validation loss.
  Better,        ///< The objective beats the best by more than kMinImprovement.
};

// Ranks an epoch; ties of the objective go to the lower validation loss. F1 on a small validation split takes
// few distinct values, so without the tie rule an easy set keeps its first epoch at the best F1, barely trained.
EpochRank rank_epoch(Metric objective, double metric, double loss, double best_metric, double best_loss) {
  const bool better = higher_is_better(objective) ? metric > best_metric + kMinImprovement
                                                  : metric < best_metric - kMinImprovement;
  if (better) return EpochRank::Better;

  const bool tie = std::abs(metric - best_metric) <= kMinImprovement;
  return tie && loss < best_loss - kMinImprovement ? EpochRank::TieLowerLoss : EpochRank::Worse;
}

// Returns the validation loss of epoch `epoch` (1-based) from the history, or +infinity before any epoch.
double loss_of_epoch(const std::vector<EpochRecord>& history, std::size_t epoch) {
  for (const EpochRecord& record : history) {
    if (record.epoch == epoch) return record.validation_loss;
  }
  return std::numeric_limits<double>::infinity();
}

// The caller's row order of epoch `epoch`, checked to be a permutation of [0, rows).
torch::Tensor epoch_order(const TrainerOptions& options, std::size_t epoch, std::int64_t rows) {
  std::vector<std::int64_t> order = options.row_order(epoch, static_cast<std::size_t>(rows));
  std::vector<bool> seen(static_cast<std::size_t>(rows), false);
  bool valid = order.size() == static_cast<std::size_t>(rows);
  for (std::size_t i = 0; valid && i < order.size(); ++i) {
    valid = order[i] >= 0 && order[i] < rows && !seen[static_cast<std::size_t>(order[i])];
    if (valid) seen[static_cast<std::size_t>(order[i])] = true;
  }
  if (!valid) {
    throw InvalidArgument(fmt::format("Trainer: options.row_order returned {} indices for epoch {} that are not a "
                                      "permutation of [0, {}); return each training row index exactly once",
                                      order.size(), epoch, rows));
  }
  return torch::from_blob(order.data(), {rows}, torch::kInt64).clone();
}

// The FedProx centre as a tensor view of options.initial_parameters (not copied).
torch::Tensor proximal_center(const TrainerOptions& options) {
  return torch::from_blob(const_cast<float*>(options.initial_parameters.data()),
                          {static_cast<std::int64_t>(options.initial_parameters.size())}, torch::kFloat32);
}

// Runs one epoch over the training rows in a fresh permutation. Returns the mean training loss, or nothing
// when a stop was requested part-way (the epoch then does not count).
std::optional<double> train_epoch(Network& net, const ModelConfig& config, const TrainerOptions& options,
                                  const torch::Tensor& features, const LossTargets& targets,
                                  at::Generator& shuffle_generator, TrainingState& state) {
  const std::int64_t rows = features.size(0);
  const auto batch = static_cast<std::int64_t>(config.batch_size);
  const std::int64_t steps_per_epoch = (rows + batch - 1) / batch;

  // One gather per epoch; batches are then contiguous views.
  const torch::Tensor order = options.row_order ? epoch_order(options, state.epochs_done, rows)
                                                : torch::randperm(rows, shuffle_generator, torch::kInt64);
  const torch::Tensor shuffled = features.index_select(0, order);
  const LossTargets shuffled_targets = targets.select(order);

  LossSum loss;
  ForwardCache cache;
  for (std::int64_t start = 0; start < rows; start += batch) {
    if (stop_requested(options)) {
      return std::nullopt;
    }

    const std::int64_t length = std::min(batch, rows - start);
    const torch::Tensor output = forward_train(net, shuffled.narrow(0, start, length), shuffle_generator, cache);
    const torch::Tensor grad = loss_gradient(config.task, output, shuffled_targets.slice(start, length), loss);
    backward(net, cache, grad);
    if (options.proximal_mu > 0) {
      net.gradients.add_(net.parameters - proximal_center(options), options.proximal_mu);
    }
    if (options.gradient_hook) {
      options.gradient_hook(net.gradients.data_ptr<float>(), static_cast<std::size_t>(net.gradients.numel()));
    }

    const double lr = learning_rate_at(config, state.schedule, state.step, steps_per_epoch);
    state.optimizer.update(net.parameters, net.gradients, lr, config.weight_decay);
    ++state.step;
  }
  return loss.sum / loss.normalizer;
}

// ---------------------------------------------------------------------------------------------------
// DP-SGD epoch loop

// The fixed parameters of a DP-SGD run and its random source.
struct PrivateTraining {
  double sample_rate = 0;
  double noise_multiplier = 0;
  double max_grad_norm = 0;
  std::size_t expected_batch = 0;
  std::int64_t steps_per_epoch = 0;
  std::uint64_t max_steps = 0;  // The last step count whose epsilon stays within the budget.
  std::optional<RdpAccountant> accountant;
  detail::PrivacyRandom random;
  std::vector<double> uniform;  // Scratch space of fill_noise.
  torch::Tensor noise;
};

// Fills `noise` with N(0, stddev^2) values: Box-Muller over the CSPRNG's uniforms, in vectorized float64
// tensor operations because scalar libm calls made noise the largest cost of a DP-SGD step.
void fill_noise(detail::PrivacyRandom& random, std::vector<double>& uniform, torch::Tensor& noise, double stddev) {
  const std::int64_t count = noise.numel();
  const std::int64_t pairs = (count + 1) / 2;
  random.fill_uniform(uniform, static_cast<std::size_t>(2 * pairs));

  const torch::Tensor u = torch::from_blob(uniform.data(), {2, pairs}, torch::kFloat64);
  // 1 - u lies in (0, 1], so the logarithm is finite.
  const torch::Tensor radius = torch::log1p(-u[0]).mul_(-2.0).sqrt_().mul_(stddev);
  const torch::Tensor angle = u[1] * (2.0 * M_PI);
  const torch::Tensor values = torch::cat({radius * torch::cos(angle), radius * torch::sin(angle)});
  noise.copy_(values.narrow(0, 0, count));
}

// Resolves the sampling rate, the noise multiplier (solving it when the config leaves it at 0) and the
// number of steps that the budget allows.
PrivateTraining make_private_training(const ModelConfig& config, const TrainerOptions& options, std::size_t rows,
                                      std::int64_t parameters) {
  const PrivacyBudget& budget = *config.privacy;
  PrivateTraining dp{};
  if (options.insecure_privacy_seed) {
    dp.random = detail::PrivacyRandom(*options.insecure_privacy_seed);
    log(LogLevel::Warning, "DP-SGD draws its noise from a seeded stream (insecure_privacy_seed), so this run has "
                           "no privacy guarantee");
  }

  dp.expected_batch = std::min(config.batch_size, rows);
  dp.sample_rate = static_cast<double>(dp.expected_batch) / static_cast<double>(rows);
  dp.steps_per_epoch = static_cast<std::int64_t>((rows + dp.expected_batch - 1) / dp.expected_batch);
  dp.max_grad_norm = budget.max_grad_norm;
  const auto scheduled = static_cast<std::uint64_t>(config.max_epochs) * static_cast<std::uint64_t>(dp.steps_per_epoch);

  dp.noise_multiplier = config.noise_multiplier;
  if (dp.noise_multiplier == 0.0 && std::isfinite(budget.epsilon)) {
    dp.noise_multiplier = solve_noise_multiplier(budget.epsilon, budget.delta, dp.sample_rate, scheduled);
    log(LogLevel::Info, fmt::format("DP-SGD: noise multiplier {:.4f} keeps {} steps at sampling rate {:.5f} within "
                                    "epsilon {:g}, delta {:g}",
                                    dp.noise_multiplier, scheduled, dp.sample_rate, budget.epsilon, budget.delta));
  }

  dp.accountant.emplace(dp.sample_rate, dp.noise_multiplier);
  dp.max_steps = dp.accountant->max_steps_within(budget.epsilon, budget.delta, scheduled);
  if (dp.max_steps == 0) {
    throw InvalidArgument(fmt::format("Trainer: with noise multiplier {:g} at sampling rate {:.5f}, even one DP-SGD "
                                      "step spends more than epsilon {:g}; raise config.noise_multiplier or leave "
                                      "it at 0 so that the trainer solves it",
                                      dp.noise_multiplier, dp.sample_rate, budget.epsilon));
  }
  dp.noise = torch::zeros({parameters}, torch::kFloat32);
  return dp;
}

// Runs one epoch of DP-SGD: ceil(rows / batch_size) steps, each on a fresh Poisson sample, ending early when
// the next step would exceed the budget. Returns the mean training loss of the sampled rows (0 when every
// sample was empty), or nothing when a stop was requested part-way.
std::optional<double> train_epoch_private(Network& net, const ModelConfig& config, const TrainerOptions& options,
                                          const torch::Tensor& features, const LossTargets& targets,
                                          at::Generator& dropout_generator, PrivateTraining& dp,
                                          TrainingState& state) {
  const auto rows = static_cast<std::size_t>(features.size(0));
  const double noise_std = dp.noise_multiplier * dp.max_grad_norm;

  LossSum loss;
  ForwardCache cache;
  for (std::int64_t s = 0; s < dp.steps_per_epoch; ++s) {
    if (stop_requested(options)) {
      return std::nullopt;
    }
    if (static_cast<std::uint64_t>(state.step) >= dp.max_steps) {
      break;
    }

    std::vector<std::int64_t> chosen = dp.random.poisson_sample(rows, dp.sample_rate);
    if (chosen.empty()) {
      net.gradients.zero_();
    } else {
      const torch::Tensor index =
          torch::from_blob(chosen.data(), {static_cast<std::int64_t>(chosen.size())}, torch::kInt64);
      const torch::Tensor output = forward_train(net, features.index_select(0, index), dropout_generator, cache);
      const torch::Tensor grad = per_row_loss_gradient(config.task, output, targets.select(index), loss);
      private_backward(net, cache, grad, dp.max_grad_norm);
    }

    if (noise_std > 0.0) {
      fill_noise(dp.random, dp.uniform, dp.noise, noise_std);
      net.gradients.add_(dp.noise);
    }
    net.gradients.div_(static_cast<double>(dp.expected_batch));
    // FedProx's term reads no training row, so adding it after the noise costs no privacy.
    if (options.proximal_mu > 0) {
      net.gradients.add_(net.parameters - proximal_center(options), options.proximal_mu);
    }
    // NOTE: data-parallel ranks each add their own noise before the hook averages, which is more noise than
    // the accountant assumes; the guarantee holds, but it is stronger than what is reported.
    if (options.gradient_hook) {
      options.gradient_hook(net.gradients.data_ptr<float>(), static_cast<std::size_t>(net.gradients.numel()));
    }

    const double lr = learning_rate_at(config, state.schedule, state.step, dp.steps_per_epoch);
    state.optimizer.update(net.parameters, net.gradients, lr, config.weight_decay);
    ++state.step;
  }
  return loss.normalizer > 0 ? loss.sum / loss.normalizer : 0.0;
}

PrivacySpent privacy_spent(const PrivateTraining& dp, const PrivacyBudget& budget, std::int64_t steps) {
  const EpsilonAtOrder spent = dp.accountant->epsilon_at_order(static_cast<std::uint64_t>(steps), budget.delta);
  PrivacySpent result;
  result.epsilon = spent.epsilon;
  result.optimal_order = spent.order;
  result.target_epsilon = budget.epsilon;
  result.delta = budget.delta;
  result.noise_multiplier = dp.noise_multiplier;
  result.max_grad_norm = dp.max_grad_norm;
  result.sample_rate = dp.sample_rate;
  result.expected_batch_size = dp.expected_batch;
  result.steps = static_cast<std::uint64_t>(steps);
  return result;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------

nlohmann::json TrainingResult::to_json() const {
  nlohmann::json records = nlohmann::json::array();
  for (const EpochRecord& record : history) {
    records.push_back(record_to_json(record));
  }
  nlohmann::json j = {{"best_epoch", best_epoch}, {"stop_reason", stop_reason}, {"seconds", seconds},
                      {"resumed", resumed},       {"epochs", history.size()},   {"history", records}};
  if (privacy) {
    j["privacy"] = privacy->to_json();
  }
  return j;
}

Trainer::Trainer(TrainerOptions options) : options_(std::move(options)) {
  check_config(options_.config, options_.threads);
  check_objective(options_.config);
  if (!(options_.proximal_mu >= 0.0) || !std::isfinite(options_.proximal_mu)) {
    throw InvalidArgument(fmt::format("Trainer: options.proximal_mu is {}, expected a finite value >= 0",
                                      options_.proximal_mu));
  }
  if (options_.proximal_mu > 0 && options_.initial_parameters.empty()) {
    throw InvalidArgument("Trainer: options.proximal_mu > 0 needs options.initial_parameters, the centre of the "
                          "proximal term; set both or set proximal_mu to 0");
  }
}

TrainingResult Trainer::fit(const TrainingData& train, const TrainingData& validation) const {
  const ModelConfig& config = options_.config;
  const Clock::time_point start = Clock::now();
  ThreadScope threads(options_.threads);
  torch::NoGradGuard no_grad;

  const std::size_t outputs = output_count(config, train, validation);
  if (config.task == Task::MulticlassClassification && outputs < 2) {
    throw InvalidArgument(fmt::format("Trainer: multiclass training needs at least 2 classes, found {}; use a "
                                      "target with more classes",
                                      outputs));
  }
  check_split("training", train, config, train.features.cols, outputs);
  check_split("validation", validation, config, train.features.cols, outputs);

  Network net = build_network(train.features.cols, config, outputs);
  if (!options_.initial_parameters.empty()) {
    if (options_.initial_parameters.size() != static_cast<std::size_t>(net.parameters.numel())) {
      throw InvalidArgument(fmt::format("Trainer: options.initial_parameters has {} values but the network has {} "
                                        "parameters; pass weights of the same layer widths",
                                        options_.initial_parameters.size(), net.parameters.numel()));
    }
    net.parameters.copy_(proximal_center(options_));
  }
  at::Generator shuffle_generator = at::make_generator<at::CPUGeneratorImpl>(config.seed);

  TrainingState state;
  state.optimizer = AdamW(net.parameters.numel());
  state.schedule.plateau_rate = config.learning_rate;
  state.best_parameters = net.parameters.clone();
  state.best_metric = higher_is_better(config.objective) ? -std::numeric_limits<double>::infinity()
                                                         : std::numeric_limits<double>::infinity();

  const std::string config_json = config.to_json().dump();
  TrainingResult result;
  if (!options_.checkpoint_path.empty() && options_.resume) {
    if (std::filesystem::exists(options_.checkpoint_path)) {
      load_checkpoint(options_.checkpoint_path, config_json, net, state, shuffle_generator, options_.checkpoint_key);
      result.resumed = true;
    } else {
      // The caller requested a resume, so starting over is logged as well as reported by resumed = false.
      log(LogLevel::Warning, fmt::format("Trainer: resume is set but no checkpoint exists at \"{}\"; training from "
                                         "the first epoch",
                                         options_.checkpoint_path));
    }
  }

  std::optional<PrivateTraining> private_training;
  if (config.privacy) {
    private_training.emplace(make_private_training(config, options_, train.features.rows, net.parameters.numel()));
  }

  const torch::Tensor train_features = features_tensor(train.features);
  const torch::Tensor validation_features = features_tensor(validation.features);
  const LossTargets train_targets = make_targets(config, train, outputs);
  const LossTargets validation_targets = make_targets(config, validation, outputs);

  const double previous_seconds = state.history.empty() ? 0.0 : state.history.back().elapsed_seconds;
  std::size_t epochs_this_call = 0;
  while (state.stop_reason.empty()) {
    if (state.epochs_done >= config.max_epochs) {
      state.stop_reason = "max_epochs";
      break;
    }

    const std::optional<double> train_loss =
        private_training ? train_epoch_private(net, config, options_, train_features, train_targets,
                                               shuffle_generator, *private_training, state)
                         : train_epoch(net, config, options_, train_features, train_targets, shuffle_generator, state);
    if (!train_loss) {
      result.stop_reason = "stop_requested";
      break;
    }
    ++state.epochs_done;
    ++epochs_this_call;

    const Evaluation evaluation = evaluate(net, config, validation_features, validation_targets, validation);
    // A tie won on validation loss takes the best weights. Patience and the plateau schedule keep counting,
    // because both wait for the objective itself to improve.
    const EpochRank rank = rank_epoch(config.objective, evaluation.metric, evaluation.loss, state.best_metric,
                                      loss_of_epoch(state.history, state.best_epoch));
    const bool improved = rank == EpochRank::Better;
    const bool new_best = rank != EpochRank::Worse;
    if (new_best) {
      state.best_metric = evaluation.metric;
      state.best_epoch = state.epochs_done;
      state.best_parameters.copy_(net.parameters);
    }
    if (improved) {
      state.epochs_without_improvement = 0;
    } else {
      ++state.epochs_without_improvement;
    }
    update_plateau(config, state.schedule, improved);

    const double seconds_now = seconds_since(start);
    EpochRecord record;
    record.epoch = state.epochs_done;
    record.max_epochs = config.max_epochs;
    record.train_loss = *train_loss;
    record.validation_loss = evaluation.loss;
    record.validation_metric = evaluation.metric;
    // The rate of the epoch's last step.
    record.learning_rate = learning_rate_at(config, state.schedule, state.step - 1,
                                            (static_cast<std::int64_t>(train.features.rows) +
                                             static_cast<std::int64_t>(config.batch_size) - 1) /
                                                static_cast<std::int64_t>(config.batch_size));
    record.elapsed_seconds = previous_seconds + seconds_now;
    record.eta_seconds = seconds_now / static_cast<double>(epochs_this_call) *
                         static_cast<double>(config.max_epochs - state.epochs_done);
    record.improved = new_best;
    state.history.push_back(record);

    // Patience 0 disables early stopping; the best epoch is still the one returned.
    if (config.patience > 0 && state.epochs_without_improvement >= config.patience) {
      state.stop_reason = "early_stopping";
    } else if (state.epochs_done >= config.max_epochs) {
      state.stop_reason = "max_epochs";
    } else if (private_training && static_cast<std::uint64_t>(state.step) >= private_training->max_steps) {
      state.stop_reason = "privacy_budget";
    }

    if (!options_.checkpoint_path.empty()) {
      save_checkpoint(options_.checkpoint_path, config_json, net, state, shuffle_generator, options_.checkpoint_key);
    }
    if (options_.on_epoch) {
      options_.on_epoch(record);
    }

    if (state.stop_reason.empty() && options_.max_seconds > 0 && seconds_now >= options_.max_seconds) {
      result.stop_reason = "time_budget";
      break;
    }
  }

  if (result.stop_reason.empty()) {
    result.stop_reason = state.stop_reason;
  }
  if (!state.history.empty() && options_.restore_best) {
    net.parameters.copy_(state.best_parameters);
  }
  result.network = to_mlp(net);
  result.history = std::move(state.history);
  result.best_epoch = state.best_epoch;
  // A resumed run counts the training time recorded in the checkpoint too, so the total survives a resume.
  result.seconds = previous_seconds + seconds_since(start);
  if (private_training) {
    result.privacy = privacy_spent(*private_training, *config.privacy, state.step);
    result.privacy->budget_exhausted = result.stop_reason == "privacy_budget";
  }
  return result;
}

}  // namespace lepton
