// The per-call predictor API: no heap allocation after warm-up (counted by replacing the global operator
// new and delete of this executable), single-record calls, and rows that do not depend on the batch.

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "lepton/error.hpp"
#include "lepton/model.hpp"
#include "lepton/predictor.hpp"
#include "lepton/quantize.hpp"
#include "lepton/table.hpp"

// ---- Allocation counter. Every operator new in this process goes through these replacements.

namespace {
std::atomic<std::size_t> g_allocations{0};
}

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* pointer = std::malloc(size == 0 ? 1 : size)) {
    return pointer;
  }
  throw std::bad_alloc();
}

void* operator new[](std::size_t size) {
  return operator new(size);
}

void* operator new(std::size_t size, std::align_val_t alignment) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t align = static_cast<std::size_t>(alignment);
  if (void* pointer = std::aligned_alloc(align, (size + align - 1) / align * align)) {
    return pointer;
  }
  throw std::bad_alloc();
}

void* operator new[](std::size_t size, std::align_val_t alignment) {
  return operator new(size, alignment);
}

void operator delete(void* pointer) noexcept { std::free(pointer); }
void operator delete[](void* pointer) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::size_t) noexcept { std::free(pointer); }
void operator delete[](void* pointer, std::size_t) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::align_val_t) noexcept { std::free(pointer); }
void operator delete[](void* pointer, std::align_val_t) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::size_t, std::align_val_t) noexcept { std::free(pointer); }
void operator delete[](void* pointer, std::size_t, std::align_val_t) noexcept { std::free(pointer); }

namespace {

const char* const kAi4iPath = LEPTON_SHARED_DIR "/data/ai4i2020.csv";
// See tests/runtime/test_quantize.cpp for how this file was written.
const char* const kAi4iModel = LEPTON_SOURCE_DIR "/tests/golden/ai4i_mlp.lepton";

const lepton::Table& ai4i_table() {
  static const lepton::Table table = lepton::read_csv(kAi4iPath);
  return table;
}

const lepton::ModelArtifact& f32_artifact() {
  static const lepton::ModelArtifact artifact = lepton::load_artifact(kAi4iModel);
  return artifact;
}

const lepton::Matrix& encoded_rows() {
  static const lepton::Matrix rows = f32_artifact().preprocessor.transform(ai4i_table());
  return rows;
}

const lepton::ModelArtifact& int8_artifact() {
  static const lepton::ModelArtifact artifact = [] {
    const lepton::Matrix& rows = encoded_rows();
    std::vector<std::int64_t> labels(rows.rows, 0);
    // The gate is not under test here: tolerance 1 keeps every layer int8.
    return lepton::quantize(f32_artifact(), lepton::Matrix(), rows, labels,
                            lepton::QuantizationOptions().with_tolerance(1.0).with_objective("accuracy"))
        .artifact;
  }();
  return artifact;
}

// Four copies of the golden member merged into one 8-256-128-1 network, whose layer 1 is block-diagonal
// and runs as four kernel calls.
const lepton::ModelArtifact& merged_artifact() {
  static const lepton::ModelArtifact artifact = [] {
    lepton::ModelArtifact merged = f32_artifact();
    merged.network = lepton::merge_mean_output(std::vector<lepton::Mlp>(4, f32_artifact().network));
    return merged;
  }();
  return artifact;
}

std::vector<lepton::SimdLevel> supported_levels() {
  std::vector<lepton::SimdLevel> levels;
  for (const lepton::SimdLevel level : {lepton::SimdLevel::Scalar, lepton::SimdLevel::Avx2, lepton::SimdLevel::Avx512}) {
    if (level <= lepton::detected_simd_level()) levels.push_back(level);
  }
  return levels;
}

// Counts the allocations of `calls` repetitions of `call`.
template <typename Call>
std::size_t allocations_of(Call&& call, int calls = 20) {
  const std::size_t before = g_allocations.load();
  for (int i = 0; i < calls; ++i) {
    call();
  }
  return g_allocations.load() - before;
}

bool same_bits(const double* a, const double* b, std::size_t count) {
  return std::memcmp(a, b, count * sizeof(double)) == 0;
}

// The first row of the AI4I file as text, in a shuffled column order with an extra column.
const std::vector<std::string> kColumns = {"Tool wear [min]", "Type",        "Torque [Nm]",           "Note",
                                           "Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]"};

}  // namespace

TEST_CASE("alloc counter sees allocations", "[predictor][alloc]") {
  // Proves that the replacement is active, so a zero below means something.
  CHECK(allocations_of([] { std::vector<int> v(100); (void)v; }, 3) == 3);
}

