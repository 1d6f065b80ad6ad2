#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/error.hpp"
#include "lepton/metrics.hpp"

using lepton::InvalidArgument;
using lepton::Metric;

namespace {

// Golden values come from sklearn in float64. Lepton sums in another order than numpy's pairwise
// summation and sklearn's trapezoid rule, which moves the last few bits of values near 1.
// 1e-12 is far above that rounding and far below any real disagreement.
constexpr double kGoldenTolerance = 1e-12;

Approx golden(double expected) {
  return Approx(expected).epsilon(0).margin(kGoldenTolerance);
}

// Hand-computed values are exact fractions, so only rounding separates them from the result.
Approx exact(double expected) {
  return Approx(expected).epsilon(0).margin(1e-15);
}

nlohmann::json load_goldens() {
  const std::string path = LEPTON_SOURCE_DIR "/tests/golden/metric_goldens.json";
  std::ifstream file(path);
  REQUIRE(file.good());
  std::stringstream text;
  text << file.rdbuf();
  return nlohmann::json::parse(text.str());
}

// A golden metric that sklearn could not compute is null: Lepton reports NaN for it.
void check_golden(const char* metric, double actual, const nlohmann::json& expected) {
  INFO("metric " << metric);
  if (expected.is_null()) {
    CHECK(std::isnan(actual));
  } else {
    CHECK(actual == golden(expected.get<double>()));
  }
}

void check_confusion(const lepton::ConfusionMatrix& actual, const nlohmann::json& expected) {
  REQUIRE(actual.classes == expected.size());
  for (std::size_t t = 0; t < actual.classes; ++t) {
    for (std::size_t p = 0; p < actual.classes; ++p) {
      INFO("confusion[" << t << "][" << p << "]");
      CHECK(actual.at(t, p) == expected[t][p].get<std::size_t>());
    }
  }
}

std::string message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const InvalidArgument& error) {
    return error.what();
  }
  return "<no exception>";
}

}  // namespace

TEST_CASE("roc_auc hand-computed cases", "[metrics]") {
  // Pairs (positive, negative): 0.35 > 0.1, 0.35 < 0.4, 0.8 > 0.1, 0.8 > 0.4, so AUC = 3/4.
  CHECK(lepton::roc_auc({0, 0, 1, 1}, {0.1, 0.4, 0.35, 0.8}) == exact(0.75));

  // Positive 0.5 ties negative 0.5 (counts 1/2) and beats 0.2; positive 0.9 beats both: 3.5 / 4.
  CHECK(lepton::roc_auc({0, 1, 0, 1}, {0.5, 0.5, 0.2, 0.9}) == exact(0.875));

  // Every score tied: every pair counts 1/2.
  CHECK(lepton::roc_auc({0, 1, 0, 1}, {0.3, 0.3, 0.3, 0.3}) == exact(0.5));

  // Scores need not be probabilities.
  CHECK(lepton::roc_auc({1, 0}, {-3.0, -7.5}) == exact(1.0));
  CHECK(lepton::roc_auc({1, 0}, {-7.5, -3.0}) == exact(0.0));
}

TEST_CASE("roc_auc rejects one-class truth", "[metrics]") {
  CHECK_THROWS_AS(lepton::roc_auc({1, 1, 1}, {0.1, 0.2, 0.3}), InvalidArgument);
  CHECK_THROWS_AS(lepton::roc_auc({0, 0}, {0.1, 0.2}), InvalidArgument);
}

