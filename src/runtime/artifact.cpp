// Model file format 1: a 64-byte little-endian prefix, a JSON header and a 64-byte aligned tensor payload.
// docs/model-format.md documents every field. The parser checks every size, offset, dtype and shape
// before it reads tensor data, so a hostile file fails with a ParseError instead of a huge allocation.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

#include <fmt/format.h>
#include <sodium.h>

#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "lepton/model.hpp"
#include "runtime/artifact_detail.hpp"
#include "runtime/json_syntax.hpp"
#include "runtime/model_detail.hpp"

namespace lepton {

namespace {

// ---- Little-endian encoding, byte by byte, so that the layout does not depend on the host.

void put_u32(std::string& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) {
    out[at + i] = static_cast<char>((value >> (8 * i)) & 0xFFu);
  }
}

void put_u64(std::string& out, std::size_t at, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    out[at + i] = static_cast<char>((value >> (8 * i)) & 0xFFu);
  }
}

std::uint32_t get_u32(const std::string& in, std::size_t at) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return value;
}

std::uint64_t get_u64(const std::string& in, std::size_t at) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) {
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return value;
}

void put_f32(std::string& out, std::size_t at, float value) {
  static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559, "float must be IEEE 754 binary32");
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  put_u32(out, at, bits);
}

float get_f32(const std::string& in, std::size_t at) {
  const std::uint32_t bits = get_u32(in, at);
  float value = 0;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// Rounds up to the alignment. Returns false on overflow.
bool align_up(std::uint64_t value, std::uint64_t& aligned) {
  const std::uint64_t mask = detail::kArtifactAlignment - 1;
  if (value > std::numeric_limits<std::uint64_t>::max() - mask) {
    return false;
  }
  aligned = (value + mask) & ~mask;
  return true;
}

std::uint64_t align_up_unchecked(std::uint64_t value) {
  std::uint64_t aligned = 0;
  if (!align_up(value, aligned)) {
    throw InternalError(fmt::format("align_up: {} overflows when rounded up to {} bytes", value,
                                    detail::kArtifactAlignment));
  }
  return aligned;
}

void ensure_sodium() {
  static const int status = sodium_init();
  if (status < 0) {
    throw InternalError("libsodium: sodium_init() failed, so the model checksum cannot be computed");
  }
}

// ---- Dtypes. Format 1 stores layer tensors as f32 and reserves i8 and i32 for quantized formats.

std::uint64_t dtype_size(const std::string& dtype) {
  if (dtype == "f32" || dtype == "i32") {
    return 4;
  }
  if (dtype == "i8") {
    return 1;
  }
  return 0;
}

// ---- Serialization.

// Checks an int8 layer with the rules that the parser applies, so that a written file always loads.
void check_quantized_weights(const DenseLayer& layer, std::size_t index) {
  if (layer.precision != LayerPrecision::Int8) {
    return;
  }
  const QuantizedWeights& quantized = layer.quantized;
  if (quantized.values.size() != layer.outputs * layer.inputs || quantized.scales.size() != layer.outputs) {
    throw InvalidArgument(fmt::format("serialize_artifact: int8 layer {} has {} weights and {} scales, expected "
                                      "{} x {} and {}",
                                      index, quantized.values.size(), quantized.scales.size(), layer.outputs,
                                      layer.inputs, layer.outputs));
  }
  if (std::find(quantized.values.begin(), quantized.values.end(), std::int8_t{-128}) != quantized.values.end()) {
    throw InvalidArgument(fmt::format("serialize_artifact: int8 layer {} has a weight of -128; clamp weights to "
                                      "[-127, 127]",
                                      index));
  }
  for (const float scale : quantized.scales) {
    if (!std::isfinite(scale) || scale <= 0.0f) {
      throw InvalidArgument(fmt::format("serialize_artifact: int8 layer {} has weight scale {}, expected a finite "
                                        "number > 0",
                                        index, scale));
    }
  }
  if (!std::isfinite(quantized.input_scale) || quantized.input_scale < 0.0f) {
    throw InvalidArgument(fmt::format("serialize_artifact: int8 layer {} has input scale {}, expected 0 or a "
                                      "finite number > 0",
                                      index, quantized.input_scale));
  }
}

void check_artifact_consistency(const ModelArtifact& artifact) {
  try {
    artifact.network.validate();
  } catch (const InvalidArgument& error) {
    throw InvalidArgument(fmt::format("serialize_artifact: invalid network: {}", error.what()));
  }

  if (artifact.target.task != artifact.task) {
    throw InvalidArgument(fmt::format("serialize_artifact: the target encoding is for task {} but the artifact is "
                                      "for task {}; fit the target encoding for the artifact's task",
                                      detail::task_name(artifact.target.task), detail::task_name(artifact.task)));
  }

  const std::size_t encoded_width = artifact.preprocessor.encoded_width();
  if (artifact.network.inputs() != encoded_width) {
    throw InvalidArgument(fmt::format("serialize_artifact: the network has {} inputs but the preprocessor encodes "
                                      "{} columns; build the first layer with {} inputs",
                                      artifact.network.inputs(), encoded_width, encoded_width));
  }

  const std::size_t outputs = detail::expected_outputs(artifact.task, artifact.target);
  if (artifact.network.outputs() != outputs) {
    throw InvalidArgument(fmt::format("serialize_artifact: the network has {} outputs but task {} needs {}",
                                      artifact.network.outputs(), detail::task_name(artifact.task), outputs));
  }

  if (!std::isfinite(artifact.threshold)) {
    throw InvalidArgument(fmt::format("serialize_artifact: threshold is {}, expected a finite number",
                                      artifact.threshold));
  }

  for (std::size_t i = 0; i < artifact.network.layers.size(); ++i) {
    check_quantized_weights(artifact.network.layers[i], i);
  }
}

struct TensorPlacement {
  std::string name;
  std::string dtype;  // "f32" or "i8"
  std::vector<std::uint64_t> shape;
  const float* f32 = nullptr;         // set when dtype is "f32"
  const std::int8_t* i8 = nullptr;    // set when dtype is "i8"
  std::size_t count = 0;              // elements
  std::uint64_t offset = 0;

  std::uint64_t nbytes() const { return count * dtype_size(dtype); }
};

// The weights that the file stores for one layer: all of them, or only its diagonal blocks.
struct StoredWeights {
  std::vector<detail::WeightBlock> blocks;  // Empty when the layer is stored dense.
  std::vector<float> f32;                   // The blocks' f32 weights, for an f32 layer with blocks.
  std::vector<std::int8_t> i8;              // The blocks' int8 weights, for an int8 layer with blocks.
};

std::vector<StoredWeights> stored_weights(const Mlp& network) {
  std::vector<StoredWeights> stored(network.layers.size());
  for (std::size_t i = 0; i < network.layers.size(); ++i) {
    const DenseLayer& layer = network.layers[i];
    stored[i].blocks = detail::storage_blocks(layer);
    if (stored[i].blocks.empty()) {
      continue;
    }
    if (layer.precision == LayerPrecision::Int8) {
      stored[i].i8 = detail::gather_blocks(layer.quantized.values, layer.inputs, stored[i].blocks);
    } else {
      stored[i].f32 = detail::gather_blocks(layer.weight, layer.inputs, stored[i].blocks);
    }
  }
  return stored;
}

// Appends one tensor at `cursor` and returns the next 64-byte boundary after it.
std::uint64_t place(std::vector<TensorPlacement>& placements, TensorPlacement placement, std::uint64_t cursor) {
  placement.offset = cursor;
  const std::uint64_t end = cursor + placement.nbytes();
  placements.push_back(std::move(placement));
  return align_up_unchecked(end);
}

// The weight tensor of layer `index`: shape [outputs, inputs] when dense, [stored weights] with blocks.
TensorPlacement weight_placement(const DenseLayer& layer, const StoredWeights& stored, std::size_t index) {
  TensorPlacement placement;
  placement.name = fmt::format("layers.{}.weight", index);
  const bool int8 = layer.precision == LayerPrecision::Int8;
  placement.dtype = int8 ? "i8" : "f32";
  if (stored.blocks.empty()) {
    placement.shape = {layer.outputs, layer.inputs};
    placement.f32 = int8 ? nullptr : layer.weight.data();
    placement.i8 = int8 ? layer.quantized.values.data() : nullptr;
    placement.count = layer.outputs * layer.inputs;
  } else {
    placement.count = int8 ? stored.i8.size() : stored.f32.size();
    placement.shape = {placement.count};
    placement.f32 = int8 ? nullptr : stored.f32.data();
    placement.i8 = int8 ? stored.i8.data() : nullptr;
  }
  return placement;
}

// Lays out every layer's tensors, each at the next 64-byte boundary. An int8 layer stores its int8 weights
// and per-output scales in place of the f32 weights. Returns the payload length.
std::uint64_t place_tensors(const Mlp& network, const std::vector<StoredWeights>& stored,
                            std::vector<TensorPlacement>& placements) {
  std::uint64_t cursor = 0;
  for (std::size_t i = 0; i < network.layers.size(); ++i) {
    const DenseLayer& layer = network.layers[i];
    cursor = place(placements, weight_placement(layer, stored[i], i), cursor);
    if (layer.precision == LayerPrecision::Int8) {
      const QuantizedWeights& quantized = layer.quantized;
      cursor = place(placements,
                     {fmt::format("layers.{}.weight_scale", i), "f32", {layer.outputs}, quantized.scales.data(),
                      nullptr, quantized.scales.size()},
                     cursor);
    }
    cursor = place(placements,
                   {fmt::format("layers.{}.bias", i), "f32", {layer.outputs}, layer.bias.data(), nullptr,
                    layer.bias.size()},
                   cursor);
  }
  return cursor;
}

void write_tensor(const TensorPlacement& placement, std::string& payload) {
  for (std::size_t i = 0; i < placement.count; ++i) {
    if (placement.i8 != nullptr) {
      payload[placement.offset + i] = static_cast<char>(placement.i8[i]);
    } else {
      put_f32(payload, placement.offset + 4 * i, placement.f32[i]);
    }
  }
}

// True when some product is a difference or a step, the fields that flag 0x8 announces.
bool has_step_fields(const std::vector<InputProduct>& products) {
  return std::any_of(products.begin(), products.end(),
                     [](const InputProduct& product) { return product.difference || product.step; });
}

// Sets a flag only when the file needs it, so that builds which predate int8 or block-diagonal layers still
// read every file without them.
std::uint32_t prefix_flags(const Mlp& network, const std::vector<StoredWeights>& stored) {
  std::uint32_t flags = 0;
  if (std::any_of(network.layers.begin(), network.layers.end(),
                  [](const DenseLayer& layer) { return layer.precision == LayerPrecision::Int8; })) {
    flags |= detail::kFlagInt8Layers;
  }
  if (std::any_of(stored.begin(), stored.end(), [](const StoredWeights& layer) { return !layer.blocks.empty(); })) {
    flags |= detail::kFlagBlockLayers;
  }
  if (!network.products.empty()) flags |= detail::kFlagInputProducts;
  if (has_step_fields(network.products)) flags |= detail::kFlagInputSteps;
  return flags;
}

nlohmann::json products_to_json(const std::vector<InputProduct>& products) {
  nlohmann::json out = nlohmann::json::array();
  for (const InputProduct& product : products) {
    nlohmann::json entry = {{"left", product.left},
                            {"right", product.right},
                            {"left_scale", product.left_scale},
                            {"left_shift", product.left_shift},
                            {"right_scale", product.right_scale},
                            {"right_shift", product.right_shift},
                            {"mean", product.mean},
                            {"scale", product.scale}};
    // Written only when used, so that plain products stay readable by builds without flag 0x8.
    if (product.difference) entry["difference"] = true;
    if (product.step) entry["step"] = *product.step;
    out.push_back(std::move(entry));
  }
  return out;
}

nlohmann::json network_to_json(const Mlp& network, const std::vector<StoredWeights>& stored) {
  nlohmann::json layers = nlohmann::json::array();
  for (std::size_t i = 0; i < network.layers.size(); ++i) {
    const DenseLayer& layer = network.layers[i];
    nlohmann::json entry = {{"inputs", layer.inputs},
                            {"outputs", layer.outputs},
                            {"activation", to_string(layer.activation)},
                            {"weight", fmt::format("layers.{}.weight", i)},
                            {"bias", fmt::format("layers.{}.bias", i)}};
    if (layer.precision == LayerPrecision::Int8) {
      entry["precision"] = to_string(LayerPrecision::Int8);
      entry["weight_scale"] = fmt::format("layers.{}.weight_scale", i);
      entry["input_scale"] = layer.quantized.input_scale;
    }
    if (!stored[i].blocks.empty()) {
      entry["blocks"] = detail::blocks_to_json(stored[i].blocks);
    }
    layers.push_back(std::move(entry));
  }
  nlohmann::json out = {{"layers", std::move(layers)}};
  if (!network.products.empty()) out["products"] = products_to_json(network.products);
  return out;
}

nlohmann::json header_to_json(const ModelArtifact& artifact, const std::vector<StoredWeights>& stored,
                              const std::vector<TensorPlacement>& placements) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorPlacement& placement : placements) {
    tensors.push_back({{"name", placement.name},
                       {"dtype", placement.dtype},
                       {"shape", placement.shape},
                       {"offset", placement.offset},
                       {"nbytes", placement.nbytes()}});
  }

  return {{"task", detail::task_name(artifact.task)},
          {"target", artifact.target.to_json()},
          {"preprocessor", artifact.preprocessor.to_json()},
          {"network", network_to_json(artifact.network, stored)},
          {"threshold", artifact.threshold},
          {"configuration", artifact.configuration},
          {"metrics", artifact.metrics},
          {"provenance", artifact.provenance.to_json()},
          {"extensions", artifact.extensions},
          {"tensors", std::move(tensors)}};
}

