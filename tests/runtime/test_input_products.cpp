// Input products: the columns that a network computes from two of its inputs before its first layer, as
// derived products such as torque x speed become in an exported model. Every path that runs a network must
// compute them the same way: the predictor (f32 and int8), the model file, the explainers' reference and
// fast coalition paths, the gradient, merging and quantization.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/error.hpp"
#include "lepton/explain.hpp"
#include "lepton/io.hpp"
#include "lepton/model.hpp"
#include "lepton/predictor.hpp"
#include "lepton/quantize.hpp"
#include "runtime/artifact_detail.hpp"
#include "support/random_mlp.hpp"

using Catch::Matchers::Contains;
using lepton::Activation;
using lepton::FeatureType;
using lepton::InputProduct;
using lepton::Task;

namespace {

// Numeric a, b and c: 3 encoded columns. Rows 0 to 5 fit the preprocessor.
lepton::Table abc_table() {
  return lepton::Table({"a", "b", "c", "y"},
                       {{"1.5", "2.0", "3.5", "4.0", "0.5", "2.5"},
                        {"10", "12", "9", "14", "11", "13"},
                        {"0.2", "0.4", "0.1", "0.3", "0.6", "0.5"},
                        {"0", "1", "0", "1", "0", "1"}},
                       "abc");
}

// A product of raw a and raw b, standardized with made-up terms, read back from encoded columns 0 and 1.
InputProduct raw_product(const lepton::Preprocessor& preprocessor) {
  InputProduct product;
  product.left = 0;
  product.right = 1;
  product.left_scale = preprocessor.features()[0].scale;
  product.left_shift = preprocessor.features()[0].mean;
  product.right_scale = preprocessor.features()[1].scale;
  product.right_shift = preprocessor.features()[1].mean;
  product.mean = 25.0;
  product.scale = 8.0;
  return product;
}

lepton::ModelArtifact abc_artifact(Task task) {
  const lepton::Table table = abc_table();
  lepton::ModelArtifact artifact;
  artifact.task = task;
  artifact.preprocessor = lepton::Preprocessor::fit(
      table, {{"a", FeatureType::Numeric}, {"b", FeatureType::Numeric}, {"c", FeatureType::Numeric}},
      {0, 1, 2, 3, 4, 5});
  artifact.target = lepton::TargetEncoding::fit(table, "y", task, {0, 1, 2, 3, 4, 5});
  artifact.threshold = 0.5;
  return artifact;
}

// A random binary network on the 3 columns that also reads a x b and b x c.
lepton::ModelArtifact random_product_artifact() {
  lepton::ModelArtifact artifact = abc_artifact(Task::BinaryClassification);
  InputProduct ab = raw_product(artifact.preprocessor);
  InputProduct bc = ab;
  bc.left = 1;
  bc.right = 2;
  bc.left_scale = artifact.preprocessor.features()[1].scale;
  bc.left_shift = artifact.preprocessor.features()[1].mean;
  bc.right_scale = artifact.preprocessor.features()[2].scale;
  bc.right_shift = artifact.preprocessor.features()[2].mean;
  bc.mean = 4.0;
  bc.scale = 2.0;
  artifact.network = lepton::test_support::random_f32_mlp({5, 12, 6, 1}, 17);
  artifact.network.products = {ab, bc};
  return artifact;
}

lepton::Matrix encoded_rows(std::size_t rows, std::uint64_t seed) {
  const lepton::DoubleMatrix values = lepton::test_support::random_rows(rows, 3, seed);
  lepton::Matrix encoded(rows, 3);
  for (std::size_t i = 0; i < values.data.size(); ++i) encoded.data[i] = static_cast<float>(values.data[i]);
  return encoded;
}

std::string parse_message(const std::string& bytes) {
  try {
    lepton::parse_artifact(bytes, "model.lepton");
  } catch (const lepton::ParseError& error) {
    return error.what();
  }
  return "<no exception>";
}

std::string rewrite_header(const std::string& bytes, const std::function<void(nlohmann::json&)>& edit,
                           std::uint32_t flags) {
  const lepton::detail::ArtifactSections sections = lepton::detail::split_artifact(bytes);
  nlohmann::json header = nlohmann::json::parse(sections.header_json);
  edit(header);
  return lepton::detail::assemble_artifact(header.dump(), sections.payload, 1, flags);
}

// Checks the analytic gradient of output 0 at `point` [3] against central differences. With h = 1e-5 on a
// double network the error is O(h^2) plus round-off near 1e-10.
void check_gradient(const lepton::ExplainModel& model, const double* point) {
  std::vector<double> gradient(3);
  model.gradient(point, 0, gradient.data());
  for (std::size_t i = 0; i < 3; ++i) {
    const double h = 1e-5;
    std::vector<double> up(point, point + 3), down = up;
    up[i] += h;
    down[i] -= h;
    double out_up = 0, out_down = 0;
    model.evaluate(up.data(), 1, &out_up);
    model.evaluate(down.data(), 1, &out_down);
    INFO("input " << i);
    CHECK(gradient[i] == Approx((out_up - out_down) / (2 * h)).epsilon(0).margin(1e-6));
  }
}

}  // namespace

