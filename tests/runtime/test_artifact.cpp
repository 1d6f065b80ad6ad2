#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "lepton/model.hpp"
#include "lepton/predictor.hpp"
#include "lepton/quantize.hpp"
#include "runtime/artifact_detail.hpp"
#include "support/random_mlp.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using lepton::ParseError;

namespace {

const char* const kGoldenArtifact = LEPTON_SOURCE_DIR "/tests/golden/model_v1.lepton";
const char* const kGoldenExpected = LEPTON_SOURCE_DIR "/tests/golden/model_v1_expected.json";
const char* const kGoldenCommand =
    "LEPTON_WRITE_GOLDEN=1 build/tests/test_artifact \"[.write-golden]\" (from the repository root)";
// A merged network of three members, f32 and int8, as builds before block-diagonal storage wrote it: every
// weight of the block-diagonal layer 1 stored dense, zeros included.
const char* const kMergedDenseGolden = LEPTON_SOURCE_DIR "/tests/golden/merged_dense_v1.lepton";
const char* const kMergedDenseInt8Golden = LEPTON_SOURCE_DIR "/tests/golden/merged_dense_v1_int8.lepton";
const char* const kMergedDenseExpected = LEPTON_SOURCE_DIR "/tests/golden/merged_dense_v1_expected.json";
// The same two networks as written since block-diagonal storage: layer 1 stores only its three 4 x 8 blocks.
const char* const kMergedBlocksGolden = LEPTON_SOURCE_DIR "/tests/golden/merged_blocks_v1.lepton";
const char* const kMergedBlocksInt8Golden = LEPTON_SOURCE_DIR "/tests/golden/merged_blocks_v1_int8.lepton";
const char* const kMergedBlocksExpected = LEPTON_SOURCE_DIR "/tests/golden/merged_blocks_v1_expected.json";
const char* const kMergedGoldenCommand =
    "LEPTON_WRITE_GOLDEN=1 build/tests/test_artifact \"[.write-golden-merged]\" (from the repository root)";

lepton::Table small_table() {
  return lepton::Table({"a", "b", "color", "y"},
                       {{"1", "2", "3", "4"},
                        {"0.5", "1.5", "2.5", "3.5"},
                        {"red", "blue", "red", "green"},
                        {"no", "yes", "no", "yes"}},
                       "small_table");
}

lepton::DenseLayer make_layer(std::size_t inputs, std::size_t outputs, lepton::Activation activation,
                              std::size_t seed) {
  lepton::DenseLayer layer;
  layer.inputs = inputs;
  layer.outputs = outputs;
  layer.activation = activation;
  for (std::size_t i = 0; i < inputs * outputs; ++i) {
    layer.weight.push_back(0.5f * std::sin(1.7f * static_cast<float>(i + seed)));
  }
  for (std::size_t i = 0; i < outputs; ++i) {
    layer.bias.push_back(0.125f * static_cast<float>(i + 1));
  }
  return layer;
}

// A binary model on small_table(): numeric a and b plus one-hot color give 5 encoded columns.
lepton::ModelArtifact small_artifact() {
  const lepton::Table table = small_table();
  const std::vector<std::size_t> rows = {0, 1, 2, 3};

  lepton::ModelArtifact artifact;
  artifact.task = lepton::Task::BinaryClassification;
  artifact.preprocessor = lepton::Preprocessor::fit(
      table,
      {{"a", lepton::FeatureType::Numeric},
       {"b", lepton::FeatureType::Numeric},
       {"color", lepton::FeatureType::Categorical}},
      rows);
  artifact.target = lepton::TargetEncoding::fit(table, "y", lepton::Task::BinaryClassification, rows);

  const std::size_t width = artifact.preprocessor.encoded_width();
  artifact.network.layers.push_back(make_layer(width, 3, lepton::Activation::Gelu, 0));
  artifact.network.layers.push_back(make_layer(3, 1, lepton::Activation::Identity, 7));

  artifact.threshold = 0.37;
  artifact.configuration = {{"hidden_layers", {3}}, {"reason", "chosen by the test"}};
  artifact.metrics = {{"validation", {{"f1", 0.5}, {"roc_auc", 0.75}}}};
  artifact.provenance.lepton_version = "0.1.0";
  artifact.provenance.created_utc = "2026-12-04T22:10:00Z";
  artifact.provenance.data_file = "small_table";
  artifact.provenance.data_sha256 = std::string(64, 'a');
  artifact.provenance.requirements_sha256 = std::string(64, 'b');
  artifact.provenance.seed = 18446744073709551615ull;
  artifact.extensions = {{"note", "ünïcode text"}};
  return artifact;
}

// small_artifact() with its network replaced by three random 5-8-4-1 members merged into 5-24-12-1. Layer 1
// is block-diagonal: three 4 x 8 blocks in a 12 x 24 matrix.
lepton::ModelArtifact merged_artifact() {
  lepton::ModelArtifact artifact = small_artifact();
  artifact.network = lepton::merge_mean_output(lepton::test_support::random_f32_members({5, 8, 4, 1}, 3, 500));
  artifact.configuration = {{"cross_fit_folds", 3}, {"reason", "chosen by the test"}};
  return artifact;
}

// Returns `artifact` with every layer quantized to int8 and one activation scale per row, as lepton::quantize
// builds its candidates.
lepton::ModelArtifact all_int8(lepton::ModelArtifact artifact) {
  for (lepton::DenseLayer& layer : artifact.network.layers) {
    layer.precision = lepton::LayerPrecision::Int8;
    layer.quantized = lepton::quantize_weights(layer);
    for (std::size_t i = 0; i < layer.weight.size(); ++i) {
      layer.weight[i] = static_cast<float>(layer.quantized.values[i]) * layer.quantized.scales[i / layer.inputs];
    }
  }
  return artifact;
}

// A merged network as large as the AI4I one: ten random 5-64-32-1 members merged into 5-640-320-1, whose
// 320 x 640 layer 1 has ten 32 x 64 blocks.
lepton::ModelArtifact large_merged_artifact() {
  lepton::ModelArtifact artifact = small_artifact();
  artifact.network = lepton::merge_mean_output(lepton::test_support::random_f32_members({5, 64, 32, 1}, 10, 600));
  return artifact;
}

// Returns `rows` encoded rows of `width` standard normal values.
lepton::Matrix random_rows(std::size_t rows, std::size_t width, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  lepton::Matrix matrix(rows, width);
  for (float& value : matrix.data) value = normal(engine);
  return matrix;
}

std::string parse_message(const std::string& bytes, const std::string& source = "model.lepton") {
  try {
    lepton::parse_artifact(bytes, source);
  } catch (const ParseError& error) {
    return error.what();
  }
  return "<no exception>";
}

// Applies `edit` to the JSON header and rebuilds the file with the same prefix flags and a valid checksum,
// like a hostile writer.
std::string rewrite_header(const std::string& bytes, const std::function<void(nlohmann::json&)>& edit) {
  const lepton::detail::ArtifactSections sections = lepton::detail::split_artifact(bytes);
  nlohmann::json header = nlohmann::json::parse(sections.header_json);
  edit(header);
  return lepton::detail::assemble_artifact(header.dump(), sections.payload, 1, lepton::detail::read_prefix(bytes).flags);
}

// Recomputes the checksum after a byte-level edit.
void reseal(std::string& bytes) {
  const auto checksum = lepton::detail::artifact_checksum(bytes);
  std::memcpy(bytes.data() + lepton::detail::kChecksumOffset, checksum.data(), checksum.size());
}

nlohmann::json& tensor_named(nlohmann::json& header, const std::string& name) {
  for (nlohmann::json& tensor : header["tensors"]) {
    if (tensor["name"] == name) {
      return tensor;
    }
  }
  throw std::runtime_error("test header has no tensor " + name);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::string read_text(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("artifact round trip keeps every field", "[artifact]") {
  // Weights with awkward bit patterns: negative zero, a subnormal, the largest float, a NaN and a
  // value that short decimal text cannot hold. The round trip must keep every bit.
  lepton::ModelArtifact original = small_artifact();
  std::vector<float>& weight = original.network.layers[0].weight;
  weight[0] = -0.0f;
  weight[1] = 1e-40f;
  weight[2] = std::numeric_limits<float>::max();
  weight[3] = std::numeric_limits<float>::quiet_NaN();
  weight[4] = 1.0f / 3.0f;
  const lepton::ModelArtifact loaded = lepton::parse_artifact(lepton::serialize_artifact(original), "memory");

  CHECK(loaded.task == original.task);
  CHECK(loaded.target.to_json() == original.target.to_json());
  CHECK(loaded.preprocessor.to_json() == original.preprocessor.to_json());
  CHECK(loaded.preprocessor.encoded_width() == 5);
  CHECK(loaded.threshold == original.threshold);
  CHECK(loaded.configuration == original.configuration);
  CHECK(loaded.metrics == original.metrics);
  CHECK(loaded.extensions == original.extensions);
  CHECK(loaded.provenance.to_json() == original.provenance.to_json());
  CHECK(loaded.provenance.seed == 18446744073709551615ull);

  REQUIRE(loaded.network.layers.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    INFO("layer " << i);
    const lepton::DenseLayer& got = loaded.network.layers[i];
    const lepton::DenseLayer& want = original.network.layers[i];
    CHECK(got.inputs == want.inputs);
    CHECK(got.outputs == want.outputs);
    CHECK(got.activation == want.activation);
    CHECK(same_bits(got.weight, want.weight));
    CHECK(same_bits(got.bias, want.bias));
  }
  CHECK(std::signbit(loaded.network.layers[0].weight[0]));
}

TEST_CASE("artifact serialization is deterministic", "[artifact]") {
  const std::string first = lepton::serialize_artifact(small_artifact());
  const std::string second = lepton::serialize_artifact(lepton::parse_artifact(first, "memory"));
  CHECK(first == second);
}

TEST_CASE("artifact layout matches the format", "[artifact]") {
  const std::string bytes = lepton::serialize_artifact(small_artifact());
  const lepton::detail::ArtifactPrefix prefix = lepton::detail::read_prefix(bytes);

  CHECK(bytes.compare(0, 8, "LEPTONMD") == 0);
  CHECK(prefix.format_version == 1);
  CHECK(prefix.flags == 0);
  CHECK(bytes.size() % 64 == 0);
  CHECK(bytes.size() == 64 + (prefix.header_bytes + 63) / 64 * 64 + prefix.payload_bytes);
  // format_version 1 is stored little-endian: 01 00 00 00.
  CHECK(bytes[8] == '\x01');
  CHECK(bytes[11] == '\x00');

  const nlohmann::json header = nlohmann::json::parse(bytes.substr(64, prefix.header_bytes));
  for (const nlohmann::json& tensor : header.at("tensors")) {
    INFO("tensor " << tensor.dump());
    CHECK(tensor.at("offset").get<std::uint64_t>() % 64 == 0);
    CHECK(tensor.at("dtype") == "f32");
  }
  CHECK(header.at("network").at("layers")[0].at("weight") == "layers.0.weight");
  CHECK(header.at("task") == "binary_classification");
}

TEST_CASE("artifact save and load from disk", "[artifact]") {
  const std::string path = LEPTON_BINARY_DIR "/test_artifact_save.lepton";
  const lepton::ModelArtifact original = small_artifact();
  lepton::save_artifact(original, path);

  const lepton::ModelArtifact loaded = lepton::load_artifact(path);
  CHECK(same_bits(loaded.network.layers[1].weight, original.network.layers[1].weight));
  CHECK(read_text(path) == lepton::serialize_artifact(original));
  std::remove(path.c_str());

  CHECK_THROWS_AS(lepton::load_artifact(LEPTON_BINARY_DIR "/no_such_model.lepton"), lepton::FileNotFound);
}

TEST_CASE("artifact truncated at every offset", "[artifact][corruption]") {
  const std::string bytes = lepton::serialize_artifact(small_artifact());
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    INFO("truncated to " << length << " of " << bytes.size() << " bytes");
    CHECK_THROWS_AS(lepton::parse_artifact(bytes.substr(0, length), "cut.lepton"), ParseError);
  }

  CHECK_THAT(parse_message(bytes.substr(0, 40)), Contains("shorter than the 64-byte prefix"));
  CHECK_THAT(parse_message(bytes.substr(0, bytes.size() - 1)), Contains("truncated"));
}

TEST_CASE("artifact flipped byte anywhere", "[artifact][corruption]") {
  const std::string bytes = lepton::serialize_artifact(small_artifact());
  for (std::size_t offset = 0; offset < bytes.size(); ++offset) {
    std::string flipped = bytes;
    flipped[offset] = static_cast<char>(flipped[offset] ^ 0x5A);
    const std::string message = parse_message(flipped, "flipped.lepton");

    INFO("flipped byte at offset " << offset << ": " << message);
    CHECK_THAT(message, StartsWith("flipped.lepton: "));
    if (offset < 8) {
      CHECK_THAT(message, Contains("not a Lepton model file"));
    } else if (offset < 12) {
      CHECK_THAT(message, Contains("written by a newer Lepton"));
    } else if (offset >= 16 && offset < 32) {
      CHECK_THAT(message, Contains("(byte offset 16)") || Contains("(byte offset 24)"));
    } else {
      // Flags, the checksum itself, the header, its padding and the payload are all covered.
      CHECK_THAT(message, Contains("checksum mismatch: the file is corrupted or was modified"));
    }
  }
}

TEST_CASE("artifact wrong magic", "[artifact][corruption]") {
  std::string bytes = lepton::serialize_artifact(small_artifact());
  bytes.replace(0, 8, "GGUF\0\0\0\0", 8);
  CHECK_THAT(parse_message(bytes), StartsWith("model.lepton: not a Lepton model file"));
  // The fix names the command as well as the API, because CLI users see this message too.
  CHECK_THAT(parse_message(bytes), Contains("pass a model file written by `lepton run` or lepton::save_artifact"));
  CHECK_THAT(parse_message("PK\x03\x04"), Contains("not a Lepton model file"));
  CHECK_THAT(parse_message(""), Contains("shorter than the 64-byte prefix"));
}

TEST_CASE("artifact future and invalid versions", "[artifact][corruption]") {
  const lepton::detail::ArtifactSections sections =
      lepton::detail::split_artifact(lepton::serialize_artifact(small_artifact()));

  const std::string future = lepton::detail::assemble_artifact(sections.header_json, sections.payload, 2);
  CHECK_THAT(parse_message(future),
             Contains("written by a newer Lepton (format 2); this build reads format 1"));

  const std::string zero = lepton::detail::assemble_artifact(sections.header_json, sections.payload, 0);
  CHECK_THAT(parse_message(zero), Contains("format version 0 does not exist"));

  const std::string flagged = lepton::detail::assemble_artifact(sections.header_json, sections.payload, 1, 0x10);
  CHECK_THAT(parse_message(flagged), Contains("flags are 0x10"));
  CHECK_THAT(parse_message(flagged), Contains("reads only flags 0x1 (int8 layers), 0x2 (block-diagonal layers), 0x4 (input products) and 0x8 (difference and step products)"));
}

TEST_CASE("artifact size fields that lie", "[artifact][corruption]") {
  const std::string bytes = lepton::serialize_artifact(small_artifact());

  std::string huge_header = bytes;
  for (std::size_t i = 16; i < 24; ++i) {
    huge_header[i] = '\xFF';  // header_bytes = 2^64 - 1: rounding up to 64 overflows.
  }
  reseal(huge_header);
  CHECK_THAT(parse_message(huge_header), Contains("header_bytes is 18446744073709551615"));

  std::string extra = bytes + std::string(64, '\0');
  reseal(extra);
  CHECK_THAT(parse_message(extra), Contains("followed by extra bytes"));

  std::string zero_header = bytes;
  std::memset(zero_header.data() + 16, 0, 8);
  reseal(zero_header);
  CHECK_THAT(parse_message(zero_header), Contains("header_bytes is 0"));
}

TEST_CASE("artifact nonzero header padding", "[artifact][corruption]") {
  std::string bytes = lepton::serialize_artifact(small_artifact());
  const lepton::detail::ArtifactPrefix prefix = lepton::detail::read_prefix(bytes);
  REQUIRE(prefix.header_bytes % 64 != 0);  // The padding exists only when the header is not a multiple of 64.

  bytes[64 + prefix.header_bytes] = ' ';
  reseal(bytes);
  CHECK_THAT(parse_message(bytes), Contains("header padding must be zero bytes"));
}

TEST_CASE("artifact invalid JSON header", "[artifact][corruption]") {
  const lepton::detail::ArtifactSections sections =
      lepton::detail::split_artifact(lepton::serialize_artifact(small_artifact()));
  const std::string broken = lepton::detail::assemble_artifact("{\"task\": ", sections.payload);
  const std::string message = parse_message(broken);
  CHECK_THAT(message, Contains("the JSON header is invalid: unexpected end of input; expected '[', '{', or a literal"));
  CHECK_THAT(message, Contains("(byte offset 7"));
  // The byte offset is the only position: nlohmann's exception id and line and column are stripped.
  CHECK_THAT(message, !Contains("json.exception"));
  CHECK_THAT(message, !Contains("column"));

  const std::string not_object = lepton::detail::assemble_artifact("[1, 2]", sections.payload);
  CHECK_THAT(parse_message(not_object), Contains("expected a JSON object, got array ($)"));
}

TEST_CASE("artifact hostile tensor table", "[artifact][corruption]") {
  const std::string bytes = lepton::serialize_artifact(small_artifact());

  SECTION("huge shape") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.0.weight")["shape"] = {4294967296ull, 4294967296ull};
    });
    CHECK_THAT(parse_message(hostile), Contains("over the tensor size limit ($.tensors[0].shape)"));
  }
  SECTION("shape product overflows 64 bits") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.0.weight")["shape"] = {18446744073709551615ull, 2, 0};
    });
    CHECK_THAT(parse_message(hostile), Contains("over the tensor size limit"));
  }
  SECTION("nbytes over 1 GiB") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      nlohmann::json& tensor = tensor_named(header, "layers.0.weight");
      tensor["shape"] = {1073741824ull};
      tensor["nbytes"] = 4294967296ull;
    });
    CHECK_THAT(parse_message(hostile), Contains("over the limit of 1073741824 bytes per tensor"));
  }
  SECTION("shape disagrees with nbytes") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.0.weight")["shape"] = {3, 4};
    });
    CHECK_THAT(parse_message(hostile), Contains("shape [3,4] of f32 needs 48 bytes but nbytes is 60"));
  }
  SECTION("overlapping tensors") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.0.bias")["offset"] = 0;
    });
    CHECK_THAT(parse_message(hostile), Contains("overlaps tensor"));
  }
  SECTION("offset out of range") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.1.bias")["offset"] = 1u << 20;
    });
    CHECK_THAT(parse_message(hostile), Contains("lie outside the payload"));
  }
  SECTION("offset near 2^64") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.1.bias")["offset"] = 18446744073709551552ull;  // 2^64 - 64, aligned.
    });
    CHECK_THAT(parse_message(hostile), Contains("lie outside the payload"));
  }
  SECTION("unaligned offset") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.1.bias")["offset"] = 4;
    });
    CHECK_THAT(parse_message(hostile), Contains("is not a multiple of 64"));
  }
  SECTION("unknown dtype") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.0.weight")["dtype"] = "f16";
    });
    CHECK_THAT(parse_message(hostile), Contains("unknown dtype \"f16\""));
  }
  SECTION("reserved dtype in a layer") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      nlohmann::json& tensor = tensor_named(header, "layers.0.weight");
      tensor["dtype"] = "i32";
    });
    CHECK_THAT(parse_message(hostile), Contains("dense layers need \"f32\""));
  }
  SECTION("duplicate tensor name") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.1.bias")["name"] = "layers.0.bias";
    });
    CHECK_THAT(parse_message(hostile), Contains("appears twice"));
  }
  SECTION("negative offset") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.1.bias")["offset"] = -64;
    });
    CHECK_THAT(parse_message(hostile), Contains("expected a non-negative integer, got -64"));
  }
}

