// AVX-512 kernels (F, BW, VL and VNNI). Compiled with "-mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma
// -ffp-contract=off" and called only after CPU detection confirms those extensions.
//
// Both dense kernels broadcast one input of each row and update blocks of 16 outputs, for up to 4 rows
// and 4 blocks at a time. The blocking shares weight loads between rows but never changes the order in
// which one row's sums are formed, which is what keeps single-row and batch results bit-identical.

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "runtime/kernels.hpp"

namespace lepton::detail {

namespace {

constexpr std::size_t kRowBlock = 4;
constexpr std::size_t kMaxBlocks = 4;

template <std::size_t Rows, std::size_t Blocks>
void dense_f32_tile(const PackedF32Layer& layer, const float* x, std::size_t x_stride, float* y,
                    std::size_t y_stride, std::size_t first_output) {
  const std::size_t padded = layer.padded_outputs;
  const float* weight = layer.weight.data() + first_output;

  __m512 acc[Rows][Blocks];
  for (std::size_t b = 0; b < Blocks; ++b) {
    const __m512 bias = _mm512_loadu_ps(layer.bias.data() + first_output + 16 * b);
    for (std::size_t r = 0; r < Rows; ++r) {
      acc[r][b] = bias;
    }
  }

  for (std::size_t k = 0; k < layer.inputs; ++k) {
    __m512 w[Blocks];
    for (std::size_t b = 0; b < Blocks; ++b) {
      w[b] = _mm512_loadu_ps(weight + k * padded + 16 * b);
    }
    for (std::size_t r = 0; r < Rows; ++r) {
      const __m512 value = _mm512_set1_ps(x[r * x_stride + k]);
      for (std::size_t b = 0; b < Blocks; ++b) {
        acc[r][b] = _mm512_fmadd_ps(value, w[b], acc[r][b]);
      }
    }
  }

  const __m512 zero = _mm512_setzero_ps();
  for (std::size_t r = 0; r < Rows; ++r) {
    for (std::size_t b = 0; b < Blocks; ++b) {
      // max(zero, v) returns v when v is NaN, like std::max(v, 0.0f) in the scalar kernel.
      const __m512 out = layer.relu ? _mm512_max_ps(zero, acc[r][b]) : acc[r][b];
      _mm512_storeu_ps(y + r * y_stride + first_output + 16 * b, out);
    }
  }
}

template <std::size_t Rows>
void dense_f32_rows(const PackedF32Layer& layer, const float* x, std::size_t x_stride, float* y,
                    std::size_t y_stride) {
  const std::size_t blocks = layer.padded_outputs / kOutputBlock;
  std::size_t b = 0;
  for (; b + kMaxBlocks <= blocks; b += kMaxBlocks) {
    dense_f32_tile<Rows, 4>(layer, x, x_stride, y, y_stride, 16 * b);
  }
  switch (blocks - b) {
    case 3: dense_f32_tile<Rows, 3>(layer, x, x_stride, y, y_stride, 16 * b); break;
    case 2: dense_f32_tile<Rows, 2>(layer, x, x_stride, y, y_stride, 16 * b); break;
    case 1: dense_f32_tile<Rows, 1>(layer, x, x_stride, y, y_stride, 16 * b); break;
    default: break;
  }
}

void dense_f32(const PackedF32Layer& layer, const float* x, std::size_t x_stride, std::size_t rows, float* y,
               std::size_t y_stride) {
  std::size_t r = 0;
  for (; r + kRowBlock <= rows; r += kRowBlock) {
    dense_f32_rows<4>(layer, x + r * x_stride, x_stride, y + r * y_stride, y_stride);
  }
  for (; r < rows; ++r) {
    dense_f32_rows<1>(layer, x + r * x_stride, x_stride, y + r * y_stride, y_stride);
  }
}

float max_abs(const float* row, std::size_t cols) {
  __m512 running = _mm512_setzero_ps();
  std::size_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    const __m512 magnitude = _mm512_abs_ps(_mm512_loadu_ps(row + c));
    running = _mm512_max_ps(magnitude, running);
  }
  if (c < cols) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (cols - c)) - 1u);
    const __m512 magnitude = _mm512_abs_ps(_mm512_maskz_loadu_ps(mask, row + c));
    running = _mm512_max_ps(magnitude, running);
  }
  // Maximum is exact and order-free, so this reduction matches the scalar loop.
  return _mm512_reduce_max_ps(running);
}

