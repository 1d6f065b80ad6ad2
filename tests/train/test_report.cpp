// Run report: which export the size limit judges, stored and nonzero parameters, the per-member training
// history, the interpretability row, validation metrics beside test metrics, missing values and timing.
// Reports are built from the stored AI4I member (tests/golden/ai4i_mlp.lepton, MLP 8-64-32-1), so no case
// trains a model.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lepton/dataset.hpp"
#include "lepton/evaluator.hpp"
#include "lepton/explain.hpp"
#include "lepton/model.hpp"
#include "lepton/pipeline.hpp"
#include "lepton/predictor.hpp"
#include "lepton/quantize.hpp"
#include "lepton/requirements.hpp"
#include "lepton/table.hpp"
#include "train/report.hpp"

using Catch::Matchers::Contains;

namespace {

const std::string kExample = LEPTON_SOURCE_DIR "/examples/predictive_maintenance/requirements.json";
const std::string kAi4i = LEPTON_SHARED_DIR "/data/ai4i2020.csv";

// Sizes of the 8-64-32-1 member: 2592 weights, 97 biases and 97 output channels (64 + 32 + 1).
constexpr std::size_t kMemberWeights = 8 * 64 + 64 * 32 + 32 * 1;
constexpr std::size_t kMemberBiases = 64 + 32 + 1;
constexpr std::size_t kMembers = 10;

// Weight bytes by hand from docs/model-format.md: f32 tensors are 4 bytes a value, i8 tensors 1 byte, and an
// int8 layer stores f32 biases and one f32 weight scale per output channel.
constexpr std::uint64_t kMemberFp32Bytes = (kMemberWeights + kMemberBiases) * 4;                   // 10756
constexpr std::uint64_t kMemberInt8Bytes = kMemberWeights * 1 + kMemberBiases * 4 + kMemberBiases * 4;  // 3368

const lepton::ModelArtifact& member_artifact() {
  static const lepton::ModelArtifact artifact = lepton::load_artifact(LEPTON_SOURCE_DIR "/tests/golden/ai4i_mlp.lepton");
  return artifact;
}

const lepton::Table& ai4i() {
  static const lepton::Table table = lepton::read_csv(kAi4i);
  return table;
}

// A single-model pipeline result for the stored member: its metrics on the whole AI4I file (report.json
// renders an Evaluation with a confusion matrix), the real file's profile and a short history.
lepton::PipelineResult member_result() {
  static const lepton::Evaluation evaluation = lepton::evaluate(lepton::Predictor(member_artifact()), ai4i());
  static const lepton::DataProfile profile = lepton::profile_table(ai4i(), "Machine failure");

  lepton::PipelineResult result;
  result.config.hidden_units = {64, 32};
  result.profile = profile;
  result.validation = evaluation;
  result.test = evaluation;
  result.model_path = "out/model.lepton";
  result.training.network = member_artifact().network;
  for (std::size_t epoch = 1; epoch <= 9; ++epoch) {
    lepton::EpochRecord record;
    record.epoch = epoch;
    record.max_epochs = 9;
    result.training.history.push_back(record);
  }
  result.training.best_epoch = 7;
  result.training.stop_reason = "max_epochs";
  result.training.seconds = 2.5;
  result.seconds = 3.0;
  return result;
}

// The stored member with every layer quantized to int8, as the run's int8 export.
lepton::ModelArtifact int8_copy(lepton::ModelArtifact artifact) {
  for (lepton::DenseLayer& layer : artifact.network.layers) {
    layer.quantized = lepton::quantize_weights(layer);
    layer.precision = lepton::LayerPrecision::Int8;
  }
  return artifact;
}

lepton::Requirements requirements_with_size_limit(std::uint64_t max_model_bytes) {
  lepton::Requirements requirements = lepton::load_requirements(kExample);
  requirements.constraints.max_latency_us.reset();  // The latency limit is the latency tests' business.
  requirements.constraints.max_model_bytes = max_model_bytes;
  return requirements;
}

// The constraint row named `name`, or null when the report has none.
nlohmann::json constraint(const nlohmann::json& report, const std::string& name) {
  for (const nlohmann::json& row : report.at("constraints")) {
    if (row.at("constraint") == name) return row;
  }
  return nullptr;
}

// `members` cross-fitted members of the stored network, member k with k + 2 epochs and best epoch k + 1,
// merged as the pipeline merges them.
lepton::PipelineResult cross_fitted_result(std::size_t members) {
  lepton::PipelineResult result = member_result();
  std::vector<lepton::Mlp> networks;
  result.training.history.clear();
  for (std::size_t k = 0; k < members; ++k) {
    lepton::TrainingResult member;
    member.network = member_artifact().network;
    for (std::size_t epoch = 1; epoch <= k + 2; ++epoch) {
      lepton::EpochRecord record;
      record.epoch = epoch;
      record.max_epochs = 50;
      member.history.push_back(record);
    }
    member.best_epoch = k + 1;
    member.stop_reason = "early_stopping";
    member.seconds = 1.0;
    networks.push_back(member.network);
    result.training.history.insert(result.training.history.end(), member.history.begin(), member.history.end());
    result.members.push_back(member);
  }
  result.training.network = lepton::merge_mean_output(networks);
  result.training.stop_reason = "cross_fitted";
  result.training.best_epoch = 0;  // The pipeline's summary of members sets no best epoch.
  return result;
}

lepton::ModelArtifact merged_artifact(const lepton::PipelineResult& result) {
  lepton::ModelArtifact artifact = member_artifact();
  artifact.network = result.training.network;
  return artifact;
}

}  // namespace

