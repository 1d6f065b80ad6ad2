// Detection, packing and evaluation of block-diagonal f32 and int8 layers (see block_diagonal.hpp).

#include "runtime/block_diagonal.hpp"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "lepton/error.hpp"

namespace lepton::detail {

namespace {

// A NaN weight compares unequal to 0, so it counts as nonzero.
std::vector<RowSpan> nonzero_spans(const DenseLayer& layer) {
  return row_spans(layer.weight.data(), layer.outputs, layer.inputs, [](float weight) { return weight != 0.0f; });
}

// Multiply-adds per row that the kernels perform, padding included, when the layer runs in `blocks` parts.
std::size_t padded_work(std::size_t inputs, std::size_t outputs, std::size_t blocks) {
  return inputs * round_up(outputs / blocks, kOutputBlock);
}

DenseLayer diagonal_block(const DenseLayer& layer, std::size_t blocks, std::size_t block) {
  DenseLayer part;
  part.inputs = layer.inputs / blocks;
  part.outputs = layer.outputs / blocks;
  part.activation = layer.activation;
  part.weight.resize(part.outputs * part.inputs);
  for (std::size_t o = 0; o < part.outputs; ++o) {
    const float* row = layer.weight.data() + (block * part.outputs + o) * layer.inputs + block * part.inputs;
    std::copy(row, row + part.inputs, part.weight.begin() + static_cast<std::ptrdiff_t>(o * part.inputs));
  }

  const auto bias = layer.bias.begin() + static_cast<std::ptrdiff_t>(block * part.outputs);
  part.bias.assign(bias, bias + static_cast<std::ptrdiff_t>(part.outputs));
  return part;
}

// Returns the int8 block: diagonal_block's f32 slice plus the same slice of the quantized weights and scales.
DenseLayer diagonal_i8_block(const DenseLayer& layer, std::size_t blocks, std::size_t block) {
  DenseLayer part = diagonal_block(layer, blocks, block);
  part.precision = LayerPrecision::Int8;
  part.quantized.input_scale = layer.quantized.input_scale;
  part.quantized.values.resize(part.outputs * part.inputs);
  for (std::size_t o = 0; o < part.outputs; ++o) {
    const std::int8_t* row =
        layer.quantized.values.data() + (block * part.outputs + o) * layer.inputs + block * part.inputs;
    std::copy(row, row + part.inputs, part.quantized.values.begin() + static_cast<std::ptrdiff_t>(o * part.inputs));
  }

  const auto scales = layer.quantized.scales.begin() + static_cast<std::ptrdiff_t>(block * part.outputs);
  part.quantized.scales.assign(scales, scales + static_cast<std::ptrdiff_t>(part.outputs));
  return part;
}

// Returns the output stride of a layer whose last part, starting at column (blocks - 1) x block_outputs, writes
// `last_padded` outputs.
std::size_t blocked_output_stride(std::size_t blocks, std::size_t block_outputs, std::size_t last_padded) {
  return round_up((blocks - 1) * block_outputs + last_padded, kOutputBlock);
}

}  // namespace

bool spans_fit_blocks(const std::vector<RowSpan>& spans, std::size_t inputs, std::size_t outputs,
                      std::size_t blocks) {
  const std::size_t block_inputs = inputs / blocks;
  const std::size_t block_outputs = outputs / blocks;
  for (std::size_t o = 0; o < spans.size(); ++o) {
    if (spans[o].end == 0) {
      continue;
    }
    const std::size_t block = o / block_outputs;
    if (spans[o].first < block * block_inputs || spans[o].end > (block + 1) * block_inputs) {
      return false;
    }
  }
  return true;
}

std::size_t find_diagonal_blocks(const DenseLayer& layer) {
  if (layer.inputs == 0 || layer.outputs == 0 || layer.weight.size() != layer.inputs * layer.outputs) {
    return 1;
  }

  const std::vector<RowSpan> spans = nonzero_spans(layer);
  const std::size_t common = std::gcd(layer.inputs, layer.outputs);
  std::size_t best = 1;
  std::size_t best_work = padded_work(layer.inputs, layer.outputs, 1);
  for (std::size_t blocks = 2; blocks <= common; ++blocks) {
    if (common % blocks != 0) {
      continue;
    }
    const std::size_t work = padded_work(layer.inputs, layer.outputs, blocks);
    if (work < best_work && spans_fit_blocks(spans, layer.inputs, layer.outputs, blocks)) {
      best = blocks;
      best_work = work;
    }
  }
  return best;
}

BlockedF32Layer pack_blocked_f32(const DenseLayer& layer, std::size_t blocks) {
  if (blocks == 0 || layer.inputs % blocks != 0 || layer.outputs % blocks != 0) {
    throw InternalError(fmt::format("pack_blocked_f32: {} blocks do not divide a layer of {} x {}", blocks,
                                    layer.outputs, layer.inputs));
  }
  if (!spans_fit_blocks(nonzero_spans(layer), layer.inputs, layer.outputs, blocks)) {
    throw InternalError(fmt::format("pack_blocked_f32: the {} x {} layer has a nonzero weight outside its {} "
                                    "diagonal blocks",
                                    layer.outputs, layer.inputs, blocks));
  }

  BlockedF32Layer packed;
  packed.inputs = layer.inputs;
  packed.outputs = layer.outputs;
  packed.block_inputs = layer.inputs / blocks;
  packed.block_outputs = layer.outputs / blocks;
  if (blocks == 1) {
    packed.parts.push_back(pack_f32(layer));
  } else {
    for (std::size_t block = 0; block < blocks; ++block) {
      packed.parts.push_back(pack_f32(diagonal_block(layer, blocks, block)));
    }
  }

  packed.output_stride = blocked_output_stride(blocks, packed.block_outputs, packed.parts.back().padded_outputs);
  return packed;
}

BlockedF32Layer pack_blocked_f32(const DenseLayer& layer) {
  return pack_blocked_f32(layer, find_diagonal_blocks(layer));
}

void run_blocked_f32(const KernelTable& kernels, const BlockedF32Layer& layer, const float* x,
                     std::size_t x_stride, std::size_t rows, float* y, std::size_t y_stride) {
  if (y_stride < layer.output_stride) {
    throw InternalError(fmt::format("run_blocked_f32: output stride {} is below the layer's {}", y_stride,
                                    layer.output_stride));
  }

  // Increasing order: part g's padding lands in columns that parts g + 1, g + 2 and so on overwrite.
  for (std::size_t block = 0; block < layer.parts.size(); ++block) {
    kernels.dense_f32(layer.parts[block], x + block * layer.block_inputs, x_stride, rows,
                      y + block * layer.block_outputs, y_stride);
  }
}

BlockedI8Layer pack_blocked_i8(const DenseLayer& layer) {
  std::size_t blocks = find_diagonal_blocks(layer);
  // A part reads its quantized columns in groups of kInputGroup bytes, so its first column must start a group.
  if ((layer.inputs / blocks) % kInputGroup != 0) {
    blocks = 1;
  }

  BlockedI8Layer packed;
  packed.inputs = layer.inputs;
  packed.outputs = layer.outputs;
  packed.padded_inputs = round_up(layer.inputs, kInputGroup);
  packed.block_inputs = layer.inputs / blocks;
  packed.block_outputs = layer.outputs / blocks;
  packed.input_scale = layer.quantized.input_scale;
  if (blocks == 1) {
    packed.parts.push_back(pack_i8(layer));
  } else {
    for (std::size_t block = 0; block < blocks; ++block) {
      packed.parts.push_back(pack_i8(diagonal_i8_block(layer, blocks, block)));
    }
  }

  packed.output_stride = blocked_output_stride(blocks, packed.block_outputs, packed.parts.back().padded_outputs);
  return packed;
}

void run_blocked_i8(const KernelTable& kernels, const BlockedI8Layer& layer, const std::int8_t* q,
                    const float* row_scale, std::size_t rows, float* y, std::size_t y_stride) {
  if (y_stride < layer.output_stride) {
    throw InternalError(fmt::format("run_blocked_i8: output stride {} is below the layer's {}", y_stride,
                                    layer.output_stride));
  }

  // Increasing order, as in run_blocked_f32: a part's padding lands in columns that later parts overwrite.
  for (std::size_t block = 0; block < layer.parts.size(); ++block) {
    kernels.dense_i8(layer.parts[block], q + block * layer.block_inputs, layer.padded_inputs, row_scale, rows,
                     y + block * layer.block_outputs, y_stride);
  }
}

}  // namespace lepton::detail
