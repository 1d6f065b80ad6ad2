// The derived-input screen (screen_derived_inputs), bind_derived, append_derived and fold_derived.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

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

// Two correlated "temperatures" around 300 and 310 and a load, with a label that fires on one rule:
// - Rule::Difference: the temperature difference is small, which neither column shows alone.
// - Rule::Product: air times load is large, as a power limit would be.
// - Rule::None: the label is independent of every column.
enum class Rule { None, Difference, Product };

struct Synthetic {
  lepton::Table table;
  std::vector<std::int64_t> labels;
};

Synthetic synthetic(std::size_t rows, Rule rule, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::bernoulli_distribution coin(0.05);
  std::vector<std::string> air, process, load;
  Synthetic data;
  for (std::size_t r = 0; r < rows; ++r) {
    const double a = 300.0 + 2.0 * normal(engine);
    const double p = a + 10.0 + 1.0 * normal(engine);
    // The load stays positive, so products of every pair are screened.
    const double l = std::max(1.0, 40.0 + 10.0 * normal(engine));
    air.push_back(std::to_string(a));
    process.push_back(std::to_string(p));
    load.push_back(std::to_string(l));
    bool failed = false;
    if (rule == Rule::Difference) failed = p - a < 8.6;
    if (rule == Rule::Product) failed = a * l > 16500;
    if (rule == Rule::None) failed = coin(engine);
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

// AI4I's six features fitted and encoded on all 10,000 rows, with the failure labels, read once.
struct Ai4iScreenInputs {
  lepton::Preprocessor preprocessor;
  lepton::Matrix encoded;
  std::vector<std::int64_t> labels;
};

const Ai4iScreenInputs& ai4i_screen_inputs() {
  static const Ai4iScreenInputs inputs = [] {
    const lepton::Table table = lepton::read_csv(kData);
    std::vector<lepton::FeatureSpec> features{{"Type", lepton::FeatureType::Categorical}};
    for (const char* name : {"Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]", "Torque [Nm]",
                             "Tool wear [min]"}) {
      features.push_back({name, lepton::FeatureType::Numeric});
    }
    const lepton::Preprocessor preprocessor = lepton::Preprocessor::fit(table, features, all_rows(table.rows()));
    const lepton::Matrix encoded = preprocessor.transform(table);
    const lepton::TargetEncoding target =
        lepton::TargetEncoding::fit(table, "Machine failure", lepton::Task::BinaryClassification,
                                    all_rows(table.rows()));
    const std::vector<std::int64_t> labels = target.encode_labels(table, all_rows(table.rows()));
    return Ai4iScreenInputs{preprocessor, encoded, labels};
  }();
  return inputs;
}

}  // namespace

TEST_CASE("the screen keeps a difference that a rule compares", "[derived]") {
  const Synthetic data = synthetic(3000, Rule::Difference, 7);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);

  const lepton::DerivedSearchResult found =
      lepton::screen_derived_inputs(preprocessor, encoded, data.labels, lepton::DerivedSearchOptions().with_seed(1));

  CHECK(found.candidates == 3);
  REQUIRE(found.kept.size() >= 1);
  CHECK(found.kept.front().name() == "air - process");
  CHECK(found.kept.front().kind == lepton::DerivedKind::Difference);
  CHECK(found.kept.front().loss_reduction >= 0.015);
  CHECK(found.final_loss < found.base_loss);
  REQUIRE(found.first_step.size() == 3);
  CHECK(found.first_step.front().first == "air - process");

  // The products screen finds it too, among three pairs each as a difference and a product.
  const lepton::DerivedSearchResult with_products = lepton::screen_derived_inputs(
      preprocessor, encoded, data.labels, lepton::DerivedSearchOptions().with_seed(1).with_products(true));
  CHECK(with_products.candidates == 6);
  REQUIRE_FALSE(with_products.kept.empty());
  CHECK(with_products.kept.front().name() == "air - process");
  CHECK(with_products.kept.front().loss_reduction >= 0.04);
  CHECK(with_products.first_step.size() == 6);

  // A difference is bound at once: it reads the two features' standardized columns.
  CHECK(found.kept.front().left_input == 0);
  CHECK(found.kept.front().right_input == 1);
  CHECK(found.kept.front().left_coefficient == preprocessor.features()[0].scale);
  CHECK(found.kept.front().right_coefficient == -preprocessor.features()[1].scale);
}