void quantize_rows(const float* x, std::size_t x_stride, std::size_t cols, std::size_t padded_cols,
                   std::size_t rows, float static_scale, std::int8_t* q, float* row_scale) {
  const __m512 upper = _mm512_set1_ps(static_cast<float>(kInt8Max));
  const __m512 lower = _mm512_set1_ps(-static_cast<float>(kInt8Max));
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * x_stride;
    std::int8_t* out = q + r * padded_cols;

    const float scale = static_scale > 0.0f ? static_scale : max_abs(row, cols) / static_cast<float>(kInt8Max);
    row_scale[r] = scale;
    const __m512 inverse = _mm512_set1_ps(scale > 0.0f ? 1.0f / scale : 0.0f);

    for (std::size_t c = 0; c < cols; c += 16) {
      const std::size_t count = std::min<std::size_t>(16, cols - c);
      const __mmask16 mask = static_cast<__mmask16>(count == 16 ? 0xFFFFu : (1u << count) - 1u);
      __m512 scaled = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, row + c), inverse);
      scaled = _mm512_roundscale_ps(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      scaled = _mm512_min_ps(_mm512_max_ps(scaled, lower), upper);
      _mm_mask_storeu_epi8(out + c, mask, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(scaled)));
    }
    std::memset(out + cols, 0, padded_cols - cols);
  }
}

template <std::size_t Rows, std::size_t Blocks>
void dense_i8_tile(const PackedI8Layer& layer, const std::int8_t* q, std::size_t q_stride, const float* row_scale,
                   float* y, std::size_t y_stride, std::size_t first_output) {
  const std::size_t padded = layer.padded_outputs;
  const std::size_t groups = layer.padded_inputs / kInputGroup;
  const std::int8_t* weight = layer.weight.data() + first_output * kInputGroup;
  // vpdpbusd multiplies unsigned by signed bytes, so inputs enter as q + 128 and the kernel subtracts
  // 128 x sum(Wq[o]) afterwards. Both steps are exact in int32.
  const __m512i to_unsigned = _mm512_set1_epi8(static_cast<char>(0x80));

  __m512i acc[Rows][Blocks];
  for (std::size_t r = 0; r < Rows; ++r) {
    for (std::size_t b = 0; b < Blocks; ++b) {
      acc[r][b] = _mm512_setzero_si512();
    }
  }

  for (std::size_t g = 0; g < groups; ++g) {
    __m512i w[Blocks];
    for (std::size_t b = 0; b < Blocks; ++b) {
      w[b] = _mm512_loadu_si512(weight + (g * padded + 16 * b) * kInputGroup);
    }
    for (std::size_t r = 0; r < Rows; ++r) {
      std::int32_t packed = 0;
      std::memcpy(&packed, q + r * q_stride + g * kInputGroup, sizeof packed);
      const __m512i value = _mm512_xor_si512(_mm512_set1_epi32(packed), to_unsigned);
      for (std::size_t b = 0; b < Blocks; ++b) {
        acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], value, w[b]);
      }
    }
  }

  const __m512 zero = _mm512_setzero_ps();
  for (std::size_t b = 0; b < Blocks; ++b) {
    const std::size_t o = first_output + 16 * b;
    const __m512i correction = _mm512_loadu_si512(layer.offset_correction.data() + o);
    const __m512 weight_scale = _mm512_loadu_ps(layer.weight_scale.data() + o);
    const __m512 bias = _mm512_loadu_ps(layer.bias.data() + o);
    for (std::size_t r = 0; r < Rows; ++r) {
      const __m512 sums = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][b], correction));
      const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(row_scale[r]), weight_scale);
      const __m512 value = _mm512_add_ps(_mm512_mul_ps(sums, scale), bias);
      _mm512_storeu_ps(y + r * y_stride + o, layer.relu ? _mm512_max_ps(zero, value) : value);
    }
  }
}

template <std::size_t Rows>
void dense_i8_rows(const PackedI8Layer& layer, const std::int8_t* q, std::size_t q_stride, const float* row_scale,
                   float* y, std::size_t y_stride) {
  const std::size_t blocks = layer.padded_outputs / kOutputBlock;
  std::size_t b = 0;
  for (; b + kMaxBlocks <= blocks; b += kMaxBlocks) {
    dense_i8_tile<Rows, 4>(layer, q, q_stride, row_scale, y, y_stride, 16 * b);
  }
  switch (blocks - b) {
    case 3: dense_i8_tile<Rows, 3>(layer, q, q_stride, row_scale, y, y_stride, 16 * b); break;
    case 2: dense_i8_tile<Rows, 2>(layer, q, q_stride, row_scale, y, y_stride, 16 * b); break;
    case 1: dense_i8_tile<Rows, 1>(layer, q, q_stride, row_scale, y, y_stride, 16 * b); break;
    default: break;
  }
}

void dense_i8(const PackedI8Layer& layer, const std::int8_t* q, std::size_t q_stride, const float* row_scale,
              std::size_t rows, float* y, std::size_t y_stride) {
  std::size_t r = 0;
  for (; r + kRowBlock <= rows; r += kRowBlock) {
    dense_i8_rows<4>(layer, q + r * q_stride, q_stride, row_scale + r, y + r * y_stride, y_stride);
  }
  for (; r < rows; ++r) {
    dense_i8_rows<1>(layer, q + r * q_stride, q_stride, row_scale + r, y + r * y_stride, y_stride);
  }
}

}  // namespace

const KernelTable& avx512_kernels() {
  static const KernelTable table{SimdLevel::Avx512, dense_f32, quantize_rows, dense_i8};
  return table;
}

}  // namespace lepton::detail