// ---- Parsing. Every helper below throws ParseError "<what> (<JSON path or byte offset>)";
// parse_artifact adds the source in front.

struct TensorEntry {
  std::string dtype;
  std::vector<std::uint64_t> shape;
  std::uint64_t offset = 0;
  std::uint64_t nbytes = 0;
};

struct PayloadView {
  const std::string& bytes;
  std::uint64_t start = 0;  // File offset of the payload.
  std::uint64_t size = 0;
};

void check_magic(const std::string& bytes) {
  const std::size_t compared = std::min(bytes.size(), sizeof detail::kArtifactMagic);
  if (std::memcmp(bytes.data(), detail::kArtifactMagic, compared) != 0) {
    throw ParseError("not a Lepton model file: the first bytes are not \"LEPTONMD\"; pass a model file written "
                     "by `lepton run` or lepton::save_artifact (byte offset 0)");
  }
  if (bytes.size() < detail::kArtifactPrefixBytes) {
    throw ParseError(fmt::format("the file is {} bytes, shorter than the {}-byte prefix, so it is truncated "
                                 "(byte offset {})",
                                 bytes.size(), detail::kArtifactPrefixBytes, bytes.size()));
  }
}

void check_version(std::uint32_t version) {
  if (version > ModelArtifact::kFormatVersion) {
    throw ParseError(fmt::format("written by a newer Lepton (format {}); this build reads format {}. Upgrade "
                                 "Lepton to load it (byte offset 8)",
                                 version, ModelArtifact::kFormatVersion));
  }
  if (version == 0) {
    throw ParseError("format version 0 does not exist; the file is corrupted (byte offset 8)");
  }
}