TEST_CASE("input product: predictor computes raw product", "[products]") {
  // Regression on the product alone: the first layer reads a, b, c and a x b, and passes a x b through.
  lepton::ModelArtifact artifact = abc_artifact(Task::Regression);
  artifact.target.mean = 0;
  artifact.target.scale = 1;
  artifact.network.products = {raw_product(artifact.preprocessor)};
  lepton::DenseLayer layer;
  layer.inputs = 4;
  layer.outputs = 1;
  layer.weight = {0, 0, 0, 1};
  layer.bias = {0};
  layer.activation = Activation::Identity;
  artifact.network.layers = {layer};

  const lepton::Predictor predictor(artifact);
  const lepton::Table table = abc_table();
  const lepton::Predictions predictions = predictor.predict(table);

  REQUIRE(predictions.value.size() == table.rows());
  for (std::size_t r = 0; r < table.rows(); ++r) {
    INFO("row " << r);
    const double expected = (std::stod(table.cell(r, 0)) * std::stod(table.cell(r, 1)) - 25.0) / 8.0;
    CHECK(predictions.value[r] == Approx(expected).margin(1e-5));
  }
  // Callers still pass the preprocessor's 3 columns; the product is not theirs to compute.
  CHECK(artifact.network.inputs() == 3);
  CHECK_THROWS_WITH(predictor.predict(lepton::Matrix(2, 4)), Contains("model expects 3 encoded columns, got 4"));
}

TEST_CASE("input product: model file round trip", "[products][artifact]") {
  const lepton::ModelArtifact artifact = random_product_artifact();
  const std::string bytes = lepton::serialize_artifact(artifact);

  CHECK((lepton::detail::read_prefix(bytes).flags & lepton::detail::kFlagInputProducts) != 0);
  const lepton::ModelArtifact back = lepton::parse_artifact(bytes, "model.lepton");
  REQUIRE(back.network.products.size() == 2);
  CHECK(back.network.products[1].left == 1);
  CHECK(back.network.products[1].right == 2);
  CHECK(back.network.products[1].right_shift == artifact.network.products[1].right_shift);
  CHECK(back.network.products[1].scale == 2.0);
  CHECK(back.network.inputs() == 3);

  const lepton::Matrix rows = encoded_rows(20, 3);
  const lepton::Predictions before = lepton::Predictor(artifact).predict(rows);
  const lepton::Predictions after = lepton::Predictor(back).predict(rows);
  CHECK(before.probability == after.probability);

  // A file without products does not set the flag.
  lepton::ModelArtifact plain = artifact;
  plain.network = lepton::test_support::random_f32_mlp({3, 4, 1}, 5);
  CHECK((lepton::detail::read_prefix(lepton::serialize_artifact(plain)).flags & lepton::detail::kFlagInputProducts) ==
        0);
}

