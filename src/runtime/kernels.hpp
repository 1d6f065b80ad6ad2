#pragma once
// Dense-layer kernels of the predictor: packed weight layouts and one kernel table per instruction set.
// Not installed. kernels_scalar.cpp, kernels_avx2.cpp and kernels_avx512.cpp each fill one table and are
// compiled with their own flags, so none of them may include Eigen or any other header-only numeric code
// whose inline functions would then differ between translation units (an ODR violation).
// NOTE: the AVX files still use std::min, std::max and std::memcpy. Release builds inline them, but an
// out-of-line copy compiled with AVX flags could be picked by the linker for other files, which would
// fault on a CPU without AVX. Replacing them with local helpers in an anonymous namespace would remove that risk.
//
// Per-row arithmetic contract: every kernel computes each row alone, in a fixed order that depends only on
// the layer's shape, never on how many rows a call carries. A row therefore gets bit-identical outputs
// whether it is predicted alone or inside any batch, on one SIMD level.
//   f32: acc = bias[o]; for k in 0..inputs: acc = acc + x[k] * W[o][k]. The AVX2 and AVX-512 kernels round
//        each step once (fused multiply-add), so they agree bit for bit. The scalar kernel rounds the
//        product and the sum separately, so it differs from them in the last bits (see kF32KernelTolerance).
//   i8:  acc = sum_k q[k] * Wq[o][k] in int32, which is exact on every level. Then
//        y = float(acc) * (row_scale * weight_scale[o]) + bias[o], as three separately rounded operations,
//        so every level produces the same bits.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lepton/predictor.hpp"

namespace lepton::detail {

/// Output padding of every packed layer: one AVX-512 register of 32-bit lanes.
inline constexpr std::size_t kOutputBlock = 16;
/// Input padding of int8 layers: the 4 bytes that one VNNI dot-product lane consumes.
inline constexpr std::size_t kInputGroup = 4;
/// Largest magnitude of a quantized weight or activation. -128 is excluded, so that |q| fits in 7 bits and
/// the AVX2 kernel's pairwise 16-bit sums (at most 2 x 127 x 127 = 32258) never saturate.
inline constexpr int kInt8Max = 127;

/// Worst relative difference, per output, between the scalar f32 kernel and the FMA kernels: the scalar
/// kernel rounds twice per step, so over K steps the gap grows like K x 2^-24 of the largest partial sum.
/// 1e-5 covers K up to several hundred inputs of mixed sign in the kernel tests.
inline constexpr float kF32KernelTolerance = 1e-5f;

std::size_t round_up(std::size_t value, std::size_t multiple);

/// An f32 layer, transposed for kernels that broadcast one input and update a block of outputs.
struct PackedF32Layer {
  std::size_t inputs = 0;
  std::size_t outputs = 0;
  std::size_t padded_outputs = 0;  ///< round_up(outputs, kOutputBlock).
  std::vector<float> weight;       ///< inputs x padded_outputs: weight[k * padded_outputs + o] = W[o][k], 0 in padding.
  std::vector<float> bias;         ///< padded_outputs, 0 in padding.
  bool relu = false;               ///< Apply max(y, 0) in the kernel. Other activations run after it.
};

/// An int8 layer with symmetric per-output-channel weight scales.
struct PackedI8Layer {
  std::size_t inputs = 0;
  std::size_t outputs = 0;
  std::size_t padded_inputs = 0;   ///< round_up(inputs, kInputGroup).
  std::size_t padded_outputs = 0;  ///< round_up(outputs, kOutputBlock).
  /// (padded_inputs / 4) x padded_outputs x 4: weight[(g * padded_outputs + o) * 4 + j] = Wq[o][4g + j].
  std::vector<std::int8_t> weight;
  std::vector<std::int32_t> offset_correction;  ///< padded_outputs: 128 x sum_k Wq[o][k], for unsigned inputs.
  std::vector<float> weight_scale;  ///< padded_outputs, 0 in padding. W[o][k] ~ Wq[o][k] * weight_scale[o].
  std::vector<float> bias;          ///< padded_outputs, 0 in padding.
  float input_scale = 0;            ///< Static activation scale; 0 means one scale per row at run time.
  bool relu = false;
};

PackedF32Layer pack_f32(const DenseLayer& layer);
PackedI8Layer pack_i8(const DenseLayer& layer);

/// The kernels of one instruction set. Matrices are row-major with the given row strides, in elements.
struct KernelTable {
  SimdLevel level = SimdLevel::Scalar;

  /// y[r][0, padded_outputs) = act(bias + W x[r]) for r < rows. x rows need `inputs` readable floats.
  void (*dense_f32)(const PackedF32Layer& layer, const float* x, std::size_t x_stride, std::size_t rows,
                    float* y, std::size_t y_stride) = nullptr;

  /// Quantizes x[r][0, cols) to q[r][0, padded_cols), zero-filling columns cols..padded_cols, and stores the
  /// dequantization scale of each row. static_scale > 0 uses that scale and clamps; 0 uses max|x[r]| / 127.
  void (*quantize_rows)(const float* x, std::size_t x_stride, std::size_t cols, std::size_t padded_cols,
                        std::size_t rows, float static_scale, std::int8_t* q, float* row_scale) = nullptr;

  /// y[r][0, padded_outputs) = act(dequantized(Wq q[r]) + bias). q rows start q_stride bytes apart and
  /// need padded_inputs readable bytes, so that a block-diagonal layer's parts can read column slices.
  void (*dense_i8)(const PackedI8Layer& layer, const std::int8_t* q, std::size_t q_stride, const float* row_scale,
                   std::size_t rows, float* y, std::size_t y_stride) = nullptr;
};

const KernelTable& scalar_kernels();
/// Compiled with -mavx2 -mfma. Call only when the CPU has AVX2 and FMA.
const KernelTable& avx2_kernels();
/// Compiled with AVX-512 F, BW, VL and VNNI. Call only when the CPU has all four.
const KernelTable& avx512_kernels();

/// The table for a level. Throws InvalidArgument when the CPU lacks the level.
const KernelTable& kernels_for(SimdLevel level);

/// Parses LEPTON_SIMD-style names: "scalar", "avx2", "avx512". Returns false for anything else.
bool parse_simd_level(const char* text, SimdLevel& level);

}  // namespace lepton::detail
