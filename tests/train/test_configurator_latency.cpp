// Configurator: the per-SIMD-level latency estimate, the rows that the reasons quote when cross-fitted
// members train, and the report's check of the measured latency against max_latency_us.

#include <catch2/catch.hpp>

#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lepton/configurator.hpp"
#include "lepton/dataset.hpp"
#include "lepton/evaluator.hpp"
#include "lepton/log.hpp"
#include "lepton/model.hpp"
#include "lepton/pipeline.hpp"
#include "lepton/predictor.hpp"
#include "lepton/quantize.hpp"
#include "lepton/requirements.hpp"
#include "lepton/table.hpp"
#include "train/configurator_detail.hpp"
#include "train/report.hpp"
#include "support/synthetic_profile.hpp"

using Catch::Matchers::Contains;
using lepton::SimdLevel;
using lepton::detail::estimated_latency_us;

namespace {

using lepton::test_support::binary_profile;

const std::string kExample = LEPTON_SOURCE_DIR "/examples/predictive_maintenance/requirements.json";
const std::string kAi4i = LEPTON_SHARED_DIR "/data/ai4i2020.csv";

// One AI4I member, MLP 8-64-32-1, and ten of them merged into 8-640-320-1.
const std::vector<std::size_t> kMemberHidden{64, 32};
constexpr std::size_t kInputs = 8;
constexpr std::size_t kMembers = 10;

// Single-row medians of the runtime predictor, in microseconds, the slowest of the recorded runs. Sources:
// docs/benchmarks.md, "Inference" (2026-12-04) and its subsections "Merged cross-fitted networks" and "Merged
// int8 networks in blocks" (2026-12-05), and `LEPTON_SIMD=<level> build-latency/tests/bench_inference MODEL`
// run twice per level on the same 2-core AVX-512 VNNI KVM guest on 2026-12-05, for
// tests/golden/ai4i_mlp.lepton and the merged model that `lepton run` writes for examples/predictive_maintenance.
struct Measured {
  SimdLevel level;
  bool int8;
  double member_us;
  double merged_us;
};
const std::vector<Measured> kMeasured{
    {SimdLevel::Scalar, false, 0.510, 6.118}, {SimdLevel::Scalar, true, 1.341, 18.41},
    {SimdLevel::Avx2, false, 0.138, 1.855},   {SimdLevel::Avx2, true, 0.241, 1.891},
    {SimdLevel::Avx512, false, 0.146, 2.0},   {SimdLevel::Avx512, true, 0.164, 0.821},
};

std::string level_name(const Measured& m) {
  return lepton::to_string(m.level) + (m.int8 ? " int8" : " f32");
}

lepton::Requirements binary_requirements() {
  lepton::Requirements r;
  r.task = lepton::Task::BinaryClassification;
  r.target = "label";
  r.objective = lepton::Metric::F1;
  return r;
}

// Captures log messages at Warning and above while alive, then restores the silent default.
class WarningCapture {
 public:
  WarningCapture() {
    lepton::set_log_sink([this](lepton::LogLevel, std::string_view message) { messages_.emplace_back(message); });
    lepton::set_log_level(lepton::LogLevel::Warning);
  }
  ~WarningCapture() {
    lepton::set_log_level(lepton::LogLevel::Off);
    lepton::set_log_sink({});
  }
  const std::vector<std::string>& messages() const { return messages_; }

 private:
  std::vector<std::string> messages_;
};

}  // namespace

// ---- Multiply-adds that the runtime runs