// ---- max_model_bytes

TEST_CASE("report: int8 export is the size judged", "[report][size]") {
  const lepton::ModelArtifact int8 = int8_copy(member_artifact());
  const nlohmann::json report =
      lepton::detail::build_report(requirements_with_size_limit(5000), member_result(), member_artifact(), &int8);

  const nlohmann::json row = constraint(report, "max_model_bytes");
  REQUIRE(row.is_object());
  CHECK(row.at("measured") == kMemberInt8Bytes);
  CHECK(row.at("met") == true);
  CHECK_THAT(row.at("note").get<std::string>(), Contains("model_int8.lepton"));
  CHECK_THAT(row.at("note").get<std::string>(), Contains("int8 weights"));
  CHECK(report.at("model").at("int8_weight_bytes") == kMemberInt8Bytes);
  CHECK(report.at("model").at("weight_bytes") == kMemberFp32Bytes);

  const std::string md = lepton::detail::render_report_markdown(report);
  CHECK_THAT(md, Contains(fmt::format("| max_model_bytes | 5000 | {} | yes |", kMemberInt8Bytes)));
}

TEST_CASE("report: int8 export over the size limit", "[report][size]") {
  const lepton::ModelArtifact int8 = int8_copy(member_artifact());
  const nlohmann::json report = lepton::detail::build_report(requirements_with_size_limit(kMemberInt8Bytes - 1),
                                                             member_result(), member_artifact(), &int8);

  const nlohmann::json row = constraint(report, "max_model_bytes");
  REQUIRE(row.is_object());
  CHECK(row.at("measured") == kMemberInt8Bytes);
  CHECK(row.at("met") == false);
}

TEST_CASE("report: int8 export limit is inclusive", "[report][size]") {
  const lepton::ModelArtifact int8 = int8_copy(member_artifact());
  const nlohmann::json report = lepton::detail::build_report(requirements_with_size_limit(kMemberInt8Bytes),
                                                             member_result(), member_artifact(), &int8);

  CHECK(constraint(report, "max_model_bytes").at("met") == true);
}

TEST_CASE("report: f32 fallback layer of int8 export", "[report][size]") {
  // The quantization gate may move a layer back to f32; that layer's weights then cost 4 bytes each.
  lepton::ModelArtifact int8 = int8_copy(member_artifact());
  lepton::DenseLayer& last = int8.network.layers.back();
  last.precision = lepton::LayerPrecision::F32;
  last.quantized = {};
  const nlohmann::json report =
      lepton::detail::build_report(requirements_with_size_limit(5000), member_result(), member_artifact(), &int8);

  // 32 output-layer weights move from 1 byte to 4, and the output layer loses its one weight scale.
  const std::uint64_t expected = kMemberInt8Bytes + 32 * 3 - 4;
  CHECK(constraint(report, "max_model_bytes").at("measured") == expected);
  CHECK(report.at("model").at("int8_weight_bytes") == expected);
}

