// Coalition values v(S) = sum_b w_b f(x_S, bg_b) / sum_b w_b, the inner loop of every Shapley explainer.

#pragma GCC optimize("fp-contract=off")

#include <algorithm>
#include <cmath>

#include <Eigen/Core>
#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/explain_detail.hpp"
#include "runtime/gemm.hpp"

namespace lepton::detail {

namespace {

// Hybrid rows (columns of the activation matrix) per GEMM on the fast path; 1024 columns of a
// 128-unit layer take 512 KiB of floats, which stays in a core's L2 cache.
constexpr std::size_t kFastBlockColumns = 1024;

using FloatArrayMap = Eigen::Map<Eigen::ArrayXf>;
using ConstFloatArrayMap = Eigen::Map<const Eigen::ArrayXf>;

// Applies the activation to `count` floats; the branch sits outside the loop so that Eigen can vectorise.
void activate_block(Activation activation, float* data, std::size_t count) {
  FloatArrayMap values(data, static_cast<Eigen::Index>(count));
  switch (activation) {
    case Activation::Identity: return;
    case Activation::Relu: values = values.max(0.0f); return;
    case Activation::Tanh: values = values.tanh(); return;
    case Activation::Gelu:
      for (std::size_t i = 0; i < count; ++i) data[i] = 0.5f * data[i] * (1.0f + std::erf(data[i] * 0.70710678f));
      return;
  }
}

}  // namespace

CoalitionValues::CoalitionValues(const ExplainModel& model, const Background& background,
                                 const FeatureGroups& groups, CoalitionPath path)
    : model_(model), background_(background), groups_(groups) {
  column_group_.assign(groups.width(), 0);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (std::size_t column : groups.groups()[g].columns) column_group_[column] = g;
  }
  for (double weight : background.weights) weight_sum_ += weight;

  if (path != CoalitionPath::Fast) return;
  plan_ = ModelAccess::plan(model);
  if (plan_ == nullptr) {
    throw InvalidArgument(
        "CoalitionPath::Fast needs a model built with ExplainModel::from_mlp; use CoalitionPath::Reference for a "
        "plain function");
  }
  kernels_ = &kernels_for(default_simd_level());
  delta_kernels_ = &delta_kernels_for(default_simd_level());
  for (const InputProduct& product : plan_->network.products) {
    product_groups_.emplace_back(column_group_[product.left], column_group_[product.right]);
  }

  // b1 + W1 bg_b does not depend on the explained row, so it is computed once, in double, then rounded.
  // W1 reads the row followed by its input products.
  const DoubleDenseLayer& first = plan_->network.layers.front();
  const std::size_t rows = background.size();
  base_.resize(rows * first.outputs);
  std::vector<double> expanded(first.inputs);
  for (std::size_t b = 0; b < rows; ++b) {
    expand_row(plan_->network, background.rows.row(b), expanded.data());
    for (std::size_t h = 0; h < first.outputs; ++h) {
      double acc = first.bias[h];
      for (std::size_t c = 0; c < first.inputs; ++c) acc += first.weight[h * first.inputs + c] * expanded[c];
      base_[b * first.outputs + h] = static_cast<float>(acc);
    }
  }
}

void CoalitionValues::set_row(const double* row) {
  row_ = row;
  if (plan_ != nullptr) prepare_fast_row();
}

