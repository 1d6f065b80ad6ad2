// Block-diagonal layers of merged cross-fitted networks: detection, the blocked f32 and int8 kernels against
// the dense kernels on every SIMD level, batch consistency in the predictor, and the explainers' fast path.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "lepton/error.hpp"
#include "lepton/explain.hpp"
#include "lepton/model.hpp"
#include "lepton/predictor.hpp"
#include "lepton/quantize.hpp"
#include "lepton/table.hpp"
#include "runtime/block_diagonal.hpp"
#include "runtime/kernels.hpp"
#include "support/random_mlp.hpp"

namespace {

using lepton::Activation;
using lepton::DenseLayer;
using lepton::Mlp;
using lepton::SimdLevel;
using lepton::test_support::random_f32_members;
namespace detail = lepton::detail;

const char* const kAi4iPath = LEPTON_SHARED_DIR "/data/ai4i2020.csv";
// A single trained 8-64-32-1 member, written by `lepton run` on the AI4I example (see test_quantize.cpp).
const char* const kAi4iModel = LEPTON_SOURCE_DIR "/tests/golden/ai4i_mlp.lepton";

// The shape of a cross-fitted AI4I member and the fold count of `lepton run` on the AI4I example.
const std::vector<std::size_t> kMemberWidths = {8, 64, 32, 1};
constexpr std::size_t kFolds = 10;

std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> levels;
  for (const SimdLevel level : {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512}) {
    if (level <= lepton::detected_simd_level()) levels.push_back(level);
  }
  return levels;
}

const lepton::ModelArtifact& golden_artifact() {
  static const lepton::ModelArtifact artifact = lepton::load_artifact(kAi4iModel);
  return artifact;
}

// Every row of the AI4I file, encoded by the golden model's preprocessor: 10,000 x 8.
const lepton::Matrix& ai4i_rows() {
  static const lepton::Matrix rows = golden_artifact().preprocessor.transform(lepton::read_csv(kAi4iPath));
  return rows;
}

// The golden artifact with its network replaced by `network`.
lepton::ModelArtifact with_network(Mlp network) {
  lepton::ModelArtifact artifact = golden_artifact();
  artifact.network = std::move(network);
  return artifact;
}

// A merged AI4I network of kFolds random 8-64-32-1 members: 8-640-320-1, its layer 1 block-diagonal.
const Mlp& merged_ai4i() {
  static const Mlp network = merge_mean_output(random_f32_members(kMemberWidths, kFolds, 100));
  return network;
}

// The merged AI4I network with one nonzero weight outside layer 1's diagonal blocks: output 0, last input.
Mlp merged_with_off_block_weight() {
  Mlp network = merged_ai4i();
  DenseLayer& layer = network.layers[1];
  layer.weight[layer.inputs - 1] = 0.5f;
  return network;
}

// Returns the first `outputs` columns of each of `rows` rows that lie `stride` floats apart.
std::vector<float> unpadded(const std::vector<float>& padded, std::size_t rows, std::size_t stride,
                            std::size_t outputs) {
  std::vector<float> result(rows * outputs);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t o = 0; o < outputs; ++o) result[r * outputs + o] = padded[r * stride + o];
  }
  return result;
}

// Dense evaluation with the predictor's own kernels at `level`, every layer as one dense_f32 call over all
// rows: rows x outputs. Only ReLU and identity layers, because only ReLU is fused into the kernel.
std::vector<float> dense_forward(SimdLevel level, const Mlp& network, const lepton::Matrix& rows) {
  const detail::KernelTable& kernels = detail::kernels_for(level);
  std::vector<float> input = rows.data;
  std::size_t stride = rows.cols;
  for (const DenseLayer& layer : network.layers) {
    REQUIRE((layer.activation == Activation::Relu || layer.activation == Activation::Identity));
    const detail::PackedF32Layer packed = detail::pack_f32(layer);
    std::vector<float> output(rows.rows * packed.padded_outputs);
    kernels.dense_f32(packed, input.data(), stride, rows.rows, output.data(), packed.padded_outputs);
    input = std::move(output);
    stride = packed.padded_outputs;
  }

  return unpadded(input, rows.rows, stride, network.outputs());
}