TEST_CASE("average_precision hand-computed cases", "[metrics]") {
  // Thresholds 0.8: P=1/1, R=1/2. 0.4: no new positive. 0.35: P=2/3, R=2/2.
  // AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
  CHECK(lepton::average_precision({0, 0, 1, 1}, {0.1, 0.4, 0.35, 0.8}) == exact(5.0 / 6.0));

  // Ties form one step: at 0.5 one positive and one negative, P=1/2, R=1/2; at 0.2, P=2/3, R=1.
  // AP = 1/2 * 1/2 + 1/2 * 2/3 = 7/12.
  CHECK(lepton::average_precision({1, 0, 1}, {0.5, 0.5, 0.2}) == exact(7.0 / 12.0));

  // All positive: precision is 1 at every threshold.
  CHECK(lepton::average_precision({1, 1}, {0.2, 0.9}) == exact(1.0));

  CHECK_THROWS_AS(lepton::average_precision({0, 0}, {0.2, 0.9}), InvalidArgument);
}

TEST_CASE("binary_log_loss hand-computed and clipped", "[metrics]") {
  // -(ln 0.8 + ln 0.6) / 2.
  const double expected = -(std::log(0.8) + std::log(0.6)) / 2.0;
  CHECK(lepton::binary_log_loss({1, 0}, {0.8, 0.4}) == exact(expected));

  // A confident wrong prediction is clipped to 1e-15: -ln(1e-15) = 34.538776394910684.
  CHECK(lepton::binary_log_loss({1}, {0.0}) == Approx(34.538776394910684).epsilon(1e-12));
  // The other side is 1 - (1 - 1e-15), about 1.1102e-15 after rounding, as in sklearn.
  CHECK(lepton::binary_log_loss({0}, {1.0}) == Approx(-std::log(1.0 - (1.0 - 1e-15))).epsilon(1e-12));
  CHECK(std::isfinite(lepton::binary_log_loss({0, 1}, {1.0, 0.0})));
}

TEST_CASE("confusion_matrix counts truth by prediction", "[metrics]") {
  const lepton::ConfusionMatrix confusion = lepton::confusion_matrix({0, 1, 2, 2, 2}, {0, 2, 2, 1, 2}, 3);
  CHECK(confusion.classes == 3);
  CHECK(confusion.at(0, 0) == 1);
  CHECK(confusion.at(1, 2) == 1);
  CHECK(confusion.at(2, 2) == 2);
  CHECK(confusion.at(2, 1) == 1);
  CHECK(confusion.at(1, 1) == 0);
  CHECK(confusion.counts.size() == 9);
}

TEST_CASE("confusion_matrix rejects bad labels", "[metrics]") {
  CHECK_THROWS_AS(lepton::confusion_matrix({0, 3}, {0, 1}, 3), InvalidArgument);
  CHECK_THROWS_AS(lepton::confusion_matrix({0, 1}, {0, -1}, 3), InvalidArgument);
  CHECK_THROWS_AS(lepton::confusion_matrix({0, 1}, {0}, 3), InvalidArgument);
  CHECK_THROWS_AS(lepton::confusion_matrix({0}, {0}, 0), InvalidArgument);
}

TEST_CASE("binary_metrics hand-computed case", "[metrics]") {
  // Predicted at 0.5: [1, 0, 1, 0, 1] against truth [1, 1, 0, 0, 1]: TP=2, FN=1, FP=1, TN=1.
  const lepton::BinaryMetrics metrics = lepton::binary_metrics({1, 1, 0, 0, 1}, {0.9, 0.4, 0.6, 0.1, 0.7});
  CHECK(metrics.threshold == 0.5);
  CHECK(metrics.accuracy == exact(3.0 / 5.0));
  CHECK(metrics.precision == exact(2.0 / 3.0));
  CHECK(metrics.recall == exact(2.0 / 3.0));
  CHECK(metrics.f1 == exact(2.0 / 3.0));
  CHECK(metrics.confusion.at(1, 1) == 2);
  CHECK(metrics.confusion.at(1, 0) == 1);
  CHECK(metrics.confusion.at(0, 1) == 1);
  CHECK(metrics.confusion.at(0, 0) == 1);

  // Positives 0.9, 0.4, 0.7 against negatives 0.6, 0.1: 0.9 and 0.7 beat both, 0.4 beats one: 5/6.
  CHECK(metrics.roc_auc == exact(5.0 / 6.0));
}

