// Block-diagonal layers in the model file (prefix flag 0x2): the blocks that the writer stores, and the
// parser's checks of the blocks that a file declares. docs/model-format.md documents the layout.

#include <algorithm>
#include <cstring>
#include <numeric>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/artifact_detail.hpp"
#include "runtime/block_diagonal.hpp"
#include "runtime/model_detail.hpp"

namespace lepton::detail {

namespace {

// The reader fills the weights outside the blocks with +0.0f, so only weights with all bits zero may be left
// out. -0.0f and NaN must be stored.
bool is_omittable(float weight) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &weight, sizeof bits);
  return bits == 0;
}

bool is_omittable(std::int8_t weight) { return weight == 0; }

// The columns of each weight row that hold weights the file must store.
template <typename Weight>
std::vector<RowSpan> stored_spans(const std::vector<Weight>& weights, std::size_t outputs, std::size_t inputs) {
  return row_spans(weights.data(), outputs, inputs, [](Weight weight) { return !is_omittable(weight); });
}

std::vector<WeightBlock> equal_blocks(std::size_t outputs, std::size_t inputs, std::size_t blocks) {
  const std::size_t block_outputs = outputs / blocks;
  const std::size_t block_inputs = inputs / blocks;
  std::vector<WeightBlock> result;
  for (std::size_t g = 0; g < blocks; ++g) {
    result.push_back({g * block_outputs, g * block_inputs, block_outputs, block_inputs});
  }
  return result;
}

template <typename T>
std::vector<T> gather(const std::vector<T>& dense, std::size_t inputs, const std::vector<WeightBlock>& blocks) {
  std::vector<T> stored;
  stored.reserve(block_weight_count(blocks));
  for (const WeightBlock& block : blocks) {
    for (std::size_t r = 0; r < block.rows; ++r) {
      const auto start = dense.begin() + static_cast<std::ptrdiff_t>((block.row + r) * inputs + block.column);
      stored.insert(stored.end(), start, start + static_cast<std::ptrdiff_t>(block.columns));
    }
  }
  return stored;
}

template <typename T>
std::vector<T> scatter(const std::vector<T>& stored, std::size_t outputs, std::size_t inputs,
                       const std::vector<WeightBlock>& blocks) {
  if (stored.size() != block_weight_count(blocks)) {
    throw InternalError(fmt::format("scatter_blocks: {} stored weights for blocks of {} weights", stored.size(),
                                    block_weight_count(blocks)));
  }

  std::vector<T> dense(outputs * inputs, T{0});
  auto source = stored.begin();
  for (const WeightBlock& block : blocks) {
    for (std::size_t r = 0; r < block.rows; ++r) {
      const auto target = dense.begin() + static_cast<std::ptrdiff_t>((block.row + r) * inputs + block.column);
      std::copy(source, source + static_cast<std::ptrdiff_t>(block.columns), target);
      source += static_cast<std::ptrdiff_t>(block.columns);
    }
  }
  return dense;
}

WeightBlock parse_block(const nlohmann::json& value, const std::string& path, std::uint64_t outputs,
                        std::uint64_t inputs) {
  require_object(value, path);
  reject_unknown_members(value, path, {"row", "column", "rows", "columns"});

  WeightBlock block;
  block.row = read_unsigned(require_member(value, path, "row"), path + ".row");
  block.column = read_unsigned(require_member(value, path, "column"), path + ".column");
  block.rows = read_unsigned(require_member(value, path, "rows"), path + ".rows");
  block.columns = read_unsigned(require_member(value, path, "columns"), path + ".columns");
  if (block.rows == 0 || block.columns == 0) {
    throw ParseError(fmt::format("a block needs at least 1 row and 1 column, got {} and {} ({})", block.rows,
                                 block.columns, path));
  }

  // Compared without adding, so that a start near 2^64 cannot wrap around.
  if (block.row >= outputs || block.rows > outputs - block.row) {
    throw ParseError(fmt::format("block rows [{}, {}+{}) lie outside the layer's {} outputs ({})", block.row,
                                 block.row, block.rows, outputs, path));
  }
  if (block.column >= inputs || block.columns > inputs - block.column) {
    throw ParseError(fmt::format("block columns [{}, {}+{}) lie outside the layer's {} inputs ({})", block.column,
                                 block.column, block.columns, inputs, path));
  }
  return block;
}

}  // namespace