// Counts the entries where the predictor's forward() (floats widened to double) differs from `expected`.
std::size_t mismatches(const std::vector<double>& actual, const std::vector<float>& expected) {
  std::size_t count = actual.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
    count += actual[i] == static_cast<double>(expected[i]) ? 0 : 1;
  }
  return count;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// A block-diagonal layer of `blocks` random blocks of block_outputs x block_inputs, zeros elsewhere.
DenseLayer random_block_diagonal(std::size_t blocks, std::size_t block_inputs, std::size_t block_outputs,
                                 Activation activation, std::mt19937& generator) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  DenseLayer layer;
  layer.inputs = blocks * block_inputs;
  layer.outputs = blocks * block_outputs;
  layer.activation = activation;
  layer.weight.assign(layer.inputs * layer.outputs, 0.0f);
  for (std::size_t b = 0; b < blocks; ++b) {
    for (std::size_t o = 0; o < block_outputs; ++o) {
      for (std::size_t k = 0; k < block_inputs; ++k) {
        layer.weight[(b * block_outputs + o) * layer.inputs + b * block_inputs + k] = normal(generator);
      }
    }
  }
  for (std::size_t o = 0; o < layer.outputs; ++o) layer.bias.push_back(normal(generator));
  return layer;
}

struct BlockShape {
  std::size_t blocks;
  std::size_t block_inputs;
  std::size_t block_outputs;
};

// Awkward sizes: block outputs below, at and above one 16-float kernel block, so that a block's padded
// outputs reach one or several later blocks, or past the layer's outputs.
const std::vector<BlockShape> kBlockShapes = {{2, 1, 1}, {3, 3, 7}, {7, 5, 3}, {4, 9, 17}, {3, 16, 33}, {10, 64, 32}};

// Returns `layer` quantized to int8 weights with per-output scales. Its `weight` then contains the dequantized
// values, as lepton::quantize leaves them.
DenseLayer quantized_layer(DenseLayer layer) {
  layer.quantized = lepton::quantize_weights(layer);
  layer.precision = lepton::LayerPrecision::Int8;
  for (std::size_t i = 0; i < layer.weight.size(); ++i) {
    layer.weight[i] = static_cast<float>(layer.quantized.values[i]) * layer.quantized.scales[i / layer.inputs];
  }
  return layer;
}

// Returns `network` with every layer quantized by quantized_layer and one activation scale per row at run time.
Mlp quantized_network(Mlp network) {
  for (DenseLayer& layer : network.layers) layer = quantized_layer(std::move(layer));
  return network;
}

// Evaluates `network` densely in int8 with the predictor's own kernels at `level`: each layer quantizes its
// input rows and runs as one dense_i8 call. Returns rows x outputs.
std::vector<float> dense_i8_forward(SimdLevel level, const Mlp& network, const lepton::Matrix& rows) {
  const detail::KernelTable& kernels = detail::kernels_for(level);
  std::vector<float> input = rows.data;
  std::size_t stride = rows.cols;
  for (const DenseLayer& layer : network.layers) {
    REQUIRE((layer.activation == Activation::Relu || layer.activation == Activation::Identity));
    const detail::PackedI8Layer packed = detail::pack_i8(layer);
    std::vector<std::int8_t> q(rows.rows * packed.padded_inputs);
    std::vector<float> row_scale(rows.rows);
    kernels.quantize_rows(input.data(), stride, packed.inputs, packed.padded_inputs, rows.rows, packed.input_scale,
                          q.data(), row_scale.data());
    std::vector<float> output(rows.rows * packed.padded_outputs);
    kernels.dense_i8(packed, q.data(), packed.padded_inputs, row_scale.data(), rows.rows, output.data(),
                     packed.padded_outputs);
    input = std::move(output);
    stride = packed.padded_outputs;
  }

  return unpadded(input, rows.rows, stride, network.outputs());
}

// Guard value after a blocked layer's rows x output_stride floats: no kernel may write it.
constexpr float kGuard = 12345.0f;

// A blocked layer's output next to the dense kernel's, for one batch of rows.
struct BlockedComparison {
  std::size_t differences = 0;   // Outputs where the blocked result differs from the dense one.
  std::size_t guard_writes = 0;  // Guard floats that a kernel overwrote.
};