TEST_CASE("report: fp32 size judged without int8 export", "[report][size]") {
  const nlohmann::json report =
      lepton::detail::build_report(requirements_with_size_limit(5000), member_result(), member_artifact());

  const nlohmann::json row = constraint(report, "max_model_bytes");
  REQUIRE(row.is_object());
  CHECK(row.at("measured") == kMemberFp32Bytes);
  CHECK(row.at("met") == false);
  CHECK_THAT(row.at("note").get<std::string>(), Contains("fp32 weights and biases of model.lepton"));
  CHECK_FALSE(report.at("model").contains("int8_weight_bytes"));
}

// ---- All and nonzero parameters

TEST_CASE("report: single model has no zero parameters", "[report][parameters]") {
  const nlohmann::json report = lepton::detail::build_report(lepton::load_requirements(kExample), member_result(),
                                                             member_artifact());

  CHECK(report.at("model").at("parameters") == kMemberWeights + kMemberBiases);
  CHECK(report.at("model").at("nonzero_parameters") == kMemberWeights + kMemberBiases);
}

TEST_CASE("report: merged members count nonzero parameters", "[report][parameters]") {
  for (const lepton::DenseLayer& layer : member_artifact().network.layers) {
    for (float weight : layer.weight) REQUIRE(weight != 0.0f);
  }
  const lepton::PipelineResult result = cross_fitted_result(kMembers);
  const nlohmann::json report =
      lepton::detail::build_report(lepton::load_requirements(kExample), result, merged_artifact(result));

  // All: 8-640-320-1 with the zero blocks, 211201 as `lepton run` reports for AI4I. Nonzero: the members'
  // weights, the merged layers' 640 + 320 hidden biases, and one shared output bias.
  const std::size_t all = 8 * 640 + 640 + 640 * 320 + 320 + 320 * 1 + 1;
  const std::size_t nonzero = kMembers * kMemberWeights + 640 + 320 + 1;
  CHECK(all == 211201);
  CHECK(report.at("model").at("parameters") == all);
  CHECK(report.at("model").at("nonzero_parameters") == nonzero);
  // The file stores the diagonal blocks only, so its weight bytes are those of the nonzero parameters.
  CHECK(report.at("model").at("weight_bytes") == nonzero * sizeof(float));

  const std::string md = lepton::detail::render_report_markdown(report);
  CHECK_THAT(md, Contains(fmt::format("({} parameters, {} of them nonzero; the 10 cross-fitted members merged",
                                      all, nonzero)));
  CHECK_THAT(md, Contains("block-diagonal layers the file stores as their diagonal blocks"));
}

// ---- Training history

TEST_CASE("report: cross-fitted history names members", "[report][training]") {
  const lepton::PipelineResult result = cross_fitted_result(3);
  const nlohmann::json report =
      lepton::detail::build_report(lepton::load_requirements(kExample), result, merged_artifact(result));
  const nlohmann::json& training = report.at("training");

  // Members 1, 2 and 3 have 2, 3 and 4 epochs, in member order. Members count from 1, as in report.md.
  const nlohmann::json& history = training.at("history");
  REQUIRE(history.size() == 9);
  CHECK(history[0].at("member") == 1);
  CHECK(history[1].at("member") == 1);
  CHECK(history[2].at("member") == 2);
  CHECK(history[4].at("member") == 2);
  CHECK(history[5].at("member") == 3);
  CHECK(history[8].at("member") == 3);
  CHECK(history[8].at("epoch") == 4);
  CHECK(history[5].at("members") == 3);
}

TEST_CASE("report: cross-fitted best epoch is per member", "[report][training]") {
  const lepton::PipelineResult result = cross_fitted_result(3);
  const nlohmann::json report =
      lepton::detail::build_report(lepton::load_requirements(kExample), result, merged_artifact(result));
  const nlohmann::json& training = report.at("training");

  CHECK(training.at("best_epoch").is_null());
  REQUIRE(training.at("members").size() == 3);
  CHECK(training.at("members")[0].at("best_epoch") == 1);
  CHECK(training.at("members")[2].at("best_epoch") == 3);
  CHECK(training.at("members")[0].at("member") == 1);
  CHECK(training.at("members")[2].at("member") == 3);
  CHECK(training.at("members")[2].at("epochs") == 4);

  const std::string md = lepton::detail::render_report_markdown(report);
  CHECK_THAT(md, Contains("| 1 | 2 | 1 | early_stopping | 1.00 |"));
  CHECK_THAT(md, Contains("| 3 | 4 | 3 | early_stopping | 1.00 |"));
  CHECK_THAT(md, !Contains("best epoch null"));
  CHECK_THAT(md, !Contains("from 0"));
}