// Checks that the prefix sizes describe exactly this file. Returns the payload's file offset.
std::uint64_t check_sizes(const std::string& bytes, const detail::ArtifactPrefix& prefix) {
  const std::uint64_t after_prefix = bytes.size() - detail::kArtifactPrefixBytes;
  if (prefix.header_bytes == 0) {
    throw ParseError("header_bytes is 0, but every file has a JSON header; the file is corrupted (byte offset 16)");
  }

  std::uint64_t padded_header = 0;
  if (!align_up(prefix.header_bytes, padded_header) || padded_header > after_prefix) {
    throw ParseError(fmt::format("header_bytes is {} but only {} bytes follow the prefix, so the file is "
                                 "truncated or corrupted (byte offset 16)",
                                 prefix.header_bytes, after_prefix));
  }

  const std::uint64_t payload_start = detail::kArtifactPrefixBytes + padded_header;
  const std::uint64_t available = bytes.size() - payload_start;
  if (prefix.payload_bytes != available) {
    throw ParseError(fmt::format("payload_bytes is {} but {} bytes follow the header, so the file is {} "
                                 "(byte offset 24)",
                                 prefix.payload_bytes, available,
                                 prefix.payload_bytes > available ? "truncated" : "followed by extra bytes"));
  }
  return payload_start;
}

void check_checksum(const std::string& bytes, const detail::ArtifactPrefix& prefix) {
  if (detail::artifact_checksum(bytes) != prefix.checksum) {
    throw ParseError(fmt::format("checksum mismatch: the file is corrupted or was modified (byte offset {})",
                                 detail::kChecksumOffset));
  }
}

void check_flags(std::uint32_t flags) {
  if ((flags & ~detail::kKnownFlags) != 0) {
    throw ParseError(fmt::format("flags are {:#x}, but this build reads only flags {:#x} (int8 layers), {:#x} "
                                 "(block-diagonal layers), {:#x} (input products) and {:#x} (difference and step "
                                 "products); the file needs a newer Lepton (byte offset 12)",
                                 flags, detail::kFlagInt8Layers, detail::kFlagBlockLayers, detail::kFlagInputProducts,
                                 detail::kFlagInputSteps));
  }
}

void check_header_padding(const std::string& bytes, std::uint64_t header_end, std::uint64_t payload_start) {
  for (std::uint64_t at = header_end; at < payload_start; ++at) {
    if (bytes[at] != '\0') {
      throw ParseError(fmt::format("header padding must be zero bytes, found {:#04x} (byte offset {})",
                                   static_cast<unsigned char>(bytes[at]), at));
    }
  }
}

nlohmann::json parse_header_json(const std::string& bytes, std::uint64_t header_bytes) {
  const std::string text = bytes.substr(detail::kArtifactPrefixBytes, header_bytes);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& error) {
    // nlohmann counts error.byte from 1.
    const std::uint64_t offset = detail::kArtifactPrefixBytes + (error.byte > 0 ? error.byte - 1 : 0);
    throw ParseError(fmt::format("the JSON header is invalid: {} (byte offset {})",
                                 detail::json_syntax_reason(error.what()), offset));
  }
}

std::vector<std::uint64_t> parse_shape(const nlohmann::json& value, const std::string& path) {
  if (!value.is_array()) {
    throw ParseError(fmt::format("expected an array of dimensions, got {} ({})", value.dump(), path));
  }
  std::vector<std::uint64_t> shape;
  for (std::size_t i = 0; i < value.size(); ++i) {
    shape.push_back(detail::read_unsigned(value[i], fmt::format("{}[{}]", path, i)));
  }
  return shape;
}

