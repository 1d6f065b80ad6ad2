// Every SIMD kernel against the scalar reference at awkward sizes, on every level this CPU supports.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "lepton/error.hpp"
#include "lepton/predictor.hpp"
#include "lepton/quantize.hpp"
#include "runtime/kernels.hpp"

namespace {

using lepton::Activation;
using lepton::DenseLayer;
using lepton::SimdLevel;
namespace detail = lepton::detail;

const std::vector<std::size_t> kSizes = {1, 3, 7, 8, 9, 15, 16, 17, 33, 64, 65};
const std::vector<std::size_t> kRowCounts = {1, 2, 3, 4, 5, 9};

std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> levels;
  for (const SimdLevel level : {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512}) {
    if (level <= lepton::detected_simd_level()) {
      levels.push_back(level);
    }
  }
  return levels;
}

DenseLayer random_layer(std::size_t inputs, std::size_t outputs, Activation activation, std::mt19937& generator) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  DenseLayer layer;
  layer.inputs = inputs;
  layer.outputs = outputs;
  layer.activation = activation;
  layer.weight.resize(inputs * outputs);
  layer.bias.resize(outputs);
  for (float& w : layer.weight) w = normal(generator);
  for (float& b : layer.bias) b = normal(generator);
  return layer;
}

DenseLayer random_int8_layer(std::size_t inputs, std::size_t outputs, float input_scale, std::mt19937& generator) {
  DenseLayer layer = random_layer(inputs, outputs, Activation::Relu, generator);
  layer.precision = lepton::LayerPrecision::Int8;
  layer.quantized = lepton::quantize_weights(layer);
  layer.quantized.input_scale = input_scale;
  return layer;
}

std::vector<float> random_rows(std::size_t rows, std::size_t stride, std::mt19937& generator) {
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> values(rows * stride);
  for (float& v : values) v = normal(generator);
  return values;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Runs the f32 kernel of `level` and returns rows x padded_outputs.
std::vector<float> run_f32(SimdLevel level, const detail::PackedF32Layer& packed, const std::vector<float>& x,
                           std::size_t x_stride, std::size_t rows) {
  std::vector<float> y(rows * packed.padded_outputs, -1.0f);
  detail::kernels_for(level).dense_f32(packed, x.data(), x_stride, rows, y.data(), packed.padded_outputs);
  return y;
}

struct Int8Output {
  std::vector<std::int8_t> quantized;
  std::vector<float> row_scale;
  std::vector<float> y;
};

Int8Output run_i8(SimdLevel level, const detail::PackedI8Layer& packed, const std::vector<float>& x,
                  std::size_t x_stride, std::size_t rows) {
  const detail::KernelTable& kernels = detail::kernels_for(level);
  Int8Output out;
  out.quantized.assign(rows * packed.padded_inputs, std::int8_t{99});
  out.row_scale.assign(rows, -1.0f);
  out.y.assign(rows * packed.padded_outputs, -1.0f);
  kernels.quantize_rows(x.data(), x_stride, packed.inputs, packed.padded_inputs, rows, packed.input_scale,
                        out.quantized.data(), out.row_scale.data());
  kernels.dense_i8(packed, out.quantized.data(), packed.padded_inputs, out.row_scale.data(), rows, out.y.data(),
                   packed.padded_outputs);
  return out;
}

}  // namespace

TEST_CASE("kernels detected level is listed", "[kernels]") {
  const SimdLevel detected = lepton::detected_simd_level();
  INFO("detected " << lepton::to_string(detected));
  CHECK(lepton::default_simd_level() <= detected);
  SimdLevel parsed = SimdLevel::Scalar;
  CHECK(detail::parse_simd_level("avx512", parsed));
  CHECK(parsed == SimdLevel::Avx512);
  CHECK(detail::parse_simd_level("avx2", parsed));
  CHECK(parsed == SimdLevel::Avx2);
  CHECK(detail::parse_simd_level("scalar", parsed));
  CHECK(parsed == SimdLevel::Scalar);
  CHECK_FALSE(detail::parse_simd_level("AVX2", parsed));
  CHECK_FALSE(detail::parse_simd_level(nullptr, parsed));
}