TEST_CASE("binary_metrics threshold is inclusive", "[metrics]") {
  const lepton::BinaryMetrics metrics = lepton::binary_metrics({1, 0}, {0.5, 0.49}, 0.5);
  CHECK(metrics.confusion.at(1, 1) == 1);
  CHECK(metrics.confusion.at(0, 0) == 1);
  CHECK(metrics.accuracy == 1.0);
}

TEST_CASE("binary_metrics zero division gives zero", "[metrics]") {
  // Nothing predicted positive: precision's denominator TP + FP is 0.
  const lepton::BinaryMetrics metrics = lepton::binary_metrics({1, 0, 1}, {0.1, 0.2, 0.3});
  CHECK(metrics.precision == 0.0);
  CHECK(metrics.recall == 0.0);
  CHECK(metrics.f1 == 0.0);
}

TEST_CASE("binary_metrics one-class truth gives NaN ranks", "[metrics]") {
  const lepton::BinaryMetrics metrics = lepton::binary_metrics({0, 0, 0}, {0.1, 0.7, 0.3});
  CHECK(std::isnan(metrics.roc_auc));
  CHECK(std::isnan(metrics.pr_auc));
  CHECK(metrics.accuracy == exact(2.0 / 3.0));
}

TEST_CASE("binary_metrics error messages", "[metrics]") {
  const std::vector<std::int64_t> truth(10, 1);
  const std::vector<double> probability(9, 0.5);
  CHECK(message_of([&] { lepton::binary_metrics(truth, probability); }) ==
        "binary_metrics: truth has 10 rows but probability has 9; pass one value per row");
  CHECK(message_of([] { lepton::binary_metrics({0, 2}, {0.1, 0.2}); }) ==
        "binary_metrics: truth[1] is 2, expected a binary label 0 or 1");
  CHECK(message_of([] { lepton::binary_metrics({0, 1}, {0.1, 1.5}); }) ==
        "binary_metrics: probability[1] is 1.5, expected a probability in [0, 1]");
  CHECK(message_of([] { lepton::binary_metrics({}, {}); }) ==
        "binary_metrics: truth is empty; pass at least one row");

  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(lepton::binary_metrics({0, 1}, {0.1, nan}), InvalidArgument);
  CHECK_THROWS_AS(lepton::binary_metrics({0, 1}, {0.1, 0.2}, nan), InvalidArgument);
  CHECK_THROWS_AS(lepton::roc_auc({0, 1}, {0.1, std::numeric_limits<double>::infinity()}), InvalidArgument);
}

TEST_CASE("binary goldens match sklearn", "[metrics][golden]") {
  const nlohmann::json goldens = load_goldens();
  REQUIRE(goldens.at("binary").size() >= 10);

  for (const nlohmann::json& golden_case : goldens.at("binary")) {
    INFO("case " << golden_case.at("name").get<std::string>());
    const auto truth = golden_case.at("truth").get<std::vector<std::int64_t>>();
    const auto probability = golden_case.at("probability").get<std::vector<double>>();
    const lepton::BinaryMetrics metrics =
        lepton::binary_metrics(truth, probability, golden_case.at("threshold").get<double>());

    check_golden("accuracy", metrics.accuracy, golden_case.at("accuracy"));
    check_golden("precision", metrics.precision, golden_case.at("precision"));
    check_golden("recall", metrics.recall, golden_case.at("recall"));
    check_golden("f1", metrics.f1, golden_case.at("f1"));
    check_golden("roc_auc", metrics.roc_auc, golden_case.at("roc_auc"));
    check_golden("pr_auc", metrics.pr_auc, golden_case.at("pr_auc"));
    check_golden("log_loss", metrics.log_loss, golden_case.at("log_loss"));
    check_confusion(metrics.confusion, golden_case.at("confusion_matrix"));
  }
}