TEST_CASE("artifact hostile network", "[artifact][corruption]") {
  const std::string bytes = lepton::serialize_artifact(small_artifact());

  SECTION("weight shape differs from the layer") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      header["network"]["layers"][0]["outputs"] = 2;
    });
    CHECK_THAT(parse_message(hostile), Contains("has shape [3,5], expected [2,5] ($.network.layers[0].weight)"));
  }
  SECTION("layers do not chain") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      // Layer 1 and its weight tensor both claim 5 inputs, so each tensor fits its layer but the chain breaks.
      header["network"]["layers"][1]["inputs"] = 5;
      tensor_named(header, "layers.1.weight")["shape"] = {1, 5};
      tensor_named(header, "layers.1.weight")["nbytes"] = 20;
    });
    CHECK_THAT(parse_message(hostile), Contains("layer 1 has 5 inputs but layer 0 has 3 outputs"));
  }
  SECTION("first layer differs from the preprocessor") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      header["network"]["layers"][0]["inputs"] = 4;
      tensor_named(header, "layers.0.weight")["shape"] = {3, 4};
      tensor_named(header, "layers.0.weight")["nbytes"] = 48;
    });
    CHECK_THAT(parse_message(hostile), Contains("the first layer has 4 inputs but expects 5"));
  }
  SECTION("output count differs from the task") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      header["task"] = "multiclass_classification";
      header["target"]["task"] = "multiclass_classification";
      header["target"]["classes"] = {"a", "b", "c"};
    });
    CHECK_THAT(parse_message(hostile), Contains("the last layer has 1 outputs but task multiclass_classification"));
  }
  SECTION("unknown activation") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      header["network"]["layers"][0]["activation"] = "swish";
    });
    CHECK_THAT(parse_message(hostile), Contains("unknown activation \"swish\""));
  }
  SECTION("last layer not identity") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      header["network"]["layers"][1]["activation"] = "relu";
    });
    CHECK_THAT(parse_message(hostile), Contains("expected \"identity\""));
  }
  SECTION("tensor missing from the table") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      header["network"]["layers"][0]["bias"] = "nowhere";
    });
    CHECK_THAT(parse_message(hostile), Contains("tensor \"nowhere\" is not listed in $.tensors"));
  }
  SECTION("empty layer list") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      header["network"]["layers"] = nlohmann::json::array();
    });
    CHECK_THAT(parse_message(hostile), Contains("expected a non-empty array of layers"));
  }
  SECTION("task and target disagree") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) { header["task"] = "regression"; });
    CHECK_THAT(parse_message(hostile), Contains("($.target)"));
  }
  SECTION("threshold outside [0, 1]") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) { header["threshold"] = 1.5; });
    CHECK_THAT(parse_message(hostile), Contains("threshold is 1.5"));
  }
}

