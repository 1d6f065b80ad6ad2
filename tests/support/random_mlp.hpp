#pragma once
// Seeded random networks and rows shared by the tests and benchmarks, so that they build the same models from
// the same seeds.

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "lepton/explain.hpp"

namespace lepton::test_support {

/// Builds an MLP with layer widths `widths` (input first): He-scaled normal weights, biases N(0, 0.1^2),
/// `hidden` on every layer but the last, which is linear.
inline DoubleMlp random_mlp(const std::vector<std::size_t>& widths, Activation hidden, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  DoubleMlp network;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    DoubleDenseLayer layer;
    layer.inputs = widths[l];
    layer.outputs = widths[l + 1];
    const double scale = std::sqrt(2.0 / static_cast<double>(layer.inputs));
    for (std::size_t i = 0; i < layer.inputs * layer.outputs; ++i) layer.weight.push_back(scale * normal(engine));
    for (std::size_t i = 0; i < layer.outputs; ++i) layer.bias.push_back(0.1 * normal(engine));
    layer.activation = l + 2 == widths.size() ? Activation::Identity : hidden;
    network.layers.push_back(std::move(layer));
  }
  return network;
}

/// Builds an f32 MLP with layer widths `widths` (input first), initialized like random_mlp.
inline Mlp random_f32_mlp(const std::vector<std::size_t>& widths, std::uint64_t seed,
                          Activation hidden = Activation::Relu) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Mlp network;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    DenseLayer layer;
    layer.inputs = widths[l];
    layer.outputs = widths[l + 1];
    const float scale = std::sqrt(2.0f / static_cast<float>(layer.inputs));
    for (std::size_t i = 0; i < layer.inputs * layer.outputs; ++i) layer.weight.push_back(scale * normal(engine));
    for (std::size_t i = 0; i < layer.outputs; ++i) layer.bias.push_back(0.1f * normal(engine));
    layer.activation = l + 2 == widths.size() ? Activation::Identity : hidden;
    network.layers.push_back(std::move(layer));
  }
  return network;
}

/// Returns `count` random f32 members of shape `widths`, seeded seed, seed + 1, and so on.
inline std::vector<Mlp> random_f32_members(const std::vector<std::size_t>& widths, std::size_t count,
                                           std::uint64_t seed) {
  std::vector<Mlp> members;
  for (std::size_t m = 0; m < count; ++m) members.push_back(random_f32_mlp(widths, seed + m));
  return members;
}

/// Returns a [rows x cols] matrix of standard normal values.
inline DoubleMatrix random_rows(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  DoubleMatrix matrix(rows, cols);
  for (double& value : matrix.data) value = normal(engine);
  return matrix;
}

}  // namespace lepton::test_support
