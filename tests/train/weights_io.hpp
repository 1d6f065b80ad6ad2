#pragma once
// Test helpers shared by the multi-process training tests: flatten a network's weights and pass them
// between processes through files.

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lepton/model.hpp"

namespace lepton::test {

/// Concatenates every layer's weight, then bias, in layer order.
inline std::vector<float> flat_weights(const Mlp& network) {
  std::vector<float> flat;
  for (const auto& layer : network.layers) {
    flat.insert(flat.end(), layer.weight.begin(), layer.weight.end());
    flat.insert(flat.end(), layer.bias.begin(), layer.bias.end());
  }
  return flat;
}

inline void write_floats(const std::string& path, const std::vector<float>& values) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
}

inline std::vector<float> read_floats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

}  // namespace lepton::test
