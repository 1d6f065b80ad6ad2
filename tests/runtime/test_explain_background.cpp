// Feature groups and backgrounds: partition checks, seeded sampling, weighted k-means with valid
// categories, JSON round trip, and the whole pipeline on the real AI4I 2020 file.

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <set>

#include "lepton/error.hpp"
#include "lepton/explain.hpp"
#include "lepton/preprocess.hpp"
#include "lepton/table.hpp"

using namespace lepton;

namespace {

// Three well separated blobs in two numeric columns plus a 3-way one-hot column whose category follows
// the blob, except for one member in every four.
DoubleMatrix blobs() {
  DoubleMatrix data(0, 5);
  const double centres[3][2] = {{-10.0, 0.0}, {0.0, 10.0}, {10.0, 0.0}};
  for (std::size_t blob = 0; blob < 3; ++blob) {
    for (std::size_t i = 0; i < 40; ++i) {
      const double jitter = 0.01 * static_cast<double>(i % 7) - 0.03;
      const std::size_t category = i % 4 == 0 ? (blob + 1) % 3 : blob;
      std::vector<double> row = {centres[blob][0] + jitter, centres[blob][1] - jitter, 0.0, 0.0, 0.0};
      row[2 + category] = 1.0;
      data.data.insert(data.data.end(), row.begin(), row.end());
      ++data.rows;
    }
  }
  return data;
}

FeatureGroups blob_groups() {
  return FeatureGroups::custom(5, {{"x", {0}, false}, {"y", {1}, false}, {"Type", {2, 3, 4}, true}});
}

}  // namespace

TEST_CASE("groups from preprocessor features", "[explain][background]") {
  std::vector<FeatureTransform> features(3);
  features[0].column = "Type";
  features[0].type = FeatureType::Categorical;
  features[0].offset = 0;
  features[0].width = 3;
  features[1].column = "Torque [Nm]";
  features[1].offset = 3;
  features[2].column = "Tool wear [min]";
  features[2].offset = 4;

  const FeatureGroups groups = FeatureGroups::from_features(features);
  CHECK(groups.width() == 5);
  REQUIRE(groups.size() == 3);
  CHECK(groups.names() == std::vector<std::string>{"Type", "Torque [Nm]", "Tool wear [min]"});
  CHECK(groups.groups()[0].columns == std::vector<std::size_t>{0, 1, 2});
  CHECK(groups.groups()[0].one_hot);
  CHECK_FALSE(groups.groups()[1].one_hot);
}

TEST_CASE("groups must partition the columns", "[explain][background]") {
  CHECK_THROWS_WITH(FeatureGroups::custom(3, {{"a", {0, 1}, false}, {"b", {1, 2}, false}}),
                    Catch::Contains("column 1 is in group \"a\" and in group \"b\""));
  CHECK_THROWS_WITH(FeatureGroups::custom(3, {{"a", {0}, false}, {"b", {2}, false}}),
                    Catch::Contains("column 1 is in no group"));
  CHECK_THROWS_WITH(FeatureGroups::custom(2, {{"a", {0, 2}, false}}), Catch::Contains("names column 2, but the width is 2"));
  CHECK_THROWS_WITH(FeatureGroups::custom(1, {{"", {0}, false}}), Catch::Contains("empty name"));
  CHECK_THROWS_WITH(FeatureGroups::per_column(3, {"a"}), Catch::Contains("1 names for 3 columns"));
}

TEST_CASE("background weights are validated", "[explain][background]") {
  const DoubleMatrix rows = DoubleMatrix::from_rows({{1.0, 2.0}, {3.0, 4.0}});
  CHECK_THROWS_WITH(Background::weighted(rows, {1.0}), Catch::Contains("1 weights for 2 rows"));
  CHECK_THROWS_WITH(Background::weighted(rows, {1.0, -0.5}), Catch::Contains("weights[1] = -0.5"));
  CHECK_THROWS_WITH(Background::weighted(rows, {0.0, 0.0}), Catch::Contains("the weights sum to 0"));
  CHECK_THROWS_WITH(Background::uniform(DoubleMatrix()), Catch::Contains("0 x 0 rows"));
  const DoubleMatrix with_nan = DoubleMatrix::from_rows({{1.0, std::nan("")}});
  CHECK_THROWS_WITH(Background::uniform(with_nan), Catch::Contains("row 0 column 1 is nan"));
}

TEST_CASE("seeded sample picks distinct rows", "[explain][background]") {
  DoubleMatrix data(50, 1);
  for (std::size_t r = 0; r < 50; ++r) data(r, 0) = static_cast<double>(r);

  const Background a = Background::sample(data, 10, 42);
  const Background b = Background::sample(data, 10, 42);
  const Background c = Background::sample(data, 10, 43);
  REQUIRE(a.size() == 10);
  CHECK(a.rows.data == b.rows.data);
  CHECK(a.rows.data != c.rows.data);
  CHECK(std::set<double>(a.rows.data.begin(), a.rows.data.end()).size() == 10);
  CHECK(a.weights == std::vector<double>(10, 0.1));
  CHECK(Background::sample(data, 500, 1).size() == 50);
}

