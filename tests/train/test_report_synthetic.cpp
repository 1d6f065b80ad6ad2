// The report's misclassified test rows and its explanation of the SHAP base value, on a hand-made logistic
// model whose probability is sigmoid(x - 5), so that each row's outcome follows from its x and label: x >= 5
// predicts the positive class at the threshold 0.5. The CSV has a blank line, so data rows and file lines differ.

#include <catch2/catch.hpp>

#include <cmath>
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
#include "lepton/requirements.hpp"
#include "lepton/table.hpp"
#include "train/report.hpp"

using Catch::Matchers::Contains;

namespace {

const std::string kExample = LEPTON_SOURCE_DIR "/examples/predictive_maintenance/requirements.json";

// Nine data rows; the blank line puts data row 3 on file line 6. With p = sigmoid(x - 5):
//   row 0 x 1   y 0  p 0.018  right
//   row 1 x 9   y 0  p 0.982  false positive, distance 0.482
//   row 2 x 6   y 0  p 0.731  false positive, distance 0.231
//   row 3 x 2   y 1  p 0.047  false negative, distance 0.453
//   row 4 x 4.5 y 1  p 0.378  false negative, distance 0.122
//   row 5 x 8   y 1  p 0.953  right
//   row 6 x 3   y 0  p 0.119  right
//   row 7 x 0   y 1  p 0.007  false negative, distance 0.493
//   row 8 x 7   y 0  p 0.881  false positive, but not a test row
const std::string kCsv =
    "UDI,Serial,x,y\n"
    "1,S-a,1,0\n"
    "2,S-b,9,0\n"
    "3,S-c,6,0\n"
    "\n"
    "4,S-d,2,1\n"
    "5,S-e,4.5,1\n"
    "6,S-f,8,1\n"
    "7,S-g,3,0\n"
    "8,S-h,0,1\n"
    "9,S-i,7,0\n";

// Test rows in shuffled order, so that a list position mistaken for a data row shows up.
const std::vector<std::size_t> kTestRows = {7, 2, 0, 5, 3, 1, 6, 4};

// A binary artifact on column x of `table` whose logit is x - 5: one linear layer that undoes the
// standardization. Its background is the single encoded row x = mean.
lepton::ModelArtifact logistic_artifact(const lepton::Table& table) {
  std::vector<std::size_t> all_rows(table.rows());
  for (std::size_t i = 0; i < all_rows.size(); ++i) all_rows[i] = i;

  lepton::ModelArtifact artifact;
  artifact.task = lepton::Task::BinaryClassification;
  artifact.preprocessor = lepton::Preprocessor::fit(table, {{"x", lepton::FeatureType::Numeric}}, all_rows);
  artifact.target.task = lepton::Task::BinaryClassification;
  artifact.target.column = "y";
  artifact.target.classes = {"0", "1"};
  artifact.threshold = 0.5;

  const lepton::FeatureTransform& x = artifact.preprocessor.features().front();
  lepton::DenseLayer layer;
  layer.inputs = 1;
  layer.outputs = 1;
  layer.weight = {static_cast<float>(x.scale)};
  layer.bias = {static_cast<float>(x.mean - 5.0)};
  layer.activation = lepton::Activation::Identity;
  artifact.network.layers.push_back(layer);

  lepton::store_background(artifact, lepton::Background::uniform(lepton::DoubleMatrix::from_rows({{0.0}})));
  return artifact;
}

// The ID-like columns as the pipeline finds them: from the data profile.
std::vector<std::string> id_columns(const lepton::Table& table) {
  std::vector<std::string> names;
  for (const lepton::ColumnProfile& column : lepton::profile_table(table, "y").columns) {
    if (column.kind == lepton::ColumnKind::IdLike) names.push_back(column.name);
  }
  return names;
}

std::vector<std::size_t> listed_rows(const nlohmann::json& list) {
  std::vector<std::size_t> rows;
  for (const nlohmann::json& row : list) rows.push_back(row.at("row").get<std::size_t>());
  return rows;
}

// A report of `artifact` on `test_rows` of `table`, as build_report writes it.
nlohmann::json report_for(const lepton::ModelArtifact& artifact, const lepton::Table& table,
                          const std::vector<std::size_t>& test_rows) {
  lepton::Requirements requirements = lepton::load_requirements(kExample);
  requirements.target = "y";
  requirements.constraints = {};

  lepton::PipelineResult result;
  result.profile = lepton::profile_table(table, "y");
  const lepton::Predictions predictions =
      lepton::Predictor(artifact).predict(artifact.preprocessor.transform(table, test_rows));
  result.test = lepton::evaluate(predictions, artifact.target.encode_labels(table, test_rows));
  result.validation = result.test;
  result.model_path = "out/model.lepton";
  result.training.network = artifact.network;
  result.explanations = lepton::detail::explain_test_rows(artifact, table, test_rows, id_columns(table), 1);
  return lepton::detail::build_report(requirements, result, artifact);
}

}  // namespace

