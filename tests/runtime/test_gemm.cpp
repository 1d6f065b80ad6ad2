// First-layer delta kernels of the fast coalition path (src/runtime/gemm.hpp) against the scalar twin.
// The contract has no multiplication, so every level must match the scalar kernel bit for bit.

#include <catch2/catch.hpp>

#include <cstddef>
#include <random>
#include <vector>

#include "lepton/predictor.hpp"
#include "runtime/gemm.hpp"

using namespace lepton;

namespace {

std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> levels{SimdLevel::Scalar};
  if (detected_simd_level() >= SimdLevel::Avx2) levels.push_back(SimdLevel::Avx2);
  if (detected_simd_level() >= SimdLevel::Avx512) levels.push_back(SimdLevel::Avx512);
  return levels;
}

std::vector<float> random_floats(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> values(count);
  for (float& value : values) value = normal(engine);
  return values;
}

}  // namespace

TEST_CASE("sum_deltas matches scalar at awkward widths", "[gemm]") {
  const std::size_t groups = 9;
  const std::vector<std::size_t> toggled{0, 3, 8, 3, 5};

  for (std::size_t width : {1, 3, 7, 8, 9, 15, 16, 17, 33, 64, 65}) {
    // The stride exceeds the width so that a kernel reading the wrong delta row gets other values.
    const std::size_t stride = width + 5;
    const std::vector<float> start = random_floats(width, width);
    const std::vector<float> deltas = random_floats(groups * stride, 100 + width);

    for (bool subtract : {false, true}) {
      for (std::size_t count : {0, 1, 5}) {
        std::vector<float> expected(width + 1, -7.0f);
        detail::scalar_delta_kernels().sum_deltas(start.data(), deltas.data(), stride, toggled.data(), count,
                                                  subtract, width, expected.data());
        for (SimdLevel level : supported_levels()) {
          INFO("level " << to_string(level) << " width " << width << " subtract " << subtract << " count " << count);
          std::vector<float> actual(width + 1, -7.0f);
          detail::delta_kernels_for(level).sum_deltas(start.data(), deltas.data(), stride, toggled.data(), count,
                                                      subtract, width, actual.data());
          CHECK(actual == expected);
          // The guard element past `width` must stay untouched.
          CHECK(actual[width] == -7.0f);
        }
      }
    }
  }
}

TEST_CASE("scalar sum_deltas follows listed order", "[gemm]") {
  // 1e8 + 1 - 1e8 in f32: adding in order loses the 1 (1e8 + 1 rounds to 1e8), so the result is 0, not 1.
  const std::vector<float> start{1e8f};
  const std::vector<float> deltas{1.0f, -1e8f};
  const std::vector<std::size_t> toggled{0, 1};
  float out = -1.0f;
  detail::scalar_delta_kernels().sum_deltas(start.data(), deltas.data(), 1, toggled.data(), 2, false, 1, &out);
  CHECK(out == 0.0f);

  float subtracted = -1.0f;
  detail::scalar_delta_kernels().sum_deltas(start.data(), deltas.data(), 1, toggled.data(), 2, true, 1, &subtracted);
  // 1e8 - 1 rounds to 1e8, then 1e8 + 1e8 is exact.
  CHECK(subtracted == 2e8f);
}

TEST_CASE("sum_deltas writes in place", "[gemm]") {
  std::vector<float> values{1.0f, 2.0f, 3.0f};
  const std::vector<float> deltas{0.5f, 0.25f, 0.125f};
  const std::vector<std::size_t> toggled{0};
  for (SimdLevel level : supported_levels()) {
    std::vector<float> in_place = values;
    detail::delta_kernels_for(level).sum_deltas(in_place.data(), deltas.data(), 3, toggled.data(), 1, false, 3,
                                                in_place.data());
    CHECK(in_place == std::vector<float>{1.5f, 2.25f, 3.125f});
  }
}
