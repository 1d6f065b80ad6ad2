// Packing of dense layers into the kernel layouts of kernels.hpp. Compiled with the default flags.

#include "runtime/kernels.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "lepton/error.hpp"

namespace lepton::detail {

std::size_t round_up(std::size_t value, std::size_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

PackedF32Layer pack_f32(const DenseLayer& layer) {
  PackedF32Layer packed;
  packed.inputs = layer.inputs;
  packed.outputs = layer.outputs;
  packed.padded_outputs = round_up(layer.outputs, kOutputBlock);
  packed.relu = layer.activation == Activation::Relu;

  packed.weight.assign(layer.inputs * packed.padded_outputs, 0.0f);
  for (std::size_t o = 0; o < layer.outputs; ++o) {
    for (std::size_t k = 0; k < layer.inputs; ++k) {
      packed.weight[k * packed.padded_outputs + o] = layer.weight[o * layer.inputs + k];
    }
  }

  packed.bias.assign(packed.padded_outputs, 0.0f);
  std::copy(layer.bias.begin(), layer.bias.end(), packed.bias.begin());
  return packed;
}

PackedI8Layer pack_i8(const DenseLayer& layer) {
  const QuantizedWeights& quantized = layer.quantized;
  if (quantized.values.size() != layer.outputs * layer.inputs || quantized.scales.size() != layer.outputs) {
    throw InternalError(fmt::format("pack_i8: layer of {} x {} has {} int8 weights and {} scales", layer.outputs,
                                    layer.inputs, quantized.values.size(), quantized.scales.size()));
  }

  // The VNNI kernel sums (q + 128) x Wq in int32: at most 255 x 127 per input.
  constexpr std::size_t kMaxInputs = static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()) / (255 * 127);
  if (layer.inputs > kMaxInputs) {
    throw InvalidArgument(fmt::format("int8 layer has {} inputs, but int32 accumulation allows at most {}; keep "
                                      "this layer in f32",
                                      layer.inputs, kMaxInputs));
  }

  PackedI8Layer packed;
  packed.inputs = layer.inputs;
  packed.outputs = layer.outputs;
  packed.padded_inputs = round_up(layer.inputs, kInputGroup);
  packed.padded_outputs = round_up(layer.outputs, kOutputBlock);
  packed.input_scale = quantized.input_scale;
  packed.relu = layer.activation == Activation::Relu;

  packed.weight.assign(packed.padded_inputs * packed.padded_outputs, std::int8_t{0});
  packed.offset_correction.assign(packed.padded_outputs, 0);
  for (std::size_t o = 0; o < layer.outputs; ++o) {
    std::int32_t sum = 0;
    for (std::size_t k = 0; k < layer.inputs; ++k) {
      const std::int8_t value = quantized.values[o * layer.inputs + k];
      const std::size_t group = k / kInputGroup;
      packed.weight[(group * packed.padded_outputs + o) * kInputGroup + k % kInputGroup] = value;
      sum += value;
    }
    packed.offset_correction[o] = 128 * sum;
  }

  packed.weight_scale.assign(packed.padded_outputs, 0.0f);
  std::copy(quantized.scales.begin(), quantized.scales.end(), packed.weight_scale.begin());
  packed.bias.assign(packed.padded_outputs, 0.0f);
  std::copy(layer.bias.begin(), layer.bias.end(), packed.bias.begin());
  return packed;
}

bool parse_simd_level(const char* text, SimdLevel& level) {
  const std::string name = text == nullptr ? "" : text;
  for (const SimdLevel candidate : {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512}) {
    if (name == to_string(candidate)) {
      level = candidate;
      return true;
    }
  }
  return false;
}

}  // namespace lepton::detail
