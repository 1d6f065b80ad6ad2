// Merges networks of the same shape into one network that outputs their mean logit. It lives in the runtime
// because it only rearranges weights, so both training and the runtime's tests can call it.

#include <algorithm>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/model.hpp"

namespace lepton {

namespace {

bool same_products(const std::vector<InputProduct>& a, const std::vector<InputProduct>& b) {
  const auto same = [](const InputProduct& x, const InputProduct& y) {
    return x.left == y.left && x.right == y.right && x.left_scale == y.left_scale && x.left_shift == y.left_shift &&
           x.right_scale == y.right_scale && x.right_shift == y.right_shift && x.difference == y.difference &&
           x.step == y.step && x.mean == y.mean && x.scale == y.scale;
  };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), same);
}

void check_mergeable(const std::vector<Mlp>& members) {
  if (members.empty()) {
    throw InvalidArgument("merge_mean_output: no members; pass at least one network");
  }
  const Mlp& first = members.front();
  first.validate();
  for (std::size_t m = 1; m < members.size(); ++m) {
    const Mlp& member = members[m];
    member.validate();
    if (member.layers.size() != first.layers.size() || member.inputs() != first.inputs() ||
        member.outputs() != first.outputs()) {
      throw InvalidArgument(fmt::format(
          "merge_mean_output: member {} has {} layers, {} inputs and {} outputs, but member 0 has {}, {} and {}; "
          "merge networks of the same depth, inputs and outputs",
          m, member.layers.size(), member.inputs(), member.outputs(), first.layers.size(), first.inputs(),
          first.outputs()));
    }
    for (std::size_t l = 0; l < member.layers.size(); ++l) {
      if (member.layers[l].activation != first.layers[l].activation) {
        throw InvalidArgument(fmt::format("merge_mean_output: layer {} of member {} uses {}, but member 0 uses {}; "
                                          "merge networks with the same activations",
                                          l, m, to_string(member.layers[l].activation),
                                          to_string(first.layers[l].activation)));
      }
    }
  }
  // The merged first layer reads one shared input row, so every member must compute the same products.
  for (std::size_t m = 1; m < members.size(); ++m) {
    if (!same_products(members[m].products, first.products)) {
      throw InvalidArgument(fmt::format("merge_mean_output: member {} computes other input products than member 0; "
                                        "merge networks trained with the same derived products",
                                        m));
    }
  }
  for (std::size_t m = 0; m < members.size(); ++m) {
    for (std::size_t l = 0; l < members[m].layers.size(); ++l) {
      if (members[m].layers[l].precision != LayerPrecision::F32) {
        throw InvalidArgument(fmt::format("merge_mean_output: layer {} of member {} is int8; merge the fp32 "
                                          "networks and quantize the result",
                                          l, m));
      }
    }
  }
}

}  // namespace

Mlp merge_mean_output(const std::vector<Mlp>& members) {
  check_mergeable(members);
  const std::size_t count = members.size();
  const std::size_t depth = members.front().layers.size();

  Mlp merged;
  merged.products = members.front().products;
  for (std::size_t l = 0; l < depth; ++l) {
    const DenseLayer& shape = members.front().layers[l];
    const bool first = l == 0;
    const bool last = l + 1 == depth;

    // Every hidden layer is the members' widths side by side, while the network's inputs and outputs stay.
    std::size_t inputs = 0, outputs = 0;
    for (const Mlp& member : members) {
      inputs += member.layers[l].inputs;
      outputs += member.layers[l].outputs;
    }
    DenseLayer layer;
    layer.inputs = first ? shape.inputs : inputs;
    layer.outputs = last ? shape.outputs : outputs;
    layer.activation = shape.activation;
    layer.weight.assign(layer.outputs * layer.inputs, 0.0f);
    layer.bias.assign(layer.outputs, 0.0f);

    // Each member's block starts at its offset among the stacked inputs and outputs.
    std::size_t input_offset = 0, output_offset = 0;
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
  merged.validate();
  return merged;
}

}  // namespace lepton