TEST_CASE("the products screen keeps a rule's product", "[derived]") {
  const Synthetic data = synthetic(3000, Rule::Product, 21);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);

  lepton::DerivedSearchResult found = lepton::screen_derived_inputs(
      preprocessor, encoded, data.labels, lepton::DerivedSearchOptions().with_seed(1).with_products(true));

  REQUIRE_FALSE(found.kept.empty());
  CHECK(found.kept.front().name() == "air * load");
  CHECK(found.kept.front().kind == lepton::DerivedKind::Product);
  CHECK(found.kept.front().loss_reduction >= 0.04);

  // The product is bound at once to the two standardized columns, whose scales and means give back the
  // raw values: air x load, standardized over the rows.
  const lepton::DerivedInput& product = found.kept.front();
  CHECK(product.left_input == 0);
  CHECK(product.right_input == 2);
  CHECK(product.left_coefficient == preprocessor.features()[0].scale);
  CHECK(product.left_shift == preprocessor.features()[0].mean);
  CHECK(product.right_shift == preprocessor.features()[2].mean);
  double sum = 0, squares = 0;
  std::vector<double> raw;
  for (std::size_t r = 0; r < data.table.rows(); ++r) {
    raw.push_back(std::stod(data.table.cell(r, 0)) * std::stod(data.table.cell(r, 2)));
    sum += raw.back();
  }
  const double mean = sum / static_cast<double>(raw.size());
  for (double value : raw) squares += (value - mean) * (value - mean);
  const double deviation = std::sqrt(squares / static_cast<double>(raw.size()));
  for (std::size_t r = 0; r < 5; ++r) {
    INFO("row " << r);
    CHECK(product.value(encoded.row(r)) == Approx((raw[r] - mean) / deviation).margin(1e-4));
  }

  // The training columns are the encoded ones, then the product.
  const lepton::Matrix training = lepton::append_derived(encoded, found.kept);
  CHECK(training.cols == encoded.cols + found.kept.size());
  CHECK(training(3, 1) == encoded(3, 1));
  CHECK(training(3, encoded.cols) == static_cast<float>(product.value(encoded.row(3))));

  // An input that was never bound names the fix.
  lepton::DerivedInput unbound = product;
  unbound.scale = 0;
  CHECK_THROWS_WITH(lepton::append_derived(encoded, {unbound}), Contains("has scale 0") && Contains("bind_derived"));
}

TEST_CASE("fold_derived: product kept, difference folded", "[derived]") {
  // Encoded columns a, b, c. The trained network takes a, b, c, the product a * c and the difference a - b.
  lepton::DerivedInput product;
  product.kind = lepton::DerivedKind::Product;
  product.left_input = 0;
  product.right_input = 2;
  product.left_coefficient = 0.8;
  product.left_shift = 3.0;
  product.right_coefficient = 1.3;
  product.right_shift = 5.0;
  product.mean = 14.0;
  product.scale = 4.5;
  lepton::DerivedInput difference;
  difference.left_input = 0;
  difference.right_input = 1;
  difference.left_coefficient = 2.0;
  difference.right_coefficient = -0.5;
  difference.scale = 0.7;
  const std::vector<lepton::DerivedInput> derived{product, difference};
  const lepton::Mlp trained = lepton::test_support::random_f32_mlp({5, 12, 1}, 31);
  const lepton::DoubleMatrix rows = lepton::test_support::random_rows(40, 3, 32);
  lepton::Matrix encoded(rows.rows, rows.cols);
  for (std::size_t i = 0; i < rows.data.size(); ++i) encoded.data[i] = static_cast<float>(rows.data[i]);

  const lepton::Mlp folded = lepton::fold_derived(trained, derived);

  REQUIRE(folded.inputs() == 3);
  REQUIRE(folded.products.size() == 1);
  CHECK(folded.layers.front().inputs == 4);
  CHECK(folded.products.front().left == 0);
  CHECK(folded.products.front().right == 2);
  CHECK(folded.products.front().left_shift == 3.0);
  CHECK(folded.products.front().scale == 4.5);
  const auto with_derived = lepton::ExplainModel::from_mlp(trained, lepton::OutputLink::Identity)
                                .evaluate(lepton::DoubleMatrix::from(lepton::append_derived(encoded, derived)));
  const auto without = lepton::ExplainModel::from_mlp(folded, lepton::OutputLink::Identity)
                           .evaluate(lepton::DoubleMatrix::from(encoded));
  REQUIRE(with_derived.data.size() == without.data.size());
  for (std::size_t i = 0; i < without.data.size(); ++i) CHECK(without.data[i] == Approx(with_derived.data[i]).margin(1e-4));

  // Folding twice would apply the products twice.
  CHECK_THROWS_WITH(lepton::fold_derived(folded, {difference}), Contains("already computes input products"));
}