// Checks that shape x element size == nbytes without overflowing.
void check_tensor_size(const TensorEntry& entry, std::uint64_t element_size, const std::string& path) {
  if (entry.nbytes > detail::kMaxTensorBytes) {
    throw ParseError(fmt::format("nbytes is {}, over the limit of {} bytes per tensor ({}.nbytes)", entry.nbytes,
                                 detail::kMaxTensorBytes, path));
  }

  std::uint64_t elements = 1;
  for (const std::uint64_t dimension : entry.shape) {
    if (dimension != 0 && elements > detail::kMaxTensorBytes / dimension) {
      throw ParseError(fmt::format("shape {} has more than {} elements, over the tensor size limit ({}.shape)",
                                   nlohmann::json(entry.shape).dump(), detail::kMaxTensorBytes, path));
    }
    elements *= dimension;
  }

  if (elements * element_size != entry.nbytes) {
    throw ParseError(fmt::format("shape {} of {} needs {} bytes but nbytes is {} ({})",
                                 nlohmann::json(entry.shape).dump(), entry.dtype, elements * element_size,
                                 entry.nbytes, path));
  }
}

TensorEntry parse_tensor_entry(const nlohmann::json& value, const std::string& path, std::uint64_t payload_bytes) {
  detail::require_object(value, path);
  detail::reject_unknown_members(value, path, {"name", "dtype", "shape", "offset", "nbytes"});

  TensorEntry entry;
  entry.dtype = detail::read_string(detail::require_member(value, path, "dtype"), path + ".dtype");
  const std::uint64_t element_size = dtype_size(entry.dtype);
  if (element_size == 0) {
    throw ParseError(fmt::format("unknown dtype \"{}\"; format 1 defines \"f32\", \"i8\" and \"i32\" ({}.dtype)",
                                 entry.dtype, path));
  }
  entry.shape = parse_shape(detail::require_member(value, path, "shape"), path + ".shape");
  entry.offset = detail::read_unsigned(detail::require_member(value, path, "offset"), path + ".offset");
  entry.nbytes = detail::read_unsigned(detail::require_member(value, path, "nbytes"), path + ".nbytes");
  check_tensor_size(entry, element_size, path);

  if (entry.offset % detail::kArtifactAlignment != 0) {
    throw ParseError(fmt::format("offset {} is not a multiple of {} ({}.offset)", entry.offset,
                                 detail::kArtifactAlignment, path));
  }
  if (entry.offset > payload_bytes || entry.nbytes > payload_bytes - entry.offset) {
    throw ParseError(fmt::format("bytes [{}, {}+{}) lie outside the payload of {} bytes ({})", entry.offset,
                                 entry.offset, entry.nbytes, payload_bytes, path));
  }
  return entry;
}

void check_no_overlap(const std::map<std::string, TensorEntry>& tensors) {
  std::vector<std::pair<const std::string*, const TensorEntry*>> by_offset;
  for (const auto& [name, entry] : tensors) {
    by_offset.emplace_back(&name, &entry);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto& a, const auto& b) { return a.second->offset < b.second->offset; });

  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const TensorEntry& previous = *by_offset[i - 1].second;
    const TensorEntry& current = *by_offset[i].second;
    if (previous.nbytes > 0 && current.nbytes > 0 && previous.offset + previous.nbytes > current.offset) {
      throw ParseError(fmt::format("tensor \"{}\" at offset {} overlaps tensor \"{}\", which ends at {} ($.tensors)",
                                   *by_offset[i].first, current.offset, *by_offset[i - 1].first,
                                   previous.offset + previous.nbytes));
    }
  }
}

std::map<std::string, TensorEntry> parse_tensor_table(const nlohmann::json& value, std::uint64_t payload_bytes) {
  if (!value.is_array()) {
    throw ParseError(fmt::format("expected an array of tensors, got {} ($.tensors)", value.type_name()));
  }

  std::map<std::string, TensorEntry> tensors;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string path = fmt::format("$.tensors[{}]", i);
    const std::string name = detail::read_string(detail::require_member(value[i], path, "name"), path + ".name");
    if (name.empty()) {
      throw ParseError(fmt::format("tensor name is empty; give every tensor a unique name ({}.name)", path));
    }
    TensorEntry entry = parse_tensor_entry(value[i], path, payload_bytes);
    if (!tensors.emplace(name, std::move(entry)).second) {
      throw ParseError(fmt::format("tensor name \"{}\" appears twice; names must be unique ({}.name)", name, path));
    }
  }

  check_no_overlap(tensors);
  return tensors;
}

// Finds a layer's tensor and checks its dtype and shape before any of its bytes are read.
const TensorEntry& find_layer_tensor(const std::string& name, const std::string& path, const std::string& dtype,
                                     const std::vector<std::uint64_t>& expected_shape,
                                     const std::map<std::string, TensorEntry>& tensors) {
  const auto found = tensors.find(name);
  if (found == tensors.end()) {
    throw ParseError(fmt::format("tensor \"{}\" is not listed in $.tensors ({})", name, path));
  }
  const TensorEntry& entry = found->second;
  if (entry.dtype != dtype) {
    throw ParseError(fmt::format("tensor \"{}\" has dtype \"{}\", but dense layers need \"{}\" in this field ({})", name,
                                 entry.dtype, dtype, path));
  }
  if (entry.shape != expected_shape) {
    throw ParseError(fmt::format("tensor \"{}\" has shape {}, expected {} ({})", name,
                                 nlohmann::json(entry.shape).dump(), nlohmann::json(expected_shape).dump(), path));
  }
  return entry;
}

// Copies one f32 tensor out of the payload after checking that it has the expected shape.
std::vector<float> read_f32_tensor(const nlohmann::json& name_value, const std::string& path,
                                   const std::vector<std::uint64_t>& expected_shape,
                                   const std::map<std::string, TensorEntry>& tensors, const PayloadView& payload) {
  const std::string name = detail::read_string(name_value, path);
  const TensorEntry& entry = find_layer_tensor(name, path, "f32", expected_shape, tensors);

  std::vector<float> values(entry.nbytes / 4);
  const std::uint64_t start = payload.start + entry.offset;
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = get_f32(payload.bytes, start + 4 * i);
  }
  return values;
}