TEST_CASE("multiclass goldens match sklearn", "[metrics][golden]") {
  const nlohmann::json goldens = load_goldens();
  REQUIRE(goldens.at("multiclass").size() >= 4);

  for (const nlohmann::json& golden_case : goldens.at("multiclass")) {
    INFO("case " << golden_case.at("name").get<std::string>());
    const auto classes = golden_case.at("classes").get<std::size_t>();
    const lepton::MulticlassMetrics metrics =
        lepton::multiclass_metrics(golden_case.at("truth").get<std::vector<std::int64_t>>(),
                                   golden_case.at("probability").get<std::vector<double>>(), classes);

    check_golden("accuracy", metrics.accuracy, golden_case.at("accuracy"));
    check_golden("macro_precision", metrics.macro_precision, golden_case.at("macro_precision"));
    check_golden("macro_recall", metrics.macro_recall, golden_case.at("macro_recall"));
    check_golden("macro_f1", metrics.macro_f1, golden_case.at("macro_f1"));
    check_golden("weighted_precision", metrics.weighted_precision, golden_case.at("weighted_precision"));
    check_golden("weighted_recall", metrics.weighted_recall, golden_case.at("weighted_recall"));
    check_golden("weighted_f1", metrics.weighted_f1, golden_case.at("weighted_f1"));
    check_golden("roc_auc_ovr", metrics.roc_auc_ovr, golden_case.at("roc_auc_ovr"));
    check_golden("log_loss", metrics.log_loss, golden_case.at("log_loss"));
    for (std::size_t k = 0; k < classes; ++k) {
      INFO("class " << k);
      check_golden("precision", metrics.precision[k], golden_case.at("precision")[k]);
      check_golden("recall", metrics.recall[k], golden_case.at("recall")[k]);
      check_golden("f1", metrics.f1[k], golden_case.at("f1")[k]);
    }
    check_confusion(metrics.confusion, golden_case.at("confusion_matrix"));
  }
}

TEST_CASE("regression goldens match sklearn", "[metrics][golden]") {
  const nlohmann::json goldens = load_goldens();
  REQUIRE(goldens.at("regression").size() >= 4);

  for (const nlohmann::json& golden_case : goldens.at("regression")) {
    INFO("case " << golden_case.at("name").get<std::string>());
    const lepton::RegressionMetrics metrics =
        lepton::regression_metrics(golden_case.at("truth").get<std::vector<double>>(),
                                   golden_case.at("prediction").get<std::vector<double>>());
    check_golden("mae", metrics.mae, golden_case.at("mae"));
    check_golden("rmse", metrics.rmse, golden_case.at("rmse"));
    check_golden("r2", metrics.r2, golden_case.at("r2"));
  }
}

TEST_CASE("multiclass_metrics hand-computed case", "[metrics]") {
  // Argmax per row: 0, 1, 1, 2. Truth 0, 1, 2, 2. Class 2: TP=1, FN=1, FP=0.
  const std::vector<double> probability = {0.7, 0.2, 0.1,  //
                                           0.1, 0.8, 0.1,  //
                                           0.2, 0.5, 0.3,  //
                                           0.1, 0.1, 0.8};
  const lepton::MulticlassMetrics metrics = lepton::multiclass_metrics({0, 1, 2, 2}, probability, 3);
  CHECK(metrics.accuracy == exact(0.75));
  CHECK(metrics.precision[1] == exact(0.5));
  CHECK(metrics.recall[2] == exact(0.5));
  CHECK(metrics.support[2] == 2);
  // F1 per class: 1, 2/3, 2/3. Macro: 7/9. Weighted by support 1, 1, 2: (1 + 2/3 + 4/3) / 4 = 3/4.
  CHECK(metrics.macro_f1 == exact(7.0 / 9.0));
  CHECK(metrics.weighted_f1 == exact(0.75));
}

