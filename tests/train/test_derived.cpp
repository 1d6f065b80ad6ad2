// The derived-input screen (search_derived_differences), append_derived and fold_derived.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "lepton/dataset.hpp"
#include "lepton/derived.hpp"
#include "lepton/error.hpp"
#include "lepton/explain.hpp"
#include "lepton/preprocess.hpp"
#include "lepton/table.hpp"
#include "support/random_mlp.hpp"

using Catch::Matchers::Contains;

namespace {

const std::string kData = LEPTON_SHARED_DIR "/data/ai4i2020.csv";

std::vector<std::size_t> all_rows(std::size_t count) {
  std::vector<std::size_t> rows(count);
  for (std::size_t i = 0; i < count; ++i) rows[i] = i;
  return rows;
}

// Two correlated "temperatures" around 300 and 310, a load, and a label that fires where the temperature
// difference is small: the rule is on the difference, which neither column shows alone. With
// `rule_on_difference` false the label is independent of every column.
struct Synthetic {
  lepton::Table table;
  std::vector<std::int64_t> labels;
};

Synthetic synthetic(std::size_t rows, bool rule_on_difference, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::bernoulli_distribution coin(0.05);
  std::vector<std::string> air, process, load;
  Synthetic data;
  for (std::size_t r = 0; r < rows; ++r) {
    const double a = 300.0 + 2.0 * normal(engine);
    const double p = a + 10.0 + 1.0 * normal(engine);
    const double l = 40.0 + 10.0 * normal(engine);
    air.push_back(std::to_string(a));
    process.push_back(std::to_string(p));
    load.push_back(std::to_string(l));
    const bool failed = rule_on_difference ? p - a < 8.6 : coin(engine);
    data.labels.push_back(failed ? 1 : 0);
  }
  data.table = lepton::Table({"air", "process", "load"}, {air, process, load}, "synthetic");
  return data;
}

lepton::Preprocessor numeric_preprocessor(const lepton::Table& table) {
  std::vector<lepton::FeatureSpec> features;
  for (const std::string& name : table.column_names()) features.push_back({name, lepton::FeatureType::Numeric});
  return lepton::Preprocessor::fit(table, features, all_rows(table.rows()));
}

}  // namespace

TEST_CASE("the screen keeps a difference that a rule compares", "[derived]") {
  const Synthetic data = synthetic(3000, true, 7);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);

  const lepton::DerivedSearchResult found =
      lepton::search_derived_differences(preprocessor, encoded, data.labels, lepton::DerivedSearchOptions().with_seed(1));

  CHECK(found.candidates == 3);
  REQUIRE(found.kept.size() >= 1);
  CHECK(found.kept.front().name() == "air - process");
  CHECK(found.kept.front().loss_reduction >= 0.015);
  CHECK(found.final_loss < found.base_loss);
  REQUIRE(found.first_step.size() == 3);
  CHECK(found.first_step.front().first == "air - process");
}

TEST_CASE("the screen keeps nothing when the label ignores the columns", "[derived]") {
  const Synthetic data = synthetic(3000, false, 8);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);

  const lepton::DerivedSearchResult found =
      lepton::search_derived_differences(preprocessor, encoded, data.labels, lepton::DerivedSearchOptions().with_seed(1));

  CHECK(found.kept.empty());
  CHECK(found.final_loss == found.base_loss);
  REQUIRE_FALSE(found.first_step.empty());
  CHECK(found.first_step.front().second < 0.015);
  CHECK(found.best_rejected == found.first_step.front().first);
}

TEST_CASE("the screen samples rows above max_rows", "[derived]") {
  const Synthetic data = synthetic(3000, true, 15);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);

  const lepton::DerivedSearchResult full =
      lepton::search_derived_differences(preprocessor, encoded, data.labels, lepton::DerivedSearchOptions().with_seed(1));
  const lepton::DerivedSearchResult sampled = lepton::search_derived_differences(
      preprocessor, encoded, data.labels, lepton::DerivedSearchOptions().with_seed(1).with_max_rows(1000));

  CHECK(full.screened_rows == 3000);
  CHECK(sampled.screened_rows == 1000);
  REQUIRE_FALSE(sampled.kept.empty());
  CHECK(sampled.kept.front().name() == "air - process");
  // The kept input is standardized over every row, not only the sampled ones.
  REQUIRE_FALSE(full.kept.empty());
  CHECK(sampled.kept.front().scale == full.kept.front().scale);
  CHECK(sampled.kept.front().mean == full.kept.front().mean);

  CHECK_THROWS_WITH(lepton::search_derived_differences(preprocessor, encoded, data.labels,
                                                       lepton::DerivedSearchOptions().with_max_rows(3)),
                    Contains("max_rows 3 is below folds 5"));
}