std::vector<WeightBlock> storage_blocks(const DenseLayer& layer) {
  const std::size_t outputs = layer.outputs;
  const std::size_t inputs = layer.inputs;
  const bool int8 = layer.precision == LayerPrecision::Int8;
  const std::size_t stored = int8 ? layer.quantized.values.size() : layer.weight.size();
  if (outputs == 0 || inputs == 0 || stored != outputs * inputs) {
    return {};
  }

  const std::vector<RowSpan> spans = int8 ? stored_spans(layer.quantized.values, outputs, inputs)
                                             : stored_spans(layer.weight, outputs, inputs);
  // More blocks store fewer weights, so the largest count that fits wins.
  const std::size_t common = std::gcd(outputs, inputs);
  for (std::size_t blocks = common; blocks > 1; --blocks) {
    if (common % blocks == 0 && spans_fit_blocks(spans, inputs, outputs, blocks)) {
      return equal_blocks(outputs, inputs, blocks);
    }
  }
  return {};
}

std::uint64_t block_weight_count(const std::vector<WeightBlock>& blocks) {
  std::uint64_t count = 0;
  for (const WeightBlock& block : blocks) {
    count += block.rows * block.columns;
  }
  return count;
}

std::vector<float> gather_blocks(const std::vector<float>& dense, std::size_t inputs,
                                 const std::vector<WeightBlock>& blocks) {
  return gather(dense, inputs, blocks);
}

std::vector<std::int8_t> gather_blocks(const std::vector<std::int8_t>& dense, std::size_t inputs,
                                       const std::vector<WeightBlock>& blocks) {
  return gather(dense, inputs, blocks);
}

std::vector<float> scatter_blocks(const std::vector<float>& stored, std::size_t outputs, std::size_t inputs,
                                  const std::vector<WeightBlock>& blocks) {
  return scatter(stored, outputs, inputs, blocks);
}

std::vector<std::int8_t> scatter_blocks(const std::vector<std::int8_t>& stored, std::size_t outputs,
                                        std::size_t inputs, const std::vector<WeightBlock>& blocks) {
  return scatter(stored, outputs, inputs, blocks);
}

nlohmann::json blocks_to_json(const std::vector<WeightBlock>& blocks) {
  nlohmann::json list = nlohmann::json::array();
  for (const WeightBlock& block : blocks) {
    list.push_back({{"row", block.row}, {"column", block.column}, {"rows", block.rows}, {"columns", block.columns}});
  }
  return list;
}

std::vector<WeightBlock> parse_blocks(const nlohmann::json& value, const std::string& path, std::uint64_t outputs,
                                      std::uint64_t inputs) {
  if (!value.is_array() || value.empty()) {
    throw ParseError(fmt::format("expected a non-empty array of blocks, got {}; a dense layer leaves out this "
                                 "field ({})",
                                 value.is_array() ? "[]" : value.type_name(), path));
  }

  std::vector<WeightBlock> blocks;
  for (std::size_t g = 0; g < value.size(); ++g) {
    const std::string block_path = fmt::format("{}[{}]", path, g);
    const WeightBlock block = parse_block(value[g], block_path, outputs, inputs);
    // Each block starts at or after the previous block's last row and column. Both blocks lie inside the
    // matrix, so these sums cannot overflow.
    if (!blocks.empty()) {
      const WeightBlock& previous = blocks.back();
      if (block.row < previous.row + previous.rows) {
        throw ParseError(fmt::format("block {} starts at row {}, before block {} ends at row {}; blocks must not "
                                     "overlap and must be listed down the diagonal ({}.row)",
                                     g, block.row, g - 1, previous.row + previous.rows, block_path));
      }
      if (block.column < previous.column + previous.columns) {
        throw ParseError(fmt::format("block {} starts at column {}, before block {} ends at column {}; blocks must "
                                     "not overlap and must be listed down the diagonal ({}.column)",
                                     g, block.column, g - 1, previous.column + previous.columns, block_path));
      }
    }
    blocks.push_back(block);
  }
  return blocks;
}

std::uint64_t stored_weight_bytes(const Mlp& network) {
  std::uint64_t bytes = 0;
  for (const DenseLayer& layer : network.layers) {
    const std::vector<WeightBlock> blocks = storage_blocks(layer);
    const std::uint64_t weights = blocks.empty() ? std::uint64_t{layer.outputs} * layer.inputs
                                                 : block_weight_count(blocks);
    if (layer.precision == LayerPrecision::Int8) {
      bytes += weights * sizeof(std::int8_t) + layer.outputs * sizeof(float);
    } else {
      bytes += weights * sizeof(float);
    }
    bytes += layer.outputs * sizeof(float);
  }
  return bytes;
}

}  // namespace lepton::detail
