// The scalar reference kernels. Every SIMD kernel is tested against these. Compiled with the project's
// default flags plus -ffp-contract=off, so that the compiler never fuses a product and a sum that the
// contract in kernels.hpp rounds separately.

#include <algorithm>
#include <cmath>

#include "runtime/kernels.hpp"

namespace lepton::detail {

namespace {

void dense_f32(const PackedF32Layer& layer, const float* x, std::size_t x_stride, std::size_t rows, float* y,
               std::size_t y_stride) {
  const std::size_t padded = layer.padded_outputs;
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * x_stride;
    float* out = y + r * y_stride;
    std::copy(layer.bias.begin(), layer.bias.end(), out);

    for (std::size_t k = 0; k < layer.inputs; ++k) {
      const float value = row[k];
      const float* weight = layer.weight.data() + k * padded;
      for (std::size_t o = 0; o < padded; ++o) {
        const float product = value * weight[o];
        out[o] = out[o] + product;
      }
    }

    if (layer.relu) {
      for (std::size_t o = 0; o < padded; ++o) {
        out[o] = std::max(out[o], 0.0f);
      }
    }
  }
}

// Rounds half to even, as the SIMD conversions do under the default MXCSR mode, then clamps to +-127.
std::int8_t quantize_value(float value, float inverse_scale) {
  const float scaled = std::nearbyint(value * inverse_scale);
  const float clamped = std::min(std::max(scaled, -static_cast<float>(kInt8Max)), static_cast<float>(kInt8Max));
  return static_cast<std::int8_t>(clamped);
}

void quantize_rows(const float* x, std::size_t x_stride, std::size_t cols, std::size_t padded_cols,
                   std::size_t rows, float static_scale, std::int8_t* q, float* row_scale) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * x_stride;
    std::int8_t* out = q + r * padded_cols;

    float scale = static_scale;
    if (scale <= 0.0f) {
      float max_abs = 0.0f;
      for (std::size_t c = 0; c < cols; ++c) {
        max_abs = std::max(max_abs, std::fabs(row[c]));
      }
      scale = max_abs / static_cast<float>(kInt8Max);
    }
    row_scale[r] = scale;

    const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
    for (std::size_t c = 0; c < cols; ++c) {
      out[c] = quantize_value(row[c], inverse);
    }
    std::fill(out + cols, out + padded_cols, std::int8_t{0});
  }
}

void dense_i8(const PackedI8Layer& layer, const std::int8_t* q, std::size_t q_stride, const float* row_scale,
              std::size_t rows, float* y, std::size_t y_stride) {
  const std::size_t padded = layer.padded_outputs;
  const std::size_t groups = layer.padded_inputs / kInputGroup;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::int8_t* row = q + r * q_stride;
    float* out = y + r * y_stride;

    for (std::size_t o = 0; o < padded; ++o) {
      std::int32_t acc = 0;
      for (std::size_t g = 0; g < groups; ++g) {
        const std::int8_t* weight = layer.weight.data() + (g * padded + o) * kInputGroup;
        for (std::size_t j = 0; j < kInputGroup; ++j) {
          acc += static_cast<std::int32_t>(row[g * kInputGroup + j]) * static_cast<std::int32_t>(weight[j]);
        }
      }

      const float scale = row_scale[r] * layer.weight_scale[o];
      const float value = static_cast<float>(acc) * scale + layer.bias[o];
      out[o] = layer.relu ? std::max(value, 0.0f) : value;
    }
  }
}

}  // namespace

const KernelTable& scalar_kernels() {
  static const KernelTable table{SimdLevel::Scalar, dense_f32, quantize_rows, dense_i8};
  return table;
}

}  // namespace lepton::detail
