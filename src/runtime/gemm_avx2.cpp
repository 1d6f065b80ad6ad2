// AVX2 first-layer kernels of the fast coalition path. Compiled with "-mavx2 -ffp-contract=off" and
// called only after CPU detection confirms AVX2.
//
// sum_deltas keeps 4 registers (32 floats) of the output in registers while it adds every listed delta,
// so each output is stored once.

#include <immintrin.h>

#include "runtime/gemm.hpp"

namespace lepton::detail {

namespace {

template <bool Subtract>
__m256 step(__m256 acc, __m256 delta) {
  return Subtract ? _mm256_sub_ps(acc, delta) : _mm256_add_ps(acc, delta);
}

template <bool Subtract>
void sum_deltas_signed(const float* start, const float* deltas, std::size_t delta_stride, const std::size_t* toggled,
                       std::size_t count, std::size_t width, float* out) {
  std::size_t h = 0;
  for (; h + 32 <= width; h += 32) {
    __m256 acc0 = _mm256_loadu_ps(start + h);
    __m256 acc1 = _mm256_loadu_ps(start + h + 8);
    __m256 acc2 = _mm256_loadu_ps(start + h + 16);
    __m256 acc3 = _mm256_loadu_ps(start + h + 24);
    for (std::size_t t = 0; t < count; ++t) {
      const float* delta = deltas + toggled[t] * delta_stride + h;
      acc0 = step<Subtract>(acc0, _mm256_loadu_ps(delta));
      acc1 = step<Subtract>(acc1, _mm256_loadu_ps(delta + 8));
      acc2 = step<Subtract>(acc2, _mm256_loadu_ps(delta + 16));
      acc3 = step<Subtract>(acc3, _mm256_loadu_ps(delta + 24));
    }
    _mm256_storeu_ps(out + h, acc0);
    _mm256_storeu_ps(out + h + 8, acc1);
    _mm256_storeu_ps(out + h + 16, acc2);
    _mm256_storeu_ps(out + h + 24, acc3);
  }

  for (; h + 8 <= width; h += 8) {
    __m256 acc = _mm256_loadu_ps(start + h);
    for (std::size_t t = 0; t < count; ++t) {
      acc = step<Subtract>(acc, _mm256_loadu_ps(deltas + toggled[t] * delta_stride + h));
    }
    _mm256_storeu_ps(out + h, acc);
  }

  // Fewer than 8 floats left: scalar steps, rounded like the vector ones.
  for (; h < width; ++h) {
    float acc = start[h];
    for (std::size_t t = 0; t < count; ++t) {
      const float delta = deltas[toggled[t] * delta_stride + h];
      acc = Subtract ? acc - delta : acc + delta;
    }
    out[h] = acc;
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

const DeltaKernelTable& avx2_delta_kernels() {
  static const DeltaKernelTable table{SimdLevel::Avx2, &sum_deltas};
  return table;
}

}  // namespace lepton::detail