TEST_CASE("fold_derived: steps become input products", "[derived]") {
  // Encoded columns a, b, c. The trained network takes a, b, c, the step a * c > 20 and the step a - b > 1.
  lepton::DerivedInput product_step;
  product_step.kind = lepton::DerivedKind::Product;
  product_step.left_input = 0;
  product_step.right_input = 2;
  product_step.left_coefficient = 0.8;
  product_step.left_shift = 3.0;
  product_step.right_coefficient = 1.3;
  product_step.right_shift = 5.0;
  product_step.step = 20.0;
  product_step.mean = 0.3;
  product_step.scale = 0.46;
  lepton::DerivedInput difference_step;
  difference_step.left_input = 0;
  difference_step.right_input = 1;
  difference_step.left_coefficient = 2.0;
  difference_step.left_shift = 4.0;
  difference_step.right_coefficient = -0.5;
  difference_step.right_shift = -3.5;
  difference_step.step = 1.0;
  difference_step.mean = 0.6;
  difference_step.scale = 0.49;
  const std::vector<lepton::DerivedInput> derived{product_step, difference_step};
  const lepton::Mlp trained = lepton::test_support::random_f32_mlp({5, 12, 1}, 33);
  const lepton::DoubleMatrix rows = lepton::test_support::random_rows(60, 3, 34);
  lepton::Matrix encoded(rows.rows, rows.cols);
  for (std::size_t i = 0; i < rows.data.size(); ++i) encoded.data[i] = static_cast<float>(rows.data[i]);

  const lepton::Mlp folded = lepton::fold_derived(trained, derived);

  // Neither step is linear, so both stay columns of the first layer.
  REQUIRE(folded.products.size() == 2);
  CHECK(folded.layers.front().inputs == 5);
  CHECK(folded.products[0].step == 20.0);
  CHECK_FALSE(folded.products[0].difference);
  CHECK(folded.products[1].difference);
  CHECK(folded.products[1].step == 1.0);
  // The network's difference is L - R: the right term enters with its sign flipped.
  CHECK(folded.products[1].right_scale == 0.5);
  CHECK(folded.products[1].right_shift == 3.5);

  // Both sides of each step occur among the rows, and the folded network computes the same function.
  const lepton::Matrix training = lepton::append_derived(encoded, derived);
  for (std::size_t k = 0; k < 2; ++k) {
    std::size_t above = 0;
    for (std::size_t r = 0; r < training.rows; ++r) above += training(r, 3 + k) > 0.0f;
    INFO("step " << k);
    CHECK(above > 0);
    CHECK(above < training.rows);
  }
  const auto with_derived = lepton::ExplainModel::from_mlp(trained, lepton::OutputLink::Identity)
                                .evaluate(lepton::DoubleMatrix::from(training));
  const auto without = lepton::ExplainModel::from_mlp(folded, lepton::OutputLink::Identity)
                           .evaluate(lepton::DoubleMatrix::from(encoded));
  REQUIRE(with_derived.data.size() == without.data.size());
  for (std::size_t i = 0; i < without.data.size(); ++i) CHECK(without.data[i] == Approx(with_derived.data[i]).margin(1e-4));

  // A linear difference has no network form of its own.
  lepton::DerivedInput linear = difference_step;
  linear.step.reset();
  CHECK_THROWS_WITH(linear.input_product(), Contains("folds into the first layer"));
}