TEST_CASE("kernels f32 levels match scalar", "[kernels][f32]") {
  std::mt19937 generator(7);
  for (const SimdLevel level : supported_levels()) {
    for (const std::size_t inputs : kSizes) {
      for (const std::size_t outputs : kSizes) {
        const DenseLayer layer = random_layer(inputs, outputs, outputs % 2 == 0 ? Activation::Relu
                                                                                : Activation::Identity,
                                              generator);
        const detail::PackedF32Layer packed = detail::pack_f32(layer);
        const std::size_t rows = kRowCounts[(inputs + outputs) % kRowCounts.size()];
        const std::size_t stride = inputs + 3;  // a stride wider than the row, as between layers
        const std::vector<float> x = random_rows(rows, stride, generator);

        const std::vector<float> reference = run_f32(SimdLevel::Scalar, packed, x, stride, rows);
        const std::vector<float> actual = run_f32(level, packed, x, stride, rows);
        for (std::size_t r = 0; r < rows; ++r) {
          for (std::size_t o = 0; o < packed.padded_outputs; ++o) {
            // The bound scales with sum |x w| + |b|, the size of the partial sums that get rounded.
            double magnitude = 0;
            if (o < outputs) {
              magnitude = std::fabs(layer.bias[o]);
              for (std::size_t k = 0; k < inputs; ++k) {
                magnitude += std::fabs(x[r * stride + k] * layer.weight[o * inputs + k]);
              }
            }
            INFO(lepton::to_string(level) << " " << inputs << " -> " << outputs << " row " << r << " output " << o);
            CHECK(std::fabs(actual[r * packed.padded_outputs + o] - reference[r * packed.padded_outputs + o]) <=
                  detail::kF32KernelTolerance * magnitude);
          }
        }
      }
    }
  }
}

TEST_CASE("kernels f32 FMA levels agree bit for bit", "[kernels][f32]") {
  if (lepton::detected_simd_level() < SimdLevel::Avx512) {
    SUCCEED("this CPU has no AVX-512 VNNI, so there is only one FMA level");
    return;
  }
  std::mt19937 generator(11);
  for (const std::size_t inputs : kSizes) {
    for (const std::size_t outputs : kSizes) {
      const DenseLayer layer = random_layer(inputs, outputs, Activation::Relu, generator);
      const detail::PackedF32Layer packed = detail::pack_f32(layer);
      const std::vector<float> x = random_rows(5, inputs, generator);
      INFO(inputs << " -> " << outputs);
      CHECK(same_bits(run_f32(SimdLevel::Avx2, packed, x, inputs, 5), run_f32(SimdLevel::Avx512, packed, x, inputs, 5)));
    }
  }
}

TEST_CASE("kernels f32 padding outputs are zero", "[kernels][f32]") {
  std::mt19937 generator(3);
  for (const SimdLevel level : supported_levels()) {
    const DenseLayer layer = random_layer(9, 17, Activation::Identity, generator);
    const detail::PackedF32Layer packed = detail::pack_f32(layer);
    REQUIRE(packed.padded_outputs == 32);
    const std::vector<float> y = run_f32(level, packed, random_rows(3, 9, generator), 9, 3);
    for (std::size_t r = 0; r < 3; ++r) {
      for (std::size_t o = 17; o < 32; ++o) {
        INFO(lepton::to_string(level) << " row " << r << " output " << o);
        CHECK(y[r * 32 + o] == 0.0f);
      }
    }
  }
}

TEST_CASE("kernels int8 levels equal scalar exactly", "[kernels][int8]") {
  // int8 products accumulate exactly in int32, and every level dequantizes with the same three roundings,
  // so the tolerance of the int8 format is zero.
  std::mt19937 generator(5);
  for (const SimdLevel level : supported_levels()) {
    for (const float input_scale : {0.0f, 0.02f}) {
      for (const std::size_t inputs : kSizes) {
        for (const std::size_t outputs : kSizes) {
          const DenseLayer layer = random_int8_layer(inputs, outputs, input_scale, generator);
          const detail::PackedI8Layer packed = detail::pack_i8(layer);
          const std::size_t rows = kRowCounts[(inputs * 3 + outputs) % kRowCounts.size()];
          const std::size_t stride = inputs + 1;
          const std::vector<float> x = random_rows(rows, stride, generator);

          const Int8Output reference = run_i8(SimdLevel::Scalar, packed, x, stride, rows);
          const Int8Output actual = run_i8(level, packed, x, stride, rows);
          INFO(lepton::to_string(level) << " " << inputs << " -> " << outputs << " rows " << rows
                                        << " input scale " << input_scale);
          CHECK(actual.quantized == reference.quantized);
          CHECK(same_bits(actual.row_scale, reference.row_scale));
          CHECK(same_bits(actual.y, reference.y));
        }
      }
    }
  }
}