TEST_CASE("alloc batch predict is allocation-free after warm-up", "[predictor][alloc]") {
  const lepton::Matrix& rows = encoded_rows();
  for (const lepton::ModelArtifact* artifact : {&f32_artifact(), &int8_artifact(), &merged_artifact()}) {
    INFO("layer 1 width " << artifact->network.layers[1].outputs);
    for (const lepton::SimdLevel level : supported_levels()) {
      const lepton::Predictor predictor(*artifact, lepton::PredictorOptions().with_simd(level));
      lepton::Workspace workspace;
      lepton::Predictions out;
      for (const std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{1024}}) {
        predictor.predict(rows.data.data(), batch, workspace, out);  // warm-up
        INFO((predictor.quantized() ? "int8 " : "f32 ") << lepton::to_string(level) << " batch " << batch);
        CHECK(allocations_of([&] { predictor.predict(rows.data.data(), batch, workspace, out); }) == 0);
      }
      // After the largest batch, smaller batches fit in the buffers too.
      INFO((predictor.quantized() ? "int8 " : "f32 ") << lepton::to_string(level) << " shrinking batch");
      CHECK(allocations_of([&] { predictor.predict(rows.data.data(), 3, workspace, out); }) == 0);
    }
  }
}

TEST_CASE("alloc single record is allocation-free after warm-up", "[predictor][alloc]") {
  const std::vector<lepton::Value> values = {lepton::Value(0), "M", "42.8", "long free-text note that is not used",
                                             298.1, "308.6", lepton::Value(1551.0)};
  for (const lepton::ModelArtifact* artifact : {&f32_artifact(), &int8_artifact(), &merged_artifact()}) {
    INFO("layer 1 width " << artifact->network.layers[1].outputs);
    const lepton::Predictor predictor(*artifact);
    const lepton::RecordSchema schema = predictor.bind(kColumns);
    lepton::Workspace workspace;
    lepton::Predictions out;
    predictor.predict(schema, values.data(), values.size(), workspace, out);
    INFO((predictor.quantized() ? "int8" : "f32"));
    CHECK(allocations_of([&] { predictor.predict(schema, values.data(), values.size(), workspace, out); }) == 0);
  }
}

TEST_CASE("alloc record equals table encoding", "[predictor][record]") {
  const lepton::Table& table = ai4i_table();
  const lepton::Predictor predictor(f32_artifact());
  const lepton::Matrix expected = predictor.encode(table);

  // Bind the file's own column order, then pass every cell as text, as the CSV reader saw it.
  const lepton::RecordSchema schema = predictor.bind(table.column_names());
  std::vector<lepton::Value> values(table.columns());
  std::vector<float> encoded(expected.cols);
  for (std::size_t r = 0; r < table.rows(); r += 97) {
    for (std::size_t c = 0; c < table.columns(); ++c) {
      values[c] = table.is_missing(r, c) ? lepton::Value::missing() : lepton::Value(table.cell(r, c));
    }
    predictor.encode(schema, values.data(), values.size(), encoded.data());
    INFO("row " << r);
    CHECK(std::memcmp(encoded.data(), expected.row(r), expected.cols * sizeof(float)) == 0);
  }
}

TEST_CASE("alloc record typed and text values agree", "[predictor][record]") {
  const lepton::Predictor predictor(f32_artifact());
  const lepton::Predictions typed = predictor.predict({{"Type", "M"},
                                                       {"Air temperature [K]", 298.1},
                                                       {"Process temperature [K]", 308.6},
                                                       {"Rotational speed [rpm]", 1551},
                                                       {"Torque [Nm]", 42.8},
                                                       {"Tool wear [min]", 0}});
  const lepton::Predictions text = predictor.predict({{"Tool wear [min]", " 0 "},
                                                      {"Torque [Nm]", "42.8"},
                                                      {"Rotational speed [rpm]", "+1551"},
                                                      {"Process temperature [K]", "308.6"},
                                                      {"Air temperature [K]", "298.1"},
                                                      {"Type", "M"}});
  REQUIRE(typed.rows == 1);
  REQUIRE(text.rows == 1);
  CHECK(typed.probability[0] == text.probability[0]);

  // The same row through the table path.
  const lepton::Table table({"Type", "Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]",
                             "Torque [Nm]", "Tool wear [min]"},
                            {{"M"}, {"298.1"}, {"308.6"}, {"1551"}, {"42.8"}, {"0"}});
  CHECK(predictor.predict(table).probability[0] == typed.probability[0]);
}

