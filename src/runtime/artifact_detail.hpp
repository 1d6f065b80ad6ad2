#pragma once
// Byte layout of the model file, format 1 with its int8 and block-diagonal flags. docs/model-format.md is the
// full description. Not installed. Tests use these helpers to build hostile files with a valid checksum.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/model.hpp"

namespace lepton::detail {

inline constexpr char kArtifactMagic[8] = {'L', 'E', 'P', 'T', 'O', 'N', 'M', 'D'};
inline constexpr std::size_t kArtifactPrefixBytes = 64;
/// Alignment, in bytes, of the payload start and of every tensor inside it.
inline constexpr std::size_t kArtifactAlignment = 64;
/// Prefix bytes [0, 32) are the fields that the checksum covers. Bytes [32, 64) are the checksum itself.
inline constexpr std::size_t kChecksumOffset = 32;
inline constexpr std::size_t kChecksumBytes = 32;
/// Largest tensor that a file may declare (1 GiB), so that a hostile header cannot request a huge allocation.
inline constexpr std::uint64_t kMaxTensorBytes = std::uint64_t{1} << 30;
/// Prefix flag: some layers are int8 (dtype "i8" weights with f32 per-output scales). Readers that predate
/// int8 layers reject every flag, so they report such a file as needing a newer Lepton.
inline constexpr std::uint32_t kFlagInt8Layers = 0x1;
/// Prefix flag: some layers store only the diagonal blocks of their weight matrix ($.network.layers[i].blocks).
/// Readers that predate block-diagonal layers reject the flag, so they report such a file as needing a newer
/// Lepton instead of misreading its weights.
inline constexpr std::uint32_t kFlagBlockLayers = 0x2;
/// Prefix flag: the network computes input products before its first layer ($.network.products). Readers that
/// predate them reject the flag instead of running the first layer on too few columns.
inline constexpr std::uint32_t kFlagInputProducts = 0x4;
/// Prefix flag: some input products are differences or steps ($.network.products[k].difference and .step).
/// Readers that know products but predate these fields reject the flag instead of computing plain products.
inline constexpr std::uint32_t kFlagInputSteps = 0x8;
/// Every flag that this build reads.
inline constexpr std::uint32_t kKnownFlags =
    kFlagInt8Layers | kFlagBlockLayers | kFlagInputProducts | kFlagInputSteps;
/// Largest number of weights, zeros included, that the block-diagonal layers of one file may expand to when
/// read: 2^28, 1 GiB as f32. A dense layer cannot claim more weights than its tensor stores, but a few stored
/// blocks can claim a huge matrix, so this bounds what a small hostile file can make the reader allocate.
inline constexpr std::uint64_t kMaxExpandedWeights = kMaxTensorBytes / 4;

/// The fixed prefix of a model file, decoded from little-endian.
struct ArtifactPrefix {
  std::uint32_t format_version = 0;
  std::uint32_t flags = 0;
  std::uint64_t header_bytes = 0;   ///< Length of the JSON header, without its padding.
  std::uint64_t payload_bytes = 0;  ///< Length of the payload, from its 64-byte aligned start to the end of file.
  std::array<unsigned char, kChecksumBytes> checksum{};
};

/// Decodes the 64-byte prefix. Requires bytes.size() >= kArtifactPrefixBytes and checks nothing else.
ArtifactPrefix read_prefix(const std::string& bytes);

/// BLAKE2b-256 (libsodium crypto_generichash) over prefix bytes [0, 32) and every byte from offset 64 on.
std::array<unsigned char, kChecksumBytes> artifact_checksum(const std::string& bytes);

/// Builds a complete file from a JSON header text and a payload: the prefix with the given version and
/// flags, the header, zero padding to 64 bytes, the payload, and the checksum of all of it.
std::string assemble_artifact(const std::string& header_json, const std::string& payload,
                              std::uint32_t format_version = 1, std::uint32_t flags = 0);

/// The JSON header text and the payload of a file whose prefix sizes are consistent with its length.
struct ArtifactSections {
  std::string header_json;
  std::string payload;
};

/// Splits a file into header and payload without validating them. Throws ParseError when the prefix
/// sizes do not match the file length.
ArtifactSections split_artifact(const std::string& bytes);

// ---- Block-diagonal layers (flag kFlagBlockLayers). artifact_blocks.cpp implements these.

/// One diagonal block of a weight matrix: rows (outputs) [row, row + rows) and columns (inputs)
/// [column, column + columns).
struct WeightBlock {
  std::uint64_t row = 0;
  std::uint64_t column = 0;
  std::uint64_t rows = 0;
  std::uint64_t columns = 0;

  bool operator==(const WeightBlock& other) const {
    return row == other.row && column == other.column && rows == other.rows && columns == other.columns;
  }
};

/// Returns the blocks in which save_artifact stores the layer's weights, or no blocks when it stores them
/// dense. The blocks are G > 1 equal diagonal blocks, with the largest G that leaves out only weights that
/// are +0.0f (f32 layers) or 0 (int8 layers), so that a reader, which fills the gaps with those values,
/// restores every bit.
std::vector<WeightBlock> storage_blocks(const DenseLayer& layer);

/// Returns the number of weights in `blocks`: the sum of rows x columns.
std::uint64_t block_weight_count(const std::vector<WeightBlock>& blocks);

/// Copies the weights of `blocks` out of the row-major matrix `dense` with `inputs` columns: block after
/// block, each row-major. The blocks must lie inside the matrix.
std::vector<float> gather_blocks(const std::vector<float>& dense, std::size_t inputs,
                                 const std::vector<WeightBlock>& blocks);
std::vector<std::int8_t> gather_blocks(const std::vector<std::int8_t>& dense, std::size_t inputs,
                                       const std::vector<WeightBlock>& blocks);

/// Builds the outputs x inputs row-major matrix that holds `stored` in `blocks` and zeros elsewhere, the
/// inverse of gather_blocks. `stored` must hold block_weight_count(blocks) values.
std::vector<float> scatter_blocks(const std::vector<float>& stored, std::size_t outputs, std::size_t inputs,
                                  const std::vector<WeightBlock>& blocks);
std::vector<std::int8_t> scatter_blocks(const std::vector<std::int8_t>& stored, std::size_t outputs,
                                        std::size_t inputs, const std::vector<WeightBlock>& blocks);

/// Returns the header's list of `blocks`: an array of {"row", "column", "rows", "columns"} objects.
nlohmann::json blocks_to_json(const std::vector<WeightBlock>& blocks);

/// Parses the block list at `path` of a layer with `outputs` x `inputs` weights. Throws ParseError naming
/// the JSON path when the list is empty or malformed, or when a block is empty or reaches outside the
/// matrix. It also throws when a block does not start below and to the right of the previous one, because
/// that order rules out overlaps.
std::vector<WeightBlock> parse_blocks(const nlohmann::json& value, const std::string& path, std::uint64_t outputs,
                                      std::uint64_t inputs);

/// Bytes of the weight tensors that save_artifact stores for `network`: per layer the f32 or int8 weights
/// (only the blocks of a block-diagonal layer), the f32 biases, and the f32 weight scales of an int8 layer.
/// Header numbers such as an int8 layer's input scale, and the padding between tensors, do not count.
std::uint64_t stored_weight_bytes(const Mlp& network);

}  // namespace lepton::detail