TEST_CASE("kernels int8 scalar matches integer formula", "[kernels][int8]") {
  std::mt19937 generator(13);
  const DenseLayer layer = random_int8_layer(33, 17, 0.0f, generator);
  const detail::PackedI8Layer packed = detail::pack_i8(layer);
  const std::vector<float> x = random_rows(3, 33, generator);
  const Int8Output out = run_i8(SimdLevel::Scalar, packed, x, 33, 3);

  for (std::size_t r = 0; r < 3; ++r) {
    float max_abs = 0;
    for (std::size_t k = 0; k < 33; ++k) max_abs = std::max(max_abs, std::fabs(x[r * 33 + k]));
    CHECK(out.row_scale[r] == max_abs / 127.0f);

    for (std::size_t k = 0; k < 33; ++k) {
      const long expected = std::lround(x[r * 33 + k] * (1.0f / out.row_scale[r]));
      INFO("row " << r << " input " << k);
      CHECK(std::abs(out.quantized[r * packed.padded_inputs + k] - expected) <= 1);  // lround rounds half away
      CHECK(std::abs(static_cast<int>(out.quantized[r * packed.padded_inputs + k])) <= 127);
    }
    for (std::size_t k = 33; k < packed.padded_inputs; ++k) {
      CHECK(out.quantized[r * packed.padded_inputs + k] == 0);
    }

    for (std::size_t o = 0; o < 17; ++o) {
      std::int64_t acc = 0;
      for (std::size_t k = 0; k < 33; ++k) {
        acc += static_cast<std::int64_t>(out.quantized[r * packed.padded_inputs + k]) *
               layer.quantized.values[o * 33 + k];
      }
      const double expected = std::max(0.0, static_cast<double>(acc) * out.row_scale[r] *
                                                    layer.quantized.scales[o] + layer.bias[o]);
      INFO("row " << r << " output " << o);
      // Single-precision rounding of the scale product, the conversion and the bias sum: 1e-5 relative.
      CHECK(out.y[r * packed.padded_outputs + o] == Approx(expected).epsilon(1e-5).margin(1e-6));
    }
  }
}

TEST_CASE("kernels int8 extremes do not saturate", "[kernels][int8]") {
  // All weights +-127 and inputs at +-max: the AVX2 pairwise sums reach 2 x 127 x 127, just below 2^15.
  DenseLayer layer;
  layer.inputs = 64;
  layer.outputs = 16;
  layer.activation = Activation::Identity;
  layer.precision = lepton::LayerPrecision::Int8;
  layer.weight.assign(64 * 16, 0.0f);
  layer.bias.assign(16, 0.0f);
  layer.quantized.values.resize(64 * 16);
  layer.quantized.scales.assign(16, 1.0f);
  for (std::size_t i = 0; i < layer.quantized.values.size(); ++i) {
    layer.quantized.values[i] = static_cast<std::int8_t>((i / 64) % 2 == 0 ? 127 : -127);
  }
  const detail::PackedI8Layer packed = detail::pack_i8(layer);
  std::vector<float> x(64);
  for (std::size_t k = 0; k < 64; ++k) x[k] = k % 3 == 0 ? -1.0f : 1.0f;

  for (const SimdLevel level : supported_levels()) {
    const Int8Output out = run_i8(level, packed, x, 64, 1);
    const float scale = 1.0f / 127.0f;
    std::int64_t dot = 0;
    for (std::size_t k = 0; k < 64; ++k) dot += (k % 3 == 0 ? -127 : 127) * 127;
    INFO(lepton::to_string(level));
    CHECK(out.y[0] == static_cast<float>(dot) * scale);
    CHECK(out.y[1] == -static_cast<float>(dot) * scale);
  }
}

TEST_CASE("kernels rows do not depend on batch", "[kernels][consistency]") {
  std::mt19937 generator(17);
  const std::size_t rows = 13;
  for (const SimdLevel level : supported_levels()) {
    const DenseLayer f32_layer = random_layer(33, 65, Activation::Relu, generator);
    const DenseLayer i8_layer = random_int8_layer(33, 65, 0.0f, generator);
    const detail::PackedF32Layer f32 = detail::pack_f32(f32_layer);
    const detail::PackedI8Layer i8 = detail::pack_i8(i8_layer);
    const std::vector<float> x = random_rows(rows, 33, generator);

    const std::vector<float> batch_f32 = run_f32(level, f32, x, 33, rows);
    const Int8Output batch_i8 = run_i8(level, i8, x, 33, rows);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::vector<float> row(x.begin() + r * 33, x.begin() + (r + 1) * 33);
      const std::vector<float> alone_f32 = run_f32(level, f32, row, 33, 1);
      const std::vector<float> alone_i8 = run_i8(level, i8, row, 33, 1).y;
      INFO(lepton::to_string(level) << " row " << r);
      CHECK(std::memcmp(alone_f32.data(), batch_f32.data() + r * f32.padded_outputs, 80 * sizeof(float)) == 0);
      CHECK(std::memcmp(alone_i8.data(), batch_i8.y.data() + r * i8.padded_outputs, 80 * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("kernels reject a level above the CPU", "[kernels]") {
  if (lepton::detected_simd_level() == SimdLevel::Avx512) {
    SUCCEED("this CPU supports every level");
    return;
  }
  CHECK_THROWS_AS(detail::kernels_for(SimdLevel::Avx512), lepton::InvalidArgument);
}