TEST_CASE("artifact missing JSON fields", "[artifact][corruption]") {
  const std::string bytes = lepton::serialize_artifact(small_artifact());
  for (const char* key : {"task", "target", "preprocessor", "network", "threshold", "configuration", "metrics",
                          "provenance", "extensions", "tensors"}) {
    const std::string hostile = rewrite_header(bytes, [&](nlohmann::json& header) { header.erase(key); });
    INFO("without $." << key);
    CHECK_THAT(parse_message(hostile), Contains(std::string("missing required field \"") + key + "\""));
  }

  const std::string no_seed = rewrite_header(bytes, [](nlohmann::json& header) { header["provenance"].erase("seed"); });
  CHECK_THAT(parse_message(no_seed), Contains("($.provenance.seed)"));

  const std::string no_nbytes =
      rewrite_header(bytes, [](nlohmann::json& header) { header["tensors"][2].erase("nbytes"); });
  CHECK_THAT(parse_message(no_nbytes), Contains("($.tensors[2].nbytes)"));

  const std::string unknown = rewrite_header(bytes, [](nlohmann::json& header) { header["colour"] = 1; });
  CHECK_THAT(parse_message(unknown), Contains("unknown field \"colour\""));

  const std::string bad_preprocessor =
      rewrite_header(bytes, [](nlohmann::json& header) { header["preprocessor"]["encoded_width"] = "five"; });
  CHECK_THAT(parse_message(bad_preprocessor), StartsWith("model.lepton: "));
}