TEST_CASE("misclassified rows: synthetic file's wrong rows", "[report][misclassified]") {
  const lepton::Table table = lepton::parse_csv(kCsv, "synthetic.csv");
  const lepton::ModelArtifact artifact = logistic_artifact(table);
  REQUIRE(id_columns(table) == std::vector<std::string>{"UDI", "Serial"});

  const nlohmann::json section =
      lepton::detail::explain_test_rows(artifact, table, kTestRows, id_columns(table), 1).at("misclassified_test_rows");

  CHECK(section.at("threshold") == 0.5);
  CHECK(section.at("positive_class") == "1");
  CHECK(listed_rows(section.at("false_negatives")) == std::vector<std::size_t>{7, 3, 4});
  CHECK(listed_rows(section.at("false_positives")) == std::vector<std::size_t>{1, 2});
}

TEST_CASE("misclassified rows: row numbers, ids and probability", "[report][misclassified]") {
  const lepton::Table table = lepton::parse_csv(kCsv, "synthetic.csv");
  const lepton::ModelArtifact artifact = logistic_artifact(table);

  const nlohmann::json section =
      lepton::detail::explain_test_rows(artifact, table, kTestRows, id_columns(table), 1).at("misclassified_test_rows");
  const nlohmann::json& row3 = section.at("false_negatives").at(1);

  CHECK(row3.at("row") == 3);
  CHECK(row3.at("location") == "synthetic.csv:6:1");  // Line 6: the header, rows 0 to 2 and the blank line first.
  CHECK(row3.at("ids").at("UDI") == "4");
  CHECK(row3.at("ids").at("Serial") == "S-d");
  CHECK(row3.at("values").at("x") == "2");
  // Float weights round the logit x - 5 = -3, so the tolerance is float's, not double's.
  CHECK(row3.at("probability").get<double>() == Approx(1.0 / (1.0 + std::exp(3.0))).epsilon(1e-5));
  CHECK(row3.at("distance_from_threshold").get<double>() ==
        Approx(0.5 - 1.0 / (1.0 + std::exp(3.0))).epsilon(1e-5));
  REQUIRE(row3.at("contributions").size() == 1);
  CHECK(row3.at("contributions")[0].at("feature") == "x");
}

TEST_CASE("misclassified rows: counts equal the confusion matrix", "[report][misclassified]") {
  const lepton::Table table = lepton::parse_csv(kCsv, "synthetic.csv");
  const lepton::ModelArtifact artifact = logistic_artifact(table);
  const nlohmann::json report = report_for(artifact, table, kTestRows);

  const nlohmann::json& confusion = report.at("metrics").at("test").at("confusion_matrix");
  const nlohmann::json& section = report.at("explanations").at("misclassified_test_rows");
  CHECK(section.at("false_negatives").size() == confusion[1][0].get<std::size_t>());
  CHECK(section.at("false_positives").size() == confusion[0][1].get<std::size_t>());
}

TEST_CASE("misclassified rows: report.md tables", "[report][misclassified]") {
  const lepton::Table table = lepton::parse_csv(kCsv, "synthetic.csv");
  const lepton::ModelArtifact artifact = logistic_artifact(table);
  const std::string md = lepton::detail::render_report_markdown(report_for(artifact, table, kTestRows));

  CHECK_THAT(md, Contains("### Test rows the model got wrong"));
  CHECK_THAT(md, Contains("Missed positives (false negatives: true class `1`, predicted `0`): 3 in all:\n"));
  CHECK_THAT(md, Contains("False alarms (false positives: true class `0`, predicted `1`): 2 in all:\n"));
  CHECK_THAT(md, Contains("| row 7, Serial S-h, UDI 8 | 0.007 | 0.493 | x = 0 ("));
  CHECK_THAT(md, Contains("| row 1, Serial S-b, UDI 2 | 0.982 | 0.482 | x = 9 ("));
  // The section sits under the confusion matrix, before the constraints.
  CHECK(md.find("### Test rows the model got wrong") > md.find("Confusion matrix"));
  CHECK(md.find("### Test rows the model got wrong") < md.find("## Constraints"));
}