TEST_CASE("report: single model keeps its best epoch", "[report][training]") {
  const nlohmann::json report = lepton::detail::build_report(lepton::load_requirements(kExample), member_result(),
                                                             member_artifact());
  const nlohmann::json& training = report.at("training");

  CHECK(training.at("best_epoch") == 7);
  CHECK_FALSE(training.contains("members"));
  REQUIRE(training.at("history").size() == 9);
  CHECK_FALSE(training.at("history")[0].contains("member"));
  CHECK_THAT(lepton::detail::render_report_markdown(report), Contains("best epoch 7;"));
}

// ---- Timing

TEST_CASE("report: resumed run separates wall and training time", "[report][timing]") {
  // After --resume the training time includes what the checkpoints recorded, so it exceeds the wall time.
  lepton::PipelineResult result = member_result();
  result.seconds = 6.4;
  result.training.seconds = 11.0;
  result.training.resumed = true;
  const nlohmann::json report =
      lepton::detail::build_report(lepton::load_requirements(kExample), result, member_artifact());

  const nlohmann::json& timing = report.at("timing");
  CHECK(timing.at("invocation_wall_seconds") == 6.4);
  CHECK(timing.at("training_seconds") == 11.0);
  CHECK(timing.at("resumed") == true);
  CHECK_THAT(timing.at("meaning").get<std::string>(), Contains("after --resume"));
  CHECK(report.at("seconds") == 6.4);
  CHECK_THAT(lepton::detail::render_report_markdown(report), Contains("this run took 6.40 s of wall time"));
}

TEST_CASE("report: fresh run names no resume", "[report][timing]") {
  const nlohmann::json report = lepton::detail::build_report(lepton::load_requirements(kExample), member_result(),
                                                             member_artifact());

  CHECK(report.at("timing").at("resumed") == false);
  CHECK_THAT(lepton::detail::render_report_markdown(report), !Contains("resumed:"));
}

// ---- Interpretability

TEST_CASE("report: attribution met by the explanations", "[report][interpretability]") {
  // Real explanations of 50 AI4I rows over a 10-centre background of the first 500 rows, as the pipeline
  // computes them with more rows.
  lepton::ModelArtifact artifact = member_artifact();
  std::vector<std::size_t> rows(500);
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  const lepton::Matrix encoded = artifact.preprocessor.transform(ai4i(), rows);
  lepton::store_background(artifact, lepton::Background::kmeans(encoded,
                                                                 lepton::FeatureGroups::from_preprocessor(artifact.preprocessor),
                                                                 lepton::KMeansOptions().clusters(10).seed(1)));
  lepton::PipelineResult result = member_result();
  result.explanations =
      lepton::detail::explain_test_rows(artifact, ai4i(), std::vector<std::size_t>(rows.begin(), rows.begin() + 50),
                                        {"Product ID"}, 1);
  const nlohmann::json report = lepton::detail::build_report(lepton::load_requirements(kExample), result, artifact);

  const nlohmann::json row = constraint(report, "interpretability");
  REQUIRE(row.is_object());
  CHECK(row.at("required") == "attribution");
  CHECK(row.at("measured") == "exact SHAP attributions");
  CHECK(row.at("met") == true);
  CHECK_THAT(lepton::detail::render_report_markdown(report),
             Contains("| interpretability | attribution | exact SHAP attributions | yes |"));
}

TEST_CASE("report: attribution unmet without explanations", "[report][interpretability]") {
  const nlohmann::json report = lepton::detail::build_report(lepton::load_requirements(kExample), member_result(),
                                                             member_artifact());

  const nlohmann::json row = constraint(report, "interpretability");
  REQUIRE(row.is_object());
  CHECK(row.at("measured") == "no attributions");
  CHECK(row.at("met") == false);
}

TEST_CASE("report: transparent rejects a two-layer model", "[report][interpretability]") {
  lepton::Requirements requirements = lepton::load_requirements(kExample);
  requirements.constraints.interpretability = lepton::Interpretability::Transparent;
  const nlohmann::json report = lepton::detail::build_report(requirements, member_result(), member_artifact());

  const nlohmann::json row = constraint(report, "interpretability");
  REQUIRE(row.is_object());
  CHECK(row.at("required") == "transparent");
  CHECK(row.at("measured") == "2 hidden layer(s) of 64 units");
  CHECK(row.at("met") == false);
}