TEST_CASE("serialize_artifact rejects inconsistent models", "[artifact]") {
  lepton::ModelArtifact wrong_width = small_artifact();
  wrong_width.network.layers[0] = make_layer(4, 3, lepton::Activation::Relu, 0);
  CHECK_THROWS_WITH(lepton::serialize_artifact(wrong_width),
                    Contains("the network has 4 inputs but the preprocessor encodes 5 columns"));

  lepton::ModelArtifact wrong_outputs = small_artifact();
  wrong_outputs.network.layers[1] = make_layer(3, 2, lepton::Activation::Identity, 0);
  CHECK_THROWS_WITH(lepton::serialize_artifact(wrong_outputs), Contains("has 2 outputs but task"));

  lepton::ModelArtifact short_weight = small_artifact();
  short_weight.network.layers[1].weight.pop_back();
  CHECK_THROWS_AS(lepton::serialize_artifact(short_weight), lepton::InvalidArgument);

  lepton::ModelArtifact bad_text = small_artifact();
  bad_text.provenance.data_file = "\xff\xfe";
  CHECK_THROWS_WITH(lepton::serialize_artifact(bad_text), Contains("valid UTF-8"));
}

// ---- Block-diagonal layers (prefix flag 0x2)

TEST_CASE("artifact merged network stores blocks", "[artifact][blocks]") {
  const std::string bytes = lepton::serialize_artifact(merged_artifact());
  CHECK(lepton::detail::read_prefix(bytes).flags == lepton::detail::kFlagBlockLayers);

  nlohmann::json header = nlohmann::json::parse(lepton::detail::split_artifact(bytes).header_json);
  const nlohmann::json& layers = header.at("network").at("layers");
  const nlohmann::json expected_blocks = {{{"row", 0}, {"column", 0}, {"rows", 4}, {"columns", 8}},
                                          {{"row", 4}, {"column", 8}, {"rows", 4}, {"columns", 8}},
                                          {{"row", 8}, {"column", 16}, {"rows", 4}, {"columns", 8}}};
  CHECK(layers[1].at("blocks") == expected_blocks);
  // Every row of layers 0 and 2 reads all its inputs, so they stay dense.
  CHECK_FALSE(layers[0].contains("blocks"));
  CHECK_FALSE(layers[2].contains("blocks"));

  CHECK(tensor_named(header, "layers.1.weight").at("shape") == nlohmann::json::array({96}));
  CHECK(tensor_named(header, "layers.1.weight").at("nbytes") == 384);
  CHECK(tensor_named(header, "layers.0.weight").at("shape") == nlohmann::json::array({24, 5}));
}

TEST_CASE("artifact merged f32 round trip is bit-identical", "[artifact][blocks]") {
  const lepton::ModelArtifact original = large_merged_artifact();
  const std::string bytes = lepton::serialize_artifact(original);
  const lepton::ModelArtifact loaded = lepton::parse_artifact(bytes, "memory");

  REQUIRE(loaded.network.layers.size() == 3);
  for (std::size_t l = 0; l < 3; ++l) {
    INFO("layer " << l);
    CHECK(same_bits(loaded.network.layers[l].weight, original.network.layers[l].weight));
    CHECK(same_bits(loaded.network.layers[l].bias, original.network.layers[l].bias));
  }

  const lepton::Matrix rows = random_rows(257, 5, 1);
  const std::vector<double> expected = lepton::Predictor(original).forward(rows);
  const std::vector<double> actual = lepton::Predictor(loaded).forward(rows);
  REQUIRE(actual.size() == expected.size());
  CHECK(std::memcmp(actual.data(), expected.data(), actual.size() * sizeof(double)) == 0);

  CHECK(lepton::serialize_artifact(loaded) == bytes);
}

