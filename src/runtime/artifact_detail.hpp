#pragma once
// Byte layout of the model file, format 1 and its int8 flag. docs/model-format.md is the full description.
// Not installed. Tests use these helpers to build hostile files with a valid checksum.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

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
/// Every flag that this build reads.
inline constexpr std::uint32_t kKnownFlags = kFlagInt8Layers;

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

}  // namespace lepton::detail