TEST_CASE("report: none is always met", "[report][interpretability]") {
  lepton::Requirements requirements = lepton::load_requirements(kExample);
  requirements.constraints.interpretability = lepton::Interpretability::None;
  const nlohmann::json report = lepton::detail::build_report(requirements, member_result(), member_artifact());

  const nlohmann::json row = constraint(report, "interpretability");
  REQUIRE(row.is_object());
  CHECK(row.at("required") == "none");
  CHECK(row.at("met") == true);
}

// ---- Validation metrics

TEST_CASE("report: validation metrics beside test metrics", "[report][metrics]") {
  lepton::PipelineResult result = member_result();
  result.validation.binary.f1 = 0.5;
  const nlohmann::json report =
      lepton::detail::build_report(lepton::load_requirements(kExample), result, member_artifact());
  const std::string md = lepton::detail::render_report_markdown(report);

  CHECK_THAT(md, Contains("| Metric | Validation | Test |"));
  CHECK_THAT(md, Contains(fmt::format("| F1 (positive class) | 0.5000 | {:.4f} |", result.test.binary.f1)));
}

TEST_CASE("report: cross-fitted validation is out-of-fold", "[report][metrics]") {
  const lepton::PipelineResult result = cross_fitted_result(2);
  const nlohmann::json report =
      lepton::detail::build_report(lepton::load_requirements(kExample), result, merged_artifact(result));

  CHECK_THAT(lepton::detail::render_report_markdown(report), Contains("| Metric | Out-of-fold | Test |"));
}

// ---- Missing values

TEST_CASE("report: real AI4I file has no missing values", "[report][missing][ai4i]") {
  const nlohmann::json report = lepton::detail::build_report(lepton::load_requirements(kExample), member_result(),
                                                             member_artifact());

  CHECK(report.at("data").at("missing_values").at("cells") == 0);
  CHECK(report.at("data").at("missing_values").at("columns").empty());
  CHECK_THAT(lepton::detail::render_report_markdown(report), Contains("Missing values: none; no cell was imputed."));
}

TEST_CASE("report: missing values name columns and imputation", "[report][missing]") {
  // Missing counts set on the real profile: a numeric input, a categorical input and an excluded ID column.
  lepton::PipelineResult result = member_result();
  for (lepton::ColumnProfile& column : result.profile.columns) {
    if (column.name == "Torque [Nm]") column.missing = 7;
    if (column.name == "Type") column.missing = 5;
    if (column.name == "UDI") column.missing = 2;
  }
  const nlohmann::json report =
      lepton::detail::build_report(lepton::load_requirements(kExample), result, member_artifact());

  const nlohmann::json& missing = report.at("data").at("missing_values");
  CHECK(missing.at("cells") == 14);
  REQUIRE(missing.at("columns").size() == 3);

  double torque_fill = 0;
  std::string type_fill;
  for (const lepton::FeatureTransform& feature : member_artifact().preprocessor.features()) {
    if (feature.column == "Torque [Nm]") torque_fill = feature.fill;
    if (feature.column == "Type") type_fill = feature.fill_category;
  }
  for (const nlohmann::json& column : missing.at("columns")) {
    INFO(column.dump());
    if (column.at("column") == "Torque [Nm]") {
      CHECK(column.at("imputation") == "median");
      CHECK(column.at("fill") == torque_fill);
    } else if (column.at("column") == "Type") {
      CHECK(column.at("imputation") == "mode");
      CHECK(column.at("fill") == type_fill);
    } else {
      CHECK(column.at("column") == "UDI");
      CHECK(column.at("imputation") == "none");
      CHECK(column.at("model_input") == false);
    }
  }

  const std::string md = lepton::detail::render_report_markdown(report);
  CHECK_THAT(md, Contains("Missing values: 14 cells in 3 columns:"));
  CHECK_THAT(md, Contains(fmt::format("`Torque [Nm]` 7 (imputed with the training median {:.4f})", torque_fill)));
  CHECK_THAT(md, Contains(fmt::format("`Type` 5 (imputed with the training mode `{}`)", type_fill)));
  CHECK_THAT(md, Contains("`UDI` 2 (not a model input, so not imputed)"));
}