TEST_CASE("artifact merged int8 round trip is bit-identical", "[artifact][blocks]") {
  const lepton::ModelArtifact original = all_int8(large_merged_artifact());
  const std::string bytes = lepton::serialize_artifact(original);
  CHECK(lepton::detail::read_prefix(bytes).flags ==
        (lepton::detail::kFlagInt8Layers | lepton::detail::kFlagBlockLayers));
  nlohmann::json header = nlohmann::json::parse(lepton::detail::split_artifact(bytes).header_json);
  CHECK(tensor_named(header, "layers.1.weight").at("dtype") == "i8");
  CHECK(tensor_named(header, "layers.1.weight").at("shape") == nlohmann::json::array({20480}));

  const lepton::ModelArtifact loaded = lepton::parse_artifact(bytes, "memory");
  REQUIRE(loaded.network.layers.size() == 3);
  for (std::size_t l = 0; l < 3; ++l) {
    INFO("layer " << l);
    const lepton::DenseLayer& got = loaded.network.layers[l];
    const lepton::DenseLayer& want = original.network.layers[l];
    CHECK(got.precision == lepton::LayerPrecision::Int8);
    CHECK(got.quantized.values == want.quantized.values);
    CHECK(got.quantized.scales == want.quantized.scales);
    CHECK(same_bits(got.weight, want.weight));
    CHECK(same_bits(got.bias, want.bias));
  }

  const lepton::Matrix rows = random_rows(257, 5, 2);
  const std::vector<double> expected = lepton::Predictor(original).forward(rows);
  const std::vector<double> actual = lepton::Predictor(loaded).forward(rows);
  REQUIRE(actual.size() == expected.size());
  CHECK(std::memcmp(actual.data(), expected.data(), actual.size() * sizeof(double)) == 0);
}

TEST_CASE("artifact merged file shrinks by the zeros", "[artifact][blocks]") {
  // One weight outside the blocks, in row 0 and the last column, makes the writer store layer 1 dense. In f32
  // it is -0.0f, which must be stored, and in int8 it is 1.
  const lepton::ModelArtifact f32 = large_merged_artifact();
  lepton::ModelArtifact f32_dense = f32;
  lepton::DenseLayer& f32_layer = f32_dense.network.layers[1];
  f32_layer.weight[f32_layer.inputs - 1] = -0.0f;

  const lepton::ModelArtifact int8 = all_int8(f32);
  lepton::ModelArtifact int8_dense = int8;
  lepton::DenseLayer& int8_layer = int8_dense.network.layers[1];
  int8_layer.quantized.values[int8_layer.inputs - 1] = 1;
  int8_layer.weight[int8_layer.inputs - 1] = int8_layer.quantized.scales[0];

  const struct {
    const char* name;
    const lepton::ModelArtifact& blocked;
    const lepton::ModelArtifact& dense;
    std::uint64_t weight_bytes;
  } cases[] = {{"f32", f32, f32_dense, 4}, {"int8", int8, int8_dense, 1}};
  for (const auto& c : cases) {
    INFO(c.name);
    const std::string blocked_bytes = lepton::serialize_artifact(c.blocked);
    const std::string dense_bytes = lepton::serialize_artifact(c.dense);
    REQUIRE((lepton::detail::read_prefix(dense_bytes).flags & lepton::detail::kFlagBlockLayers) == 0);
    const std::uint64_t blocked_payload = lepton::detail::read_prefix(blocked_bytes).payload_bytes;
    const std::uint64_t dense_payload = lepton::detail::read_prefix(dense_bytes).payload_bytes;
    // Layer 1 stores 10 blocks of 32 x 64 weights instead of 320 x 640. Both sizes are multiples of 64 bytes, so
    // the payload shrinks by exactly the zeros left out.
    CHECK(dense_payload - blocked_payload == (204800 - 20480) * c.weight_bytes);
    // The header grows by the block list, less than 640 bytes.
    CHECK(dense_bytes.size() - blocked_bytes.size() < (204800 - 20480) * c.weight_bytes);
    CHECK(dense_bytes.size() - blocked_bytes.size() > (204800 - 20480) * c.weight_bytes - 640);
  }
}

TEST_CASE("artifact stored weight bytes match the tensors", "[artifact][blocks]") {
  const struct {
    const char* name;
    lepton::ModelArtifact artifact;
  } cases[] = {{"dense", small_artifact()},
               {"merged f32", merged_artifact()},
               {"merged int8", all_int8(merged_artifact())},
               {"large merged f32", large_merged_artifact()}};
  for (const auto& c : cases) {
    INFO(c.name);
    const std::string bytes = lepton::serialize_artifact(c.artifact);
    const nlohmann::json header = nlohmann::json::parse(lepton::detail::split_artifact(bytes).header_json);
    std::uint64_t tensor_bytes = 0;
    for (const nlohmann::json& tensor : header.at("tensors")) tensor_bytes += tensor.at("nbytes").get<std::uint64_t>();
    CHECK(lepton::detail::stored_weight_bytes(c.artifact.network) == tensor_bytes);
  }
  // The AI4I-sized merge stores 5 x 640 + 640, 10 x 32 x 64 + 320 and 320 + 1 floats.
  CHECK(lepton::detail::stored_weight_bytes(large_merged_artifact().network) == (3840 + 20800 + 321) * 4);
}

TEST_CASE("artifact blocks leave out only +0.0f weights", "[artifact][blocks]") {
  const std::uint32_t flags_of_merged = lepton::detail::kFlagBlockLayers;
  const struct {
    const char* name;
    float off_block;
    std::uint32_t flags;
  } cases[] = {{"+0.0f", 0.0f, flags_of_merged},
               {"-0.0f", -0.0f, 0},
               {"NaN", std::numeric_limits<float>::quiet_NaN(), 0},
               {"subnormal", 1e-40f, 0}};
  for (const auto& c : cases) {
    INFO(c.name);
    lepton::ModelArtifact artifact = merged_artifact();
    std::vector<float>& weight = artifact.network.layers[1].weight;
    weight[23] = c.off_block;  // Row 0, column 23: outside block 0, which covers columns 0 to 7.
    const std::string bytes = lepton::serialize_artifact(artifact);
    CHECK(lepton::detail::read_prefix(bytes).flags == c.flags);
    CHECK(same_bits(lepton::parse_artifact(bytes, "memory").network.layers[1].weight, weight));
  }
}

