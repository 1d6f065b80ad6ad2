#pragma once
// Block-diagonal f32 and int8 layers for the predictor and the explainers' fast path. Not installed.
//
// merge_mean_output (lepton::train) places K cross-fitted members side by side, so every hidden layer after
// the first is block-diagonal: K blocks on the diagonal and exact zeros elsewhere. Running such a layer as
// K small dense layers on column slices skips the zeros and does 1/K of the multiply-adds.
//
// Arithmetic: block g computes output o as bias[o] + sum over its own inputs of x[k] * W[o][k], in the same
// order and with the same kernel as the dense layer. The dense layer also adds x[k] * 0 for every input
// outside the block, which leaves a nonzero float sum unchanged. So the blocked result equals the dense
// result bit for bit, with two exceptions: a sum that is exactly zero may differ in the sign of zero,
// and an infinite or NaN input of one block makes 0 x inf = NaN in every dense output but only in its own
// block's outputs here.
//
// Int8 parts all read one quantized input row, quantized with one scale per row as for the dense layer. Their
// int32 sums then equal the dense sums exactly, so blocked int8 results equal dense int8 results bit for bit.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lepton/model.hpp"
#include "runtime/kernels.hpp"

namespace lepton::detail {

/// Columns [first, end) of one weight row that contain every weight a test keeps. A row without one has
/// end == 0.
struct RowSpan {
  std::size_t first = 0;
  std::size_t end = 0;
};

/// The span of each row of the row-major [outputs, inputs] matrix `weights`, keeping the weights for which
/// `keep(weight)` is true.
template <typename Weight, typename Keep>
std::vector<RowSpan> row_spans(const Weight* weights, std::size_t outputs, std::size_t inputs, Keep keep) {
  std::vector<RowSpan> spans(outputs, RowSpan{inputs, 0});
  for (std::size_t o = 0; o < outputs; ++o) {
    for (std::size_t k = 0; k < inputs; ++k) {
      if (keep(weights[o * inputs + k])) {
        spans[o].first = std::min(spans[o].first, k);
        spans[o].end = k + 1;
      }
    }
  }
  return spans;
}

/// True when every row's span lies inside the inputs of its own block, for `blocks` equal diagonal blocks of
/// an [outputs, inputs] matrix. `blocks` divides both sizes.
bool spans_fit_blocks(const std::vector<RowSpan>& spans, std::size_t inputs, std::size_t outputs,
                      std::size_t blocks);

/// An f32 layer packed as one dense part, or as G > 1 parts when its weight matrix is block-diagonal.
/// Part g maps inputs [g * block_inputs, (g + 1) * block_inputs) to outputs [g * block_outputs,
/// (g + 1) * block_outputs).
struct BlockedF32Layer {
  std::size_t inputs = 0;
  std::size_t outputs = 0;
  std::size_t block_inputs = 0;   ///< inputs / parts.size().
  std::size_t block_outputs = 0;  ///< outputs / parts.size().
  /// Smallest row stride, in floats, of an output buffer. It is larger than round_up(outputs, kOutputBlock)
  /// when the last part's padded outputs reach past the layer's outputs.
  std::size_t output_stride = 0;
  std::vector<PackedF32Layer> parts;
};

/// Returns the number of equal diagonal blocks G in which to run the layer's f32 weight matrix. G divides
/// inputs and outputs, and every weight outside the G diagonal blocks equals 0.0f (or -0.0f). Among such G,
/// it returns the one with the fewest padded multiply-adds, inputs x round_up(outputs / G, kOutputBlock), and
/// the smaller G on a tie, because it needs fewer kernel calls. Returns 1 when no G > 1 does less work than
/// the dense layer.
std::size_t find_diagonal_blocks(const DenseLayer& layer);

/// Packs `layer` in `blocks` parts. Throws InternalError when `blocks` does not divide the layer's inputs
/// and outputs or a weight outside the diagonal blocks is not zero.
BlockedF32Layer pack_blocked_f32(const DenseLayer& layer, std::size_t blocks);

/// Packs `layer` with find_diagonal_blocks(layer) parts.
BlockedF32Layer pack_blocked_f32(const DenseLayer& layer);

/// y[r][0, outputs) = act(W x[r] + bias) for r < rows, with one kernel call per part. x rows need `inputs`
/// readable floats. y_stride must be at least layer.output_stride. Columns [outputs, output_stride) of y
/// receive kernel padding.
/// Part g's kernel writes padded outputs, which reach into the columns of parts g + 1, g + 2 and so on.
/// The parts therefore run in increasing order, so that every later part overwrites that padding with its
/// own results.
void run_blocked_f32(const KernelTable& kernels, const BlockedF32Layer& layer, const float* x,
                     std::size_t x_stride, std::size_t rows, float* y, std::size_t y_stride);

/// An int8 layer packed as one dense part, or as G > 1 parts when its weight matrix is block-diagonal and each
/// block's first input falls on a kInputGroup boundary of the quantized row. Part g maps quantized columns
/// [g * block_inputs, (g + 1) * block_inputs) to outputs [g * block_outputs, (g + 1) * block_outputs).
struct BlockedI8Layer {
  std::size_t inputs = 0;
  std::size_t outputs = 0;
  std::size_t padded_inputs = 0;  ///< round_up(inputs, kInputGroup): the quantized row's length and stride.
  std::size_t block_inputs = 0;   ///< inputs / parts.size().
  std::size_t block_outputs = 0;  ///< outputs / parts.size().
  std::size_t output_stride = 0;  ///< As BlockedF32Layer::output_stride.
  float input_scale = 0;          ///< Static activation scale of the whole input row; 0 means one scale per row.
  std::vector<PackedI8Layer> parts;
};

/// Packs the int8 `layer` (its quantized weights, with `weight` holding their dequantized values) in
/// find_diagonal_blocks(layer) parts, or in one part when the blocks' inputs do not start on a kInputGroup
/// boundary.
BlockedI8Layer pack_blocked_i8(const DenseLayer& layer);

/// y[r][0, outputs) = act(dequantized(Wq q[r]) + bias) for r < rows, with one kernel call per part. q rows
/// are layer.padded_inputs bytes long, quantized by KernelTable::quantize_rows. y_stride must be at least
/// layer.output_stride. The parts run in increasing order, as in run_blocked_f32.
void run_blocked_i8(const KernelTable& kernels, const BlockedI8Layer& layer, const std::int8_t* q,
                    const float* row_scale, std::size_t rows, float* y, std::size_t y_stride);

}  // namespace lepton::detail
