// AVX-512 F first-layer kernels of the fast coalition path. Compiled with "-mavx512f -ffp-contract=off" and
// called only after CPU detection confirms AVX-512.
//
// sum_deltas keeps 4 registers (64 floats) of the output in registers while it adds every listed delta,
// so each output is stored once.

#include <immintrin.h>

#include "runtime/gemm.hpp"

namespace lepton::detail {

namespace {

template <bool Subtract>
__m512 step(__m512 acc, __m512 delta) {
  return Subtract ? _mm512_sub_ps(acc, delta) : _mm512_add_ps(acc, delta);
}

template <bool Subtract>
void sum_deltas_signed(const float* start, const float* deltas, std::size_t delta_stride, const std::size_t* toggled,
                       std::size_t count, std::size_t width, float* out) {
  std::size_t h = 0;
  for (; h + 64 <= width; h += 64) {
    __m512 acc0 = _mm512_loadu_ps(start + h);
    __m512 acc1 = _mm512_loadu_ps(start + h + 16);
    __m512 acc2 = _mm512_loadu_ps(start + h + 32);
    __m512 acc3 = _mm512_loadu_ps(start + h + 48);
    for (std::size_t t = 0; t < count; ++t) {
      const float* delta = deltas + toggled[t] * delta_stride + h;
      acc0 = step<Subtract>(acc0, _mm512_loadu_ps(delta));
      acc1 = step<Subtract>(acc1, _mm512_loadu_ps(delta + 16));
      acc2 = step<Subtract>(acc2, _mm512_loadu_ps(delta + 32));
      acc3 = step<Subtract>(acc3, _mm512_loadu_ps(delta + 48));
    }
    _mm512_storeu_ps(out + h, acc0);
    _mm512_storeu_ps(out + h + 16, acc1);
    _mm512_storeu_ps(out + h + 32, acc2);
    _mm512_storeu_ps(out + h + 48, acc3);
  }

  // Remaining blocks of up to 16 floats; the masked loads never touch memory past `width`.
  for (; h < width; h += 16) {
    const std::size_t lanes = width - h < 16 ? width - h : 16;
    const __mmask16 mask = static_cast<__mmask16>((1U << lanes) - 1U);
    __m512 acc = _mm512_maskz_loadu_ps(mask, start + h);
    for (std::size_t t = 0; t < count; ++t) {
      acc = step<Subtract>(acc, _mm512_maskz_loadu_ps(mask, deltas + toggled[t] * delta_stride + h));
    }
    _mm512_mask_storeu_ps(out + h, mask, acc);
  }
}

void sum_deltas(const float* start, const float* deltas, std::size_t delta_stride, const std::size_t* toggled,
                std::size_t count, bool subtract, std::size_t width, float* out) {
  if (subtract) {
    sum_deltas_signed<true>(start, deltas, delta_stride, toggled, count, width, out);
  } else {
    sum_deltas_signed<false>(start, deltas, delta_stride, toggled, count, width, out);
  }
}

}  // namespace

const DeltaKernelTable& avx512_delta_kernels() {
  static const DeltaKernelTable table{SimdLevel::Avx512, &sum_deltas};
  return table;
}

}  // namespace lepton::detail
