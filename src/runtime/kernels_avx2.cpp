// AVX2 kernels. Compiled with "-mavx2 -mfma -ffp-contract=off" and called only after CPU detection
// confirms AVX2 and FMA. The blocking follows kernels_avx512.cpp with 8-lane registers: up to 2 rows and
// 2 blocks of 16 outputs per tile, which keeps the 8 accumulators and 4 weight vectors within the 16
// registers that AVX2 has.

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/kernels.hpp"

namespace lepton::detail {

namespace {

constexpr std::size_t kRowBlock = 2;
constexpr std::size_t kMaxBlocks = 2;
// Registers of 8 lanes per block of 16 outputs.
constexpr std::size_t kHalves = 2;

template <std::size_t Rows, std::size_t Blocks>
void dense_f32_tile(const PackedF32Layer& layer, const float* x, std::size_t x_stride, float* y,
                    std::size_t y_stride, std::size_t first_output) {
  constexpr std::size_t kVectors = Blocks * kHalves;
  const std::size_t padded = layer.padded_outputs;
  const float* weight = layer.weight.data() + first_output;

  __m256 acc[Rows][kVectors];
  for (std::size_t v = 0; v < kVectors; ++v) {
    const __m256 bias = _mm256_loadu_ps(layer.bias.data() + first_output + 8 * v);
    for (std::size_t r = 0; r < Rows; ++r) {
      acc[r][v] = bias;
    }
  }

  for (std::size_t k = 0; k < layer.inputs; ++k) {
    __m256 w[kVectors];
    for (std::size_t v = 0; v < kVectors; ++v) {
      w[v] = _mm256_loadu_ps(weight + k * padded + 8 * v);
    }
    for (std::size_t r = 0; r < Rows; ++r) {
      const __m256 value = _mm256_broadcast_ss(x + r * x_stride + k);
      for (std::size_t v = 0; v < kVectors; ++v) {
        acc[r][v] = _mm256_fmadd_ps(value, w[v], acc[r][v]);
      }
    }
  }

  const __m256 zero = _mm256_setzero_ps();
  for (std::size_t r = 0; r < Rows; ++r) {
    for (std::size_t v = 0; v < kVectors; ++v) {
      // max(zero, v) returns v when v is NaN, like std::max(v, 0.0f) in the scalar kernel.
      const __m256 out = layer.relu ? _mm256_max_ps(zero, acc[r][v]) : acc[r][v];
      _mm256_storeu_ps(y + r * y_stride + first_output + 8 * v, out);
    }
  }
}

template <std::size_t Rows>
void dense_f32_rows(const PackedF32Layer& layer, const float* x, std::size_t x_stride, float* y,
                    std::size_t y_stride) {
  const std::size_t blocks = layer.padded_outputs / kOutputBlock;
  std::size_t b = 0;
  for (; b + kMaxBlocks <= blocks; b += kMaxBlocks) {
    dense_f32_tile<Rows, 2>(layer, x, x_stride, y, y_stride, 16 * b);
  }
  if (b < blocks) {
    dense_f32_tile<Rows, 1>(layer, x, x_stride, y, y_stride, 16 * b);
  }
}

void dense_f32(const PackedF32Layer& layer, const float* x, std::size_t x_stride, std::size_t rows, float* y,
               std::size_t y_stride) {
  std::size_t r = 0;
  for (; r + kRowBlock <= rows; r += kRowBlock) {
    dense_f32_rows<2>(layer, x + r * x_stride, x_stride, y + r * y_stride, y_stride);
  }
  for (; r < rows; ++r) {
    dense_f32_rows<1>(layer, x + r * x_stride, x_stride, y + r * y_stride, y_stride);
  }
}

float max_abs(const float* row, std::size_t cols) {
  const __m256 sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 running = _mm256_setzero_ps();
  std::size_t c = 0;
  for (; c + 8 <= cols; c += 8) {
    running = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(row + c), sign_mask), running);
  }

  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, running);
  float result = 0.0f;
  for (const float lane : lanes) {
    result = std::max(result, lane);
  }
  for (; c < cols; ++c) {
    result = std::max(result, std::fabs(row[c]));
  }
  return result;
}