TEST_CASE("input product: hostile files name field", "[products][artifact][corruption]") {
  const std::string bytes = lepton::serialize_artifact(random_product_artifact());
  const std::uint32_t flags = lepton::detail::read_prefix(bytes).flags;

  const std::string outside = rewrite_header(bytes, [](nlohmann::json& h) { h["network"]["products"][0]["right"] = 3; }, flags);
  CHECK_THAT(parse_message(outside), Contains("$.network.products[0].right") && Contains("outside"));

  const std::string zero_scale = rewrite_header(bytes, [](nlohmann::json& h) { h["network"]["products"][1]["scale"] = 0.0; }, flags);
  CHECK_THAT(parse_message(zero_scale), Contains("$.network.products[1].scale"));

  const std::string unknown = rewrite_header(bytes, [](nlohmann::json& h) { h["network"]["products"][0]["power"] = 2; }, flags);
  CHECK_THAT(parse_message(unknown), Contains("power") && Contains("$.network.products[0]"));

  const std::string missing = rewrite_header(bytes, [](nlohmann::json& h) { h["network"]["products"][0].erase("mean"); }, flags);
  CHECK_THAT(parse_message(missing), Contains("$.network.products[0].mean"));

  // The flag and the field must agree, so that an older reader never runs the first layer on too few columns.
  const std::string unflagged = rewrite_header(bytes, [](nlohmann::json&) {}, flags & ~lepton::detail::kFlagInputProducts);
  CHECK_THAT(parse_message(unflagged), Contains("prefix flag 0x4") && Contains("$.network.products"));
  const std::string dropped = rewrite_header(bytes, [](nlohmann::json& h) { h["network"].erase("products"); }, flags);
  CHECK_THAT(parse_message(dropped), Contains("announces input products"));

  // One product too few leaves the first layer wider than the columns it reads.
  const std::string short_list = rewrite_header(bytes, [](nlohmann::json& h) { h["network"]["products"].erase(1); }, flags);
  CHECK_THAT(parse_message(short_list), Contains("$.network.layers[0].inputs"));
}

TEST_CASE("input product: validate rejects bad product", "[products]") {
  lepton::Mlp network = random_product_artifact().network;
  network.validate();

  lepton::Mlp outside = network;
  outside.products[0].left = 3;
  CHECK_THROWS_WITH(outside.validate(), Contains("product 0 reads columns 3 and 1"));

  lepton::Mlp flat = network;
  flat.products[1].scale = 0;
  CHECK_THROWS_WITH(flat.validate(), Contains("product 1"));

  lepton::Mlp infinite = network;
  infinite.products[0].left_shift = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(infinite.validate(), Contains("not finite"));
}

TEST_CASE("input product: explainers match predictor", "[products][explain]") {
  const lepton::ModelArtifact artifact = random_product_artifact();
  const lepton::Matrix rows = encoded_rows(16, 7);

  const lepton::Predictions predictions = lepton::Predictor(artifact).predict(rows);
  const lepton::ExplainModel model = lepton::ExplainModel::from_mlp(artifact.network, lepton::OutputLink::Logistic);
  const lepton::DoubleMatrix explained = model.evaluate(lepton::DoubleMatrix::from(rows));

  REQUIRE(model.inputs() == 3);
  for (std::size_t r = 0; r < rows.rows; ++r) {
    INFO("row " << r);
    CHECK(explained(r, 0) == Approx(predictions.probability[r]).margin(1e-5));
  }
}

TEST_CASE("input product: fast path matches reference", "[products][explain]") {
  const lepton::ModelArtifact artifact = random_product_artifact();
  const lepton::ExplainModel model = lepton::ExplainModel::from_mlp(artifact.network, lepton::OutputLink::Logistic);
  const lepton::Background background = lepton::Background::weighted(lepton::test_support::random_rows(9, 3, 11),
                                                                     {1, 2, 1, 0.5, 1, 3, 1, 1, 2});
  const lepton::DoubleMatrix rows = lepton::test_support::random_rows(4, 3, 12);

  // One group per column: each product spans two groups. Then a and b in one group: a x b lies inside it.
  const lepton::FeatureGroups per_column = lepton::FeatureGroups::per_column(3);
  const lepton::FeatureGroups joined = lepton::FeatureGroups::custom(3, {{"ab", {0, 1}, false}, {"c", {2}, false}});
  for (const lepton::FeatureGroups* groups : {&per_column, &joined}) {
    INFO(groups->size() << " groups");
    const lepton::ExactOptions options;
    const lepton::Explanation reference =
        lepton::ExactExplainer(model, background, *groups, lepton::ExactOptions(options).path(lepton::CoalitionPath::Reference))
            .explain(rows);
    const lepton::Explanation fast =
        lepton::ExactExplainer(model, background, *groups, lepton::ExactOptions(options).path(lepton::CoalitionPath::Fast))
            .explain(rows);
    REQUIRE(reference.values.size() == fast.values.size());
    for (std::size_t i = 0; i < fast.values.size(); ++i) CHECK(fast.values[i] == Approx(reference.values[i]).margin(1e-5));
    // Exact Shapley values add up to f(x) - E f(background).
    for (std::size_t r = 0; r < rows.rows; ++r) CHECK(std::abs(fast.completeness_gaps[r]) < 1e-5);
  }
}