// Copies one i8 weight tensor. -128 is rejected because the kernels need |q| <= 127.
std::vector<std::int8_t> read_i8_tensor(const nlohmann::json& name_value, const std::string& path,
                                        const std::vector<std::uint64_t>& expected_shape,
                                        const std::map<std::string, TensorEntry>& tensors,
                                        const PayloadView& payload) {
  const std::string name = detail::read_string(name_value, path);
  const TensorEntry& entry = find_layer_tensor(name, path, "i8", expected_shape, tensors);

  std::vector<std::int8_t> values(entry.nbytes);
  const std::uint64_t start = payload.start + entry.offset;
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = static_cast<std::int8_t>(static_cast<unsigned char>(payload.bytes[start + i]));
    if (values[i] == -128) {
      throw ParseError(fmt::format("tensor \"{}\" element {} is -128, but int8 weights must lie in [-127, 127] "
                                   "(byte offset {})",
                                   name, i, start + i));
    }
  }
  return values;
}

// The layer fields that the prefix flags allow.
struct LayerFields {
  bool int8 = false;      // precision, weight_scale and input_scale (flag 0x1).
  bool blocks = false;    // blocks (flag 0x2).
  bool products = false;  // $.network.products (flag 0x4).
  bool steps = false;     // difference and step of a product (flag 0x8).
};

// Reads the optional precision. reject_unknown_layer_fields has already rejected it in a file without flag 0x1.
LayerPrecision parse_precision(const nlohmann::json& layer, const std::string& path) {
  const auto found = layer.find("precision");
  if (found == layer.end()) {
    return LayerPrecision::F32;
  }
  const std::string text = detail::read_string(*found, path + ".precision");
  if (text == to_string(LayerPrecision::F32)) {
    return LayerPrecision::F32;
  }
  if (text == to_string(LayerPrecision::Int8)) {
    return LayerPrecision::Int8;
  }
  throw ParseError(fmt::format("unknown precision \"{}\"; expected \"f32\" or \"i8\" ({}.precision)", text, path));
}

// The layout of a layer's weight tensor: the whole outputs x inputs matrix, or only the diagonal blocks that
// $.network.layers[i].blocks lists, one after the other.
struct WeightLayout {
  std::vector<detail::WeightBlock> blocks;  // Empty when the layer is stored dense.
  std::vector<std::uint64_t> shape;         // The shape that the weight tensor must have.
};

// Reads the layer's block list, if any. `expanded_weights` counts the weights, zeros included, of the
// block-diagonal layers before this one, and this layer's are added to it.
WeightLayout parse_weight_layout(const nlohmann::json& value, const std::string& path, const DenseLayer& layer,
                                 std::uint64_t& expanded_weights) {
  const std::uint64_t outputs = layer.outputs;
  const std::uint64_t inputs = layer.inputs;
  WeightLayout layout;
  const auto found = value.find("blocks");
  if (found == value.end()) {
    layout.shape = {outputs, inputs};
    return layout;
  }
  // The reader expands the blocks to the whole matrix, so its size is checked before any block is read.
  const std::uint64_t left = detail::kMaxExpandedWeights - expanded_weights;
  if (inputs > left / outputs) {
    throw ParseError(fmt::format("the block-diagonal layer of {} x {} weights would bring the block-diagonal "
                                 "layers of this file to more than {} weights, the limit of what a reader expands "
                                 "({}.blocks)",
                                 outputs, inputs, detail::kMaxExpandedWeights, path));
  }
  expanded_weights += outputs * inputs;

  layout.blocks = detail::parse_blocks(*found, path + ".blocks", outputs, inputs);
  layout.shape = {detail::block_weight_count(layout.blocks)};
  return layout;
}

// Reads the layer's f32 weights as the whole outputs x inputs matrix, with zeros outside any blocks.
std::vector<float> read_f32_weights(const nlohmann::json& value, const std::string& path, const DenseLayer& layer,
                                    const WeightLayout& layout, const std::map<std::string, TensorEntry>& tensors,
                                    const PayloadView& payload) {
  std::vector<float> stored =
      read_f32_tensor(detail::require_member(value, path, "weight"), path + ".weight", layout.shape, tensors, payload);
  if (layout.blocks.empty()) {
    return stored;
  }
  return detail::scatter_blocks(stored, layer.outputs, layer.inputs, layout.blocks);
}

// Reads the int8 weights, their scales and the input scale, then stores the dequantized weights in
// layer.weight for code that reads f32 weights.
void parse_int8_weights(const nlohmann::json& value, const std::string& path, const WeightLayout& layout,
                        const std::map<std::string, TensorEntry>& tensors, const PayloadView& payload,
                        DenseLayer& layer) {
  const std::uint64_t outputs = layer.outputs;
  QuantizedWeights& quantized = layer.quantized;
  quantized.values = read_i8_tensor(detail::require_member(value, path, "weight"), path + ".weight", layout.shape,
                                    tensors, payload);
  if (!layout.blocks.empty()) {
    quantized.values = detail::scatter_blocks(quantized.values, layer.outputs, layer.inputs, layout.blocks);
  }
  quantized.scales = read_f32_tensor(detail::require_member(value, path, "weight_scale"), path + ".weight_scale",
                                     {outputs}, tensors, payload);
  for (std::size_t o = 0; o < quantized.scales.size(); ++o) {
    if (!std::isfinite(quantized.scales[o]) || quantized.scales[o] <= 0.0f) {
      throw ParseError(fmt::format("weight scale {} is {}, expected a finite number > 0 ({}.weight_scale)", o,
                                   quantized.scales[o], path));
    }
  }

  const double input_scale =
      detail::read_number(detail::require_member(value, path, "input_scale"), path + ".input_scale");
  if (!std::isfinite(input_scale) || input_scale < 0 || input_scale > std::numeric_limits<float>::max()) {
    throw ParseError(fmt::format("input_scale is {}, expected 0 (one scale per row) or a finite number > 0 "
                                 "({}.input_scale)",
                                 input_scale, path));
  }
  quantized.input_scale = static_cast<float>(input_scale);

  layer.weight.resize(quantized.values.size());
  for (std::size_t i = 0; i < quantized.values.size(); ++i) {
    layer.weight[i] = static_cast<float>(quantized.values[i]) * quantized.scales[i / layer.inputs];
  }
}

