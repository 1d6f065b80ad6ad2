// Configurator: feature selection, the rules that map requirements and data to a ModelConfig, the
// reasons, constraint shrinking and conflicts, and the JSON form of ModelConfig.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/configurator.hpp"
#include "lepton/error.hpp"
#include "lepton/predictor.hpp"
#include "lepton/table.hpp"
#include "train/configurator_detail.hpp"
#include "support/synthetic_profile.hpp"

using nlohmann::json;
using Catch::Matchers::Contains;

namespace {

using lepton::test_support::binary_profile;

const std::string kExample = LEPTON_SOURCE_DIR "/examples/predictive_maintenance/requirements.json";

lepton::DataProfile multiclass_profile(std::vector<std::size_t> counts) {
  lepton::DataProfile profile = binary_profile(0, 0);
  profile.classes.clear();
  for (std::size_t i = 0; i < counts.size(); ++i) profile.classes.push_back("class" + std::to_string(i));
  profile.class_counts = counts;
  profile.rows = 0;
  for (std::size_t count : counts) profile.rows += count;
  profile.minority_fraction = static_cast<double>(*std::min_element(counts.begin(), counts.end())) /
                              static_cast<double>(profile.rows);
  return profile;
}

lepton::Requirements binary_requirements() {
  lepton::Requirements r;
  r.task = lepton::Task::BinaryClassification;
  r.target = "label";
  r.objective = lepton::Metric::F1;
  return r;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

std::vector<std::string> feature_names(const std::vector<lepton::FeatureSpec>& features) {
  std::vector<std::string> names;
  for (const auto& feature : features) names.push_back(feature.column);
  return names;
}

// Every key of to_json (except "reasons") must have a reason with text and a known driven_by.
void check_every_field_has_a_reason(const lepton::ModelConfig& config) {
  static const std::set<std::string> known_drivers{
      "default", "data.rows", "data.columns", "data.class_balance", "requirements.task", "requirements.objective",
      "requirements.seed", "requirements.features", "requirements.constraints.max_model_bytes",
      "requirements.constraints.max_latency_us", "requirements.constraints.interpretability",
      "requirements.constraints.privacy", "requirements.constraints.max_training_seconds",
      "requirements.constraints.min_metric", "requirements.derived_features"};

  const json j = config.to_json();
  for (const auto& [key, value] : j.items()) {
    if (key == "reasons") continue;
    INFO("field " << key);
    REQUIRE(config.reasons.count(key) == 1);
    CHECK_FALSE(config.reasons.at(key).text.empty());
    CHECK(known_drivers.count(config.reasons.at(key).driven_by) == 1);
  }
}

}  // namespace

// ---- Feature selection

TEST_CASE("inferred features drop unusable columns", "[configurator][features]") {
  lepton::Requirements r = binary_requirements();
  r.exclude = {"x5"};
  std::vector<std::string> reasons;
  const auto features = lepton::select_features(r, binary_profile(1000, 100), &reasons);

  CHECK(feature_names(features) == std::vector<std::string>{"x1", "x2", "x3", "x4", "grade"});
  CHECK(features[0].type == lepton::FeatureType::Numeric);
  CHECK(features[4].type == lepton::FeatureType::Categorical);

  const std::string all = join_lines(reasons);
  CHECK_THAT(all, Contains("'id': ID-like"));
  CHECK_THAT(all, Contains("'x5': listed in exclude"));
  CHECK_THAT(all, Contains("'plant': constant"));
  CHECK_THAT(all, Contains("'blank': empty"));
  CHECK_THAT(all, Contains("'notes': free text"));
  CHECK_THAT(all, Contains("'label': it is the target"));
  CHECK(reasons.size() == 6);
}

TEST_CASE("explicit features are used as listed", "[configurator][features]") {
  lepton::Requirements r = binary_requirements();
  r.features = {{"x2", lepton::FeatureType::Categorical}, {"notes", lepton::FeatureType::Text},
                {"x1", lepton::FeatureType::Ignore}, {"id", lepton::FeatureType::Numeric}};
  std::vector<std::string> reasons;
  const auto features = lepton::select_features(r, binary_profile(1000, 100), &reasons);

  REQUIRE(feature_names(features) == std::vector<std::string>{"x2", "notes", "id"});
  CHECK(features[0].type == lepton::FeatureType::Categorical);
  CHECK(features[1].type == lepton::FeatureType::Text);
  const std::string all = join_lines(reasons);
  CHECK_THAT(all, !Contains("'notes'"));
  CHECK_THAT(all, Contains("'x1': type ignore"));
  CHECK_THAT(all, Contains("'x3': not listed in features"));
  CHECK_THAT(all, Contains("'label': it is the target"));
  CHECK_THAT(all, !Contains("'label': not listed"));
}

TEST_CASE("a listed text feature counts its hashed columns", "[configurator][features]") {
  lepton::Requirements r = binary_requirements();
  r.features = {{"x1", lepton::FeatureType::Numeric}, {"notes", lepton::FeatureType::Text}};
  const auto config = lepton::configure(r, binary_profile(1000, 100));

  CHECK_THAT(config.reasons.at("features").text, Contains("2 features, 33 encoded inputs"));
  CHECK_THAT(config.reasons.at("features").text, Contains("notes (text)"));
}

TEST_CASE("unknown feature column is InvalidArgument", "[configurator][features]") {
  lepton::Requirements r = binary_requirements();
  r.features = {{"x1", lepton::FeatureType::Numeric}, {"x9", lepton::FeatureType::Numeric}};
  CHECK_THROWS_AS(lepton::select_features(r, binary_profile(1000, 100)), lepton::InvalidArgument);
  CHECK_THROWS_WITH(lepton::select_features(r, binary_profile(1000, 100)), Contains("'x9'"));
  // The message names the requirements field and the fix, as it does for the target and exclude.
  CHECK_THROWS_WITH(lepton::select_features(r, binary_profile(1000, 100)), Contains("requirements $.features[1].column"));
  CHECK_THROWS_WITH(lepton::select_features(r, binary_profile(1000, 100)), Contains("Fix the column name"));
}

TEST_CASE("misspelled exclude entry is an error", "[configurator][features]") {
  lepton::Requirements r = binary_requirements();
  r.exclude = {"Grade"};
  CHECK_THROWS_AS(lepton::select_features(r, binary_profile(1000, 100)), lepton::InvalidArgument);
  CHECK_THROWS_WITH(lepton::select_features(r, binary_profile(1000, 100)),
                    Contains("'Grade' (did you mean 'grade'?)"));
  CHECK_THROWS_WITH(lepton::select_features(r, binary_profile(1000, 100)), Contains("$.exclude"));
}

// ---- Rules on a synthetic profile

TEST_CASE("mid-sized binary data gets the documented rules", "[configurator]") {
  // 10,000 rows, 3.39 % positive, like AI4I: 6,000 training rows, 5 numeric + 3 one-hot = 8 inputs.
  const lepton::ModelConfig config = lepton::configure(binary_requirements(), binary_profile(10000, 339));

  CHECK(config.hidden_units == std::vector<std::size_t>{64, 32});
  CHECK(config.activation == lepton::Activation::Relu);
  CHECK(config.batch_size == 64);
  CHECK(config.learning_rate == 2e-3);
  CHECK(config.lr_schedule == "cosine");
  CHECK(config.warmup_epochs == 3);
  CHECK(config.weight_decay == 1e-4);
  CHECK(config.max_epochs == 200);
  CHECK(config.patience == 25);
  // 6,000 rows / 2,689 parameters = 2.2 rows per parameter, below 5.
  CHECK(config.dropout == 0.1);
  CHECK(config.positive_class_weight == Approx(std::sqrt(9661.0 / 339.0)));
  CHECK(config.class_weights.empty());
  CHECK(config.threshold_strategy == "optimize_objective_on_validation");
  CHECK_FALSE(config.quantize);
  CHECK_FALSE(config.privacy);
  CHECK(config.seed == 42);
  CHECK(config.reasons.at("hidden_units").driven_by == "data.rows");
  CHECK_THAT(config.reasons.at("positive_class_weight").text, Contains("3.39 %") && Contains("28.5:1"));
  CHECK(config.reasons.at("positive_class_weight").driven_by == "data.class_balance");
  check_every_field_has_a_reason(config);
}

TEST_CASE("row count sizes network, batch and epochs", "[configurator]") {
  SECTION("small data") {
    const auto config = lepton::configure(binary_requirements(), binary_profile(500, 100));
    CHECK(config.hidden_units == std::vector<std::size_t>{32});
    CHECK(config.batch_size == 32);
    CHECK(config.max_epochs == 200);
  }
  SECTION("large data") {
    const auto config = lepton::configure(binary_requirements(), binary_profile(50000, 5000));
    CHECK(config.hidden_units == std::vector<std::size_t>{128, 64});
    CHECK(config.batch_size == 128);
    CHECK(config.max_epochs == 100);
    CHECK(config.patience == 15);
    // 30,000 training rows for 9,473 parameters is 3.2 rows per parameter, below 5.
    CHECK(config.dropout == 0.1);
  }
  SECTION("very large data") {
    const auto config = lepton::configure(binary_requirements(), binary_profile(400000, 40000));
    CHECK(config.hidden_units == std::vector<std::size_t>{256, 128, 64});
    CHECK(config.batch_size == 256);
    CHECK(config.max_epochs == 50);
    CHECK(config.patience == 10);
    // 240,000 training rows for 43,521 parameters is 5.5 rows per parameter.
    CHECK(config.dropout == 0.0);
  }
}

TEST_CASE("wide input widens the first layer", "[configurator]") {
  lepton::DataProfile profile = binary_profile(10000, 339);
  profile.columns[6].distinct = 200;  // 'grade': 200 one-hot columns plus 5 numeric
  const auto config = lepton::configure(binary_requirements(), profile);
  CHECK(config.hidden_units == std::vector<std::size_t>{256, 32});
}

TEST_CASE("transparent means one small layer", "[configurator]") {
  lepton::Requirements r = binary_requirements();
  r.constraints.interpretability = lepton::Interpretability::Transparent;
  const auto config = lepton::configure(r, binary_profile(10000, 339));

  CHECK(config.hidden_units == std::vector<std::size_t>{16});
  CHECK(config.reasons.at("hidden_units").driven_by == "requirements.constraints.interpretability");
}

TEST_CASE("multiclass weights average to one", "[configurator]") {
  lepton::Requirements r = binary_requirements();
  r.task = lepton::Task::MulticlassClassification;
  r.objective = lepton::Metric::MacroF1;
  const auto config = lepton::configure(r, multiclass_profile({100, 300, 600}));

  // Inverse frequencies 1/100, 1/300, 1/600 divided by their mean 1/200.
  REQUIRE(config.class_weights.size() == 3);
  CHECK(config.class_weights[0] == Approx(2.0));
  CHECK(config.class_weights[1] == Approx(2.0 / 3.0));
  CHECK(config.class_weights[2] == Approx(1.0 / 3.0));
  CHECK(config.positive_class_weight == 1.0);
  CHECK(config.threshold_strategy == "fixed_0.5");
  CHECK_THAT(config.reasons.at("class_weights").text, Contains("'class0'"));
  check_every_field_has_a_reason(config);
}

TEST_CASE("regression has no class weights", "[configurator]") {
  lepton::Requirements r = binary_requirements();
  r.task = lepton::Task::Regression;
  r.objective = lepton::Metric::Rmse;
  lepton::DataProfile profile = binary_profile(10000, 339);
  profile.classes.clear();
  profile.class_counts.clear();
  profile.columns.back().kind = lepton::ColumnKind::Numeric;
  const auto config = lepton::configure(r, profile);

  CHECK(config.class_weights.empty());
  CHECK(config.positive_class_weight == 1.0);
  CHECK(config.threshold_strategy == "fixed_0.5");
  check_every_field_has_a_reason(config);
}

TEST_CASE("threshold-free objective keeps 0.5", "[configurator]") {
  lepton::Requirements r = binary_requirements();
  r.objective = lepton::Metric::RocAuc;
  const auto config = lepton::configure(r, binary_profile(10000, 339));
  CHECK(config.threshold_strategy == "fixed_0.5");
}

TEST_CASE("privacy raises the batch size", "[configurator]") {
  lepton::Requirements r = binary_requirements();
  r.constraints.privacy = lepton::PrivacyBudget{2.0, 1e-6, 0.5};
  const auto config = lepton::configure(r, binary_profile(10000, 339));

  CHECK(config.batch_size == 256);
  CHECK(config.reasons.at("batch_size").driven_by == "requirements.constraints.privacy");
  REQUIRE(config.privacy);
  CHECK(config.privacy->epsilon == 2.0);
  CHECK(config.to_json().at("privacy").at("max_grad_norm") == 0.5);
  CHECK_THAT(config.reasons.at("privacy").text, Contains("epsilon 2") && Contains("delta 1e-06"));
  check_every_field_has_a_reason(config);
}

TEST_CASE("min_metric is recorded for later", "[configurator]") {
  lepton::Requirements r = binary_requirements();
  r.constraints.min_metric = 0.6;
  const auto config = lepton::configure(r, binary_profile(10000, 339));
  CHECK_THAT(config.reasons.at("min_metric").text, Contains("f1 >= 0.6") && Contains("after evaluation"));
}

// ---- Constraints

TEST_CASE("size limit quantizes, then shrinks", "[configurator][constraints]") {
  // Base 64-32 on 8 inputs: 2,689 parameters, 10,756 bytes in fp32. In int8 its 2,592 weights take a byte
  // each and its 97 output channels 8 bytes each (an fp32 bias and scale): 3,368 bytes.
  // 32-16: 833 parameters, 3,332 bytes in fp32, 784 + 8 * 49 channels = 1,176 in int8.
  lepton::Requirements r = binary_requirements();

  r.constraints.max_model_bytes = 4000;
  auto config = lepton::configure(r, binary_profile(10000, 339));
  CHECK(config.hidden_units == std::vector<std::size_t>{64, 32});
  CHECK(config.quantize);
  CHECK(config.reasons.at("hidden_units").driven_by == "data.rows");
  CHECK(config.reasons.at("quantize").driven_by == "requirements.constraints.max_model_bytes");
  CHECK_THAT(config.reasons.at("quantize").text, Contains("10756 bytes") && Contains("3368 bytes"));

  r.constraints.max_model_bytes = 2000;
  config = lepton::configure(r, binary_profile(10000, 339));
  CHECK(config.hidden_units == std::vector<std::size_t>{32, 16});
  CHECK(config.quantize);
  CHECK(config.reasons.at("hidden_units").driven_by == "requirements.constraints.max_model_bytes");
  CHECK_THAT(config.reasons.at("hidden_units").text, Contains("shrunk to 32-16") && Contains("1176 bytes"));

  // One fp32 64-32 model fits exactly. Cross-fitting then tries int8 before fewer folds: 10 and 5 merged members
  // exceed the limit even in int8, but 3 members store 8,065 parameters (289 output channels), 10,088 bytes in
  // int8, because the model file keeps only their blocks.
  r.constraints.max_model_bytes = 10756;
  config = lepton::configure(r, binary_profile(10000, 339));
  CHECK(config.hidden_units == std::vector<std::size_t>{64, 32});
  CHECK(config.cross_fit_folds == 3);
  CHECK(config.quantize);
  CHECK(config.reasons.at("quantize").driven_by == "requirements.constraints.max_model_bytes");
  CHECK_THAT(config.reasons.at("quantize").text, Contains("10088 bytes"));
}

TEST_CASE("latency limit shrinks the network", "[configurator][constraints]") {
  // The estimate depends on this machine's SIMD level, so the limit sits just above the fp32 estimate of
  // 32-16 (8 x 32 + 32 x 16 + 16 x 1 = 784 multiply-adds) on whatever level the predictor dispatches to.
  using lepton::detail::estimated_latency_us;
  const lepton::SimdLevel level = lepton::default_simd_level();
  const double limit = estimated_latency_us(784, false, level) + 0.001;
  // 64-32 runs 2,592 multiply-adds; neither format may fit, or the network would not shrink.
  REQUIRE(estimated_latency_us(2592, false, level) > limit);
  REQUIRE(estimated_latency_us(2592, true, level) > limit);

  lepton::Requirements r = binary_requirements();
  r.constraints.max_latency_us = limit;
  const auto config = lepton::configure(r, binary_profile(10000, 339));

  CHECK(config.hidden_units == std::vector<std::size_t>{32, 16});
  CHECK_FALSE(config.quantize);
  CHECK(config.reasons.at("hidden_units").driven_by == "requirements.constraints.max_latency_us");
  CHECK_THAT(config.reasons.at("hidden_units").text, Contains("shrunk to 32-16"));
  CHECK_THAT(config.reasons.at("hidden_units").text,
             Contains("estimates for the " + lepton::to_string(level) + " kernels"));
}

TEST_CASE("unreachable size limit names the constraint", "[configurator][constraints]") {
  // Smallest model: one layer of 4 units on 8 inputs = 41 parameters, 36 + 8 * 5 = 76 bytes as int8, 164 as fp32.
  lepton::Requirements r = binary_requirements();
  r.constraints.max_model_bytes = 50;
  CHECK_THROWS_AS(lepton::configure(r, binary_profile(10000, 339)), lepton::ConstraintError);
  CHECK_THROWS_WITH(lepton::configure(r, binary_profile(10000, 339)),
                    Contains("constraints.max_model_bytes = 50") && Contains("raise max_model_bytes to at least 76"));
}

TEST_CASE("unreachable latency names the constraint", "[configurator][constraints]") {
  // 0.01 us is below the fixed per-call cost of every level and format (at least 0.05 us).
  lepton::Requirements r = binary_requirements();
  r.constraints.max_latency_us = 0.01;
  const std::string level = lepton::to_string(lepton::default_simd_level());
  CHECK_THROWS_AS(lepton::configure(r, binary_profile(10000, 339)), lepton::ConstraintError);
  CHECK_THROWS_WITH(lepton::configure(r, binary_profile(10000, 339)), Contains("constraints.max_latency_us = 0.01"));
  CHECK_THROWS_WITH(lepton::configure(r, binary_profile(10000, 339)),
                    Contains("us is fixed call overhead on this machine's " + level + " kernels"));
  CHECK_THROWS_WITH(lepton::configure(r, binary_profile(10000, 339)), Contains("raise max_latency_us to at least"));
}

TEST_CASE("all conflicts are listed at once", "[configurator][constraints]") {
  lepton::Requirements r = binary_requirements();
  r.constraints.max_model_bytes = 10;
  r.constraints.max_latency_us = 0.01;
  r.constraints.max_training_seconds = 1e-9;
  r.constraints.min_metric = 2.0;  // only a Requirements built in code can hold this
  try {
    lepton::configure(r, binary_profile(10000, 339));
    FAIL("conflicting constraints were accepted");
  } catch (const lepton::ConstraintError& error) {
    const std::string message = error.what();
    CHECK_THAT(message, Contains("4 conflicts"));
    CHECK_THAT(message, Contains("constraints.max_model_bytes"));
    CHECK_THAT(message, Contains("constraints.max_latency_us"));
    CHECK_THAT(message, Contains("constraints.max_training_seconds"));
    CHECK_THAT(message, Contains("constraints.min_metric 2 cannot be met"));
  }
}

TEST_CASE("objective must fit the task", "[configurator][constraints]") {
  lepton::Requirements r = binary_requirements();
  r.objective = lepton::Metric::Rmse;
  CHECK_THROWS_WITH(lepton::configure(r, binary_profile(10000, 339)),
                    Contains("objective rmse does not fit task binary_classification"));
}

TEST_CASE("training budget caps the epochs", "[configurator][constraints]") {
  // 6,000 training rows and 2,689 parameters: 1.5e-6 * 6000 * 0.2689 = 0.00242 s per epoch (estimate).
  const double epoch_seconds = lepton::detail::estimated_epoch_seconds(6000, 2689);
  CHECK(epoch_seconds == Approx(0.0024201));

  lepton::Requirements r = binary_requirements();
  r.constraints.max_training_seconds = 0.1;
  auto config = lepton::configure(r, binary_profile(10000, 339));
  CHECK(config.max_epochs == static_cast<std::size_t>(std::floor(0.1 / epoch_seconds)));
  CHECK(config.max_epochs == 41);
  CHECK(config.reasons.at("max_epochs").driven_by == "requirements.constraints.max_training_seconds");
  CHECK(config.patience == 25);
  CHECK(config.warmup_epochs == 3);

  r.constraints.max_training_seconds = 0.01;
  config = lepton::configure(r, binary_profile(10000, 339));
  CHECK(config.max_epochs == 4);
  CHECK(config.patience == 4);
  CHECK(config.warmup_epochs == 0);
}

// ---- Cross-fitting

TEST_CASE("cross-fitting: small data gets 10 folds", "[configurator][cross_fit]") {
  const auto config = lepton::configure(binary_requirements(), binary_profile(10000, 339));
  CHECK(config.cross_fit_folds == 10);
  CHECK(config.reasons.at("cross_fit_folds").driven_by == "data.rows");
  CHECK_THAT(config.reasons.at("cross_fit_folds").text, Contains("8000 training and validation rows"));
  CHECK_THAT(config.reasons.at("cross_fit_folds").text, Contains("271 in the smallest class"));
}

TEST_CASE("cross-fitting: off for large data, privacy and transparency", "[configurator][cross_fit]") {
  auto config = lepton::configure(binary_requirements(), binary_profile(40000, 4000));
  CHECK(config.cross_fit_folds == 1);
  CHECK_THAT(config.reasons.at("cross_fit_folds").text, Contains("more than 20000"));

  lepton::Requirements private_requirements = binary_requirements();
  private_requirements.constraints.privacy = lepton::PrivacyBudget{3.0, 1e-5, 1.0};
  config = lepton::configure(private_requirements, binary_profile(10000, 339));
  CHECK(config.cross_fit_folds == 1);
  CHECK(config.reasons.at("cross_fit_folds").driven_by == "requirements.constraints.privacy");

  lepton::Requirements transparent = binary_requirements();
  transparent.constraints.interpretability = lepton::Interpretability::Transparent;
  config = lepton::configure(transparent, binary_profile(10000, 339));
  CHECK(config.cross_fit_folds == 1);
  CHECK(config.reasons.at("cross_fit_folds").driven_by == "requirements.constraints.interpretability");
}

TEST_CASE("cross-fitting: a rare class gets fewer folds", "[configurator][cross_fit]") {
  // 50 positives, 40 of them in training and validation: 10 folds need 100, 5 need 50, 3 need 30.
  const auto config = lepton::configure(binary_requirements(), binary_profile(10000, 50));
  CHECK(config.cross_fit_folds == 3);
  CHECK(config.reasons.at("cross_fit_folds").driven_by == "data.class_balance");
  CHECK_THAT(config.reasons.at("cross_fit_folds").text, Contains("10 folds need 100 rows of the smallest class"));

  const auto too_rare = lepton::configure(binary_requirements(), binary_profile(10000, 20));
  CHECK(too_rare.cross_fit_folds == 1);
  CHECK_THAT(too_rare.reasons.at("cross_fit_folds").text, Contains("no fold count fits"));
}

TEST_CASE("cross-fitting: a latency limit tries int8 before fewer folds", "[configurator][cross_fit]") {
  // Members 8-64-32-1 run 2,592 multiply-adds. The predictor skips the merged network's zero blocks in f32 and
  // int8, so 10 folds run 25,920 and 5 folds 12,960. The limit sits between the f32 estimates of 10 and 5
  // folds at this machine's level. Whether 10 folds in int8 fit depends on the level: on AVX-512 int8 is the
  // faster format, on the scalar level the slower one.
  using lepton::detail::estimated_latency_us;
  const lepton::SimdLevel level = lepton::default_simd_level();
  const double ten_folds = estimated_latency_us(25'920, false, level);
  const double five_folds = estimated_latency_us(12'960, false, level);
  const double ten_folds_int8 = estimated_latency_us(25'920, true, level);
  lepton::Requirements r = binary_requirements();
  r.constraints.max_latency_us = (ten_folds + five_folds) / 2;
  const auto config = lepton::configure(r, binary_profile(10000, 339));

  CHECK(config.hidden_units == std::vector<std::size_t>{64, 32});
  if (ten_folds_int8 <= *r.constraints.max_latency_us) {
    CHECK(config.cross_fit_folds == 10);
    CHECK(config.quantize);
    CHECK(config.reasons.at("quantize").driven_by == "requirements.constraints.max_latency_us");
    CHECK_THAT(config.reasons.at("quantize").text, Contains("The merged fp32 model of 10 members"));
    CHECK_THAT(config.reasons.at("quantize").text, Contains("int8 export"));
  } else {
    CHECK(config.cross_fit_folds == 5);
    CHECK(config.reasons.at("cross_fit_folds").driven_by == "requirements.constraints.max_latency_us");
    CHECK_THAT(config.reasons.at("cross_fit_folds").text, Contains("Fewer folds than 10"));
  }
}

TEST_CASE("cross-fitting: a size limit tries int8 before fewer folds", "[configurator][cross_fit]") {
  // The model file stores only the members' blocks. 10 members of 2,689 parameters share one output bias, so
  // they store 26,881 parameters, 961 of them biases. That is 107,524 bytes in fp32, and 33,608 in int8: one
  // byte per weight, and an fp32 bias and scale for each of the 961 output channels. 5 folds store 13,441 with
  // 481 biases: 53,764 bytes in fp32 and 16,808 in int8.
  lepton::Requirements r = binary_requirements();
  r.constraints.max_model_bytes = 100'000;
  auto config = lepton::configure(r, binary_profile(10000, 339));
  CHECK(config.cross_fit_folds == 10);
  CHECK(config.quantize);
  CHECK(config.reasons.at("quantize").driven_by == "requirements.constraints.max_model_bytes");
  CHECK_THAT(config.reasons.at("quantize").text, Contains("107524 bytes") && Contains("33608 bytes"));

  r.constraints.max_model_bytes = 30'000;
  config = lepton::configure(r, binary_profile(10000, 339));
  CHECK(config.cross_fit_folds == 5);
  CHECK(config.quantize);
  CHECK(config.reasons.at("cross_fit_folds").driven_by == "requirements.constraints.max_model_bytes");
  CHECK_THAT(config.reasons.at("cross_fit_folds").text, Contains("in int8, beyond max_model_bytes 30000"));

  // A reason names only the limits that a model misses: a latency limit that every model meets is not one.
  r.constraints.max_model_bytes = 100'000;
  r.constraints.max_latency_us = 50;
  config = lepton::configure(r, binary_profile(10000, 339));
  CHECK(config.cross_fit_folds == 10);
  CHECK_THAT(config.reasons.at("quantize").text, Contains("exceeds max_model_bytes 100000, but"));
  CHECK_THAT(config.reasons.at("quantize").text, Contains("meets max_model_bytes 100000 and max_latency_us 50"));
}

TEST_CASE("cross-fitting: a training budget shrinks the fold count", "[configurator][cross_fit]") {
  // A training budget that leaves 10 members fewer than 20 epochs each.
  lepton::Requirements r = binary_requirements();
  r.constraints.max_training_seconds = 0.5;
  const auto config = lepton::configure(r, binary_profile(10000, 339));
  CHECK(config.cross_fit_folds == 5);
  CHECK(config.reasons.at("cross_fit_folds").driven_by == "requirements.constraints.max_training_seconds");
}

TEST_CASE("cross-fitting: folds round-trip through JSON", "[configurator][cross_fit]") {
  auto config = lepton::configure(binary_requirements(), binary_profile(10000, 339));
  const lepton::ModelConfig parsed = lepton::ModelConfig::from_json(config.to_json());
  CHECK(parsed.cross_fit_folds == 10);

  // Configurations written before cross-fitting existed have no such key and mean one model.
  json old = config.to_json();
  old.erase("cross_fit_folds");
  CHECK(lepton::ModelConfig::from_json(old).cross_fit_folds == 1);

  json zero = config.to_json();
  zero["cross_fit_folds"] = 0;
  CHECK_THROWS_WITH(lepton::ModelConfig::from_json(zero), Contains("$.cross_fit_folds: expected at least 1"));
}

// ---- Bad inputs

TEST_CASE("target problems are InvalidArgument", "[configurator]") {
  lepton::Requirements r = binary_requirements();

  lepton::DataProfile three_classes = multiclass_profile({10, 20, 30});
  CHECK_THROWS_AS(lepton::configure(r, three_classes), lepton::InvalidArgument);
  CHECK_THROWS_WITH(lepton::configure(r, three_classes), Contains("set task to multiclass_classification"));
  // The counts per class show a stray label, and the message gives the fix for one.
  CHECK_THROWS_WITH(lepton::configure(r, three_classes), Contains("'class0' 10 rows, 'class1' 20 rows, 'class2' 30 rows"));
  CHECK_THROWS_WITH(lepton::configure(r, three_classes), Contains("correct those cells or drop those rows"));

  lepton::DataProfile other_target = binary_profile(1000, 100);
  other_target.target = "x1";
  CHECK_THROWS_WITH(lepton::configure(r, other_target), Contains("computed for target 'x1'"));

  r.target = "lable";
  lepton::DataProfile misspelled = binary_profile(1000, 100);
  misspelled.target = "lable";
  CHECK_THROWS_AS(lepton::configure(r, misspelled), lepton::InvalidArgument);
  CHECK_THROWS_WITH(lepton::configure(r, misspelled), Contains("did you mean 'label'?"));
}

TEST_CASE("no usable feature is InvalidArgument", "[configurator]") {
  lepton::Requirements r = binary_requirements();
  r.exclude = {"x1", "x2", "x3", "x4", "x5", "grade"};
  CHECK_THROWS_AS(lepton::configure(r, binary_profile(1000, 100)), lepton::InvalidArgument);
  CHECK_THROWS_WITH(lepton::configure(r, binary_profile(1000, 100)), Contains("no feature columns remain"));
}

// ---- Derived inputs

TEST_CASE("the derived-input screen is on for a binary task with numeric features", "[configurator][derived]") {
  const auto config = lepton::configure(binary_requirements(), binary_profile(10000, 339));

  CHECK(config.derived_search);
  CHECK(config.derived_products);  // "auto" screens differences and products
  CHECK(config.derived_features.empty());  // run_pipeline fills them in
  CHECK_THAT(config.reasons.at("derived_search").text, Contains("5 numeric features give 10 pairs"));
  CHECK(config.reasons.at("derived_search").driven_by == "data.columns");
  CHECK_THAT(config.reasons.at("derived_products").text, Contains("Boosted splits"));
  check_every_field_has_a_reason(config);

  // "differences" keeps the screen and leaves products out.
  lepton::Requirements differences = binary_requirements();
  differences.derive_products = false;
  const auto without_products = lepton::configure(differences, binary_profile(10000, 339));
  CHECK(without_products.derived_search);
  CHECK_FALSE(without_products.derived_products);
  CHECK_THAT(without_products.reasons.at("derived_products").text, Contains("differences alone"));
}

TEST_CASE("the derived-input screen is off where it cannot run or is not wanted", "[configurator][derived]") {
  SECTION("requirements turn it off") {
    lepton::Requirements r = binary_requirements();
    r.search_derived_features = false;
    const auto config = lepton::configure(r, binary_profile(10000, 339));
    CHECK_FALSE(config.derived_search);
    CHECK_FALSE(config.derived_products);
    CHECK(config.reasons.at("derived_search").driven_by == "requirements.derived_features");
  }
  SECTION("DP-SGD") {
    lepton::Requirements r = binary_requirements();
    r.constraints.privacy = lepton::PrivacyBudget{3.0, 1e-5, 1.0};
    const auto config = lepton::configure(r, binary_profile(10000, 339));
    CHECK_FALSE(config.derived_search);
    CHECK_THAT(config.reasons.at("derived_search").text, Contains("privacy accounting"));
  }
  SECTION("multiclass") {
    lepton::Requirements r = binary_requirements();
    r.task = lepton::Task::MulticlassClassification;
    r.objective = lepton::Metric::Accuracy;
    const auto config = lepton::configure(r, multiclass_profile({500, 600, 700}));
    CHECK_FALSE(config.derived_search);
    CHECK(config.reasons.at("derived_search").driven_by == "requirements.task");
  }
  SECTION("one numeric feature") {
    lepton::Requirements r = binary_requirements();
    r.features = {{"x1", lepton::FeatureType::Numeric}, {"grade", lepton::FeatureType::Categorical}};
    const auto config = lepton::configure(r, binary_profile(10000, 339));
    CHECK_FALSE(config.derived_search);
    CHECK_THAT(config.reasons.at("derived_search").text, Contains("there is 1"));
  }
}

TEST_CASE("derived inputs survive the config JSON, and a bad one names its path", "[configurator][derived][json]") {
  lepton::ModelConfig config = lepton::configure(binary_requirements(), binary_profile(10000, 339));
  lepton::DerivedInput derived;
  derived.kind = lepton::DerivedKind::Product;
  derived.left = "x1";
  derived.right = "x2";
  derived.left_input = 3;
  derived.right_input = 4;
  derived.scale = 2.0;
  config.derived_features = {derived};
  config.derived_products = true;
  REQUIRE(config.features.size() >= 2);
  config.features[1].log_column = true;

  json j = config.to_json();
  CHECK(lepton::ModelConfig::from_json(j).to_json() == j);
  CHECK(lepton::ModelConfig::from_json(j).features[1].log_column);
  CHECK_FALSE(lepton::ModelConfig::from_json(j).features[0].log_column);
  CHECK(lepton::ModelConfig::from_json(j).derived_features.at(0).kind == lepton::DerivedKind::Product);
  CHECK(lepton::ModelConfig::from_json(j).derived_products);

  json bad = j;
  bad["features"][1]["log_column"] = "yes";
  CHECK_THROWS_WITH(lepton::ModelConfig::from_json(bad), Contains("$.features[1].log_column"));

  j["derived_features"][0]["scale"] = -1.0;
  CHECK_THROWS_WITH(lepton::ModelConfig::from_json(j), Contains("$.derived_features[0].scale"));

  // Configurations written before the screen existed have neither key.
  json old = config.to_json();
  old.erase("derived_search");
  old.erase("derived_products");
  old.erase("derived_features");
  CHECK_FALSE(lepton::ModelConfig::from_json(old).derived_search);
  CHECK_FALSE(lepton::ModelConfig::from_json(old).derived_products);
}

// ---- JSON form

TEST_CASE("config JSON round-trips", "[configurator][json]") {
  lepton::Requirements r = binary_requirements();
  r.constraints.privacy = lepton::PrivacyBudget{1.5, 1e-5, 1.0};
  const lepton::ModelConfig config = lepton::configure(r, binary_profile(10000, 339));

  const json first = config.to_json();
  const lepton::ModelConfig restored = lepton::ModelConfig::from_json(first);
  CHECK(restored.to_json() == first);
  CHECK(restored.reasons.at("batch_size").driven_by == "requirements.constraints.privacy");
  CHECK(first.at("reasons").at("hidden_units").contains("reason"));

  const lepton::ModelConfig multiclass = lepton::configure(
      [] { auto m = binary_requirements(); m.task = lepton::Task::MulticlassClassification;
           m.objective = lepton::Metric::Accuracy; return m; }(),
      multiclass_profile({50, 60, 70}));
  CHECK(lepton::ModelConfig::from_json(multiclass.to_json()).to_json() == multiclass.to_json());
}

TEST_CASE("config without privacy omits it", "[configurator][json]") {
  const json j = lepton::configure(binary_requirements(), binary_profile(10000, 339)).to_json();
  CHECK_FALSE(j.contains("privacy"));
  CHECK_FALSE(lepton::ModelConfig::from_json(j).privacy);
}

TEST_CASE("config from_json names bad paths", "[configurator][json]") {
  json j = lepton::configure(binary_requirements(), binary_profile(10000, 339)).to_json();
  j["hidden_units"] = {64, -3};
  j["lr_schedule"] = "linear";
  j.erase("batch_size");
  j["learning_rat"] = 0.1;
  j["features"][0]["type"] = "number";

  try {
    lepton::ModelConfig::from_json(j, "$.configuration");
    FAIL("a broken configuration was accepted");
  } catch (const lepton::ParseError& error) {
    const std::string message = error.what();
    CHECK_THAT(message, Contains("$.configuration.hidden_units[1]: expected a positive integer, got -3"));
    CHECK_THAT(message, Contains("$.configuration.lr_schedule: unknown value 'linear'"));
    CHECK_THAT(message, Contains("$.configuration.batch_size: missing required key"));
    CHECK_THAT(message, Contains("$.configuration.learning_rat: unknown key 'learning_rat'; did you mean 'learning_rate'?"));
    CHECK_THAT(message, Contains("$.configuration.features[0].type: unknown value 'number'"));
    CHECK_THAT(message, Contains("5 problems"));
  }
}

TEST_CASE("config from_json rejects a non-object", "[configurator][json]") {
  CHECK_THROWS_AS(lepton::ModelConfig::from_json(json::array()), lepton::ParseError);
  CHECK_THROWS_WITH(lepton::ModelConfig::from_json(json::array()), Contains("$: expected an object, got array"));
}

// ---- The real AI4I file

TEST_CASE("AI4I example configures", "[configurator][ai4i]") {
  const lepton::Table table = lepton::read_csv(LEPTON_SHARED_DIR "/data/ai4i2020.csv");
  const lepton::Requirements r = lepton::load_requirements(kExample);
  const lepton::DataProfile profile = lepton::profile_table(table, r.target, r.task);
  const lepton::ModelConfig config = lepton::configure(r, profile);

  CHECK(feature_names(config.features) ==
        std::vector<std::string>{"Type", "Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]",
                                 "Torque [Nm]", "Tool wear [min]"});
  REQUIRE(config.features.size() == 6);
  CHECK(config.features[0].type == lepton::FeatureType::Categorical);
  for (std::size_t i = 1; i < 6; ++i) CHECK(config.features[i].type == lepton::FeatureType::Numeric);

  // 339 failures in 10,000 rows (data/README.md): weight sqrt(9661 / 339).
  CHECK(config.positive_class_weight == Approx(std::sqrt(9661.0 / 339.0)));
  CHECK(config.hidden_units == std::vector<std::size_t>{64, 32});
  CHECK(config.batch_size == 64);
  CHECK_FALSE(config.quantize);
  CHECK(config.max_epochs == 200);
  CHECK(config.objective == lepton::Metric::F1);
  CHECK(config.threshold_strategy == "optimize_objective_on_validation");
  CHECK_THAT(config.reasons.at("features").text, Contains("8 encoded inputs"));
  CHECK_THAT(config.reasons.at("max_epochs").text, Contains("max_training_seconds 120"));
  CHECK(config.cross_fit_folds == 10);
  check_every_field_has_a_reason(config);
}
