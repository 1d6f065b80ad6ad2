#pragma once
// Merged cross-fitted networks for the runtime tests. lepton::merge_mean_output lives in lepton::train, which
// runtime tests do not link, so stack_members rebuilds its layout by hand. The first layer stacks the members'
// rows and each later hidden layer is block-diagonal. The output layer holds every member's weights / K and
// the mean bias.

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "lepton/model.hpp"

namespace lepton::test_support {

/// Builds an f32 MLP with layer widths `widths` (input first): He-scaled normal weights, biases N(0, 0.1^2),
/// ReLU on every layer but the last, which is linear.
inline Mlp random_member(const std::vector<std::size_t>& widths, std::uint64_t seed) {
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
    layer.activation = l + 2 == widths.size() ? Activation::Identity : Activation::Relu;
    network.layers.push_back(std::move(layer));
  }
  return network;
}

/// Returns one network whose output is the mean of the members' outputs, laid out as merge_mean_output
/// lays it out. The members must share depth, inputs and outputs.
inline Mlp stack_members(const std::vector<Mlp>& members) {
  const std::size_t count = members.size();
  const std::size_t depth = members.front().layers.size();
  Mlp merged;
  for (std::size_t l = 0; l < depth; ++l) {
    const bool first = l == 0;
    const bool last = l + 1 == depth;

    DenseLayer layer;
    for (const Mlp& member : members) {
      layer.inputs += member.layers[l].inputs;
      layer.outputs += member.layers[l].outputs;
    }
    if (first) layer.inputs = members.front().layers[l].inputs;
    if (last) layer.outputs = members.front().layers[l].outputs;
    layer.activation = members.front().layers[l].activation;
    layer.weight.assign(layer.outputs * layer.inputs, 0.0f);
    layer.bias.assign(layer.outputs, 0.0f);

    std::size_t input_offset = 0;
    std::size_t output_offset = 0;
    for (const Mlp& member : members) {
      const DenseLayer& source = member.layers[l];
      const std::size_t column = first ? 0 : input_offset;
      const std::size_t row = last ? 0 : output_offset;
      const float scale = last ? 1.0f / static_cast<float>(count) : 1.0f;
      for (std::size_t o = 0; o < source.outputs; ++o) {
        for (std::size_t i = 0; i < source.inputs; ++i) {
          layer.weight[(row + o) * layer.inputs + column + i] += scale * source.weight[o * source.inputs + i];
        }
        layer.bias[row + o] += scale * source.bias[o];
      }
      input_offset += source.inputs;
      output_offset += source.outputs;
    }
    merged.layers.push_back(std::move(layer));
  }
  return merged;
}

/// Returns `count` random members of shape `widths`, seeded seed, seed + 1, and so on.
inline std::vector<Mlp> random_members(const std::vector<std::size_t>& widths, std::size_t count,
                                       std::uint64_t seed) {
  std::vector<Mlp> members;
  for (std::size_t m = 0; m < count; ++m) members.push_back(random_member(widths, seed + m));
  return members;
}

}  // namespace lepton::test_support