// Compares `y` (rows x blocked_stride outputs, then guard floats) with `expected` (rows x dense_stride).
BlockedComparison compare_blocked(const std::vector<float>& y, std::size_t blocked_stride,
                                  const std::vector<float>& expected, std::size_t dense_stride, std::size_t rows,
                                  std::size_t outputs) {
  BlockedComparison result;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t o = 0; o < outputs; ++o) {
      result.differences += y[r * blocked_stride + o] == expected[r * dense_stride + o] ? 0 : 1;
    }
  }
  for (std::size_t i = rows * blocked_stride; i < y.size(); ++i) result.guard_writes += y[i] == kGuard ? 0 : 1;
  return result;
}

}  // namespace

TEST_CASE("block detection on merged members", "[predictor][block]") {
  const Mlp& merged = merged_ai4i();
  CHECK(detail::find_diagonal_blocks(merged.layers[0]) == 1);
  CHECK(detail::find_diagonal_blocks(merged.layers[1]) == kFolds);
  CHECK(detail::find_diagonal_blocks(merged.layers[2]) == 1);
}

TEST_CASE("block detection on deeper members", "[predictor][block]") {
  // 5 members 8-12-6-5-1 merge into 8-60-30-25-1 with two block-diagonal layers of 6 x 12 and 5 x 6 blocks.
  const Mlp merged = merge_mean_output(random_f32_members({8, 12, 6, 5, 1}, 5, 200));
  CHECK(detail::find_diagonal_blocks(merged.layers[1]) == 5);
  CHECK(detail::find_diagonal_blocks(merged.layers[2]) == 5);
}

TEST_CASE("block detection rejects one off-block weight", "[predictor][block]") {
  CHECK(detail::find_diagonal_blocks(merged_with_off_block_weight().layers[1]) == 1);
}

TEST_CASE("block detection rejects a NaN off-block weight", "[predictor][block]") {
  Mlp network = merged_ai4i();
  network.layers[1].weight[network.layers[1].inputs - 1] = std::numeric_limits<float>::quiet_NaN();
  CHECK(detail::find_diagonal_blocks(network.layers[1]) == 1);
}

TEST_CASE("block detection treats negative zero as zero", "[predictor][block]") {
  Mlp network = merged_ai4i();
  network.layers[1].weight[network.layers[1].inputs - 1] = -0.0f;
  CHECK(detail::find_diagonal_blocks(network.layers[1]) == kFolds);
}

TEST_CASE("block detection keeps layers that would not get faster", "[predictor][block]") {
  // Two blocks of 8 outputs still pad to one 16-float kernel block each: as many multiply-adds as dense.
  std::mt19937 generator(7);
  CHECK(detail::find_diagonal_blocks(random_block_diagonal(2, 16, 8, Activation::Relu, generator)) == 1);
}

TEST_CASE("block detection prefers less padded work", "[predictor][block]") {
  // 4 blocks of 16 x 16 are also 2 blocks of 32 x 32 with zeros inside. The 4 blocks do half the work.
  std::mt19937 generator(8);
  CHECK(detail::find_diagonal_blocks(random_block_diagonal(4, 16, 16, Activation::Relu, generator)) == 4);
}

TEST_CASE("block packing rejects a nonzero off-block weight", "[predictor][block]") {
  CHECK_THROWS_AS(detail::pack_blocked_f32(merged_with_off_block_weight().layers[1], kFolds), lepton::InternalError);
}

TEST_CASE("blocked kernel equals dense kernel at awkward sizes", "[predictor][block]") {
  std::mt19937 generator(11);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (const SimdLevel level : supported_levels()) {
    const detail::KernelTable& kernels = detail::kernels_for(level);
    for (const BlockShape& shape : kBlockShapes) {
      for (const Activation activation : {Activation::Relu, Activation::Identity}) {
        const DenseLayer layer =
            random_block_diagonal(shape.blocks, shape.block_inputs, shape.block_outputs, activation, generator);
        const detail::PackedF32Layer dense = detail::pack_f32(layer);
        const detail::BlockedF32Layer blocked = detail::pack_blocked_f32(layer, shape.blocks);

        for (const std::size_t rows : {std::size_t{1}, std::size_t{5}}) {
          std::vector<float> x(rows * layer.inputs);
          for (float& value : x) value = normal(generator);
          std::vector<float> expected(rows * dense.padded_outputs);
          kernels.dense_f32(dense, x.data(), layer.inputs, rows, expected.data(), dense.padded_outputs);

          // Exactly rows x output_stride floats, then one kernel block of guard values that no kernel may write.
          std::vector<float> y(rows * blocked.output_stride + detail::kOutputBlock, kGuard);
          detail::run_blocked_f32(kernels, blocked, x.data(), layer.inputs, rows, y.data(), blocked.output_stride);
          const BlockedComparison comparison =
              compare_blocked(y, blocked.output_stride, expected, dense.padded_outputs, rows, layer.outputs);

          INFO(lepton::to_string(level) << ", " << shape.blocks << " blocks of " << shape.block_outputs << " x "
                                        << shape.block_inputs << ", " << lepton::to_string(activation) << ", "
                                        << rows << " rows");
          CHECK(comparison.differences == 0);
          CHECK(comparison.guard_writes == 0);
        }
      }
    }
  }
}