TEST_CASE("artifact reads unequal blocks with gaps", "[artifact][blocks]") {
  // The writer stores equal blocks, but a reader accepts any blocks listed down the diagonal. Here they are
  // 4 x 8 at (0, 0), 3 x 6 at (5, 8) and 4 x 10 at (8, 14), and row 4 holds only zeros.
  const std::string bytes = lepton::serialize_artifact(merged_artifact());
  const std::vector<lepton::detail::WeightBlock> blocks = {{0, 0, 4, 8}, {5, 8, 3, 6}, {8, 14, 4, 10}};
  const std::string edited = rewrite_header(bytes, [&](nlohmann::json& header) {
    header["network"]["layers"][1]["blocks"] = lepton::detail::blocks_to_json(blocks);
    tensor_named(header, "layers.1.weight")["shape"] = {90};
    tensor_named(header, "layers.1.weight")["nbytes"] = 360;
  });

  // The 90 stored floats are the first 90 of the original tensor, which the edit left in place.
  const lepton::ModelArtifact original = lepton::parse_artifact(bytes, "memory");
  const std::vector<float> stored = lepton::detail::gather_blocks(original.network.layers[1].weight, 24,
                                                                  lepton::detail::storage_blocks(original.network.layers[1]));
  std::vector<float> expected(12 * 24, 0.0f);
  std::size_t next = 0;
  for (const auto& block : blocks) {
    for (std::uint64_t r = block.row; r < block.row + block.rows; ++r) {
      for (std::uint64_t c = block.column; c < block.column + block.columns; ++c) expected[r * 24 + c] = stored[next++];
    }
  }
  REQUIRE(next == 90);

  const lepton::ModelArtifact loaded = lepton::parse_artifact(edited, "memory");
  CHECK(same_bits(loaded.network.layers[1].weight, expected));
}

TEST_CASE("artifact malformed blocks", "[artifact][blocks][corruption]") {
  const std::string bytes = lepton::serialize_artifact(merged_artifact());
  const auto with_blocks = [&](const nlohmann::json& blocks) {
    return rewrite_header(bytes, [&](nlohmann::json& header) { header["network"]["layers"][1]["blocks"] = blocks; });
  };
  const auto block = [](std::uint64_t row, std::uint64_t column, std::uint64_t rows, std::uint64_t columns) {
    return nlohmann::json{{"row", row}, {"column", column}, {"rows", rows}, {"columns", columns}};
  };
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();

  SECTION("empty list") {
    CHECK_THAT(parse_message(with_blocks(nlohmann::json::array())),
               Contains("expected a non-empty array of blocks, got []; a dense layer leaves out this field "
                        "($.network.layers[1].blocks)"));
  }
  SECTION("not a list") {
    CHECK_THAT(parse_message(with_blocks(block(0, 0, 4, 8))),
               Contains("expected a non-empty array of blocks, got object"));
  }
  SECTION("empty block") {
    CHECK_THAT(parse_message(with_blocks({block(0, 0, 4, 8), block(4, 8, 0, 8), block(8, 16, 4, 8)})),
               Contains("a block needs at least 1 row and 1 column, got 0 and 8 ($.network.layers[1].blocks[1])"));
  }
  SECTION("rows outside the matrix") {
    CHECK_THAT(parse_message(with_blocks({block(0, 0, 4, 8), block(4, 8, 4, 8), block(10, 16, 4, 8)})),
               Contains("block rows [10, 10+4) lie outside the layer's 12 outputs ($.network.layers[1].blocks[2])"));
  }
  SECTION("columns outside the matrix") {
    CHECK_THAT(parse_message(with_blocks({block(0, 0, 4, 8), block(4, 8, 4, 8), block(8, 20, 4, 8)})),
               Contains("block columns [20, 20+8) lie outside the layer's 24 inputs ($.network.layers[1].blocks[2])"));
  }
  SECTION("overlapping rows") {
    CHECK_THAT(parse_message(with_blocks({block(0, 0, 4, 8), block(3, 8, 4, 8), block(8, 16, 4, 8)})),
               Contains("block 1 starts at row 3, before block 0 ends at row 4; blocks must not overlap and must be "
                        "listed down the diagonal ($.network.layers[1].blocks[1].row)"));
  }
  SECTION("overlapping columns") {
    CHECK_THAT(parse_message(with_blocks({block(0, 0, 4, 8), block(4, 7, 4, 8), block(8, 16, 4, 8)})),
               Contains("block 1 starts at column 7, before block 0 ends at column 8; blocks must not overlap and must "
                        "be listed down the diagonal ($.network.layers[1].blocks[1].column)"));
  }
  SECTION("blocks listed up the diagonal") {
    CHECK_THAT(parse_message(with_blocks({block(4, 8, 4, 8), block(0, 0, 4, 8), block(8, 16, 4, 8)})),
               Contains("block 1 starts at row 0, before block 0 ends at row 8"));
  }
  SECTION("the same block twice") {
    CHECK_THAT(parse_message(with_blocks({block(0, 0, 4, 8), block(0, 0, 4, 8), block(8, 16, 4, 8)})),
               Contains("block 1 starts at row 0, before block 0 ends at row 4"));
  }
  SECTION("row near 2^64") {
    // row + rows wraps around to 2 in 64 bits.
    CHECK_THAT(parse_message(with_blocks({block(0, 0, 4, 8), block(max - 1, 8, 4, 8), block(8, 16, 4, 8)})),
               Contains("block rows [18446744073709551614, 18446744073709551614+4) lie outside the layer's 12 outputs"));
  }
  SECTION("column count near 2^64") {
    CHECK_THAT(parse_message(with_blocks({block(0, 0, 4, 8), block(4, 8, 4, max), block(8, 16, 4, 8)})),
               Contains("block columns [8, 8+18446744073709551615) lie outside the layer's 24 inputs"));
  }
  SECTION("rows times columns overflow 64 bits") {
    CHECK_THAT(parse_message(with_blocks(nlohmann::json::array({block(0, 0, std::uint64_t{1} << 32, std::uint64_t{1} << 32)}))),
               Contains("lie outside the layer's 12 outputs"));
  }
  SECTION("negative start") {
    nlohmann::json negative = block(4, 8, 4, 8);
    negative["row"] = -4;
    CHECK_THAT(parse_message(with_blocks({block(0, 0, 4, 8), negative, block(8, 16, 4, 8)})),
               Contains("expected a non-negative integer, got -4 ($.network.layers[1].blocks[1].row)"));
  }
  SECTION("unknown block field") {
    nlohmann::json extra = block(4, 8, 4, 8);
    extra["stride"] = 24;
    CHECK_THAT(parse_message(with_blocks({block(0, 0, 4, 8), extra, block(8, 16, 4, 8)})),
               Contains("unknown field \"stride\""));
  }
  SECTION("missing block field") {
    nlohmann::json missing = block(4, 8, 4, 8);
    missing.erase("columns");
    CHECK_THAT(parse_message(with_blocks({block(0, 0, 4, 8), missing, block(8, 16, 4, 8)})),
               Contains("missing required field \"columns\""));
  }
  SECTION("tensor shorter than the blocks") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.1.weight")["shape"] = {95};
      tensor_named(header, "layers.1.weight")["nbytes"] = 380;
    });
    CHECK_THAT(parse_message(hostile),
               Contains("tensor \"layers.1.weight\" has shape [95], expected [96] ($.network.layers[1].weight)"));
  }
  SECTION("dense tensor with blocks") {
    const std::string hostile = rewrite_header(bytes, [](nlohmann::json& header) {
      tensor_named(header, "layers.1.weight")["shape"] = {4, 24};
    });
    CHECK_THAT(parse_message(hostile), Contains("has shape [4,24], expected [96]"));
  }
  SECTION("blocks on a layer without them in the tensor") {
    // Layer 0 stores its 24 x 5 matrix dense, so blocks that cover part of it do not match its tensor.
    const std::string hostile = rewrite_header(bytes, [&](nlohmann::json& header) {
      header["network"]["layers"][0]["blocks"] = nlohmann::json::array({block(0, 0, 12, 5)});
    });
    CHECK_THAT(parse_message(hostile), Contains("has shape [24,5], expected [60] ($.network.layers[0].weight)"));
  }
  SECTION("blocks without the prefix flag") {
    const lepton::detail::ArtifactSections sections = lepton::detail::split_artifact(bytes);
    const std::string unflagged = lepton::detail::assemble_artifact(sections.header_json, sections.payload, 1, 0);
    CHECK_THAT(parse_message(unflagged),
               Contains("unknown field \"blocks\"; a file with block-diagonal layers must set prefix flag 0x2 "
                        "($.network.layers[1].blocks)"));
  }
  SECTION("layer that expands past the limit") {
    // 2^24 x 24 weights are 1.5 times the 2^28 that a reader expands, from a header that stores 96.
    const std::string hostile = rewrite_header(bytes, [&](nlohmann::json& header) {
      header["network"]["layers"][1]["outputs"] = 16777216;
    });
    CHECK_THAT(parse_message(hostile),
               Contains("the block-diagonal layer of 16777216 x 24 weights would bring the block-diagonal layers of "
                        "this file to more than 268435456 weights, the limit of what a reader expands "
                        "($.network.layers[1].blocks)"));
  }
  SECTION("layer size that overflows 64 bits") {
    const std::string hostile = rewrite_header(bytes, [&](nlohmann::json& header) {
      header["network"]["layers"][1]["outputs"] = max;
    });
    CHECK_THAT(parse_message(hostile), Contains("to more than 268435456 weights"));
  }
  SECTION("layer wider than the previous one") {
    // The chain is checked before the blocks, so a layer cannot claim more inputs than the file stores outputs.
    const std::string hostile = rewrite_header(bytes, [&](nlohmann::json& header) {
      header["network"]["layers"][1]["inputs"] = 32768;
    });
    CHECK_THAT(parse_message(hostile),
               Contains("layer 1 has 32768 inputs but layer 0 has 24 outputs ($.network.layers[1].inputs)"));
  }
}