TEST_CASE("misclassified rows: report.md shows at most 20", "[report][misclassified]") {
  // 30 positive rows with x from 0 to 2.9, all missed; the one with x = 0 is farthest from the threshold.
  std::string csv = "UDI,x,y\n";
  for (int i = 0; i < 30; ++i) csv += fmt::format("{},{},1\n", i + 1, 0.1 * i);
  csv += "31,-5,0\n";  // A negative row, predicted right, so that the target has two classes.
  const lepton::Table table = lepton::parse_csv(csv, "many.csv");
  const lepton::ModelArtifact artifact = logistic_artifact(table);
  std::vector<std::size_t> test_rows(31);
  for (std::size_t i = 0; i < test_rows.size(); ++i) test_rows[i] = i;

  const nlohmann::json report = report_for(artifact, table, test_rows);
  const nlohmann::json& missed = report.at("explanations").at("misclassified_test_rows").at("false_negatives");
  CHECK(missed.size() == 30);
  CHECK(missed.front().at("row") == 0);
  CHECK(missed.back().at("row") == 29);

  const std::string md = lepton::detail::render_report_markdown(report);
  CHECK_THAT(md, Contains("): 30 in all, the 20 farthest from the threshold:\n"));
  CHECK_THAT(md, Contains("| row 19, UDI 20 |"));
  CHECK_THAT(md, !Contains("| row 20, UDI 21 |"));
  CHECK_THAT(md, Contains("): 0 in all.\n"));
}

TEST_CASE("misclassified rows: absent for regression", "[report][misclassified]") {
  const lepton::Table table = lepton::parse_csv(kCsv, "synthetic.csv");
  lepton::ModelArtifact artifact = logistic_artifact(table);
  artifact.task = lepton::Task::Regression;
  artifact.target.task = lepton::Task::Regression;
  artifact.target.classes.clear();

  const nlohmann::json section = lepton::detail::explain_test_rows(artifact, table, kTestRows, {}, 1);
  CHECK_FALSE(section.contains("misclassified_test_rows"));
  CHECK(section.at("flagged_test_rows").empty());
}

// ---- Base value

double sigmoid(double logit) { return 1.0 / (1.0 + std::exp(-logit)); }

TEST_CASE("base value: weighted mean over background", "[report][base_value]") {
  // Two background rows, x = mean - scale and x = mean + scale, weighted 1 : 3. The base value is the
  // weighted mean of the probability at those rows, not the probability at their weighted mean.
  const lepton::Table table = lepton::parse_csv(kCsv, "synthetic.csv");
  lepton::ModelArtifact artifact = logistic_artifact(table);
  const lepton::FeatureTransform& x = artifact.preprocessor.features().front();
  lepton::store_background(artifact, lepton::Background::weighted(lepton::DoubleMatrix::from_rows({{-1.0}, {1.0}}),
                                                                  {1.0, 3.0}));

  const nlohmann::json section = lepton::detail::explain_test_rows(artifact, table, kTestRows, {}, 1);

  const double expected =
      0.25 * sigmoid(x.mean - x.scale - 5.0) + 0.75 * sigmoid(x.mean + x.scale - 5.0);
  CHECK(section.at("output") == "logistic");
  // Float weights round the logit, so the tolerance is float's, not double's.
  CHECK(section.at("base_value")[0].get<double>() == Approx(expected).epsilon(1e-5));
}

TEST_CASE("base value: mean output over test rows", "[report][base_value]") {
  const lepton::Table table = lepton::parse_csv(kCsv, "synthetic.csv");
  const lepton::ModelArtifact artifact = logistic_artifact(table);

  const nlohmann::json section = lepton::detail::explain_test_rows(artifact, table, kTestRows, {}, 1);

  double sum = 0;
  for (std::size_t row : kTestRows) sum += sigmoid(std::stod(table.cell(row, table.column_index("x"))) - 5.0);
  CHECK(section.at("mean_output")[0].get<double>() == Approx(sum / kTestRows.size()).epsilon(1e-5));
}

TEST_CASE("base value: report.md explains it", "[report][base_value]") {
  const lepton::Table table = lepton::parse_csv(kCsv, "synthetic.csv");
  const lepton::ModelArtifact artifact = logistic_artifact(table);
  const nlohmann::json report = report_for(artifact, table, kTestRows);
  const std::string md = lepton::detail::render_report_markdown(report);

  CHECK_THAT(md, Contains("Exact Shapley values of the positive-class probability, which is the logistic function of "
                          "the network's output logit, so each SHAP value is in probability units."));
  CHECK_THAT(md, Contains(fmt::format("The base value, {:.4f}, is the model's output at each of the 1 background "
                                      "rows, averaged with their weights.",
                                      report.at("explanations").at("base_value")[0].get<double>())));
  CHECK_THAT(md, Contains("is not the positive class's share of the data (44.44 % of the 9 data rows are class `1`)"));
  CHECK_THAT(md, Contains(fmt::format("over the 8 test rows they average {:.4f}.",
                                      report.at("explanations").at("mean_output")[0].get<double>())));
}