// Rejects unknown fields, and the fields of int8 or block-diagonal layers in a file without their prefix flag.
void reject_unknown_layer_fields(const nlohmann::json& value, const std::string& path, const LayerFields& fields) {
  detail::reject_unknown_members(value, path,
                                 {"inputs", "outputs", "activation", "weight", "bias", "precision", "weight_scale",
                                  "input_scale", "blocks"});

  struct FlaggedField {
    const char* key;
    bool allowed;
    std::uint32_t flag;
    const char* layers;
  };
  const FlaggedField flagged[] = {{"precision", fields.int8, detail::kFlagInt8Layers, "int8 layers"},
                                  {"weight_scale", fields.int8, detail::kFlagInt8Layers, "int8 layers"},
                                  {"input_scale", fields.int8, detail::kFlagInt8Layers, "int8 layers"},
                                  {"blocks", fields.blocks, detail::kFlagBlockLayers, "block-diagonal layers"}};
  for (const FlaggedField& field : flagged) {
    if (!field.allowed && value.contains(field.key)) {
      throw ParseError(fmt::format("unknown field \"{}\"; a file with {} must set prefix flag {:#x} ({}.{})",
                                   field.key, field.layers, field.flag, path, field.key));
    }
  }
}

// Checks that layer `index` reads the previous layer's outputs, or for layer 0 the preprocessor's encoded columns,
// before any of its tensors are read. So a layer's matrix is never wider than a bias tensor or the preprocessor
// that the file stores.
void check_layer_inputs(std::size_t index, std::uint64_t inputs, std::uint64_t expected_inputs,
                        const std::string& path) {
  if (inputs == expected_inputs) {
    return;
  }
  if (index == 0) {
    throw ParseError(fmt::format("the first layer has {} inputs but expects {}: the preprocessor's encoded columns "
                                 "and one per input product ({}.inputs)",
                                 inputs, expected_inputs, path));
  }
  throw ParseError(fmt::format("layer {} has {} inputs but layer {} has {} outputs ({}.inputs)", index, inputs,
                               index - 1, expected_inputs, path));
}

// Parses layer `index`, whose inputs must equal `expected_inputs`.
DenseLayer parse_layer(const nlohmann::json& value, std::size_t index, std::uint64_t expected_inputs,
                       const std::map<std::string, TensorEntry>& tensors, const PayloadView& payload,
                       const LayerFields& fields, std::uint64_t& expanded_weights) {
  const std::string path = fmt::format("$.network.layers[{}]", index);
  detail::require_object(value, path);
  reject_unknown_layer_fields(value, path, fields);

  DenseLayer layer;
  const std::uint64_t inputs = detail::read_unsigned(detail::require_member(value, path, "inputs"), path + ".inputs");
  const std::uint64_t outputs =
      detail::read_unsigned(detail::require_member(value, path, "outputs"), path + ".outputs");
  if (inputs == 0 || outputs == 0) {
    throw ParseError(fmt::format("a layer needs at least 1 input and 1 output, got {} and {} ({})", inputs, outputs,
                                 path));
  }
  check_layer_inputs(index, inputs, expected_inputs, path);
  layer.inputs = static_cast<std::size_t>(inputs);
  layer.outputs = static_cast<std::size_t>(outputs);

  const std::string activation =
      detail::read_string(detail::require_member(value, path, "activation"), path + ".activation");
  if (!detail::parse_activation(activation, layer.activation)) {
    throw ParseError(fmt::format("unknown activation \"{}\"; expected identity, relu, gelu or tanh ({}.activation)",
                                 activation, path));
  }

  // The tensor table bounds every shape. The blocks of a layer expand to a matrix that the chain check above
  // and parse_weight_layout bound, so these reads cannot allocate much more than the file holds.
  layer.precision = parse_precision(value, path);
  const WeightLayout layout = parse_weight_layout(value, path, layer, expanded_weights);
  if (layer.precision == LayerPrecision::Int8) {
    parse_int8_weights(value, path, layout, tensors, payload, layer);
  } else {
    for (const char* key : {"weight_scale", "input_scale"}) {
      if (value.contains(key)) {
        throw ParseError(fmt::format("field \"{}\" belongs to int8 layers, but this layer is f32 ({}.{})", key,
                                     path, key));
      }
    }
    layer.weight = read_f32_weights(value, path, layer, layout, tensors, payload);
  }
  layer.bias = read_f32_tensor(detail::require_member(value, path, "bias"), path + ".bias", {outputs}, tensors,
                               payload);
  return layer;
}

// Reads a product's optional difference and step, which only files with flag 0x8 may hold.
void parse_product_kind(const nlohmann::json& value, const std::string& item, bool allowed, InputProduct& product) {
  for (const char* key : {"difference", "step"}) {
    if (value.contains(key) && !allowed) {
      throw ParseError(fmt::format("unknown field \"{}\"; a file with difference or step products must set prefix "
                                   "flag {:#x} ({}.{})",
                                   key, detail::kFlagInputSteps, item, key));
    }
  }
  if (const auto found = value.find("difference"); found != value.end()) {
    if (!found->is_boolean()) {
      throw ParseError(fmt::format("expected true or false, got {} ({}.difference)", found->dump(), item));
    }
    product.difference = found->get<bool>();
  }
  if (const auto found = value.find("step"); found != value.end()) {
    const double step = detail::read_number(*found, item + ".step");
    if (!std::isfinite(step)) {
      throw ParseError(fmt::format("{} is not a finite number ({}.step)", step, item));
    }
    product.step = step;
  }
}