TEST_CASE("artifact malformed int8 blocks", "[artifact][blocks][corruption]") {
  const std::string bytes = lepton::serialize_artifact(all_int8(merged_artifact()));
  const lepton::detail::ArtifactSections sections = lepton::detail::split_artifact(bytes);
  const nlohmann::json header = nlohmann::json::parse(sections.header_json);
  nlohmann::json copy = header;
  const std::uint64_t offset = tensor_named(copy, "layers.1.weight").at("offset").get<std::uint64_t>();

  // -128 in a stored block: element 40 is row 1, column 0 of block 1.
  std::string payload = sections.payload;
  payload[offset + 40] = static_cast<char>(0x80);
  const std::uint32_t flags = lepton::detail::kFlagInt8Layers | lepton::detail::kFlagBlockLayers;
  CHECK_THAT(parse_message(lepton::detail::assemble_artifact(sections.header_json, payload, 1, flags)),
             Contains("tensor \"layers.1.weight\" element 40 is -128"));

  // The int8 flag alone does not allow blocks.
  CHECK_THAT(parse_message(lepton::detail::assemble_artifact(sections.header_json, sections.payload, 1,
                                                             lepton::detail::kFlagInt8Layers)),
             Contains("unknown field \"blocks\"; a file with block-diagonal layers must set prefix flag 0x2"));
  // And the block flag alone does not allow int8 fields.
  CHECK_THAT(parse_message(lepton::detail::assemble_artifact(sections.header_json, sections.payload, 1,
                                                             lepton::detail::kFlagBlockLayers)),
             Contains("unknown field \"precision\"; a file with int8 layers must set prefix flag 0x1"));
}

TEST_CASE("provenance JSON round trip", "[artifact]") {
  const lepton::Provenance original = small_artifact().provenance;
  const lepton::Provenance loaded = lepton::Provenance::from_json(original.to_json());
  CHECK(loaded.to_json() == original.to_json());
  CHECK_THROWS_WITH(lepton::Provenance::from_json({{"seed", "1"}}, "$.provenance"), Contains("$.provenance"));
}

TEST_CASE("golden v1 artifact still loads", "[artifact][golden]") {
  const std::string bytes = lepton::read_file(kGoldenArtifact);
  CHECK(lepton::detail::read_prefix(bytes).format_version == 1);

  const lepton::Predictor predictor(lepton::load_artifact(kGoldenArtifact));
  const nlohmann::json expected = nlohmann::json::parse(lepton::read_file(kGoldenExpected));
  CHECK(predictor.artifact().threshold == expected.at("threshold").get<double>());
  CHECK(predictor.artifact().preprocessor.encoded_width() == 5);

  const lepton::Predictions predictions = predictor.predict(small_table());
  const auto probability = expected.at("probability").get<std::vector<double>>();
  REQUIRE(predictions.probability.size() == probability.size());
  for (std::size_t i = 0; i < probability.size(); ++i) {
    // Another CPU may pick other Eigen kernels, whose float32 sums differ in the last bits.
    INFO("row " << i);
    CHECK(predictions.probability[i] == Approx(probability[i]).epsilon(1e-5));
  }
}