TEST_CASE("input product: gradient matches differences", "[products][explain]") {
  const lepton::ModelArtifact artifact = random_product_artifact();
  const lepton::ExplainModel model = lepton::ExplainModel::from_mlp(artifact.network, lepton::OutputLink::Identity);
  const lepton::DoubleMatrix point = lepton::test_support::random_rows(1, 3, 21);

  check_gradient(model, point.row(0));
}

TEST_CASE("input product: merge keeps shared products", "[products][merge]") {
  const lepton::ModelArtifact artifact = random_product_artifact();
  std::vector<lepton::Mlp> members = lepton::test_support::random_f32_members({5, 8, 1}, 3, 40);
  for (lepton::Mlp& member : members) member.products = artifact.network.products;

  const lepton::Mlp merged = lepton::merge_mean_output(members);
  REQUIRE(merged.products.size() == 2);
  CHECK(merged.inputs() == 3);

  const lepton::DoubleMatrix rows = lepton::DoubleMatrix::from(encoded_rows(10, 41));
  const lepton::DoubleMatrix merged_logits =
      lepton::ExplainModel::from_mlp(merged, lepton::OutputLink::Identity).evaluate(rows);
  for (std::size_t r = 0; r < rows.rows; ++r) {
    double mean = 0;
    for (const lepton::Mlp& member : members) {
      mean += lepton::ExplainModel::from_mlp(member, lepton::OutputLink::Identity).evaluate(rows)(r, 0) / 3.0;
    }
    INFO("row " << r);
    CHECK(merged_logits(r, 0) == Approx(mean).margin(1e-5));
  }

  members[2].products[0].mean += 1.0;
  CHECK_THROWS_WITH(lepton::merge_mean_output(members), Contains("member 2 computes other input products"));
}

TEST_CASE("input product: int8 keeps products", "[products][quantize]") {
  const lepton::ModelArtifact f32 = random_product_artifact();
  const lepton::Matrix calibration = encoded_rows(64, 51);
  const lepton::Matrix validation = encoded_rows(64, 52);
  const lepton::Predictions reference = lepton::Predictor(f32).predict(validation);

  const lepton::QuantizationResult result =
      lepton::quantize(f32, calibration, validation, reference.label_index, lepton::QuantizationOptions());
  REQUIRE(result.artifact.network.products.size() == 2);
  const lepton::Predictions quantized = lepton::Predictor(result.artifact).predict(validation);
  double largest = 0;
  for (std::size_t r = 0; r < validation.rows; ++r) {
    largest = std::max(largest, std::abs(quantized.probability[r] - reference.probability[r]));
  }
  // Calibration runs the products too, so int8 rounding moves a probability by little.
  CHECK(largest < 0.05);
  const lepton::ModelArtifact back =
      lepton::parse_artifact(lepton::serialize_artifact(result.artifact), "model_int8.lepton");
  CHECK(lepton::Predictor(back).predict(validation).probability == quantized.probability);
}

namespace {

// Difference and step terms on the abc columns, beside the plain products of random_product_artifact():
// raw a - raw c, the step raw b x raw c > 4, and the step raw a - raw b > -10.25. Each step lies between two
// of abc_table's rows, away from any of them, so float rounding of the encoded columns cannot flip it.
std::vector<InputProduct> difference_and_steps(const lepton::Preprocessor& preprocessor) {
  const auto factor = [&](InputProduct& term, std::size_t left, std::size_t right) {
    term.left = left;
    term.right = right;
    term.left_scale = preprocessor.features()[left].scale;
    term.left_shift = preprocessor.features()[left].mean;
    term.right_scale = preprocessor.features()[right].scale;
    term.right_shift = preprocessor.features()[right].mean;
  };
  InputProduct ac;
  factor(ac, 0, 2);
  ac.difference = true;
  ac.mean = 2.0;
  ac.scale = 1.5;
  InputProduct bc_step;
  factor(bc_step, 1, 2);
  bc_step.step = 4.0;
  bc_step.mean = 0.5;
  bc_step.scale = 0.5;
  InputProduct ab_step;
  factor(ab_step, 0, 1);
  ab_step.difference = true;
  ab_step.step = -10.25;
  ab_step.mean = 0.4;
  ab_step.scale = 0.49;
  return {ac, bc_step, ab_step};
}

// A random binary network on the 3 columns that reads a x b, b x c and the three terms above.
lepton::ModelArtifact random_step_artifact() {
  lepton::ModelArtifact artifact = random_product_artifact();
  for (const InputProduct& term : difference_and_steps(artifact.preprocessor)) {
    artifact.network.products.push_back(term);
  }
  artifact.network.layers = lepton::test_support::random_f32_mlp({8, 12, 6, 1}, 23).layers;
  return artifact;
}

}  // namespace