TEST_CASE("multiclass_metrics absent class gives NaN AUC", "[metrics]") {
  const std::vector<double> probability = {0.7, 0.2, 0.1, 0.1, 0.8, 0.1};
  const lepton::MulticlassMetrics metrics = lepton::multiclass_metrics({0, 1}, probability, 3);
  CHECK(std::isnan(metrics.roc_auc_ovr));
  CHECK(metrics.recall[2] == 0.0);
  CHECK(metrics.f1[2] == 0.0);
}

TEST_CASE("multiclass_metrics rejects bad shapes", "[metrics]") {
  CHECK(message_of([] { lepton::multiclass_metrics({0, 1}, {0.5, 0.5, 0.5}, 2); }) ==
        "multiclass_metrics: probability has 3 values but truth has 2 rows of 2 classes; pass rows x classes "
        "probabilities, row-major");
  CHECK_THROWS_AS(lepton::multiclass_metrics({0, 2}, {0.5, 0.5, 0.5, 0.5}, 2), InvalidArgument);
  CHECK_THROWS_AS(lepton::multiclass_metrics({0}, {1.0}, 1), InvalidArgument);
  CHECK_THROWS_AS(lepton::multiclass_metrics({}, {}, 3), InvalidArgument);
}

TEST_CASE("regression_metrics hand-computed case", "[metrics]") {
  // Errors 0, 0, -2: MAE 2/3, MSE 4/3. Mean of truth 2, SS_tot = 2, R2 = 1 - 4/2 = -1.
  const lepton::RegressionMetrics metrics = lepton::regression_metrics({1, 2, 3}, {1, 2, 5});
  CHECK(metrics.mae == exact(2.0 / 3.0));
  CHECK(metrics.rmse == exact(std::sqrt(4.0 / 3.0)));
  CHECK(metrics.r2 == exact(-1.0));
}

TEST_CASE("regression_metrics constant truth", "[metrics]") {
  CHECK(lepton::regression_metrics({2, 2, 2}, {2, 2, 2}).r2 == 1.0);
  CHECK(lepton::regression_metrics({2, 2, 2}, {2, 2, 3}).r2 == 0.0);
}

TEST_CASE("regression_metrics rejects bad input", "[metrics]") {
  CHECK(message_of([] { lepton::regression_metrics({1, 2}, {1}); }) ==
        "regression_metrics: truth has 2 rows but prediction has 1; pass one value per row");
  CHECK_THROWS_AS(lepton::regression_metrics({}, {}), InvalidArgument);
  CHECK_THROWS_AS(lepton::regression_metrics({1, std::nan("")}, {1, 2}), InvalidArgument);
}

TEST_CASE("choose_threshold maximizes F1", "[metrics]") {
  // Midpoints 0.85, 0.575, 0.325, 0.2 predict the top 1, 2, 3, 4 rows positive:
  // F1 = 1/2, 4/5, 2/3, 6/7. The best is 0.2.
  const std::vector<std::int64_t> truth = {0, 1, 0, 1, 1};
  const std::vector<double> probability = {0.1, 0.3, 0.35, 0.8, 0.9};
  CHECK(lepton::choose_threshold(truth, probability) == exact(0.2));
}

TEST_CASE("choose_threshold ties keep the highest", "[metrics]") {
  // Accuracy at midpoints 0.7, 0.5, 0.3: 3/4, 1/2, 3/4. The tie keeps 0.7.
  const std::vector<std::int64_t> truth = {1, 0, 1, 0};
  const std::vector<double> probability = {0.8, 0.6, 0.4, 0.2};
  CHECK(lepton::choose_threshold(truth, probability, Metric::Accuracy) == exact(0.7));

  // Same rows in reverse order: the result does not depend on row order.
  const std::vector<std::int64_t> truth_reversed(truth.rbegin(), truth.rend());
  const std::vector<double> probability_reversed(probability.rbegin(), probability.rend());
  CHECK(lepton::choose_threshold(truth_reversed, probability_reversed, Metric::Accuracy) == exact(0.7));
}