TEST_CASE("the screen keeps nothing when the label ignores the columns", "[derived]") {
  const Synthetic data = synthetic(3000, Rule::None, 8);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);

  const lepton::DerivedSearchResult found =
      lepton::screen_derived_inputs(preprocessor, encoded, data.labels, lepton::DerivedSearchOptions().with_seed(1));

  CHECK(found.kept.empty());
  CHECK(found.final_loss == found.base_loss);
  REQUIRE_FALSE(found.first_step.empty());
  CHECK(found.first_step.front().second < 0.015);
  CHECK(found.best_rejected == found.first_step.front().first);

  const lepton::DerivedSearchResult with_products = lepton::screen_derived_inputs(
      preprocessor, encoded, data.labels, lepton::DerivedSearchOptions().with_seed(1).with_products(true));
  CHECK(with_products.kept.empty());
  CHECK(with_products.final_loss == with_products.base_loss);
  CHECK(with_products.best_rejected_reduction < 0.04);
}

TEST_CASE("the screen samples rows above max_rows", "[derived]") {
  const Synthetic data = synthetic(3000, Rule::Difference, 15);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);

  const lepton::DerivedSearchResult full =
      lepton::screen_derived_inputs(preprocessor, encoded, data.labels, lepton::DerivedSearchOptions().with_seed(1));
  const lepton::DerivedSearchResult sampled = lepton::screen_derived_inputs(
      preprocessor, encoded, data.labels, lepton::DerivedSearchOptions().with_seed(1).with_max_rows(1000));

  CHECK(full.screened_rows == 3000);
  CHECK(sampled.screened_rows == 1000);
  REQUIRE_FALSE(sampled.kept.empty());
  CHECK(sampled.kept.front().name() == "air - process");
  // The kept input is standardized over every row, not only the sampled ones.
  REQUIRE_FALSE(full.kept.empty());
  CHECK(sampled.kept.front().scale == full.kept.front().scale);
  CHECK(sampled.kept.front().mean == full.kept.front().mean);

  CHECK_THROWS_WITH(lepton::screen_derived_inputs(preprocessor, encoded, data.labels,
                                                       lepton::DerivedSearchOptions().with_max_rows(3)),
                    Contains("max_rows 3 is below folds 5"));
}

TEST_CASE("the screen is deterministic for a seed", "[derived]") {
  const Synthetic data = synthetic(1500, Rule::Difference, 9);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);
  for (bool products : {false, true}) {
    INFO("products " << products);
    const auto options = lepton::DerivedSearchOptions().with_seed(3).with_products(products);

    const lepton::DerivedSearchResult first =
        lepton::screen_derived_inputs(preprocessor, encoded, data.labels, options);
    const lepton::DerivedSearchResult second =
        lepton::screen_derived_inputs(preprocessor, encoded, data.labels, options);

    CHECK(first.base_loss == second.base_loss);
    CHECK(first.final_loss == second.final_loss);
    REQUIRE(first.first_step.size() == second.first_step.size());
    for (std::size_t i = 0; i < first.first_step.size(); ++i) CHECK(first.first_step[i] == second.first_step[i]);
  }
}