// Parses $.network.products: each product reads two of the `encoded_width` columns.
std::vector<InputProduct> parse_products(const nlohmann::json& value, std::uint64_t encoded_width, bool steps) {
  const std::string path = "$.network.products";
  if (!value.is_array() || value.empty()) {
    throw ParseError(fmt::format("expected a non-empty array of input products, got {} ({})", value.dump(), path));
  }

  std::vector<InputProduct> products;
  for (std::size_t k = 0; k < value.size(); ++k) {
    const std::string item = fmt::format("{}[{}]", path, k);
    detail::require_object(value[k], item);
    detail::reject_unknown_members(value[k], item,
                                   {"left", "right", "left_scale", "left_shift", "right_scale", "right_shift", "mean",
                                    "scale", "difference", "step"});
    InputProduct product;
    parse_product_kind(value[k], item, steps, product);
    for (auto [key, column] : {std::pair{"left", &product.left}, std::pair{"right", &product.right}}) {
      const std::uint64_t index = detail::read_unsigned(detail::require_member(value[k], item, key), item + "." + key);
      if (index >= encoded_width) {
        throw ParseError(fmt::format("column {} is outside the preprocessor's {} encoded columns ({}.{})", index,
                                     encoded_width, item, key));
      }
      *column = static_cast<std::size_t>(index);
    }
    for (auto [key, term] : {std::pair{"left_scale", &product.left_scale}, std::pair{"left_shift", &product.left_shift},
                             std::pair{"right_scale", &product.right_scale},
                             std::pair{"right_shift", &product.right_shift}, std::pair{"mean", &product.mean},
                             std::pair{"scale", &product.scale}}) {
      *term = detail::read_number(detail::require_member(value[k], item, key), item + "." + key);
      if (!std::isfinite(*term)) {
        throw ParseError(fmt::format("{} is not a finite number ({}.{})", *term, item, key));
      }
    }
    if (!(product.scale > 0)) {
      throw ParseError(fmt::format("scale is {}, expected a number > 0 ({}.scale)", product.scale, item));
    }
    products.push_back(product);
  }
  if (steps && !has_step_fields(products)) {
    throw ParseError(fmt::format("prefix flag {:#x} announces difference or step products, but none has "
                                 "\"difference\" or \"step\" ({})",
                                 detail::kFlagInputSteps, path));
  }
  return products;
}

// Parses the products and layers. The first layer must read `encoded_width` inputs, the preprocessor's columns,
// and one more per product.
Mlp parse_network(const nlohmann::json& value, std::uint64_t encoded_width,
                  const std::map<std::string, TensorEntry>& tensors, const PayloadView& payload,
                  const LayerFields& fields) {
  detail::require_object(value, "$.network");
  detail::reject_unknown_members(value, "$.network", {"layers", "products"});
  const nlohmann::json& layers = detail::require_member(value, "$.network", "layers");
  if (!layers.is_array() || layers.empty()) {
    throw ParseError(fmt::format("expected a non-empty array of layers, got {} ($.network.layers)", layers.dump()));
  }

  Mlp network;
  if (const auto products = value.find("products"); products != value.end()) {
    if (!fields.products) {
      throw ParseError(fmt::format("unknown field \"products\"; a file with input products must set prefix flag "
                                   "{:#x} ($.network.products)",
                                   detail::kFlagInputProducts));
    }
    network.products = parse_products(*products, encoded_width, fields.steps);
  } else if (fields.products || fields.steps) {
    throw ParseError(fmt::format("prefix flag {:#x} announces input products, but the network has none "
                                 "($.network.products)",
                                 fields.products ? detail::kFlagInputProducts : detail::kFlagInputSteps));
  }

  std::uint64_t expanded_weights = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::uint64_t expected_inputs =
        i == 0 ? encoded_width + network.products.size() : network.layers.back().outputs;
    network.layers.push_back(parse_layer(layers[i], i, expected_inputs, tensors, payload, fields, expanded_weights));
  }

  if (network.layers.back().activation != Activation::Identity) {
    throw ParseError(fmt::format("the last layer has activation \"{}\", expected \"identity\" "
                                 "($.network.layers[{}].activation)",
                                 to_string(network.layers.back().activation), layers.size() - 1));
  }
  return network;
}

// Checks the last layer's width against the task. parse_network has checked the first layer's.
void check_network_outputs(const ModelArtifact& artifact) {
  const std::size_t outputs = detail::expected_outputs(artifact.task, artifact.target);
  if (artifact.network.outputs() != outputs) {
    throw ParseError(fmt::format("the last layer has {} outputs but task {} with {} classes needs {} "
                                 "($.network.layers[{}].outputs)",
                                 artifact.network.outputs(), detail::task_name(artifact.task),
                                 artifact.target.classes.size(), outputs, artifact.network.layers.size() - 1));
  }
}

void parse_task_and_target(const nlohmann::json& header, ModelArtifact& artifact) {
  const std::string task = detail::read_string(detail::require_member(header, "$", "task"), "$.task");
  if (!detail::parse_task_name(task, artifact.task)) {
    throw ParseError(fmt::format("unknown task \"{}\"; expected binary_classification, multiclass_classification "
                                 "or regression ($.task)",
                                 task));
  }

  artifact.target = TargetEncoding::from_json(detail::require_member(header, "$", "target"), "$.target");
  if (artifact.target.task != artifact.task) {
    throw ParseError(fmt::format("the target encoding is for task {} but the file is for task {} ($.target)",
                                 detail::task_name(artifact.target.task), task));
  }

  const std::size_t classes = artifact.target.classes.size();
  const bool binary_ok = artifact.task != Task::BinaryClassification || classes == 2;
  const bool multiclass_ok = artifact.task != Task::MulticlassClassification || classes >= 2;
  if (!binary_ok || !multiclass_ok) {
    throw ParseError(fmt::format("task {} cannot have {} classes ($.target.classes)", task, classes));
  }
}

double parse_threshold(const nlohmann::json& header, Task task) {
  const double threshold = detail::read_number(detail::require_member(header, "$", "threshold"), "$.threshold");
  if (task == Task::BinaryClassification && !(threshold >= 0.0 && threshold <= 1.0)) {
    throw ParseError(fmt::format("threshold is {}, expected a probability in [0, 1] ($.threshold)", threshold));
  }
  return threshold;
}

ModelArtifact parse_header(const nlohmann::json& header, const PayloadView& payload, std::uint32_t flags) {
  detail::require_object(header, "$");
  detail::reject_unknown_members(header, "$",
                                 {"task", "target", "preprocessor", "network", "threshold", "configuration",
                                  "metrics", "provenance", "extensions", "tensors"});

  // Sizes and offsets first: nothing below reads the payload before the whole table is checked.
  const auto tensors = parse_tensor_table(detail::require_member(header, "$", "tensors"), payload.size);

  ModelArtifact artifact;
  parse_task_and_target(header, artifact);
  artifact.preprocessor = Preprocessor::from_json(detail::require_member(header, "$", "preprocessor"),
                                                  "$.preprocessor");
  const LayerFields fields{(flags & detail::kFlagInt8Layers) != 0, (flags & detail::kFlagBlockLayers) != 0,
                           (flags & detail::kFlagInputProducts) != 0, (flags & detail::kFlagInputSteps) != 0};
  artifact.network = parse_network(detail::require_member(header, "$", "network"),
                                   artifact.preprocessor.encoded_width(), tensors, payload, fields);
  check_network_outputs(artifact);

  artifact.threshold = parse_threshold(header, artifact.task);
  artifact.configuration = detail::require_member(header, "$", "configuration");
  artifact.metrics = detail::require_member(header, "$", "metrics");
  artifact.provenance = Provenance::from_json(detail::require_member(header, "$", "provenance"), "$.provenance");

  artifact.extensions = detail::require_member(header, "$", "extensions");
  detail::require_object(artifact.extensions, "$.extensions");
  return artifact;
}

