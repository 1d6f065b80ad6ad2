#pragma once
// First-layer kernels of the fast coalition path (src/runtime/explain_coalition.cpp): one table per
// instruction set, in gemm_scalar.cpp, gemm_avx2.cpp and gemm_avx512.cpp, each compiled with its own flags.
// Not installed. Like kernels.hpp, no file here may include Eigen or other header-only numeric code.
//
// Arithmetic contract: out[h] = start[h] (+ or -) delta_0[h] (+ or -) delta_1[h] ..., in the listed order,
// each addition or subtraction rounded once in f32. There is no multiplication, so every level produces
// the same bits.

#include <cstddef>

#include "lepton/predictor.hpp"

namespace lepton::detail {

struct DeltaKernelTable {
  SimdLevel level = SimdLevel::Scalar;

  /// out[0, width) = start (+/-) deltas[toggled[t] * delta_stride + h] for t < count, added when `subtract`
  /// is false. `out` may alias `start`.
  void (*sum_deltas)(const float* start, const float* deltas, std::size_t delta_stride, const std::size_t* toggled,
                     std::size_t count, bool subtract, std::size_t width, float* out) = nullptr;
};

const DeltaKernelTable& scalar_delta_kernels();
/// Compiled with -mavx2. Call only when the CPU has AVX2.
const DeltaKernelTable& avx2_delta_kernels();
/// Compiled with -mavx512f. Call only when the CPU has AVX-512 F.
const DeltaKernelTable& avx512_delta_kernels();

/// The table for a level. Throws InvalidArgument when the CPU lacks the level.
const DeltaKernelTable& delta_kernels_for(SimdLevel level);

}  // namespace lepton::detail
