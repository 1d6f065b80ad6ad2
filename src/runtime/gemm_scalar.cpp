// Scalar first-layer kernels of the fast coalition path, and the table lookup. Compiled with the default flags.

#include "runtime/gemm.hpp"

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/kernels.hpp"

namespace lepton::detail {

namespace {

void sum_deltas(const float* start, const float* deltas, std::size_t delta_stride, const std::size_t* toggled,
                std::size_t count, bool subtract, std::size_t width, float* out) {
  for (std::size_t h = 0; h < width; ++h) {
    float acc = start[h];
    for (std::size_t t = 0; t < count; ++t) {
      const float delta = deltas[toggled[t] * delta_stride + h];
      acc = subtract ? acc - delta : acc + delta;
    }
    out[h] = acc;
  }
}

}  // namespace

const DeltaKernelTable& scalar_delta_kernels() {
  static const DeltaKernelTable table{SimdLevel::Scalar, &sum_deltas};
  return table;
}

const DeltaKernelTable& delta_kernels_for(SimdLevel level) {
  // kernels_for rejects a level above what the CPU supports, with the message the predictor uses.
  kernels_for(level);

  switch (level) {
    case SimdLevel::Scalar: return scalar_delta_kernels();
    case SimdLevel::Avx2: return avx2_delta_kernels();
    case SimdLevel::Avx512: return avx512_delta_kernels();
  }
  throw InternalError(fmt::format("delta_kernels_for: SimdLevel value {} is out of range", static_cast<int>(level)));
}

}  // namespace lepton::detail