// Real data: of the ten differences of AI4I's numeric columns, only the temperature difference (which the
// heat dissipation failure rule compares with 8.6 K) passes the differences screen. Measured on all 10,000 rows.
TEST_CASE("AI4I differences screen keeps temperature difference", "[derived][ai4i]") {
  const Ai4iScreenInputs& ai4i = ai4i_screen_inputs();

  const lepton::DerivedSearchResult found =
      lepton::screen_derived_inputs(ai4i.preprocessor, ai4i.encoded, ai4i.labels, lepton::DerivedSearchOptions().with_seed(42));

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

// Real data, all 10,000 rows: of the 20 differences and products of AI4I's numeric columns, the products
// screen keeps the three quantities that the data's failure rules compare with thresholds.
// - Power, torque x speed: a power failure below 3500 W or above 9000 W.
// - Torque x tool wear: an overstrain failure above 11,000 to 13,000 Nm min.
// - The temperature difference: a heat dissipation failure below 8.6 K.
TEST_CASE("AI4I products screen keeps the rules' quantities", "[derived][ai4i]") {
  const Ai4iScreenInputs& ai4i = ai4i_screen_inputs();

  const lepton::DerivedSearchResult found =
      lepton::screen_derived_inputs(ai4i.preprocessor, ai4i.encoded, ai4i.labels,
                                    lepton::DerivedSearchOptions().with_seed(42).with_products(true));

  // Every column is non-negative, so each of the 10 pairs gives a difference and a product.
  CHECK(found.candidates == 20);
  REQUIRE(found.kept.size() == 6);
  CHECK(found.kept[0].name() == "Rotational speed [rpm] * Torque [Nm]");
  CHECK(found.kept[1].name() == "Torque [Nm] * Tool wear [min]");
  CHECK(found.kept[2].name() == "Air temperature [K] - Process temperature [K]");
  for (std::size_t k = 0; k < 3; ++k) {
    const lepton::DerivedInput& quantity = found.kept[k];
    INFO(quantity.name());
    CHECK(quantity.loss_reduction >= 0.04);
    CHECK(quantity.scale > 0.0);
    CHECK_FALSE(quantity.step.has_value());
  }

  // Then a step at each quantity's best split. AI4I's failure rules put them at a power of 9,000 W, which is
  // 9000 x 60 / (2 pi) = 85,944 rpm x Nm, a strain of 11,000 min Nm (type L), and a process-air gap of 8.6 K.
  for (std::size_t k = 3; k < 6; ++k) {
    const lepton::DerivedInput& step = found.kept[k];
    INFO(step.name());
    REQUIRE(step.step.has_value());
    CHECK(step.kind == found.kept[k - 3].kind);
    CHECK(step.name() == fmt::format("{} > {:.6g}", found.kept[k - 3].name(), *step.step));
    CHECK(step.loss_reduction > 0.0);
    CHECK(step.scale > 0.0);
  }
  CHECK(*found.kept[3].step == Approx(85944).margin(600));
  CHECK(*found.kept[4].step == Approx(11000).margin(100));
  CHECK(*found.kept[5].step == Approx(-8.6).margin(0.15));
  // A stepped difference keeps the features' means, so that it compares the raw gap with its threshold.
  CHECK(found.kept[5].left_shift == ai4i.preprocessor.features()[1].mean);
  CHECK(found.kept[5].right_shift == -ai4i.preprocessor.features()[2].mean);

  const lepton::DerivedSearchResult without = lepton::screen_derived_inputs(
      ai4i.preprocessor, ai4i.encoded, ai4i.labels,
      lepton::DerivedSearchOptions().with_seed(42).with_products(true).with_steps(false));
  CHECK(without.kept.size() == 3);
  REQUIRE(found.first_step.size() == 20);
  CHECK(found.first_step.front().first == "Rotational speed [rpm] * Torque [Nm]");
  CHECK_FALSE(found.best_rejected.empty());
  INFO("kept " << found.kept[0].loss_reduction << " " << found.kept[1].loss_reduction << " "
               << found.kept[2].loss_reduction << "; best rejected " << found.best_rejected << " "
               << found.best_rejected_reduction);
  CHECK(found.best_rejected_reduction < 0.04);
  CHECK(found.final_loss < 0.7 * found.base_loss);
}

TEST_CASE("append_derived adds the standardized raw difference", "[derived]") {
  const Synthetic data = synthetic(200, Rule::Difference, 10);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);
  lepton::DerivedInput derived;
  derived.left = "process";
  derived.right = "air";
  derived.left_input = 1;
  derived.right_input = 0;
  derived.left_coefficient = preprocessor.features()[1].scale;
  derived.right_coefficient = -preprocessor.features()[0].scale;
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
  std::vector<lepton::DerivedInput> derived(2);
  derived[0].left_input = 0;
  derived[0].right_input = 2;
  derived[0].left_coefficient = 2.0;
  derived[0].right_coefficient = -0.5;
  derived[0].mean = 0.3;
  derived[0].scale = 1.7;
  derived[1].left_input = 1;
  derived[1].right_input = 0;
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
  lepton::DerivedInput derived;
  derived.left_input = 0;
  derived.right_input = 5;

  CHECK(lepton::fold_derived(network, {}).inputs() == 3);
  CHECK_THROWS_WITH(lepton::fold_derived(network, {derived}), Contains("reads encoded columns 0 and 5"));
  CHECK_THROWS_AS(lepton::fold_derived(network, std::vector<lepton::DerivedInput>(4, derived)),
                  lepton::InvalidArgument);
  lepton::Mlp int8 = network;
  int8.layers[0].precision = lepton::LayerPrecision::Int8;
  derived.right_input = 1;
  CHECK_THROWS_WITH(lepton::fold_derived(int8, {derived}), Contains("int8"));
}