TEST_CASE("input product: differences and steps", "[products]") {
  // Regression on one term at a time: the first layer passes the term through.
  const lepton::Table table = abc_table();
  const std::vector<InputProduct> terms = difference_and_steps(abc_artifact(Task::Regression).preprocessor);
  const std::vector<std::function<double(double, double, double)>> expected = {
      [](double a, double, double c) { return (a - c - 2.0) / 1.5; },
      [](double, double b, double c) { return ((b * c > 4.0 ? 1.0 : 0.0) - 0.5) / 0.5; },
      [](double a, double b, double) { return ((a - b > -10.25 ? 1.0 : 0.0) - 0.4) / 0.49; }};
  for (std::size_t k = 0; k < terms.size(); ++k) {
    lepton::ModelArtifact artifact = abc_artifact(Task::Regression);
    artifact.target.mean = 0;
    artifact.target.scale = 1;
    artifact.network.products = {terms[k]};
    lepton::DenseLayer layer;
    layer.inputs = 4;
    layer.outputs = 1;
    layer.weight = {0, 0, 0, 1};
    layer.bias = {0};
    layer.activation = Activation::Identity;
    artifact.network.layers = {layer};

    const lepton::Predictions predictions = lepton::Predictor(artifact).predict(table);
    std::vector<double> levels;
    for (std::size_t r = 0; r < table.rows(); ++r) {
      INFO("term " << k << ", row " << r);
      const double a = std::stod(table.cell(r, 0)), b = std::stod(table.cell(r, 1)), c = std::stod(table.cell(r, 2));
      const double want = expected[k](a, b, c);
      CHECK(predictions.value[r] == Approx(want).margin(1e-5));
      if (std::find(levels.begin(), levels.end(), want) == levels.end()) levels.push_back(want);
    }
    // The rows fall on both sides of each step.
    CHECK(levels.size() >= 2);
  }
}

TEST_CASE("input product: step file round trip", "[products][artifact]") {
  const lepton::ModelArtifact artifact = random_step_artifact();
  const std::string bytes = lepton::serialize_artifact(artifact);

  const std::uint32_t flags = lepton::detail::read_prefix(bytes).flags;
  CHECK((flags & lepton::detail::kFlagInputProducts) != 0);
  CHECK((flags & lepton::detail::kFlagInputSteps) != 0);
  const lepton::ModelArtifact back = lepton::parse_artifact(bytes, "model.lepton");
  REQUIRE(back.network.products.size() == 5);
  CHECK(back.network.products[2].difference);
  CHECK_FALSE(back.network.products[2].step.has_value());
  CHECK_FALSE(back.network.products[3].difference);
  CHECK(back.network.products[3].step == 4.0);
  CHECK(back.network.products[4].difference);
  CHECK(back.network.products[4].step == -10.25);

  const lepton::Matrix rows = encoded_rows(20, 3);
  CHECK(lepton::Predictor(artifact).predict(rows).probability == lepton::Predictor(back).predict(rows).probability);

  // Plain products leave flag 0x8 unset, so that builds which predate steps still read them.
  const std::uint32_t plain = lepton::detail::read_prefix(lepton::serialize_artifact(random_product_artifact())).flags;
  CHECK((plain & lepton::detail::kFlagInputSteps) == 0);
}