TEST_CASE("merged dense golden artifacts still load", "[artifact][golden]") {
  const nlohmann::json expected = nlohmann::json::parse(lepton::read_file(kMergedDenseExpected));
  const lepton::ModelArtifact built = merged_artifact();
  const struct {
    const char* path;
    std::uint32_t flags;
    const char* weight_dtype;
    const char* probabilities;
    // Payload bytes that blocks save: layer 1's 288 dense weights against its 96 block weights, each tensor
    // padded to a multiple of 64 bytes.
    std::uint64_t saved_bytes;
  } files[] = {{kMergedDenseGolden, 0, "f32", "f32_probability", 1152 - 384},
               {kMergedDenseInt8Golden, lepton::detail::kFlagInt8Layers, "i8", "int8_probability", 320 - 128}};

  for (const auto& file : files) {
    INFO(file.path);
    const std::string bytes = lepton::read_file(file.path);
    CHECK(lepton::detail::read_prefix(bytes).flags == file.flags);

    // The files store layer 1 dense: its 12 x 24 matrix, zeros outside the three 4 x 8 blocks included.
    nlohmann::json header = nlohmann::json::parse(lepton::detail::split_artifact(bytes).header_json);
    const nlohmann::json& weight = tensor_named(header, "layers.1.weight");
    CHECK(weight.at("shape") == nlohmann::json::array({12, 24}));
    CHECK(weight.at("dtype") == file.weight_dtype);

    const lepton::ModelArtifact loaded = lepton::load_artifact(file.path);
    REQUIRE(loaded.network.layers.size() == 3);
    CHECK(loaded.network.layers[1].weight.size() == 12 * 24);
    if (file.flags == 0) {
      // The same seeds give the same members on this toolchain (libstdc++'s normal_distribution).
      for (std::size_t l = 0; l < 3; ++l) {
        INFO("layer " << l);
        CHECK(same_bits(loaded.network.layers[l].weight, built.network.layers[l].weight));
        CHECK(same_bits(loaded.network.layers[l].bias, built.network.layers[l].bias));
      }
    }

    const lepton::Predictions predictions = lepton::Predictor(loaded).predict(small_table());
    const auto probability = expected.at(file.probabilities).get<std::vector<double>>();
    REQUIRE(predictions.probability.size() == probability.size());
    for (std::size_t i = 0; i < probability.size(); ++i) {
      // Another CPU may dispatch other SIMD kernels, whose float32 sums differ in the last bits.
      INFO("row " << i);
      CHECK(predictions.probability[i] == Approx(probability[i]).epsilon(1e-5));
    }

    // Saved again, layer 1 keeps only its three blocks, and the network computes the same bits.
    const std::string resaved = lepton::serialize_artifact(loaded);
    CHECK(lepton::detail::read_prefix(resaved).flags == (file.flags | lepton::detail::kFlagBlockLayers));
    CHECK(lepton::detail::read_prefix(bytes).payload_bytes - lepton::detail::read_prefix(resaved).payload_bytes ==
          file.saved_bytes);
    const lepton::ModelArtifact reloaded = lepton::parse_artifact(resaved, "resaved");
    const lepton::Matrix rows = random_rows(100, 5, 3);
    const std::vector<double> expected_outputs = lepton::Predictor(loaded).forward(rows);
    const std::vector<double> outputs = lepton::Predictor(reloaded).forward(rows);
    REQUIRE(outputs.size() == expected_outputs.size());
    CHECK(std::memcmp(outputs.data(), expected_outputs.data(), outputs.size() * sizeof(double)) == 0);
  }
}

TEST_CASE("merged block golden artifacts still load", "[artifact][golden][blocks]") {
  const nlohmann::json expected = nlohmann::json::parse(lepton::read_file(kMergedBlocksExpected));
  const struct {
    const char* path;
    std::uint32_t flags;
    const char* probabilities;
    const char* dense_path;
  } files[] = {{kMergedBlocksGolden, lepton::detail::kFlagBlockLayers, "f32_probability", kMergedDenseGolden},
               {kMergedBlocksInt8Golden, lepton::detail::kFlagInt8Layers | lepton::detail::kFlagBlockLayers,
                "int8_probability", kMergedDenseInt8Golden}};

  for (const auto& file : files) {
    INFO(file.path);
    const std::string bytes = lepton::read_file(file.path);
    CHECK(lepton::detail::read_prefix(bytes).flags == file.flags);
    nlohmann::json header = nlohmann::json::parse(lepton::detail::split_artifact(bytes).header_json);
    CHECK(tensor_named(header, "layers.1.weight").at("shape") == nlohmann::json::array({96}));

    // The block file and the dense file of the same network load to the same weights.
    const lepton::ModelArtifact loaded = lepton::load_artifact(file.path);
    const lepton::ModelArtifact dense = lepton::load_artifact(file.dense_path);
    REQUIRE(loaded.network.layers.size() == dense.network.layers.size());
    for (std::size_t l = 0; l < loaded.network.layers.size(); ++l) {
      INFO("layer " << l);
      CHECK(same_bits(loaded.network.layers[l].weight, dense.network.layers[l].weight));
      CHECK(loaded.network.layers[l].quantized.values == dense.network.layers[l].quantized.values);
    }

    const lepton::Predictions predictions = lepton::Predictor(loaded).predict(small_table());
    const auto probability = expected.at(file.probabilities).get<std::vector<double>>();
    REQUIRE(predictions.probability.size() == probability.size());
    for (std::size_t i = 0; i < probability.size(); ++i) {
      // Another CPU may dispatch other SIMD kernels, whose float32 sums differ in the last bits.
      INFO("row " << i);
      CHECK(predictions.probability[i] == Approx(probability[i]).epsilon(1e-5));
    }
  }
}

// Rewrites the golden files. Run only when the format changes on purpose, and then keep the old file
// under a new name so that its test still runs.
TEST_CASE("write golden v1 artifact", "[.write-golden]") {
  if (std::getenv("LEPTON_WRITE_GOLDEN") == nullptr) {
    WARN("set LEPTON_WRITE_GOLDEN=1 to rewrite the golden files");
    return;
  }

  lepton::ModelArtifact artifact = small_artifact();
  artifact.extensions = {{"golden", {{"command", kGoldenCommand}}}};
  lepton::save_artifact(artifact, kGoldenArtifact);

  const lepton::Predictions predictions = lepton::Predictor(artifact).predict(small_table());
  const nlohmann::json expected = {{"command", kGoldenCommand},
                                   {"threshold", artifact.threshold},
                                   {"probability", predictions.probability}};
  lepton::write_file_atomically(kGoldenExpected, expected.dump(1) + "\n");
}

// Writes the merged block golden files. The merged dense golden files came from an earlier version of this case,
// in builds that stored block-diagonal layers dense, and no build writes them again.
TEST_CASE("write golden merged block artifacts", "[.write-golden-merged]") {
  if (std::getenv("LEPTON_WRITE_GOLDEN") == nullptr) {
    WARN("set LEPTON_WRITE_GOLDEN=1 to rewrite the golden files");
    return;
  }

  lepton::ModelArtifact f32 = merged_artifact();
  f32.extensions = {{"golden", {{"command", kMergedGoldenCommand}}}};
  lepton::ModelArtifact int8 = all_int8(f32);
  lepton::save_artifact(f32, kMergedBlocksGolden);
  lepton::save_artifact(int8, kMergedBlocksInt8Golden);

  const nlohmann::json expected = {
      {"command", kMergedGoldenCommand},
      {"threshold", f32.threshold},
      {"f32_probability", lepton::Predictor(f32).predict(small_table()).probability},
      {"int8_probability", lepton::Predictor(int8).predict(small_table()).probability}};
  lepton::write_file_atomically(kMergedBlocksExpected, expected.dump(1) + "\n");
}