TEST_CASE("merged predictions equal dense evaluation", "[predictor][block][ai4i]") {
  for (const SimdLevel level : supported_levels()) {
    const lepton::Predictor predictor(with_network(merged_ai4i()), lepton::PredictorOptions().with_simd(level));
    INFO(lepton::to_string(level));
    CHECK(mismatches(predictor.forward(ai4i_rows()), dense_forward(level, merged_ai4i(), ai4i_rows())) == 0);
  }
}

TEST_CASE("deeper merged predictions equal dense evaluation", "[predictor][block][ai4i]") {
  const Mlp merged = merge_mean_output(random_f32_members({8, 12, 6, 5, 1}, 5, 300));
  for (const SimdLevel level : supported_levels()) {
    const lepton::Predictor predictor(with_network(merged), lepton::PredictorOptions().with_simd(level));
    INFO(lepton::to_string(level));
    CHECK(mismatches(predictor.forward(ai4i_rows()), dense_forward(level, merged, ai4i_rows())) == 0);
  }
}

// The equality tests above pass on the dense path too, so these check that the predictor takes the block path.
TEST_CASE("predictor runs merged layers in blocks", "[predictor][block][ai4i]") {
  for (const SimdLevel level : supported_levels()) {
    const lepton::Predictor predictor(with_network(merged_ai4i()), lepton::PredictorOptions().with_simd(level));
    INFO(lepton::to_string(level));
    CHECK(predictor.layer_blocks() == std::vector<std::size_t>{1, kFolds, 1});
  }
  const Mlp deeper = merge_mean_output(random_f32_members({8, 12, 6, 5, 1}, 5, 300));
  CHECK(lepton::Predictor(with_network(deeper)).layer_blocks() == std::vector<std::size_t>{1, 5, 5, 1});
}

TEST_CASE("predictor runs an off-block layer dense", "[predictor][block][ai4i]") {
  const lepton::Predictor predictor(with_network(merged_with_off_block_weight()));
  CHECK(predictor.layer_blocks() == std::vector<std::size_t>{1, 1, 1});
}

TEST_CASE("off-block weight gives the dense output", "[predictor][block][ai4i]") {
  const Mlp network = merged_with_off_block_weight();
  for (const SimdLevel level : supported_levels()) {
    const lepton::Predictor predictor(with_network(network), lepton::PredictorOptions().with_simd(level));
    INFO(lepton::to_string(level));
    CHECK(mismatches(predictor.forward(ai4i_rows()), dense_forward(level, network, ai4i_rows())) == 0);
  }
}

TEST_CASE("off-block weight changes the output", "[predictor][block][ai4i]") {
  // Proves that the previous test can fail: skipping the weight would give the merged network's output.
  const lepton::Predictor merged(with_network(merged_ai4i()));
  const lepton::Predictor changed(with_network(merged_with_off_block_weight()));
  CHECK_FALSE(same_bits(merged.forward(ai4i_rows()), changed.forward(ai4i_rows())));
}

TEST_CASE("merged FMA levels agree bit for bit", "[predictor][block][ai4i]") {
  if (lepton::detected_simd_level() < SimdLevel::Avx512) {
    WARN("AVX-512 is not available on this CPU; AVX2 against AVX-512 is not compared");
    return;
  }
  const lepton::Predictor avx2(with_network(merged_ai4i()), lepton::PredictorOptions().with_simd(SimdLevel::Avx2));
  const lepton::Predictor avx512(with_network(merged_ai4i()), lepton::PredictorOptions().with_simd(SimdLevel::Avx512));
  CHECK(same_bits(avx2.forward(ai4i_rows()), avx512.forward(ai4i_rows())));
}