TEST_CASE("input product: hostile step fields", "[products][artifact][corruption]") {
  const std::string bytes = lepton::serialize_artifact(random_step_artifact());
  const std::uint32_t flags = lepton::detail::read_prefix(bytes).flags;

  // Without flag 0x8 a reader would compute a plain product, so the fields are refused.
  const std::string unflagged = rewrite_header(bytes, [](nlohmann::json&) {}, flags & ~lepton::detail::kFlagInputSteps);
  CHECK_THAT(parse_message(unflagged), Contains("prefix flag 0x8") && Contains("$.network.products[2].difference"));
  const std::string no_steps = rewrite_header(
      bytes,
      [](nlohmann::json& h) {
        for (nlohmann::json& term : h["network"]["products"]) {
          term.erase("difference");
          term.erase("step");
        }
      },
      flags);
  CHECK_THAT(parse_message(no_steps), Contains("announces difference or step products"));

  const std::string text_step = rewrite_header(bytes, [](nlohmann::json& h) { h["network"]["products"][3]["step"] = "4"; }, flags);
  CHECK_THAT(parse_message(text_step), Contains("$.network.products[3].step"));
  const std::string number_flag = rewrite_header(bytes, [](nlohmann::json& h) { h["network"]["products"][2]["difference"] = 1; }, flags);
  CHECK_THAT(parse_message(number_flag), Contains("expected true or false") && Contains("$.network.products[2].difference"));
}

TEST_CASE("input product: steps explain exactly", "[products][explain]") {
  const lepton::ModelArtifact artifact = random_step_artifact();
  const lepton::ExplainModel model = lepton::ExplainModel::from_mlp(artifact.network, lepton::OutputLink::Logistic);
  const lepton::Matrix encoded = encoded_rows(12, 31);
  const lepton::DoubleMatrix rows = lepton::DoubleMatrix::from(encoded);

  // The explainers' network computes what the predictor computes.
  const lepton::Predictions predictions = lepton::Predictor(artifact).predict(encoded);
  const lepton::DoubleMatrix explained = model.evaluate(rows);
  for (std::size_t r = 0; r < rows.rows; ++r) CHECK(explained(r, 0) == Approx(predictions.probability[r]).margin(1e-5));

  // The rows fall on both sides of the b x c step, so its pair terms are exercised.
  std::size_t above = 0;
  const InputProduct& step = artifact.network.products[3];
  for (std::size_t r = 0; r < rows.rows; ++r) above += step.left_factor(rows.row(r)) * step.right_factor(rows.row(r)) > 4.0;
  REQUIRE(above > 0);
  REQUIRE(above < rows.rows);

  const lepton::Background background = lepton::Background::weighted(lepton::test_support::random_rows(9, 3, 32),
                                                                     {1, 2, 1, 0.5, 1, 3, 1, 1, 2});
  const lepton::FeatureGroups per_column = lepton::FeatureGroups::per_column(3);
  const lepton::FeatureGroups joined = lepton::FeatureGroups::custom(3, {{"ab", {0, 1}, false}, {"c", {2}, false}});
  for (const lepton::FeatureGroups* groups : {&per_column, &joined}) {
    INFO(groups->size() << " groups");
    const lepton::Explanation reference =
        lepton::ExactExplainer(model, background, *groups, lepton::ExactOptions().path(lepton::CoalitionPath::Reference))
            .explain(rows);
    const lepton::Explanation fast =
        lepton::ExactExplainer(model, background, *groups, lepton::ExactOptions().path(lepton::CoalitionPath::Fast))
            .explain(rows);
    REQUIRE(reference.values.size() == fast.values.size());
    for (std::size_t i = 0; i < fast.values.size(); ++i) CHECK(fast.values[i] == Approx(reference.values[i]).margin(1e-5));
    for (std::size_t r = 0; r < rows.rows; ++r) CHECK(std::abs(fast.completeness_gaps[r]) < 1e-5);
  }
}

TEST_CASE("input product: steps have no gradient", "[products][explain]") {
  const lepton::ModelArtifact artifact = random_step_artifact();
  const lepton::ExplainModel stepped = lepton::ExplainModel::from_mlp(artifact.network, lepton::OutputLink::Identity);
  CHECK_FALSE(stepped.has_gradient());
  std::vector<double> gradient(3);
  const lepton::DoubleMatrix point = lepton::test_support::random_rows(1, 3, 41);
  CHECK_THROWS_WITH(stepped.gradient(point.row(0), 0, gradient.data()), Contains("step inputs"));
  const lepton::Background background = lepton::Background::weighted(lepton::test_support::random_rows(4, 3, 42),
                                                                     {1, 1, 1, 1});
  CHECK_THROWS_WITH(lepton::GradientExplainer(stepped, background, lepton::FeatureGroups::per_column(3)),
                    Contains("step inputs"));

  // Without its steps the network has a gradient again, and a difference passes +1 and -1 on.
  lepton::Mlp smooth = artifact.network;
  smooth.products.resize(3);
  smooth.layers.front() = lepton::test_support::random_f32_mlp({6, 12, 1}, 43).layers.front();
  const lepton::ExplainModel model = lepton::ExplainModel::from_mlp(smooth, lepton::OutputLink::Identity);
  REQUIRE(model.has_gradient());
  check_gradient(model, point.row(0));
}