TEST_CASE("k-means finds separated clusters with valid categories", "[explain][background]") {
  const DoubleMatrix data = blobs();
  const Background background = Background::kmeans(data, blob_groups(), KMeansOptions().clusters(3).seed(5));
  REQUIRE(background.size() == 3);
  CHECK(std::accumulate(background.weights.begin(), background.weights.end(), 0.0) == Approx(1.0));

  for (std::size_t k = 0; k < 3; ++k) {
    INFO("centre " << k);
    CHECK(background.weights[k] == Approx(1.0 / 3.0));
    // The one-hot block is exactly one category: the blob's majority (3 of 4 members).
    const double* centre = background.rows.row(k);
    CHECK(centre[2] + centre[3] + centre[4] == 1.0);
    std::size_t blob = centre[0] < -5 ? 0 : (centre[0] > 5 ? 2 : 1);
    CHECK(centre[2 + blob] == 1.0);
    // The numeric columns stay the plain mean of the members.
    CHECK(std::abs(centre[1] - (blob == 1 ? 10.0 : 0.0)) < 0.05);
  }

  const Background again = Background::kmeans(data, blob_groups(), KMeansOptions().clusters(3).seed(5));
  CHECK(again.rows.data == background.rows.data);
}

TEST_CASE("k-means drops empty clusters from duplicates", "[explain][background]") {
  const DoubleMatrix data = DoubleMatrix::from_rows({{1.0}, {1.0}, {1.0}, {2.0}});
  const Background background = Background::kmeans(data, FeatureGroups::per_column(1), KMeansOptions().clusters(4));
  CHECK(background.size() == 2);
  CHECK(std::accumulate(background.weights.begin(), background.weights.end(), 0.0) == Approx(1.0));
  CHECK_THROWS_WITH(Background::kmeans(data, FeatureGroups::per_column(2)), Catch::Contains("data have 1 columns"));
}

TEST_CASE("background JSON round trip is exact", "[explain][background]") {
  const Background background = Background::kmeans(blobs(), blob_groups(), KMeansOptions().clusters(4).seed(9));
  const nlohmann::json json = background.to_json();
  const Background restored = Background::from_json(nlohmann::json::parse(json.dump()));
  CHECK(restored.rows.cols == background.rows.cols);
  CHECK(restored.rows.data == background.rows.data);
  CHECK(restored.weights == background.weights);

  nlohmann::json broken = json;
  broken["rows"][1][2] = "x";
  CHECK_THROWS_WITH(Background::from_json(broken, "$.extensions.explanation_background"),
                    Catch::Contains("$.extensions.explanation_background.rows[1][2] is \"x\""));
  broken = json;
  broken.erase("weights");
  CHECK_THROWS_AS(Background::from_json(broken), ParseError);
  broken = json;
  broken["weights"][0] = -1.0;
  CHECK_THROWS_WITH(Background::from_json(broken), Catch::Contains("weights[0] = -1"));
}

TEST_CASE("AI4I file explained with one-hot Type", "[explain][background][ai4i]") {
  const Table table = read_csv(LEPTON_SHARED_DIR "/data/ai4i2020.csv");
  std::vector<std::size_t> all(table.rows());
  std::iota(all.begin(), all.end(), 0);
  const std::vector<FeatureSpec> specs = {{"Type", FeatureType::Categorical},
                                          {"Air temperature [K]", FeatureType::Numeric},
                                          {"Process temperature [K]", FeatureType::Numeric},
                                          {"Rotational speed [rpm]", FeatureType::Numeric},
                                          {"Torque [Nm]", FeatureType::Numeric},
                                          {"Tool wear [min]", FeatureType::Numeric}};
  const Preprocessor preprocessor = Preprocessor::fit(table, specs, all);
  const Matrix encoded = preprocessor.transform(table);
  REQUIRE(encoded.cols == 8);

  const FeatureGroups groups = FeatureGroups::from_preprocessor(preprocessor);
  REQUIRE(groups.size() == 6);
  CHECK(groups.names().front() == "Type");
  CHECK(groups.groups().front().columns.size() == 3);

  // Every k-means centre keeps a valid Type: exactly one of its three one-hot columns is 1.
  const Background background = Background::kmeans(encoded, groups, KMeansOptions().clusters(10).seed(1));
  CHECK(background.size() == 10);
  double weight_total = 0.0;
  for (std::size_t k = 0; k < background.size(); ++k) {
    weight_total += background.weights[k];
    double ones = 0.0;
    for (std::size_t c : groups.groups().front().columns) {
      CHECK((background.rows(k, c) == 0.0 || background.rows(k, c) == 1.0));
      ones += background.rows(k, c);
    }
    CHECK(ones == 1.0);
  }
  CHECK(weight_total == Approx(1.0).epsilon(1e-12));

  // Explain the first failure rows with a small MLP: efficiency is met per row to 1e-9.
  Mlp mlp;
  mlp.layers.push_back(DenseLayer{8, 4, std::vector<float>(32, 0.25f), std::vector<float>(4, 0.1f), Activation::Relu});
  for (std::size_t i = 0; i < 32; i += 3) mlp.layers[0].weight[i] = -0.5f;
  mlp.layers.push_back(DenseLayer{4, 1, {1.0f, -1.0f, 0.5f, 0.75f}, {-1.0f}, Activation::Identity});
  const ExactExplainer explainer(ExplainModel::from_mlp(mlp, OutputLink::Logistic), background, groups);
  DoubleMatrix rows(5, 8);
  for (std::size_t r = 0; r < 5; ++r) std::copy(encoded.row(r * 1000), encoded.row(r * 1000) + 8, rows.row(r));
  const Explanation explanation = explainer.explain(rows);
  for (std::size_t r = 0; r < 5; ++r) CHECK(explanation.completeness_gaps[r] < 1e-9);
  CHECK(explanation.to_json()["rows"][0]["values"].contains("Type"));
}