TEST_CASE("alloc record missing values use the fill", "[predictor][record]") {
  const lepton::Predictor predictor(f32_artifact());
  const lepton::Predictions with_markers = predictor.predict({{"Type", "NA"},
                                                              {"Air temperature [K]", ""},
                                                              {"Process temperature [K]", lepton::Value::missing()},
                                                              {"Rotational speed [rpm]", "?"},
                                                              {"Torque [Nm]", std::nan("")},
                                                              {"Tool wear [min]", "null"}});
  const lepton::Table parsed = lepton::parse_csv(
      "Type,Air temperature [K],Process temperature [K],Rotational speed [rpm],Torque [Nm],Tool wear [min]\n"
      "NA,,,?,,null\n",
      "missing.csv");
  CHECK(predictor.predict(parsed).probability[0] == with_markers.probability[0]);
}

TEST_CASE("alloc record errors name the column", "[predictor][record]") {
  const lepton::Predictor predictor(f32_artifact());
  CHECK_THROWS_WITH(predictor.bind({"Type", "Air temperature [K]", "Process temperature [K]",
                                    "Rotational speed [rpm]", "Torque [Nm]", "Tool wear [mn]"}),
                    Catch::Matchers::Contains("needs column 'Tool wear [min]'") &&
                        Catch::Matchers::Contains("did you mean 'Tool wear [mn]'"));
  CHECK_THROWS_WITH(predictor.bind({"Type", "Type"}), Catch::Matchers::Contains("appears at positions 0 and 1"));

  const lepton::RecordSchema schema = predictor.bind(kColumns);
  std::vector<lepton::Value> values = {0, "M", "forty", "", 298.1, 308.6, 1551};
  std::vector<float> encoded(8);
  CHECK_THROWS_AS(predictor.encode(schema, values.data(), values.size(), encoded.data()), lepton::ParseError);
  CHECK_THROWS_WITH(predictor.encode(schema, values.data(), values.size(), encoded.data()),
                    Catch::Matchers::Contains("column 'Torque [Nm]' has value 'forty'"));
  CHECK_THROWS_WITH(predictor.encode(schema, values.data(), 3, encoded.data()),
                    Catch::Matchers::Contains("the record has 3 values but the schema has 7 columns"));
}

TEST_CASE("alloc rows equal alone and in any batch", "[predictor][consistency]") {
  const lepton::Matrix& rows = encoded_rows();
  const std::size_t count = 300;
  for (const lepton::ModelArtifact* artifact : {&f32_artifact(), &int8_artifact(), &merged_artifact()}) {
    INFO("layer 1 width " << artifact->network.layers[1].outputs);
    for (const lepton::SimdLevel level : supported_levels()) {
      for (const std::size_t tile : {std::size_t{1}, std::size_t{5}, std::size_t{64}}) {
        const lepton::Predictor predictor(*artifact, lepton::PredictorOptions().with_simd(level).with_tile_rows(tile));
        lepton::Workspace workspace;
        lepton::Predictions batch;
        predictor.predict(rows.data.data(), count, workspace, batch);

        lepton::Predictions alone;
        std::size_t mismatches = 0;
        for (std::size_t r = 0; r < count; ++r) {
          predictor.predict(rows.row(r), 1, workspace, alone);
          mismatches += same_bits(&alone.probability[0], &batch.probability[r], 1) ? 0 : 1;
        }

        // Offsets into the batch: rows 3.. predicted as a batch of 17 must match too.
        lepton::Predictions offset;
        predictor.predict(rows.row(3), 17, workspace, offset);
        INFO((predictor.quantized() ? "int8 " : "f32 ") << lepton::to_string(level) << " tile " << tile);
        CHECK(mismatches == 0);
        CHECK(same_bits(offset.probability.data(), batch.probability.data() + 3, 17));
      }
    }
  }
}

TEST_CASE("alloc options are validated", "[predictor]") {
  CHECK_THROWS_WITH(lepton::Predictor(f32_artifact(), lepton::PredictorOptions().with_tile_rows(0)),
                    Catch::Matchers::Contains("tile_rows is 0"));
  lepton::Workspace workspace;
  lepton::Predictions out;
  const lepton::Predictor predictor(f32_artifact());
  CHECK_THROWS_AS(predictor.predict(nullptr, 2, workspace, out), lepton::InvalidArgument);
  predictor.predict(nullptr, 0, workspace, out);
  CHECK(out.rows == 0);
}