ModelArtifact parse_format_1(const std::string& bytes, const detail::ArtifactPrefix& prefix,
                             std::uint64_t payload_start) {
  check_flags(prefix.flags);
  check_header_padding(bytes, detail::kArtifactPrefixBytes + prefix.header_bytes, payload_start);
  const nlohmann::json header = parse_header_json(bytes, prefix.header_bytes);
  return parse_header(header, PayloadView{bytes, payload_start, prefix.payload_bytes}, prefix.flags);
}

ModelArtifact parse_unsourced(const std::string& bytes) {
  check_magic(bytes);
  const detail::ArtifactPrefix prefix = detail::read_prefix(bytes);
  check_version(prefix.format_version);
  const std::uint64_t payload_start = check_sizes(bytes, prefix);
  check_checksum(bytes, prefix);

  // Each older format that this build still reads gets its own case here.
  switch (prefix.format_version) {
    case 1:
      return parse_format_1(bytes, prefix, payload_start);
    default:
      throw InternalError(fmt::format("parse_artifact: format {} passed the version check but has no parser",
                                      prefix.format_version));
  }
}

}  // namespace

namespace detail {

ArtifactPrefix read_prefix(const std::string& bytes) {
  ArtifactPrefix prefix;
  prefix.format_version = get_u32(bytes, 8);
  prefix.flags = get_u32(bytes, 12);
  prefix.header_bytes = get_u64(bytes, 16);
  prefix.payload_bytes = get_u64(bytes, 24);
  std::memcpy(prefix.checksum.data(), bytes.data() + kChecksumOffset, kChecksumBytes);
  return prefix;
}

std::array<unsigned char, kChecksumBytes> artifact_checksum(const std::string& bytes) {
  ensure_sodium();
  if (bytes.size() < kArtifactPrefixBytes) {
    throw InternalError(fmt::format("artifact_checksum: {} bytes is shorter than the prefix", bytes.size()));
  }

  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, kChecksumBytes);
  crypto_generichash_update(&state, data, kChecksumOffset);
  crypto_generichash_update(&state, data + kArtifactPrefixBytes, bytes.size() - kArtifactPrefixBytes);

  std::array<unsigned char, kChecksumBytes> digest{};
  crypto_generichash_final(&state, digest.data(), digest.size());
  return digest;
}

std::string assemble_artifact(const std::string& header_json, const std::string& payload,
                              std::uint32_t format_version, std::uint32_t flags) {
  const std::uint64_t payload_start = kArtifactPrefixBytes + align_up_unchecked(header_json.size());
  std::string bytes(payload_start, '\0');
  std::memcpy(bytes.data(), kArtifactMagic, sizeof kArtifactMagic);
  put_u32(bytes, 8, format_version);
  put_u32(bytes, 12, flags);
  put_u64(bytes, 16, header_json.size());
  put_u64(bytes, 24, payload.size());
  bytes.replace(kArtifactPrefixBytes, header_json.size(), header_json);
  bytes += payload;

  const auto checksum = artifact_checksum(bytes);
  std::memcpy(bytes.data() + kChecksumOffset, checksum.data(), checksum.size());
  return bytes;
}

ArtifactSections split_artifact(const std::string& bytes) {
  check_magic(bytes);
  const ArtifactPrefix prefix = read_prefix(bytes);
  const std::uint64_t payload_start = check_sizes(bytes, prefix);
  return {bytes.substr(kArtifactPrefixBytes, prefix.header_bytes), bytes.substr(payload_start)};
}

}  // namespace detail

std::string serialize_artifact(const ModelArtifact& artifact) {
  check_artifact_consistency(artifact);

  const std::vector<StoredWeights> stored = stored_weights(artifact.network);
  std::vector<TensorPlacement> placements;
  const std::uint64_t payload_bytes = place_tensors(artifact.network, stored, placements);
  std::string payload(payload_bytes, '\0');
  for (const TensorPlacement& placement : placements) {
    write_tensor(placement, payload);
  }

  std::string header_json;
  try {
    header_json = header_to_json(artifact, stored, placements).dump();
  } catch (const nlohmann::json::type_error& error) {
    // dump() raises type_error 316 for a string that is not valid UTF-8.
    throw InvalidArgument(fmt::format("serialize_artifact: the header cannot be written as JSON: {}; make every "
                                      "string valid UTF-8",
                                      error.what()));
  }
  return detail::assemble_artifact(header_json, payload, ModelArtifact::kFormatVersion,
                                   prefix_flags(artifact.network, stored));
}

ModelArtifact parse_artifact(const std::string& bytes, const std::string& source) {
  try {
    return parse_unsourced(bytes);
  } catch (const ParseError& error) {
    throw ParseError(fmt::format("{}: {}", source, error.what()));
  } catch (const InvalidArgument& error) {
    // Section readers of other components may report a bad field as InvalidArgument.
    throw ParseError(fmt::format("{}: {}", source, error.what()));
  } catch (const nlohmann::json::exception& error) {
    throw ParseError(fmt::format("{}: the JSON header has an unexpected type: {} ($)", source, error.what()));
  }
}

void save_artifact(const ModelArtifact& artifact, const std::string& path) {
  write_file_atomically(path, serialize_artifact(artifact));
}

ModelArtifact load_artifact(const std::string& path) {
  return load_artifact(path, LoadOptions::from_environment());
}

void save_artifact(const ModelArtifact& artifact, const std::string& path, const SaveOptions& options) {
  write_file_atomically(path, protect_bytes(serialize_artifact(artifact), options));
}

ModelArtifact load_artifact(const std::string& path, const LoadOptions& options) {
  return parse_artifact(unprotect_bytes(read_file(path), options, path), path);
}

}  // namespace lepton