TEST_CASE("the screen is deterministic for a seed", "[derived]") {
  const Synthetic data = synthetic(1500, true, 9);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);
  const auto options = lepton::DerivedSearchOptions().with_seed(3);

  const lepton::DerivedSearchResult first = lepton::search_derived_differences(preprocessor, encoded, data.labels, options);
  const lepton::DerivedSearchResult second = lepton::search_derived_differences(preprocessor, encoded, data.labels, options);

  CHECK(first.base_loss == second.base_loss);
  REQUIRE(first.first_step.size() == second.first_step.size());
  for (std::size_t i = 0; i < first.first_step.size(); ++i) CHECK(first.first_step[i] == second.first_step[i]);
}

// Real data: of the ten differences of AI4I's numeric columns, only the temperature difference (which the
// heat dissipation failure rule compares with 8.6 K) passes the screen. Measured on all 10,000 rows.
TEST_CASE("on AI4I the screen keeps the temperature difference alone", "[derived][ai4i]") {
  const lepton::Table table = lepton::read_csv(kData);
  std::vector<lepton::FeatureSpec> features{{"Type", lepton::FeatureType::Categorical}};
  for (const char* name : {"Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]", "Torque [Nm]",
                           "Tool wear [min]"}) {
    features.push_back({name, lepton::FeatureType::Numeric});
  }
  const lepton::Preprocessor preprocessor = lepton::Preprocessor::fit(table, features, all_rows(table.rows()));
  const lepton::Matrix encoded = preprocessor.transform(table);
  const lepton::TargetEncoding target =
      lepton::TargetEncoding::fit(table, "Machine failure", lepton::Task::BinaryClassification, all_rows(table.rows()));
  const std::vector<std::int64_t> labels = target.encode_labels(table, all_rows(table.rows()));

  const lepton::DerivedSearchResult found =
      lepton::search_derived_differences(preprocessor, encoded, labels, lepton::DerivedSearchOptions().with_seed(42));

  CHECK(found.candidates == 10);
  REQUIRE(found.kept.size() == 1);
  CHECK(found.kept.front().name() == "Air temperature [K] - Process temperature [K]");
  CHECK(found.kept.front().loss_reduction > 0.02);
  REQUIRE(found.first_step.size() == 10);
  CHECK(found.first_step[1].second < 0.015);
  CHECK_FALSE(found.best_rejected.empty());
  CHECK(found.best_rejected_reduction < 0.015);
  // The derived input is the raw difference, standardized. Its scale is the standard deviation of the
  // temperature difference over all rows, 1.0010 K (pandas, ddof 0). Its mean is 0, because the encoded
  // columns are already centred.
  CHECK(found.kept.front().scale == Approx(1.0010).margin(1e-3));
  CHECK(found.kept.front().mean == Approx(0.0).margin(1e-6));
}

TEST_CASE("append_derived adds the standardized raw difference", "[derived]") {
  const Synthetic data = synthetic(200, true, 10);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);
  lepton::DerivedDifference derived;
  derived.minuend = "process";
  derived.subtrahend = "air";
  derived.minuend_input = 1;
  derived.subtrahend_input = 0;
  derived.minuend_scale = preprocessor.features()[1].scale;
  derived.subtrahend_scale = preprocessor.features()[0].scale;
  derived.mean = 0.0;  // so the derived input is the difference of the centred raw values, halved
  derived.scale = 2.0;

  const lepton::Matrix out = lepton::append_derived(encoded, {derived});

  REQUIRE(out.cols == 4);
  for (std::size_t r = 0; r < 5; ++r) {
    const double process = std::stod(data.table.cell(r, 1));
    const double air = std::stod(data.table.cell(r, 0));
    const double raw_without_means =
        (process - preprocessor.features()[1].mean) - (air - preprocessor.features()[0].mean);
    CHECK(out(r, 0) == encoded(r, 0));
    CHECK(out(r, 3) == Approx(raw_without_means / 2.0).margin(1e-4));
  }
}