TEST_CASE("the screen rejects bad labels and mismatched inputs", "[derived]") {
  const Synthetic data = synthetic(100, Rule::Difference, 14);
  const lepton::Preprocessor preprocessor = numeric_preprocessor(data.table);
  const lepton::Matrix encoded = preprocessor.transform(data.table);
  std::vector<std::int64_t> labels = data.labels;
  labels[7] = 2;

  CHECK_THROWS_WITH(lepton::screen_derived_inputs(preprocessor, encoded, labels), Contains("labels[7] is 2"));
  labels.pop_back();
  CHECK_THROWS_WITH(lepton::screen_derived_inputs(preprocessor, encoded, labels), Contains("99 labels for 100 rows"));
  const lepton::Matrix narrow(100, 2);
  CHECK_THROWS_WITH(lepton::screen_derived_inputs(preprocessor, narrow, data.labels), Contains("encoded has 2 columns"));
}

TEST_CASE("derived input JSON round trip", "[derived]") {
  lepton::DerivedInput derived;
  derived.kind = lepton::DerivedKind::Product;
  derived.left = "Torque [Nm]";
  derived.right = "Tool wear [min]";
  derived.left_input = 3;
  derived.right_input = 4;
  derived.left_coefficient = 2.0;
  derived.right_coefficient = -1.5;
  derived.left_shift = 40.0;
  derived.right_shift = 108.0;
  derived.mean = -7.5;
  derived.scale = 1.25;
  derived.loss_reduction = 0.03;

  const lepton::DerivedInput back = lepton::DerivedInput::from_json(derived.to_json(), "$");

  CHECK(back.name() == "Torque [Nm] * Tool wear [min]");
  CHECK(back.kind == lepton::DerivedKind::Product);
  CHECK(back.left_shift == 40.0);
  CHECK(back.right_shift == 108.0);
  CHECK(back.left_input == 3);
  CHECK(back.right_input == 4);
  CHECK(back.left_coefficient == 2.0);
  CHECK(back.right_coefficient == -1.5);
  CHECK(back.mean == -7.5);
  CHECK(back.scale == 1.25);
  CHECK(back.loss_reduction == 0.03);

  // A step keeps its threshold and shows it in its name.
  lepton::DerivedInput stepped = derived;
  stepped.step = 11000.5;
  const lepton::DerivedInput stepped_back = lepton::DerivedInput::from_json(stepped.to_json(), "$");
  CHECK(stepped_back.step == 11000.5);
  CHECK(stepped_back.name() == "Torque [Nm] * Tool wear [min] > 11000.5");
  CHECK_FALSE(back.step.has_value());
  nlohmann::json text_step = stepped.to_json();
  text_step["step"] = "high";
  CHECK_THROWS_WITH(lepton::DerivedInput::from_json(text_step, "$.derived_features[3]"),
                    Contains("$.derived_features[3].step"));

  nlohmann::json bad = derived.to_json();
  bad["scale"] = 0.0;
  CHECK_THROWS_WITH(lepton::DerivedInput::from_json(bad, "$.derived_features[0]"),
                    Contains("$.derived_features[0].scale"));
  bad = derived.to_json();
  bad.erase("left_input");
  CHECK_THROWS_WITH(lepton::DerivedInput::from_json(bad, "$.derived_features[0]"),
                    Contains("$.derived_features[0].left_input: missing"));
  bad = derived.to_json();
  bad.erase("right_shift");
  CHECK_THROWS_WITH(lepton::DerivedInput::from_json(bad, "$.derived_features[0]"),
                    Contains("$.derived_features[0].right_shift: missing"));
  // A difference needs no shifts: entries written before products were exact still load.
  bad["kind"] = "difference";
  bad.erase("left_shift");
  CHECK(lepton::DerivedInput::from_json(bad, "$").left_shift == 0.0);
  bad = derived.to_json();
  bad["kind"] = "ratio";
  CHECK_THROWS_WITH(lepton::DerivedInput::from_json(bad, "$.derived_features[0]"),
                    Contains("expected \"difference\" or \"product\""));
  bad = derived.to_json();
  bad["kind"] = "sum";
  CHECK_THROWS_WITH(lepton::DerivedInput::from_json(bad, "$.derived_features[0]"),
                    Contains("$.derived_features[0].kind: \"sum\" is not a derived kind"));
}