TEST_CASE("configurator latency: member multiply-adds", "[configurator][latency]") {
  // 8 x 64 + 64 x 32 + 32 x 1; the biases add no multiply-adds.
  CHECK(lepton::detail::multiply_add_count(kInputs, kMemberHidden, 1) == 2'592);
  CHECK(lepton::detail::runtime_multiply_adds(kInputs, kMemberHidden, 1, 1, false) == 2'592);
  CHECK(lepton::detail::runtime_multiply_adds(kInputs, kMemberHidden, 1, 1, true) == 2'592);
}

TEST_CASE("configurator latency: merged layers run in blocks", "[configurator][latency]") {
  // docs/benchmarks.md: 25,920 multiply-adds for the 10 members, in f32 and in int8 (64-input blocks).
  CHECK(lepton::detail::runtime_multiply_adds(kInputs, kMemberHidden, 1, kMembers, false) == 25'920);
  CHECK(lepton::detail::runtime_multiply_adds(kInputs, kMemberHidden, 1, kMembers, true) == 25'920);
  // The stored size still counts the zeros: 211,201 parameters.
  CHECK(lepton::detail::parameter_count(kInputs, {640, 320}, 1) == 211'201);
}

TEST_CASE("configurator latency: unaligned int8 blocks run dense", "[configurator][latency]") {
  // Members 8-6-3-1: the 6-input blocks of the second layer miss the 4-byte int8 input group, so int8 runs
  // that layer dense (30 x 15 = 450), while f32 runs 5 blocks of 6 x 3 = 90.
  const std::vector<std::size_t> hidden{6, 3};
  const std::size_t shared = 5 * 8 * 6 + 5 * 3 * 1;  // first layer and output layer, the same in both
  CHECK(lepton::detail::runtime_multiply_adds(kInputs, hidden, 1, 5, false) == shared + 90);
  CHECK(lepton::detail::runtime_multiply_adds(kInputs, hidden, 1, 5, true) == shared + 450);
  // One model has no blocks, so the format does not matter.
  CHECK(lepton::detail::runtime_multiply_adds(kInputs, hidden, 1, 1, true) == 8 * 6 + 6 * 3 + 3 * 1);
}

TEST_CASE("configurator latency: no hidden layer", "[configurator][latency]") {
  CHECK(lepton::detail::runtime_multiply_adds(kInputs, {}, 1, 1, false) == 8);
  CHECK(lepton::detail::runtime_multiply_adds(kInputs, {}, 3, 1, true) == 24);
}

// ---- The throughput table

TEST_CASE("configurator latency: estimates are conservative", "[configurator][latency]") {
  for (const Measured& m : kMeasured) {
    INFO(level_name(m));
    CHECK(estimated_latency_us(2'592, m.int8, m.level) >= m.member_us);
    CHECK(estimated_latency_us(25'920, m.int8, m.level) >= m.merged_us);
  }
}

TEST_CASE("configurator latency: estimates stay near measurements", "[configurator][latency]") {
  // Conservative but not by much: within 2x for one member, where the fixed call cost dominates, and within
  // 1.25x for the merged network, which a tight max_latency_us judges.
  for (const Measured& m : kMeasured) {
    INFO(level_name(m));
    CHECK(estimated_latency_us(2'592, m.int8, m.level) <= 2.0 * m.member_us);
    CHECK(estimated_latency_us(25'920, m.int8, m.level) <= 1.25 * m.merged_us);
  }
}

TEST_CASE("configurator latency: each table constant", "[configurator][latency]") {
  // Call overhead plus multiply-adds over throughput, written out per entry of configurator_detail.hpp.
  CHECK(estimated_latency_us(25'920, false, SimdLevel::Avx512) == Approx(0.05 + 25'920 / 13'000.0));
  CHECK(estimated_latency_us(25'920, true, SimdLevel::Avx512) == Approx(0.12 + 25'920 / 32'000.0));
  CHECK(estimated_latency_us(25'920, false, SimdLevel::Avx2) == Approx(0.05 + 25'920 / 13'000.0));
  CHECK(estimated_latency_us(25'920, true, SimdLevel::Avx2) == Approx(0.15 + 25'920 / 14'000.0));
  CHECK(estimated_latency_us(25'920, false, SimdLevel::Scalar) == Approx(0.05 + 25'920 / 4'000.0));
  CHECK(estimated_latency_us(25'920, true, SimdLevel::Scalar) == Approx(0.4 + 25'920 / 1'350.0));
}

TEST_CASE("configurator latency: merged AVX-512 int8 beats f32", "[configurator][latency]") {
  // Measured 0.77 to 0.82 us for int8 against 1.5 to 2.0 us for f32; the estimates keep that order.
  CHECK(estimated_latency_us(25'920, true, SimdLevel::Avx512) < estimated_latency_us(25'920, false, SimdLevel::Avx512));
}

TEST_CASE("configurator latency: zero multiply-adds cost the call overhead", "[configurator][latency]") {
  CHECK(estimated_latency_us(0, false, SimdLevel::Avx512) == Approx(lepton::detail::kAvx512Fp32.call_overhead_us));
  CHECK(estimated_latency_us(0, true, SimdLevel::Scalar) == Approx(lepton::detail::kScalarInt8.call_overhead_us));
}

// ---- Configurator decisions and reasons

TEST_CASE("configurator latency: 10 us keeps 10 AI4I members", "[configurator][latency][ai4i]") {
  // The old estimate (2 GFLOP/s per parameter plus 0.2 us) put 10 merged members at 27.1 us and cut them.
  const lepton::Table table = lepton::read_csv(kAi4i);
  lepton::Requirements r = lepton::load_requirements(kExample);
  r.constraints.max_latency_us = 10;
  const lepton::DataProfile profile = lepton::profile_table(table, r.target, r.task);
  const lepton::ModelConfig config = lepton::configure(r, profile);

  CHECK(config.cross_fit_folds == 10);
  CHECK(config.hidden_units == std::vector<std::size_t>{64, 32});
  CHECK_FALSE(config.quantize);
  CHECK(config.reasons.at("cross_fit_folds").driven_by == "data.rows");
  CHECK_THAT(config.reasons.at("cross_fit_folds").text, Contains("25920 multiply-adds per row"));
}

TEST_CASE("configurator latency: cross-fit reason states the assumption", "[configurator][latency]") {
  lepton::Requirements r = binary_requirements();
  r.constraints.max_latency_us = 10;
  const lepton::ModelConfig config = lepton::configure(r, binary_profile(10000, 339));
  const std::string level = lepton::to_string(lepton::default_simd_level());
  const std::string expected = fmt::format("estimated {:.3g} us per row", estimated_latency_us(25'920, false,
                                                                                             lepton::default_simd_level()));

  const std::string& text = config.reasons.at("cross_fit_folds").text;
  CHECK_THAT(text, Contains(expected));
  CHECK_THAT(text, Contains("with zero blocks skipped"));
  CHECK_THAT(text, Contains("estimates for the " + level + " kernels that a Predictor on this machine dispatches to"));
  CHECK_THAT(text, Contains("report.json records the measured single-row latency"));
  CHECK_THAT(config.reasons.at("quantize").text, Contains("The merged fp32 model"));
  CHECK_THAT(config.reasons.at("quantize").text, Contains("estimates for the " + level + " kernels"));
}

TEST_CASE("configurator latency: no limit quotes no estimate in quantize", "[configurator][latency]") {
  const lepton::ModelConfig config = lepton::configure(binary_requirements(), binary_profile(10000, 339));
  CHECK(config.reasons.at("quantize").text == "No size or latency limit is set, so the model is exported in fp32 only");
}

// ---- Rows that the reasons quote

TEST_CASE("configurator rows: cross-fitted reasons name member rows", "[configurator][rows]") {
  // 10,000 labelled rows: 6,000 in the training split, 8,000 with validation, 7,200 per member (9 of 10 folds).
  const lepton::ModelConfig config = lepton::configure(binary_requirements(), binary_profile(10000, 339));
  REQUIRE(config.cross_fit_folds == 10);
  const std::string member_rows = "7200 training rows per cross-fitted member (9 of 10 folds of the 8000 training "
                                  "and validation rows)";

  CHECK_THAT(config.reasons.at("batch_size").text, Contains(member_rows + " give batch size 64"));
  CHECK_THAT(config.reasons.at("max_epochs").text, Contains(member_rows + " allow up to 200 epochs"));
  // 7,200 rows / 2,689 parameters = 2.68 rows per parameter, still below 5.
  CHECK_THAT(config.reasons.at("dropout").text, Contains(member_rows + " for 2689 parameters is 2.68 rows"));
  CHECK_THAT(config.reasons.at("cross_fit_folds").text, Contains("each on 7200 of those rows (9 of 10 folds)"));
  CHECK_THAT(config.reasons.at("hidden_units").text,
             Contains("Each cross-fitted member trains on 7200 rows, for which the same rule gives 64-32"));
}

TEST_CASE("configurator rows: decisions unchanged for AI4I members", "[configurator][rows]") {
  // The rules give the same settings for 6,000 and 7,200 rows, so the AI4I benchmark configuration is unchanged.
  const lepton::ModelConfig config = lepton::configure(binary_requirements(), binary_profile(10000, 339));
  CHECK(config.hidden_units == std::vector<std::size_t>{64, 32});
  CHECK(config.batch_size == 64);
  CHECK(config.max_epochs == 200);
  CHECK(config.patience == 25);
  CHECK(config.dropout == 0.1);
}

TEST_CASE("configurator rows: one model quotes the training split", "[configurator][rows]") {
  // 40,000 rows: 32,000 training and validation rows are above the cross-fitting limit of 20,000.
  const lepton::ModelConfig config = lepton::configure(binary_requirements(), binary_profile(40000, 4000));
  REQUIRE(config.cross_fit_folds == 1);
  CHECK_THAT(config.reasons.at("batch_size").text, Contains("24000 training rows give batch size 128"));
  CHECK_THAT(config.reasons.at("max_epochs").text, Contains("24000 training rows allow up to 100 epochs"));
  CHECK_THAT(config.reasons.at("hidden_units").text, !Contains("cross-fitted member"));
}

TEST_CASE("configurator rows: member rows past a size threshold", "[configurator][rows]") {
  // 15,000 rows: 9,000 in the training split give 64-32, but each member trains on 10,800 rows, for which the
  // row rule alone gives 128-64. The layers stay 64-32, and the reason states both.
  const lepton::ModelConfig config = lepton::configure(binary_requirements(), binary_profile(15000, 1500));
  REQUIRE(config.cross_fit_folds == 10);
  CHECK(config.hidden_units == std::vector<std::size_t>{64, 32});
  CHECK_THAT(config.reasons.at("hidden_units").text, Contains("9000 training rows and 8 encoded inputs"));
  CHECK_THAT(config.reasons.at("hidden_units").text, Contains("for which the rule alone would give 128-64"));
  CHECK_THAT(config.reasons.at("batch_size").text, Contains("10800 training rows per cross-fitted member"));
}

TEST_CASE("configurator rows: training budget uses member rows", "[configurator][rows]") {
  // A budget that 10 members can share: each member's epoch is estimated on its 7,200 rows.
  lepton::Requirements r = binary_requirements();
  r.constraints.max_training_seconds = 3;
  const lepton::ModelConfig config = lepton::configure(r, binary_profile(10000, 339));
  REQUIRE(config.cross_fit_folds == 10);
  const double epoch_seconds = lepton::detail::estimated_epoch_seconds(7200, 2689);
  const auto affordable = static_cast<std::size_t>(std::floor(3.0 / 10.0 / epoch_seconds));
  REQUIRE(affordable < 200);
  CHECK(config.max_epochs == affordable);
  CHECK_THAT(config.reasons.at("max_epochs").text, Contains("7200 rows"));
}

// ---- The report's check of the measured latency

namespace {

// The stored AI4I member and a pipeline result for it: its configuration, which the estimate reads, and its
// metrics on the whole AI4I file, because report.json renders an Evaluation that must hold a confusion matrix.
struct StoredRun {
  lepton::ModelArtifact artifact;
  lepton::PipelineResult result;
};

const StoredRun& stored_run() {
  static const StoredRun run = [] {
    StoredRun stored{lepton::load_artifact(LEPTON_SOURCE_DIR "/tests/golden/ai4i_mlp.lepton"), {}};
    stored.result.config.hidden_units = kMemberHidden;
    const lepton::Evaluation evaluation = lepton::evaluate(lepton::Predictor(stored.artifact), lepton::read_csv(kAi4i));
    stored.result.validation = evaluation;
    stored.result.test = evaluation;
    return stored;
  }();
  return run;
}

nlohmann::json report_with_limit(std::optional<double> max_latency_us) {
  lepton::Requirements r = lepton::load_requirements(kExample);
  r.constraints.max_latency_us = max_latency_us;
  return lepton::detail::build_report(r, stored_run().result, stored_run().artifact);
}

// The stored member with every layer quantized to int8, as an int8 export of the run.
lepton::ModelArtifact int8_copy(lepton::ModelArtifact artifact) {
  for (lepton::DenseLayer& layer : artifact.network.layers) {
    layer.quantized = lepton::quantize_weights(layer);
    layer.precision = lepton::LayerPrecision::Int8;
  }
  return artifact;
}

}  // namespace

TEST_CASE("configurator report: the int8 export is the one judged", "[configurator][latency][report]") {
  lepton::Requirements r = lepton::load_requirements(kExample);
  r.constraints.max_latency_us = 1000;
  const lepton::ModelArtifact int8 = int8_copy(stored_run().artifact);
  const nlohmann::json report = lepton::detail::build_report(r, stored_run().result, stored_run().artifact, &int8);

  const nlohmann::json& model = report.at("model");
  REQUIRE(model.contains("int8_single_row_latency_us"));
  const nlohmann::json& check = report.at("latency_check");
  CHECK(check.at("model") == "int8");
  CHECK(check.at("measured_us") == model.at("int8_single_row_latency_us"));
  CHECK(check.at("estimated_us").get<double>() ==
        Approx(estimated_latency_us(2'592, true, lepton::default_simd_level())));
  CHECK(model.at("estimated_int8_single_row_latency_us") == check.at("estimated_us"));

  std::string note;
  for (const nlohmann::json& row : report.at("constraints")) {
    if (row.at("constraint") == "max_latency_us") note = row.at("note").get<std::string>();
  }
  CHECK_THAT(note, Contains("model_int8.lepton"));
  CHECK_THAT(lepton::detail::render_report_markdown(report), Contains("- int8 model file: `model_int8.lepton`"));
}

TEST_CASE("configurator report: latency over the limit warns", "[configurator][latency][report]") {
  // No predict() call takes under 1e-6 us, so the check always fails.
  WarningCapture warnings;
  const nlohmann::json report = report_with_limit(1e-6);

  const nlohmann::json& check = report.at("latency_check");
  CHECK(check.at("exceeded") == true);
  CHECK(check.at("action") == "warning");
  CHECK(check.at("max_latency_us") == 1e-6);
  CHECK(check.at("measured_us") == report.at("model").at("single_row_latency_us"));
  CHECK(check.at("estimated_us").get<double>() ==
        Approx(estimated_latency_us(2'592, false, lepton::default_simd_level())));
  CHECK(check.at("simd_level") == lepton::to_string(lepton::default_simd_level()));
  CHECK_THAT(check.at("message").get<std::string>(), Contains("exceeds constraints.max_latency_us 1e-06"));

  REQUIRE(warnings.messages().size() == 1);
  CHECK_THAT(warnings.messages()[0], Contains("measured single-row latency"));
  CHECK_THAT(warnings.messages()[0], Contains("the model is kept"));
}

TEST_CASE("configurator report: latency warning in report.md", "[configurator][latency][report]") {
  const std::string md = lepton::detail::render_report_markdown(report_with_limit(1e-6));
  CHECK_THAT(md, Contains("**Warning: latency limit exceeded.**"));
  CHECK_THAT(md, Contains("The model was kept"));
  CHECK_THAT(md, Contains("| max_latency_us |"));
}

TEST_CASE("configurator report: latency within the limit is quiet", "[configurator][latency][report]") {
  // One 8-64-32-1 member takes well under a millisecond per row on any level.
  WarningCapture warnings;
  const nlohmann::json report = report_with_limit(1000);

  CHECK(report.at("latency_check").at("exceeded") == false);
  CHECK(report.at("latency_check").at("action") == "none");
  CHECK(warnings.messages().empty());
  CHECK_THAT(lepton::detail::render_report_markdown(report), !Contains("latency limit exceeded"));
}

TEST_CASE("configurator report: no limit, no latency check", "[configurator][latency][report]") {
  const nlohmann::json report = report_with_limit(std::nullopt);

  CHECK(report.at("latency_check").is_null());
  CHECK(report.at("model").at("estimated_single_row_latency_us").get<double>() ==
        Approx(estimated_latency_us(2'592, false, lepton::default_simd_level())));
  CHECK(report.at("model").at("simd_level") == lepton::to_string(lepton::default_simd_level()));
  CHECK_THAT(lepton::detail::render_report_markdown(report), !Contains("latency limit exceeded"));
}