TEST_CASE("fold_derived computes the same function on the encoded columns", "[derived]") {
  const lepton::Mlp trained = lepton::test_support::random_f32_mlp({5, 16, 8, 1}, 11);
  std::vector<lepton::DerivedDifference> derived(2);
  derived[0].minuend_input = 0;
  derived[0].subtrahend_input = 2;
  derived[0].minuend_scale = 2.0;
  derived[0].subtrahend_scale = 0.5;
  derived[0].mean = 0.3;
  derived[0].scale = 1.7;
  derived[1].minuend_input = 1;
  derived[1].subtrahend_input = 0;
  derived[1].mean = -0.2;
  derived[1].scale = 0.9;
  const lepton::DoubleMatrix rows = lepton::test_support::random_rows(50, 3, 12);
  lepton::Matrix encoded(rows.rows, rows.cols);
  for (std::size_t i = 0; i < rows.data.size(); ++i) encoded.data[i] = static_cast<float>(rows.data[i]);

  const lepton::Mlp folded = lepton::fold_derived(trained, derived);

  CHECK(folded.inputs() == 3);
  CHECK(folded.layers[1].weight == trained.layers[1].weight);
  const auto with_derived = lepton::ExplainModel::from_mlp(trained, lepton::OutputLink::Identity)
                                .evaluate(lepton::DoubleMatrix::from(lepton::append_derived(encoded, derived)));
  const auto without = lepton::ExplainModel::from_mlp(folded, lepton::OutputLink::Identity)
                           .evaluate(lepton::DoubleMatrix::from(encoded));
  REQUIRE(with_derived.data.size() == without.data.size());
  for (std::size_t i = 0; i < without.data.size(); ++i) CHECK(without.data[i] == Approx(with_derived.data[i]).margin(1e-4));
}

TEST_CASE("fold_derived rejects networks that do not fit the derived inputs", "[derived]") {
  const lepton::Mlp network = lepton::test_support::random_f32_mlp({3, 4, 1}, 13);
  lepton::DerivedDifference derived;
  derived.minuend_input = 0;
  derived.subtrahend_input = 5;

  CHECK(lepton::fold_derived(network, {}).inputs() == 3);
  CHECK_THROWS_WITH(lepton::fold_derived(network, {derived}), Contains("reads encoded columns 0 and 5"));
  CHECK_THROWS_AS(lepton::fold_derived(network, std::vector<lepton::DerivedDifference>(4, derived)),
                  lepton::InvalidArgument);
  lepton::Mlp int8 = network;
  int8.layers[0].precision = lepton::LayerPrecision::Int8;
  derived.subtrahend_input = 1;
  CHECK_THROWS_WITH(lepton::fold_derived(int8, {derived}), Contains("int8"));
}

TEST_CASE("the screen rejects bad labels and mismatched inputs", "[derived]") {
  const Synthetic data = synthetic(100, true, 14);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);
  std::vector<std::int64_t> labels = data.labels;
  labels[7] = 2;

  CHECK_THROWS_WITH(lepton::search_derived_differences(preprocessor, encoded, labels), Contains("labels[7] is 2"));
  labels.pop_back();
  CHECK_THROWS_WITH(lepton::search_derived_differences(preprocessor, encoded, labels), Contains("99 labels for 100 rows"));
  const lepton::Matrix narrow(100, 2);
  CHECK_THROWS_WITH(lepton::search_derived_differences(preprocessor, narrow, data.labels), Contains("encoded has 2 columns"));
}

TEST_CASE("derived input JSON round trip", "[derived]") {
  lepton::DerivedDifference derived;
  derived.minuend = "Air temperature [K]";
  derived.subtrahend = "Process temperature [K]";
  derived.minuend_input = 3;
  derived.subtrahend_input = 4;
  derived.minuend_scale = 2.0;
  derived.subtrahend_scale = 1.5;
  derived.mean = -7.5;
  derived.scale = 1.25;
  derived.loss_reduction = 0.03;

  const lepton::DerivedDifference back = lepton::DerivedDifference::from_json(derived.to_json(), "$");

  CHECK(back.name() == derived.name());
  CHECK(back.minuend_input == 3);
  CHECK(back.subtrahend_input == 4);
  CHECK(back.minuend_scale == 2.0);
  CHECK(back.subtrahend_scale == 1.5);
  CHECK(back.mean == -7.5);
  CHECK(back.scale == 1.25);
  CHECK(back.loss_reduction == 0.03);

  nlohmann::json bad = derived.to_json();
  bad["scale"] = 0.0;
  CHECK_THROWS_WITH(lepton::DerivedDifference::from_json(bad, "$.derived_features[0]"),
                    Contains("$.derived_features[0].scale"));
  bad = derived.to_json();
  bad.erase("minuend_input");
  CHECK_THROWS_WITH(lepton::DerivedDifference::from_json(bad, "$.derived_features[0]"),
                    Contains("$.derived_features[0].minuend_input: missing"));
}