TEST_CASE("merged scalar level agrees with FMA levels", "[predictor][block][ai4i]") {
  const lepton::Predictor scalar(with_network(merged_ai4i()), lepton::PredictorOptions().with_simd(SimdLevel::Scalar));
  const std::vector<double> reference = scalar.forward(ai4i_rows());
  for (const SimdLevel level : supported_levels()) {
    const lepton::Predictor predictor(with_network(merged_ai4i()), lepton::PredictorOptions().with_simd(level));
    const std::vector<double> logits = predictor.forward(ai4i_rows());
    double largest = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      largest = std::max(largest, std::abs(logits[i] - reference[i]) / std::max(1.0, std::abs(reference[i])));
    }
    INFO(lepton::to_string(level) << " largest relative difference " << largest);
    // kF32KernelTolerance per layer, for three layers in a row. Measured: 4.8e-7 for AVX2 and AVX-512.
    CHECK(largest < 3 * detail::kF32KernelTolerance);
  }
}

TEST_CASE("merged rows equal alone and in any batch", "[predictor][block][ai4i]") {
  const lepton::Matrix& rows = ai4i_rows();
  const std::size_t count = 300;
  for (const SimdLevel level : supported_levels()) {
    for (const std::size_t tile : {std::size_t{1}, std::size_t{5}, std::size_t{64}}) {
      const lepton::Predictor predictor(with_network(merged_ai4i()),
                                        lepton::PredictorOptions().with_simd(level).with_tile_rows(tile));
      lepton::Workspace workspace;
      lepton::Predictions batch;
      predictor.predict(rows.data.data(), count, workspace, batch);

      lepton::Predictions alone;
      std::size_t differences = 0;
      for (std::size_t r = 0; r < count; ++r) {
        predictor.predict(rows.row(r), 1, workspace, alone);
        differences += std::memcmp(&alone.probability[0], &batch.probability[r], sizeof(double)) == 0 ? 0 : 1;
      }
      INFO(lepton::to_string(level) << " tile " << tile);
      CHECK(differences == 0);
    }
  }
}

TEST_CASE("merged fast path matches reference path", "[explain][block][ai4i]") {
  const lepton::ModelArtifact artifact = with_network(merged_ai4i());
  const lepton::ExplainModel model = lepton::explain_model(artifact, lepton::OutputLink::Logistic);
  const lepton::FeatureGroups groups = lepton::FeatureGroups::from_preprocessor(artifact.preprocessor);
  const lepton::DoubleMatrix encoded = lepton::DoubleMatrix::from(ai4i_rows());
  const lepton::Background background = lepton::Background::sample(encoded, 20, 3);
  const lepton::DoubleMatrix rows = lepton::DoubleMatrix::from_rows(
      {std::vector<double>(encoded.row(0), encoded.row(0) + encoded.cols),
       std::vector<double>(encoded.row(4321), encoded.row(4321) + encoded.cols)});

  const lepton::ExactOptions options = lepton::ExactOptions().threads(1);
  const lepton::Explanation reference =
      lepton::ExactExplainer(model, background, groups, lepton::ExactOptions(options).path(lepton::CoalitionPath::Reference))
          .explain(rows);
  const lepton::Explanation fast =
      lepton::ExactExplainer(model, background, groups, lepton::ExactOptions(options).path(lepton::CoalitionPath::Fast))
          .explain(rows);

  double largest = 0;
  for (std::size_t i = 0; i < reference.values.size(); ++i) {
    largest = std::max(largest, std::abs(reference.values[i] - fast.values[i]));
  }
  INFO("largest difference " << largest);
  // Float rounding over 640 + 320 units of a probability, as in the other fast path tests: 1e-5 is about
  // 100 float ulps of 0.5. A skipped or misplaced block changes values by far more.
  CHECK(largest < 1e-5);
}