void CoalitionValues::prepare_fast_row() {
  // delta[b][g] = W1[:, g] (x_g - bg_b,g): switching group g from background row b to x adds delta[b][g]
  // to the first layer's pre-activation, because that layer is linear before its activation.
  const DoubleDenseLayer& first = plan_->network.layers.front();
  const std::vector<InputProduct>& products = plan_->network.products;
  const std::size_t inputs = plan_->network.inputs();
  const std::size_t hidden = first.outputs;
  const std::size_t group_count = groups_.size();
  const std::size_t rows = background_.size();

  std::vector<double> expanded(first.inputs);
  expand_row(plan_->network, row_, expanded.data());
  full_.resize(hidden);
  for (std::size_t h = 0; h < hidden; ++h) {
    double acc = first.bias[h];
    for (std::size_t c = 0; c < first.inputs; ++c) acc += first.weight[h * first.inputs + c] * expanded[c];
    full_[h] = static_cast<float>(acc);
  }

  // Every input product reads two factors, each from one group. Take background row b as the start, and let
  // f(l, r) be the term with its left factor from l and its right factor from r (x or b). Then
  // f(x, x) = f(b, b) + [f(x, b) - f(b, b)] + [f(b, x) - f(b, b)] + pair, where the pair term
  // f(x, x) - f(x, b) - f(b, x) + f(b, b) counts only when both groups take x's values. This holds for any
  // term: products, differences (pair term 0) and steps. The two single changes go into the groups' deltas,
  // the pair term into pair_[b][k], which first_layer_block adds only for such masks.
  delta_.assign(rows * group_count * hidden, 0.0f);
  pair_.assign(rows * products.size() * hidden, 0.0f);
  std::vector<double> difference(inputs);
  std::vector<double> left_step(products.size()), right_step(products.size());
  for (std::size_t b = 0; b < rows; ++b) {
    const double* bg = background_.rows.row(b);
    for (std::size_t c = 0; c < inputs; ++c) difference[c] = row_[c] - bg[c];
    for (std::size_t k = 0; k < products.size(); ++k) {
      const InputProduct& product = products[k];
      const double left_x = product.left_factor(row_), left_b = product.left_factor(bg);
      const double right_x = product.right_factor(row_), right_b = product.right_factor(bg);
      const double start = product.combine(left_b, right_b);
      left_step[k] = product.combine(left_x, right_b) - start;
      right_step[k] = product.combine(left_b, right_x) - start;
      const double both = product.combine(left_x, right_x) - start - left_step[k] - right_step[k];
      float* pair = pair_.data() + (b * products.size() + k) * hidden;
      for (std::size_t h = 0; h < hidden; ++h) {
        pair[h] = static_cast<float>(first.weight[h * first.inputs + inputs + k] * both);
      }
    }
    for (std::size_t g = 0; g < group_count; ++g) {
      float* target = delta_.data() + (b * group_count + g) * hidden;
      for (std::size_t h = 0; h < hidden; ++h) {
        const double* weights = first.weight.data() + h * first.inputs;
        double acc = 0.0;
        for (std::size_t c : groups_.groups()[g].columns) acc += weights[c] * difference[c];
        for (std::size_t k = 0; k < products.size(); ++k) {
          if (product_groups_[k].first == g) acc += weights[inputs + k] * left_step[k];
          if (product_groups_[k].second == g) acc += weights[inputs + k] * right_step[k];
        }
        target[h] = static_cast<float>(acc);
      }
    }
  }
}

void CoalitionValues::evaluate(const std::uint64_t* masks, std::size_t count, double* values) {
  if (row_ == nullptr) throw InternalError("CoalitionValues::evaluate called before set_row");
  if (plan_ != nullptr) {
    evaluate_fast(masks, count, values);
  } else {
    evaluate_reference(masks, count, values);
  }
}

void CoalitionValues::evaluate_reference(const std::uint64_t* masks, std::size_t count, double* values) {
  const std::size_t rows = background_.size();
  const std::size_t width = model_.inputs();
  const std::size_t k_count = model_.outputs();
  const std::size_t masks_per_block = std::max<std::size_t>(1, kHybridBlockRows / rows);

  for (std::size_t start = 0; start < count; start += masks_per_block) {
    const std::size_t block = std::min(masks_per_block, count - start);
    hybrid_rows_.resize(block * rows * width);
    hybrid_outputs_.resize(block * rows * k_count);

    for (std::size_t s = 0; s < block; ++s) {
      const std::uint64_t mask = masks[start + s];
      for (std::size_t b = 0; b < rows; ++b) {
        const double* bg = background_.rows.row(b);
        double* hybrid = hybrid_rows_.data() + (s * rows + b) * width;
        for (std::size_t c = 0; c < width; ++c) hybrid[c] = (mask >> column_group_[c]) & 1U ? row_[c] : bg[c];
      }
    }

    model_.evaluate(hybrid_rows_.data(), block * rows, hybrid_outputs_.data());
    model_rows_ += block * rows;

    for (std::size_t s = 0; s < block; ++s) {
      for (std::size_t k = 0; k < k_count; ++k) {
        double acc = 0.0;
        for (std::size_t b = 0; b < rows; ++b) acc += background_.weights[b] * hybrid_outputs_[(s * rows + b) * k_count + k];
        values[(start + s) * k_count + k] = acc / weight_sum_;
      }
    }
  }
}

void CoalitionValues::evaluate_fast(const std::uint64_t* masks, std::size_t count, double* values) {
  const DoubleMlp& network = plan_->network;
  const std::size_t rows = background_.size();
  const std::size_t hidden = network.layers.front().outputs;
  const std::size_t k_count = model_.outputs();
  const std::size_t masks_per_block = std::max<std::size_t>(1, kFastBlockColumns / rows);

  for (std::size_t start = 0; start < count; start += masks_per_block) {
    const std::size_t block = std::min(masks_per_block, count - start);
    const std::size_t columns = block * rows;
    activations_.resize(columns * plan_->widest);
    next_activations_.resize(columns * plan_->widest);

    first_layer_block(masks + start, block);
    activate_block(network.layers.front().activation, activations_.data(), columns * hidden);

    // Later layers: one batched dense kernel call per layer, or per diagonal block of a block-diagonal
    // layer, over all hybrid rows of the block. Each hybrid row is a row of `activations_` with `stride` floats.
    std::size_t stride = hidden;
    for (std::size_t l = 1; l < network.layers.size(); ++l) {
      const BlockedF32Layer& packed = plan_->packed_layers[l - 1];
      run_blocked_f32(*kernels_, packed, activations_.data(), stride, columns, next_activations_.data(),
                      packed.output_stride);
      const Activation activation = network.layers[l].activation;
      if (activation != Activation::Relu) {
        activate_block(activation, next_activations_.data(), columns * packed.output_stride);
      }
      stride = packed.output_stride;
      activations_.swap(next_activations_);
    }
    model_rows_ += columns;

    average_block(stride, block, values + start * k_count);
  }
}

