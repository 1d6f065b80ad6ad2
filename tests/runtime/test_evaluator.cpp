#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/error.hpp"
#include "lepton/evaluator.hpp"
#include "lepton/metrics.hpp"
#include "lepton/predictor.hpp"
#include "lepton/table.hpp"

using Catch::Matchers::Contains;
using lepton::Metric;
using lepton::Task;

namespace {

lepton::Predictions binary_predictions(std::vector<double> probability, std::vector<std::int64_t> labels,
                                       double threshold) {
  lepton::Predictions predictions;
  predictions.task = Task::BinaryClassification;
  predictions.rows = probability.size();
  predictions.classes = 2;
  predictions.probability = std::move(probability);
  predictions.label_index = std::move(labels);
  predictions.threshold = threshold;
  return predictions;
}

lepton::Predictions multiclass_predictions() {
  lepton::Predictions predictions;
  predictions.task = Task::MulticlassClassification;
  predictions.rows = 4;
  predictions.classes = 3;
  predictions.probability = {0.7, 0.2, 0.1,  //
                             0.1, 0.8, 0.1,  //
                             0.2, 0.5, 0.3,  //
                             0.1, 0.1, 0.8};
  predictions.label_index = {0, 1, 1, 2};
  return predictions;
}

lepton::Predictions regression_predictions() {
  lepton::Predictions predictions;
  predictions.task = Task::Regression;
  predictions.rows = 3;
  predictions.value = {1, 2, 5};
  return predictions;
}

// A binary model on the AI4I file, as in test_predictor: 8 encoded columns, seeded random weights.
lepton::ModelArtifact ai4i_artifact(const lepton::Table& table) {
  std::vector<std::size_t> rows(table.rows());
  std::iota(rows.begin(), rows.end(), std::size_t{0});

  lepton::ModelArtifact artifact;
  artifact.task = Task::BinaryClassification;
  artifact.preprocessor = lepton::Preprocessor::fit(table,
                                                    {{"Type", lepton::FeatureType::Categorical},
                                                     {"Air temperature [K]", lepton::FeatureType::Numeric},
                                                     {"Process temperature [K]", lepton::FeatureType::Numeric},
                                                     {"Rotational speed [rpm]", lepton::FeatureType::Numeric},
                                                     {"Torque [Nm]", lepton::FeatureType::Numeric},
                                                     {"Tool wear [min]", lepton::FeatureType::Numeric}},
                                                    rows);
  artifact.target = lepton::TargetEncoding::fit(table, "Machine failure", Task::BinaryClassification, rows);
  artifact.threshold = 0.3;

  std::mt19937 generator(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  lepton::DenseLayer hidden;
  hidden.inputs = artifact.preprocessor.encoded_width();
  hidden.outputs = 4;
  hidden.activation = lepton::Activation::Relu;
  hidden.weight.resize(hidden.inputs * hidden.outputs);
  hidden.bias.resize(hidden.outputs);
  for (float& w : hidden.weight) w = normal(generator);
  for (float& b : hidden.bias) b = normal(generator);

  lepton::DenseLayer output;
  output.inputs = 4;
  output.outputs = 1;
  output.activation = lepton::Activation::Identity;
  output.weight = {0.8f, -0.5f, 0.3f, 0.6f};
  output.bias = {-2.0f};

  artifact.network.layers = {hidden, output};
  return artifact;
}

}  // namespace

TEST_CASE("evaluate binary uses stored labels", "[evaluator]") {
  // The stored labels come from threshold 0.3: probabilities 0.9, 0.4, 0.2, 0.35 give 1, 1, 0, 1.
  // Against truth 1, 0, 0, 1: TP=2, FP=1, TN=1, FN=0.
  const lepton::Predictions predictions = binary_predictions({0.9, 0.4, 0.2, 0.35}, {1, 1, 0, 1}, 0.3);
  const lepton::Evaluation evaluation = lepton::evaluate(predictions, std::vector<std::int64_t>{1, 0, 0, 1});

  CHECK(evaluation.task == Task::BinaryClassification);
  CHECK(evaluation.rows == 4);
  CHECK(evaluation.binary.threshold == 0.3);
  CHECK(evaluation.binary.confusion.at(1, 1) == 2);
  CHECK(evaluation.binary.confusion.at(0, 1) == 1);
  CHECK(evaluation.binary.confusion.at(0, 0) == 1);
  CHECK(evaluation.binary.confusion.at(1, 0) == 0);
  CHECK(evaluation.binary.accuracy == Approx(0.75).epsilon(1e-15));
  CHECK(evaluation.binary.precision == Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(evaluation.binary.recall == 1.0);
  // Positives 0.9, 0.35 against negatives 0.4, 0.2: 0.9 beats both, 0.35 beats 0.2: AUC 3/4.
  CHECK(evaluation.binary.roc_auc == Approx(0.75).epsilon(1e-15));
}

TEST_CASE("evaluate binary metric values", "[evaluator]") {
  const lepton::Predictions predictions = binary_predictions({0.9, 0.4, 0.2, 0.35}, {1, 1, 0, 1}, 0.3);
  const lepton::Evaluation evaluation = lepton::evaluate(predictions, std::vector<std::int64_t>{1, 0, 0, 1});

  CHECK(evaluation.value(Metric::F1) == evaluation.binary.f1);
  CHECK(evaluation.value(Metric::RocAuc) == evaluation.binary.roc_auc);
  CHECK(evaluation.value(Metric::PrAuc) == evaluation.binary.pr_auc);
  CHECK(evaluation.value(Metric::Accuracy) == evaluation.binary.accuracy);
  CHECK(evaluation.value(Metric::LogLoss) == evaluation.binary.log_loss);
  // Class 1: P=2/3, R=1, F1=4/5. Class 0: P=1, R=1/2, F1=2/3. Macro 11/15; weighted by 2 and 2, the same.
  CHECK(evaluation.value(Metric::MacroF1) == Approx(11.0 / 15.0).epsilon(1e-15));
  CHECK(evaluation.value(Metric::WeightedF1) == Approx(11.0 / 15.0).epsilon(1e-15));
  CHECK_THROWS_WITH(evaluation.value(Metric::Rmse),
                    Contains("metric 'rmse' does not apply to task binary_classification"));
}

TEST_CASE("evaluate binary to_json", "[evaluator]") {
  const lepton::Predictions predictions = binary_predictions({0.9, 0.4, 0.2, 0.35}, {1, 1, 0, 1}, 0.3);
  const nlohmann::json json =
      lepton::evaluate(predictions, std::vector<std::int64_t>{1, 0, 0, 1}).to_json();

  CHECK(json.at("task") == "binary_classification");
  CHECK(json.at("rows") == 4);
  CHECK(json.at("threshold") == 0.3);
  CHECK(json.at("confusion_matrix") == nlohmann::json::parse("[[1, 1], [0, 2]]"));
  for (const char* key : {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "macro_f1",
                          "weighted_f1"}) {
    INFO("key " << key);
    CHECK(json.at(key).is_number());
  }
}

TEST_CASE("evaluate multiclass", "[evaluator]") {
  const std::vector<std::int64_t> truth = {0, 1, 2, 2};
  const lepton::Evaluation evaluation = lepton::evaluate(multiclass_predictions(), truth);
  const lepton::MulticlassMetrics direct =
      lepton::multiclass_metrics(truth, multiclass_predictions().probability, 3);

  CHECK(evaluation.task == Task::MulticlassClassification);
  CHECK(evaluation.value(Metric::Accuracy) == direct.accuracy);
  CHECK(evaluation.value(Metric::MacroF1) == direct.macro_f1);
  CHECK(evaluation.value(Metric::WeightedF1) == direct.weighted_f1);
  CHECK(evaluation.value(Metric::RocAuc) == direct.roc_auc_ovr);
  CHECK(evaluation.value(Metric::LogLoss) == direct.log_loss);
  CHECK_THROWS_WITH(evaluation.value(Metric::F1), Contains("does not apply to task multiclass_classification"));
  CHECK_THROWS_AS(evaluation.value(Metric::PrAuc), lepton::InvalidArgument);

  const nlohmann::json json = evaluation.to_json();
  CHECK(json.at("task") == "multiclass_classification");
  CHECK(json.at("confusion_matrix").size() == 3);
  CHECK(json.at("support") == nlohmann::json::parse("[1, 1, 2]"));
}

TEST_CASE("evaluate regression", "[evaluator]") {
  const lepton::Evaluation evaluation = lepton::evaluate(regression_predictions(), std::vector<double>{1, 2, 3});
  // Errors 0, 0, -2: MAE 2/3, RMSE sqrt(4/3), R2 = 1 - 4/2 = -1.
  CHECK(evaluation.value(Metric::Mae) == Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(evaluation.value(Metric::Rmse) == Approx(std::sqrt(4.0 / 3.0)).epsilon(1e-15));
  CHECK(evaluation.value(Metric::R2) == Approx(-1.0).epsilon(1e-15));
  CHECK_THROWS_AS(evaluation.value(Metric::Accuracy), lepton::InvalidArgument);
  CHECK(evaluation.to_json().at("task") == "regression");
  CHECK(evaluation.to_json().at("rows") == 3);
}

TEST_CASE("evaluate rejects mismatched input", "[evaluator]") {
  const lepton::Predictions binary = binary_predictions({0.9, 0.4}, {1, 0}, 0.5);
  CHECK_THROWS_WITH(lepton::evaluate(binary, std::vector<std::int64_t>{1, 0, 1}),
                    Contains("predictions have 2 rows but truth has 3"));
  CHECK_THROWS_WITH(lepton::evaluate(binary, std::vector<double>{1.0, 0.0}), Contains("need class ids"));
  CHECK_THROWS_WITH(lepton::evaluate(regression_predictions(), std::vector<std::int64_t>{1, 0, 1}),
                    Contains("need target values"));

  const lepton::Predictions missing_labels = binary_predictions({0.9, 0.4}, {1}, 0.5);
  CHECK_THROWS_AS(lepton::evaluate(missing_labels, std::vector<std::int64_t>{1, 0}), lepton::InvalidArgument);
  CHECK_THROWS_AS(lepton::evaluate(binary, std::vector<std::int64_t>{1, 2}), lepton::InvalidArgument);
}

TEST_CASE("evaluate predictor on AI4I file", "[evaluator][ai4i]") {
  const lepton::Table table = lepton::read_csv(LEPTON_SHARED_DIR "/data/ai4i2020.csv");
  const lepton::Predictor predictor(ai4i_artifact(table));
  const lepton::Evaluation evaluation = lepton::evaluate(predictor, table);

  CHECK(evaluation.rows == 10000);
  const lepton::ConfusionMatrix& confusion = evaluation.binary.confusion;
  // ai4i2020.csv has 339 rows with Machine failure = 1 (awk -F, 'NR > 1 && $9 == 1' | wc -l).
  CHECK(confusion.at(1, 0) + confusion.at(1, 1) == 339);
  CHECK(confusion.at(0, 0) + confusion.at(0, 1) == 9661);
  CHECK(evaluation.binary.threshold == 0.3);

  // Same numbers as scoring the predictions by hand with the label column.
  std::vector<std::int64_t> truth;
  const std::size_t column = table.column_index("Machine failure");
  for (std::size_t r = 0; r < table.rows(); ++r) {
    truth.push_back(table.cell(r, column) == "1" ? 1 : 0);
  }
  const lepton::Predictions predictions = predictor.predict(table);
  const lepton::BinaryMetrics direct = lepton::binary_metrics(truth, predictions.probability, 0.3);
  CHECK(evaluation.binary.f1 == direct.f1);
  CHECK(evaluation.binary.roc_auc == direct.roc_auc);
  CHECK(evaluation.binary.pr_auc == direct.pr_auc);
  CHECK(evaluation.binary.log_loss == direct.log_loss);
  CHECK(evaluation.binary.confusion.counts == direct.confusion.counts);
}

TEST_CASE("evaluate predictor needs the target column", "[evaluator][ai4i]") {
  const lepton::Table table = lepton::read_csv(LEPTON_SHARED_DIR "/data/ai4i2020.csv");
  const lepton::Predictor predictor(ai4i_artifact(table));

  const lepton::Table without_target({"Type", "Air temperature [K]", "Process temperature [K]",
                                      "Rotational speed [rpm]", "Torque [Nm]", "Tool wear [min]"},
                                     {{"M"}, {"298.1"}, {"308.6"}, {"1551"}, {"42.8"}, {"0"}}, "no_target");
  CHECK_THROWS_WITH(lepton::evaluate(predictor, without_target), Contains("Machine failure"));

  const lepton::Table unknown_label({"Type", "Air temperature [K]", "Process temperature [K]",
                                     "Rotational speed [rpm]", "Torque [Nm]", "Tool wear [min]", "Machine failure"},
                                    {{"M"}, {"298.1"}, {"308.6"}, {"1551"}, {"42.8"}, {"0"}, {"2"}}, "bad_label");
  CHECK_THROWS_AS(lepton::evaluate(predictor, unknown_label), lepton::ParseError);
}

TEST_CASE("default evaluation writes JSON for every task", "[evaluator][errors]") {
  for (const lepton::Task task :
       {lepton::Task::BinaryClassification, lepton::Task::MulticlassClassification, lepton::Task::Regression}) {
    lepton::Evaluation evaluation;
    evaluation.task = task;
    INFO(lepton::to_string(task));
    nlohmann::json json;
    REQUIRE_NOTHROW(json = evaluation.to_json());
    CHECK(json.at("rows") == 0);
  }
}

TEST_CASE("default binary evaluation scores no rows", "[evaluator][errors]") {
  const lepton::Evaluation evaluation;
  CHECK(evaluation.value(lepton::Metric::MacroF1) == 0.0);
  // Weights by support divide by zero rows, so the weighted F1 is undefined.
  CHECK(std::isnan(evaluation.value(lepton::Metric::WeightedF1)));
}

TEST_CASE("confusion matrix rejects indices out of range", "[metrics][errors]") {
  const lepton::ConfusionMatrix empty;
  CHECK_THROWS_AS(empty.at(0, 0), lepton::InvalidArgument);

  const lepton::ConfusionMatrix two = lepton::confusion_matrix({0, 1, 1}, {0, 1, 0}, 2);
  CHECK(two.at(1, 0) == 1);
  CHECK_THROWS_AS(two.at(2, 0), lepton::InvalidArgument);
  CHECK_THROWS_WITH(two.at(0, 2), Catch::Contains("2 classes"));
}