// Block inputs that are multiples of 4 (kInputGroup) run in blocks, and the others must fall back to dense.
TEST_CASE("blocked int8 kernel equals dense int8 kernel", "[predictor][block][int8]") {
  const std::vector<BlockShape> aligned = {{2, 4, 16}, {3, 8, 7}, {4, 12, 17}, {3, 16, 33}, {10, 64, 32}};
  std::mt19937 generator(13);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (const SimdLevel level : supported_levels()) {
    const detail::KernelTable& kernels = detail::kernels_for(level);
    for (const BlockShape& shape : aligned) {
      for (const Activation activation : {Activation::Relu, Activation::Identity}) {
        const DenseLayer layer = quantized_layer(
            random_block_diagonal(shape.blocks, shape.block_inputs, shape.block_outputs, activation, generator));
        const detail::PackedI8Layer dense = detail::pack_i8(layer);
        const detail::BlockedI8Layer blocked = detail::pack_blocked_i8(layer);
        INFO(lepton::to_string(level) << ", " << shape.blocks << " blocks of " << shape.block_outputs << " x "
                                      << shape.block_inputs << ", " << lepton::to_string(activation));
        REQUIRE(blocked.parts.size() == shape.blocks);

        const std::size_t rows = 5;
        std::vector<float> x(rows * layer.inputs);
        for (float& value : x) value = normal(generator);
        std::vector<std::int8_t> q(rows * blocked.padded_inputs);
        std::vector<float> row_scale(rows);
        kernels.quantize_rows(x.data(), layer.inputs, layer.inputs, blocked.padded_inputs, rows, 0.0f, q.data(),
                              row_scale.data());
        std::vector<float> expected(rows * dense.padded_outputs);
        kernels.dense_i8(dense, q.data(), dense.padded_inputs, row_scale.data(), rows, expected.data(),
                         dense.padded_outputs);

        std::vector<float> y(rows * blocked.output_stride + detail::kOutputBlock, kGuard);
        detail::run_blocked_i8(kernels, blocked, q.data(), row_scale.data(), rows, y.data(), blocked.output_stride);
        const BlockedComparison comparison =
            compare_blocked(y, blocked.output_stride, expected, dense.padded_outputs, rows, layer.outputs);
        CHECK(comparison.differences == 0);
        CHECK(comparison.guard_writes == 0);
      }
    }
  }
}

TEST_CASE("int8 blocks off the input groups run dense", "[predictor][block][int8]") {
  std::mt19937 generator(17);
  for (const BlockShape& shape : std::vector<BlockShape>{{3, 3, 7}, {7, 5, 3}, {4, 9, 17}}) {
    const DenseLayer layer = quantized_layer(
        random_block_diagonal(shape.blocks, shape.block_inputs, shape.block_outputs, Activation::Relu, generator));
    INFO(shape.blocks << " blocks of " << shape.block_outputs << " x " << shape.block_inputs);
    CHECK(detail::find_diagonal_blocks(layer) == shape.blocks);
    CHECK(detail::pack_blocked_i8(layer).parts.size() == 1);
  }
}

TEST_CASE("predictor runs quantized merged layers in blocks", "[predictor][block][int8][ai4i]") {
  const lepton::Predictor predictor(with_network(quantized_network(merged_ai4i())));
  CHECK(predictor.quantized());
  CHECK(predictor.layer_blocks() == std::vector<std::size_t>{1, kFolds, 1});

  const lepton::Predictor off_block(with_network(quantized_network(merged_with_off_block_weight())));
  CHECK(off_block.layer_blocks() == std::vector<std::size_t>{1, 1, 1});
}

TEST_CASE("quantized merged predictions equal dense int8 evaluation", "[predictor][block][int8][ai4i]") {
  const Mlp network = quantized_network(merged_ai4i());
  for (const SimdLevel level : supported_levels()) {
    const lepton::Predictor predictor(with_network(network), lepton::PredictorOptions().with_simd(level));
    INFO(lepton::to_string(level));
    CHECK(mismatches(predictor.forward(ai4i_rows()), dense_i8_forward(level, network, ai4i_rows())) == 0);
  }
}

TEST_CASE("quantized off-block weight changes the output", "[predictor][block][int8][ai4i]") {
  // Proves that the equality above can fail: a blocked run that skipped this weight would differ.
  const lepton::Predictor merged(with_network(quantized_network(merged_ai4i())));
  const lepton::Predictor changed(with_network(quantized_network(merged_with_off_block_weight())));
  CHECK_FALSE(same_bits(merged.forward(ai4i_rows()), changed.forward(ai4i_rows())));
}