TEST_CASE("choose_threshold is a maximum on random data", "[metrics]") {
  const nlohmann::json goldens = load_goldens();
  const nlohmann::json& golden_case = goldens.at("binary").at(1);  // ties_200
  const auto truth = golden_case.at("truth").get<std::vector<std::int64_t>>();
  const auto probability = golden_case.at("probability").get<std::vector<double>>();

  for (const Metric objective : {Metric::F1, Metric::Accuracy}) {
    const double threshold = lepton::choose_threshold(truth, probability, objective);
    const lepton::BinaryMetrics chosen = lepton::binary_metrics(truth, probability, threshold);
    const double chosen_value = objective == Metric::F1 ? chosen.f1 : chosen.accuracy;

    // No threshold on a 0.01 grid may beat the chosen one.
    for (int step = 1; step < 100; ++step) {
      const lepton::BinaryMetrics other = lepton::binary_metrics(truth, probability, step / 100.0);
      const double other_value = objective == Metric::F1 ? other.f1 : other.accuracy;
      INFO("objective " << lepton::to_string(objective) << " threshold " << step / 100.0);
      CHECK(other_value <= chosen_value);
    }
  }
}

TEST_CASE("choose_threshold separates adjacent doubles", "[metrics]") {
  const double low = 0.5;
  const double high = std::nextafter(0.5, 1.0);
  const double threshold = lepton::choose_threshold({0, 1}, {low, high});
  CHECK(lepton::binary_metrics({0, 1}, {low, high}, threshold).f1 == 1.0);
}

TEST_CASE("choose_threshold without candidates", "[metrics]") {
  CHECK(lepton::choose_threshold({0, 1, 1}, {0.4, 0.4, 0.4}) == 0.5);
  CHECK(lepton::choose_threshold({0, 1}, {0.1, 0.9}, Metric::RocAuc) == 0.5);
  CHECK(lepton::choose_threshold({0, 1}, {0.1, 0.9}, Metric::LogLoss) == 0.5);
  CHECK_THROWS_AS(lepton::choose_threshold({0, 1}, {0.1, 0.9}, Metric::Rmse), InvalidArgument);
}

TEST_CASE("metric names round trip", "[metrics]") {
  const std::vector<std::string> names = {"f1",       "roc_auc",     "pr_auc", "accuracy", "log_loss",
                                          "macro_f1", "weighted_f1", "mae",    "rmse",     "r2"};
  for (const std::string& name : names) {
    Metric metric = Metric::F1;
    INFO("name " << name);
    REQUIRE(lepton::parse_metric(name, metric));
    CHECK(lepton::to_string(metric) == name);
  }

  Metric untouched = Metric::Mae;
  CHECK_FALSE(lepton::parse_metric("F1", untouched));
  CHECK_FALSE(lepton::parse_metric("auc", untouched));
  CHECK(untouched == Metric::Mae);
}

TEST_CASE("higher_is_better per metric", "[metrics]") {
  CHECK(lepton::higher_is_better(Metric::F1));
  CHECK(lepton::higher_is_better(Metric::R2));
  CHECK(lepton::higher_is_better(Metric::PrAuc));
  CHECK_FALSE(lepton::higher_is_better(Metric::LogLoss));
  CHECK_FALSE(lepton::higher_is_better(Metric::Mae));
  CHECK_FALSE(lepton::higher_is_better(Metric::Rmse));
}

TEST_CASE("metrics to_json keys", "[metrics]") {
  const nlohmann::json binary = lepton::binary_metrics({1, 0}, {0.8, 0.3}).to_json();
  CHECK(binary.at("f1") == 1.0);
  CHECK(binary.at("confusion_matrix") == nlohmann::json::parse("[[1, 0], [0, 1]]"));
  CHECK(binary.contains("roc_auc"));
  CHECK(binary.contains("log_loss"));

  const nlohmann::json regression = lepton::regression_metrics({1, 2}, {1, 2}).to_json();
  CHECK(regression.at("r2") == 1.0);
  CHECK(regression.at("mae") == 0.0);
}