TEST_CASE("input product: steps in validate and merge", "[products][merge]") {
  const lepton::ModelArtifact artifact = random_step_artifact();
  lepton::Mlp infinite = artifact.network;
  infinite.products[3].step = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(infinite.validate(), Contains("product 3") && Contains("not finite"));

  std::vector<lepton::Mlp> members = lepton::test_support::random_f32_members({8, 8, 1}, 2, 44);
  for (lepton::Mlp& member : members) member.products = artifact.network.products;
  CHECK(lepton::merge_mean_output(members).products.size() == 5);
  members[1].products[4].step = -9.0;
  CHECK_THROWS_WITH(lepton::merge_mean_output(members), Contains("member 1 computes other input products"));
  members[1].products[4].step = -10.25;
  members[1].products[2].difference = false;
  CHECK_THROWS_WITH(lepton::merge_mean_output(members), Contains("member 1 computes other input products"));
}

namespace {

const char* const kProductsGolden = LEPTON_SOURCE_DIR "/tests/golden/input_products_v1.lepton";
const char* const kStepsGolden = LEPTON_SOURCE_DIR "/tests/golden/input_steps_v1.lepton";
const char* const kProductsExpected = LEPTON_SOURCE_DIR "/tests/golden/input_products_v1_expected.json";
const char* const kProductsGoldenCommand =
    "LEPTON_WRITE_GOLDEN=1 build/tests/test_input_products \"[.write-golden-products]\" (from the repository root)";

}  // namespace

TEST_CASE("input product: golden files still load", "[products][artifact][golden]") {
  const nlohmann::json expected = nlohmann::json::parse(lepton::read_file(kProductsExpected));
  const lepton::Matrix rows = encoded_rows(8, 99);

  struct Golden {
    const char* path;
    const char* probabilities;
    std::uint32_t flags;
  };
  for (const Golden& golden : {Golden{kProductsGolden, "products_probability", lepton::detail::kFlagInputProducts},
                               Golden{kStepsGolden, "steps_probability",
                                      lepton::detail::kFlagInputProducts | lepton::detail::kFlagInputSteps}}) {
    INFO(golden.path);
    const std::string bytes = lepton::read_file(golden.path);
    CHECK(lepton::detail::read_prefix(bytes).flags == golden.flags);

    const lepton::Predictions predictions = lepton::Predictor(lepton::parse_artifact(bytes, golden.path)).predict(rows);
    const auto probability = expected.at(golden.probabilities).get<std::vector<double>>();
    REQUIRE(predictions.probability.size() == probability.size());
    for (std::size_t i = 0; i < probability.size(); ++i) {
      // Another CPU may dispatch other SIMD kernels, whose float32 sums differ in the last bits.
      INFO("row " << i);
      CHECK(predictions.probability[i] == Approx(probability[i]).epsilon(1e-5));
    }
  }
}

// Writes the input-product golden files. Run only when adding a file on purpose: the existing ones prove that
// files written by earlier builds still load.
TEST_CASE("write golden input-product artifacts", "[.write-golden-products]") {
  if (std::getenv("LEPTON_WRITE_GOLDEN") == nullptr) {
    WARN("set LEPTON_WRITE_GOLDEN=1 to rewrite the golden files");
    return;
  }

  lepton::ModelArtifact products = random_product_artifact();
  lepton::ModelArtifact steps = random_step_artifact();
  products.extensions = {{"golden", {{"command", kProductsGoldenCommand}}}};
  steps.extensions = products.extensions;
  lepton::save_artifact(products, kProductsGolden);
  lepton::save_artifact(steps, kStepsGolden);

  const lepton::Matrix rows = encoded_rows(8, 99);
  const nlohmann::json expected = {{"command", kProductsGoldenCommand},
                                   {"products_probability", lepton::Predictor(products).predict(rows).probability},
                                   {"steps_probability", lepton::Predictor(steps).predict(rows).probability}};
  lepton::write_file_atomically(kProductsExpected, expected.dump(1) + "\n");
}