void CoalitionValues::first_layer_block(const std::uint64_t* masks, std::size_t block) {
  const std::size_t rows = background_.size();
  const std::size_t group_count = groups_.size();
  const std::size_t hidden = plan_->network.layers.front().outputs;

  // Each mask starts from whichever side needs fewer group deltas, and lists those groups once.
  from_row_.resize(block);
  toggled_.clear();
  toggled_start_.assign(1, 0);
  for (std::size_t s = 0; s < block; ++s) {
    const std::uint64_t mask = masks[s];
    from_row_[s] = static_cast<std::size_t>(__builtin_popcountll(mask)) * 2 > group_count;
    for (std::size_t g = 0; g < group_count; ++g) {
      const bool in_coalition = (mask >> g) & 1U;
      if (in_coalition != static_cast<bool>(from_row_[s])) toggled_.push_back(g);
    }
    toggled_start_.push_back(toggled_.size());
  }

  // Background rows outside, masks inside: one background row's deltas (G x H floats) stay in the L1
  // cache while every mask of the block uses them.
  for (std::size_t b = 0; b < rows; ++b) {
    const float* deltas = delta_.data() + b * group_count * hidden;
    for (std::size_t s = 0; s < block; ++s) {
      const float* start_point = from_row_[s] ? full_.data() : base_.data() + b * hidden;
      float* out = activations_.data() + (s * rows + b) * hidden;
      delta_kernels_->sum_deltas(start_point, deltas, hidden, toggled_.data() + toggled_start_[s],
                                 toggled_start_[s + 1] - toggled_start_[s], from_row_[s] != 0, hidden, out);
      add_pair_terms(masks[s], from_row_[s] != 0, b, out);
    }
  }
}

void CoalitionValues::add_pair_terms(std::uint64_t mask, bool from_row, std::size_t background_row, float* out) {
  // full_ contains every product's pair term and base_ none, so a mask that starts from full_ drops the pair
  // terms of products whose two groups are not both switched, and one that starts from base_ adds the others.
  const std::size_t count = product_groups_.size();
  const std::size_t hidden = plan_->network.layers.front().outputs;
  for (std::size_t k = 0; k < count; ++k) {
    const bool both = ((mask >> product_groups_[k].first) & 1U) && ((mask >> product_groups_[k].second) & 1U);
    if (both == from_row) continue;
    const float* pair = pair_.data() + (background_row * count + k) * hidden;
    const float sign = from_row ? -1.0f : 1.0f;
    for (std::size_t h = 0; h < hidden; ++h) out[h] += sign * pair[h];
  }
}

void CoalitionValues::average_block(std::size_t stride, std::size_t block, double* values) {
  // Link in double, then the weighted mean over the background rows.
  const std::size_t rows = background_.size();
  const std::size_t k_count = model_.outputs();
  const std::size_t columns = block * rows;

  logits_.resize(columns * k_count);
  for (std::size_t c = 0; c < columns; ++c) {
    const float* logit = activations_.data() + c * stride;
    std::copy(logit, logit + k_count, logits_.begin() + static_cast<std::ptrdiff_t>(c * k_count));
  }
  // Softmax normalizes within one hybrid row; the element-wise links run over the block in one call.
  if (plan_->link == OutputLink::Softmax) {
    for (std::size_t c = 0; c < columns; ++c) apply_link(plan_->link, logits_.data() + c * k_count, k_count);
  } else {
    apply_link(plan_->link, logits_.data(), columns * k_count);
  }

  for (std::size_t s = 0; s < block; ++s) {
    double* value = values + s * k_count;
    std::fill(value, value + k_count, 0.0);
    for (std::size_t b = 0; b < rows; ++b) {
      const double* probability = logits_.data() + (s * rows + b) * k_count;
      for (std::size_t k = 0; k < k_count; ++k) value[k] += background_.weights[b] * probability[k];
    }
    for (std::size_t k = 0; k < k_count; ++k) value[k] /= weight_sum_;
  }
}

}  // namespace lepton::detail