void quantize_rows(const float* x, std::size_t x_stride, std::size_t cols, std::size_t padded_cols,
                   std::size_t rows, float static_scale, std::int8_t* q, float* row_scale) {
  const __m256 upper = _mm256_set1_ps(static_cast<float>(kInt8Max));
  const __m256 lower = _mm256_set1_ps(-static_cast<float>(kInt8Max));
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * x_stride;
    std::int8_t* out = q + r * padded_cols;

    const float scale = static_scale > 0.0f ? static_scale : max_abs(row, cols) / static_cast<float>(kInt8Max);
    row_scale[r] = scale;
    const float inverse_value = scale > 0.0f ? 1.0f / scale : 0.0f;
    const __m256 inverse = _mm256_set1_ps(inverse_value);

    std::size_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      __m256 scaled = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(row + c), inverse),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      scaled = _mm256_min_ps(_mm256_max_ps(scaled, lower), upper);
      alignas(32) std::int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_cvtps_epi32(scaled));
      for (std::size_t j = 0; j < 8; ++j) {
        out[c + j] = static_cast<std::int8_t>(lanes[j]);
      }
    }
    for (; c < cols; ++c) {
      const float scaled = std::nearbyint(row[c] * inverse_value);
      out[c] = static_cast<std::int8_t>(std::min(std::max(scaled, -127.0f), 127.0f));
    }
    std::memset(out + cols, 0, padded_cols - cols);
  }
}

template <std::size_t Rows, std::size_t Blocks>
void dense_i8_tile(const PackedI8Layer& layer, const std::int8_t* q, std::size_t q_stride, const float* row_scale,
                   float* y, std::size_t y_stride, std::size_t first_output) {
  constexpr std::size_t kVectors = Blocks * kHalves;
  const std::size_t padded = layer.padded_outputs;
  const std::size_t groups = layer.padded_inputs / kInputGroup;
  const std::int8_t* weight = layer.weight.data() + first_output * kInputGroup;
  const __m256i ones = _mm256_set1_epi16(1);

  __m256i acc[Rows][kVectors];
  for (std::size_t r = 0; r < Rows; ++r) {
    for (std::size_t v = 0; v < kVectors; ++v) {
      acc[r][v] = _mm256_setzero_si256();
    }
  }

  for (std::size_t g = 0; g < groups; ++g) {
    __m256i w[kVectors];
    for (std::size_t v = 0; v < kVectors; ++v) {
      w[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(weight + (g * padded + 8 * v) * kInputGroup));
    }
    for (std::size_t r = 0; r < Rows; ++r) {
      std::int32_t packed = 0;
      std::memcpy(&packed, q + r * q_stride + g * kInputGroup, sizeof packed);
      const __m256i value = _mm256_set1_epi32(packed);
      // maddubs needs an unsigned operand: |x| times sign(x) * w equals x * w. Neither operand reaches 128
      // in magnitude, so the pairwise 16-bit sums stay below 32768 and do not saturate.
      const __m256i magnitude = _mm256_abs_epi8(value);
      for (std::size_t v = 0; v < kVectors; ++v) {
        const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(w[v], value));
        acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(pairs, ones));
      }
    }
  }

  const __m256 zero = _mm256_setzero_ps();
  for (std::size_t v = 0; v < kVectors; ++v) {
    const std::size_t o = first_output + 8 * v;
    const __m256 weight_scale = _mm256_loadu_ps(layer.weight_scale.data() + o);
    const __m256 bias = _mm256_loadu_ps(layer.bias.data() + o);
    for (std::size_t r = 0; r < Rows; ++r) {
      const __m256 sums = _mm256_cvtepi32_ps(acc[r][v]);
      const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(row_scale[r]), weight_scale);
      const __m256 value = _mm256_add_ps(_mm256_mul_ps(sums, scale), bias);
      _mm256_storeu_ps(y + r * y_stride + o, layer.relu ? _mm256_max_ps(zero, value) : value);
    }
  }
}

template <std::size_t Rows>
void dense_i8_rows(const PackedI8Layer& layer, const std::int8_t* q, std::size_t q_stride, const float* row_scale,
                   float* y, std::size_t y_stride) {
  const std::size_t blocks = layer.padded_outputs / kOutputBlock;
  std::size_t b = 0;
  for (; b + kMaxBlocks <= blocks; b += kMaxBlocks) {
    dense_i8_tile<Rows, 2>(layer, q, q_stride, row_scale, y, y_stride, 16 * b);
  }
  if (b < blocks) {
    dense_i8_tile<Rows, 1>(layer, q, q_stride, row_scale, y, y_stride, 16 * b);
  }
}

void dense_i8(const PackedI8Layer& layer, const std::int8_t* q, std::size_t q_stride, const float* row_scale,
              std::size_t rows, float* y, std::size_t y_stride) {
  std::size_t r = 0;
  for (; r + kRowBlock <= rows; r += kRowBlock) {
    dense_i8_rows<2>(layer, q + r * q_stride, q_stride, row_scale + r, y + r * y_stride, y_stride);
  }
  for (; r < rows; ++r) {
    dense_i8_rows<1>(layer, q + r * q_stride, q_stride, row_scale + r, y + r * y_stride, y_stride);
  }
}

}  // namespace

const KernelTable& avx2_kernels() {
  static const KernelTable table{SimdLevel::Avx2, dense_f32, quantize_rows, dense_i8};
  return table;
}

}  // namespace lepton::detail
