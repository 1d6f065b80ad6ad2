#pragma once
/// A dense row-major float matrix: the encoded features that models consume.

#include <cstddef>
#include <vector>

namespace lepton {

/// Owning, row-major, float32. Element (r, c) is data[r * cols + c].
struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<float> data;

  Matrix() = default;
  Matrix(std::size_t r, std::size_t c, float fill = 0.0f) : rows(r), cols(c), data(r * c, fill) {}

  float& operator()(std::size_t r, std::size_t c) { return data[r * cols + c]; }
  float operator()(std::size_t r, std::size_t c) const { return data[r * cols + c]; }
  const float* row(std::size_t r) const { return data.data() + r * cols; }
  float* row(std::size_t r) { return data.data() + r * cols; }
};

}  // namespace lepton
