// Requirements documents: validation rules, defaults, file errors, canonical JSON and the JSON Schema.

#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/error.hpp"
#include "lepton/requirements.hpp"
#include "train/requirements_detail.hpp"

using nlohmann::json;
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;
using Catch::Matchers::StartsWith;

namespace {

const std::string kDataDir = LEPTON_SOURCE_DIR "/tests/train/data/requirements/";
const std::string kExample = LEPTON_SOURCE_DIR "/examples/predictive_maintenance/requirements.json";

json minimal_document() {
  return {{"version", 1}, {"task", "binary_classification"}, {"target", "Machine failure"}};
}

// The problems that parse_requirements reports, or none when the document is valid.
std::vector<lepton::ValidationProblem> problems_of(const json& document) {
  try {
    lepton::parse_requirements(document, "test.json");
  } catch (const lepton::ValidationError& error) {
    return error.problems();
  }
  return {};
}

// The problem reported at `path`; a failed REQUIRE names the path and lists what was reported instead.
lepton::ValidationProblem problem_at(const json& document, const std::string& path) {
  const auto problems = problems_of(document);
  std::string reported;
  for (const auto& problem : problems) {
    if (problem.path == path) return problem;
    reported += "\n  " + problem.path + ": " + problem.message;
  }
  FAIL("no problem at " << path << "; reported:" << reported);
  return {};
}

// `document` with the value at JSON pointer `pointer` replaced.
json with(json document, const std::string& pointer, const json& value) {
  document[json::json_pointer(pointer)] = value;
  return document;
}

json without(json document, const std::string& key) {
  document.erase(key);
  return document;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

// ---- Valid documents and defaults

TEST_CASE("example requirements parse", "[requirements]") {
  const lepton::Requirements r = lepton::load_requirements(kExample);

  CHECK(r.version == 1);
  CHECK(r.name == "predictive-maintenance");
  CHECK(r.task == lepton::Task::BinaryClassification);
  CHECK(r.target == "Machine failure");
  CHECK(r.exclude == std::vector<std::string>{"UDI", "Product ID", "TWF", "HDF", "PWF", "OSF", "RNF"});
  CHECK(r.objective == lepton::Metric::F1);
  CHECK(r.seed == 42);
  CHECK(r.features.empty());
  REQUIRE(r.constraints.max_latency_us);
  CHECK(*r.constraints.max_latency_us == 50.0);
  CHECK(r.constraints.interpretability == lepton::Interpretability::Attribution);
  REQUIRE(r.constraints.max_training_seconds);
  CHECK(*r.constraints.max_training_seconds == 120.0);
  CHECK_FALSE(r.constraints.max_model_bytes);
  CHECK_FALSE(r.constraints.privacy);
}

TEST_CASE("minimal document gets defaults", "[requirements]") {
  const lepton::Requirements r = lepton::load_requirements(kDataDir + "good_minimal.json");

  CHECK(r.name.empty());
  CHECK(r.task == lepton::Task::Regression);
  CHECK(r.seed == 42);
  CHECK(r.objective == lepton::Metric::Rmse);
  CHECK(r.split.train == 0.6);
  CHECK(r.split.validation == 0.2);
  CHECK(r.split.test == 0.2);
  CHECK(r.exclude.empty());
  CHECK(r.features.empty());
  CHECK(r.constraints.interpretability == lepton::Interpretability::Attribution);
  CHECK(r.constraints.quantization_tolerance == 0.005);
  CHECK_FALSE(r.constraints.max_latency_us);
  CHECK_FALSE(r.constraints.max_model_bytes);
  CHECK_FALSE(r.constraints.min_metric);
  CHECK_FALSE(r.constraints.privacy);
  CHECK_FALSE(r.constraints.max_training_seconds);
}

TEST_CASE("full document sets every field", "[requirements]") {
  const lepton::Requirements r = lepton::load_requirements(kDataDir + "good_full.json");

  CHECK(r.name == "full");
  CHECK(r.task == lepton::Task::MulticlassClassification);
  CHECK(r.target == "species");
  CHECK(r.seed == 7);
  REQUIRE(r.features.size() == 3);
  CHECK(r.features[0].column == "petal_length");
  CHECK(r.features[0].type == lepton::FeatureType::Numeric);
  CHECK(r.features[1].type == lepton::FeatureType::Categorical);
  CHECK(r.features[2].type == lepton::FeatureType::Ignore);
  CHECK(r.exclude == std::vector<std::string>{"id"});
  CHECK(r.objective == lepton::Metric::WeightedF1);
  CHECK(r.split.train == 0.7);
  CHECK(r.split.test == 0.1);
  CHECK(*r.constraints.max_latency_us == 10.5);
  CHECK(*r.constraints.max_model_bytes == 4096);
  CHECK(*r.constraints.min_metric == 0.8);
  CHECK(r.constraints.interpretability == lepton::Interpretability::Transparent);
  REQUIRE(r.constraints.privacy);
  CHECK(r.constraints.privacy->epsilon == 3.0);
  CHECK(r.constraints.privacy->delta == 1e-6);
  CHECK(r.constraints.privacy->max_grad_norm == 0.5);
  CHECK(*r.constraints.max_training_seconds == 60.0);
  CHECK(r.constraints.quantization_tolerance == 0.01);
}

TEST_CASE("default objective follows the task", "[requirements]") {
  CHECK(lepton::parse_requirements(minimal_document()).objective == lepton::Metric::F1);
  CHECK(lepton::parse_requirements(with(minimal_document(), "/task", "multiclass_classification")).objective ==
        lepton::Metric::MacroF1);
  CHECK(lepton::parse_requirements(with(minimal_document(), "/task", "regression")).objective ==
        lepton::Metric::Rmse);
}

TEST_CASE("privacy defaults delta and clipping", "[requirements]") {
  const auto r = lepton::parse_requirements(with(minimal_document(), "/constraints/privacy", {{"epsilon", 2}}));

  REQUIRE(r.constraints.privacy);
  CHECK(r.constraints.privacy->epsilon == 2.0);
  CHECK(r.constraints.privacy->delta == 1e-5);
  CHECK(r.constraints.privacy->max_grad_norm == 1.0);
}

TEST_CASE("null constraints mean unset", "[requirements]") {
  json document = minimal_document();
  document["constraints"] = {{"max_latency_us", nullptr}, {"max_model_bytes", nullptr}, {"min_metric", nullptr},
                             {"privacy", nullptr}, {"max_training_seconds", nullptr}};
  const auto r = lepton::parse_requirements(document);

  CHECK_FALSE(r.constraints.max_latency_us);
  CHECK_FALSE(r.constraints.max_model_bytes);
  CHECK_FALSE(r.constraints.min_metric);
  CHECK_FALSE(r.constraints.privacy);
  CHECK_FALSE(r.constraints.max_training_seconds);
}

TEST_CASE("integral floats count as integers", "[requirements]") {
  // JSON Schema (draft 2020-12) treats 42.0 as an integer, and so does the validator.
  CHECK(lepton::parse_requirements(with(minimal_document(), "/seed", 7.0)).seed == 7);
  CHECK(lepton::parse_requirements(with(minimal_document(), "/version", 1.0)).version == 1);
  CHECK(*lepton::parse_requirements(with(minimal_document(), "/constraints/max_model_bytes", 1e6))
             .constraints.max_model_bytes == 1000000);
}

TEST_CASE("seed accepts the full uint64 range", "[requirements]") {
  const std::uint64_t largest = std::numeric_limits<std::uint64_t>::max();
  CHECK(lepton::parse_requirements(with(minimal_document(), "/seed", largest)).seed == largest);
  CHECK(lepton::parse_requirements(with(minimal_document(), "/seed", 0)).seed == 0);
}

TEST_CASE("split sum tolerates rounding", "[requirements]") {
  // 0.7 + 0.2 + 0.1 is 0.9999999999999999 in binary floating point.
  const auto r = lepton::parse_requirements(
      with(minimal_document(), "/split", {{"train", 0.7}, {"validation", 0.2}, {"test", 0.1}}));
  CHECK(r.split.train == 0.7);
}

TEST_CASE("ignored feature may also be excluded", "[requirements]") {
  json document = minimal_document();
  document["features"] = {{{"column", "UDI"}, {"type", "ignore"}}, {{"column", "Torque [Nm]"}, {"type", "numeric"}}};
  document["exclude"] = {"UDI"};
  CHECK(problems_of(document).empty());
}

// ---- One assertion per validation rule

TEST_CASE("version rules", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/version", 2), "$.version");
  CHECK(p.value == "2");
  CHECK_THAT(p.message, Contains("unsupported version 2") && Contains("version 1 only"));

  p = problem_at(without(minimal_document(), "version"), "$.version");
  CHECK(p.value.empty());
  CHECK_THAT(p.message, Contains("missing required key 'version'"));

  p = problem_at(with(minimal_document(), "/version", "1"), "$.version");
  CHECK(p.message == "expected an integer, got a string");
}

TEST_CASE("name must be a string", "[requirements][validation]") {
  const auto p = problem_at(with(minimal_document(), "/name", 5), "$.name");
  CHECK(p.message == "expected a string, got a number");
  CHECK(p.value == "5");
}

TEST_CASE("task rules", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/task", "classification"), "$.task");
  CHECK(p.value == "\"classification\"");
  CHECK_THAT(p.message, Contains("unknown task 'classification'") &&
                            Contains("binary_classification, multiclass_classification, regression"));

  p = problem_at(with(minimal_document(), "/task", "Regression"), "$.task");
  CHECK_THAT(p.message, Contains("did you mean 'regression'?"));

  p = problem_at(without(minimal_document(), "task"), "$.task");
  CHECK_THAT(p.message, Contains("missing required key 'task'") && Contains("regression"));
}

TEST_CASE("target rules", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/target", ""), "$.target");
  CHECK_THAT(p.message, Contains("must not be empty"));

  p = problem_at(without(minimal_document(), "target"), "$.target");
  CHECK_THAT(p.message, Contains("missing required key 'target'"));

  p = problem_at(with(minimal_document(), "/target", json::array({"a"})), "$.target");
  CHECK(p.message == "expected a string, got an array");
}

TEST_CASE("seed rules", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/seed", -1), "$.seed");
  CHECK(p.message == "out of range: expected an integer at least 0 and at most 18446744073709551615");

  p = problem_at(with(minimal_document(), "/seed", 1.5), "$.seed");
  CHECK(p.message == "expected an integer, got a number");

  p = problem_at(with(minimal_document(), "/seed", 1e20), "$.seed");
  CHECK_THAT(p.message, Contains("out of range"));
}

TEST_CASE("features rules", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/features", json::object()), "$.features");
  CHECK(p.message == "expected an array, got an object");

  p = problem_at(with(minimal_document(), "/features", {{{"column", "Torque [Nm]"}}}), "$.features[0].type");
  CHECK_THAT(p.message, Contains("missing required key 'type'") && Contains("numeric, categorical, text, ignore"));

  p = problem_at(with(minimal_document(), "/features", {{{"column", "a"}, {"type", "number"}}}),
                 "$.features[0].type");
  CHECK_THAT(p.message, Contains("unknown type 'number'; expected one of: numeric, categorical, text, ignore"));

  p = problem_at(with(minimal_document(), "/features", {{{"column", "a"}, {"type", "Numeric"}}}),
                 "$.features[0].type");
  CHECK_THAT(p.message, Contains("did you mean 'numeric'?"));

  p = problem_at(with(minimal_document(), "/features", {{{"column", ""}, {"type", "numeric"}}}),
                 "$.features[0].column");
  CHECK_THAT(p.message, Contains("must not be empty"));

  p = problem_at(with(minimal_document(), "/features", {{{"column", "a"}, {"type", "numeric"}, {"name", "x"}}}),
                 "$.features[0].name");
  CHECK(p.message == "unknown key 'name'; allowed keys here: column, type");

  p = problem_at(with(minimal_document(), "/features", {"Torque [Nm]"}), "$.features[0]");
  CHECK(p.message == "expected an object, got a string");
}

TEST_CASE("target and column conflicts", "[requirements][validation]") {
  const json document = json::parse(read_text(kDataDir + "bad_target_conflicts.json"));

  auto p = problem_at(document, "$.features[0].column");
  CHECK(p.message == "the target 'failure' cannot also be a feature; remove this entry");

  p = problem_at(document, "$.features[2].column");
  CHECK_THAT(p.message, Contains("duplicate feature column 'torque', first listed at $.features[1]"));

  p = problem_at(document, "$.exclude[0]");
  CHECK(p.message == "the target 'failure' is also excluded; remove it from exclude");

  p = problem_at(document, "$.exclude[1]");
  CHECK_THAT(p.message, Contains("column 'speed' is excluded but also listed as a feature at $.features[3]"));

  p = problem_at(document, "$.exclude[3]");
  CHECK_THAT(p.message, Contains("duplicate entry, first listed at $.exclude[2]"));

  CHECK(problems_of(document).size() == 5);
}

TEST_CASE("exclude rules", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/exclude", {"UDI", 3}), "$.exclude[1]");
  CHECK(p.message == "expected a string, got a number");

  p = problem_at(with(minimal_document(), "/exclude", "UDI"), "$.exclude");
  CHECK(p.message == "expected an array, got a string");
}

TEST_CASE("objective rules", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/objective", "rmse"), "$.objective");
  CHECK(p.message ==
        "objective 'rmse' does not fit task 'binary_classification'; use one of: f1, roc_auc, pr_auc, accuracy, log_loss");

  p = problem_at(with(with(minimal_document(), "/task", "multiclass_classification"), "/objective", "f1"),
                 "$.objective");
  CHECK_THAT(p.message, Contains("use one of: accuracy, macro_f1, weighted_f1, log_loss"));

  p = problem_at(with(with(minimal_document(), "/task", "regression"), "/objective", "accuracy"), "$.objective");
  CHECK_THAT(p.message, Contains("use one of: mae, rmse, r2"));

  p = problem_at(with(minimal_document(), "/objective", "f2"), "$.objective");
  CHECK_THAT(p.message, Contains("unknown objective 'f2'; did you mean 'f1'?"));
  // The list names the binary task's objectives only.
  CHECK_THAT(p.message, Contains("Allowed: f1, roc_auc, pr_auc, accuracy, log_loss"));
  CHECK_THAT(p.message, !Contains("rmse"));

  p = problem_at(with(with(minimal_document(), "/task", "regression"), "/objective", "rsme"), "$.objective");
  CHECK_THAT(p.message, Contains("did you mean 'rmse'? Allowed: mae, rmse, r2"));

  p = problem_at(with(minimal_document(), "/objective", nullptr), "$.objective");
  CHECK(p.message == "expected a string, got null");
}

TEST_CASE("split rules", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/split", {{"train", 0.8}}), "$.split");
  CHECK_THAT(p.message, Contains("must sum to 1") && Contains("sum to 1.2"));

  p = problem_at(with(minimal_document(), "/split/train", 0), "$.split.train");
  CHECK(p.message == "out of range: expected a number greater than 0 and less than 1");

  p = problem_at(with(minimal_document(), "/split/test", 1), "$.split.test");
  CHECK(p.message == "out of range: expected a number greater than 0 and less than 1");

  p = problem_at(with(minimal_document(), "/split/validation", "0.2"), "$.split.validation");
  CHECK(p.message == "expected a number, got a string");

  p = problem_at(with(minimal_document(), "/split", {{"train", 0.6}, {"validation", 0.2}, {"tets", 0.2}}),
                 "$.split.tets");
  CHECK(p.message == "unknown key 'tets'; did you mean 'test'?");
}

TEST_CASE("latency and size rules", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/constraints/max_latency_us", "fast"), "$.constraints.max_latency_us");
  CHECK(p.message == "expected a number or null, got a string");
  CHECK(p.value == "\"fast\"");

  p = problem_at(with(minimal_document(), "/constraints/max_latency_us", 0), "$.constraints.max_latency_us");
  CHECK(p.message == "out of range: expected a number greater than 0");

  p = problem_at(with(minimal_document(), "/constraints/max_model_bytes", 12.5), "$.constraints.max_model_bytes");
  CHECK(p.message == "expected an integer or null, got a number");

  p = problem_at(with(minimal_document(), "/constraints/max_model_bytes", 0), "$.constraints.max_model_bytes");
  CHECK_THAT(p.message, Contains("expected an integer at least 1"));

  p = problem_at(with(minimal_document(), "/constraints/max_training_seconds", -1),
                 "$.constraints.max_training_seconds");
  CHECK(p.message == "out of range: expected a number greater than 0");

  p = problem_at(with(minimal_document(), "/constraints/quantization_tolerance", -0.1),
                 "$.constraints.quantization_tolerance");
  CHECK(p.message == "out of range: expected a number at least 0");
}

TEST_CASE("min_metric must be reachable", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/constraints/min_metric", 1.5), "$.constraints.min_metric");
  CHECK_THAT(p.message, Contains("f1 is never above 1"));

  json regression = with(minimal_document(), "/task", "regression");
  p = problem_at(with(regression, "/constraints/min_metric", -0.1), "$.constraints.min_metric");
  CHECK_THAT(p.message, Contains("rmse is never below 0"));

  p = problem_at(with(with(regression, "/objective", "r2"), "/constraints/min_metric", 1.1),
                 "$.constraints.min_metric");
  CHECK_THAT(p.message, Contains("r2 is never above 1"));

  CHECK(problems_of(with(with(regression, "/objective", "r2"), "/constraints/min_metric", -3.0)).empty());
}

TEST_CASE("interpretability rules", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/constraints/interpretability", "opaque"),
                      "$.constraints.interpretability");
  CHECK(p.message == "unknown interpretability 'opaque'; expected one of: none, attribution, transparent");

  p = problem_at(with(minimal_document(), "/constraints/interpretability", "Transparent"),
                 "$.constraints.interpretability");
  CHECK_THAT(p.message, Contains("did you mean 'transparent'?"));
}

TEST_CASE("privacy rules", "[requirements][validation]") {
  const std::string privacy = "/constraints/privacy";

  auto p = problem_at(with(minimal_document(), privacy, {{"epsilon", 0}}), "$.constraints.privacy.epsilon");
  CHECK(p.message == "out of range: expected a number greater than 0");
  CHECK(p.value == "0");

  p = problem_at(with(minimal_document(), privacy, json::object()), "$.constraints.privacy.epsilon");
  CHECK_THAT(p.message, Contains("missing required key 'epsilon'"));

  p = problem_at(with(minimal_document(), privacy, {{"epsilon", 1}, {"delta", 1.5}}), "$.constraints.privacy.delta");
  CHECK(p.message == "out of range: expected a number greater than 0 and less than 1");

  p = problem_at(with(minimal_document(), privacy, {{"epsilon", 1}, {"max_grad_norm", 0}}),
                 "$.constraints.privacy.max_grad_norm");
  CHECK(p.message == "out of range: expected a number greater than 0");

  p = problem_at(with(minimal_document(), privacy, "yes"), "$.constraints.privacy");
  CHECK(p.message == "expected an object or null, got a string");
}

TEST_CASE("non-finite numbers are rejected", "[requirements][validation]") {
  // Only a document built in memory can hold NaN; JSON text cannot.
  const auto p = problem_at(with(minimal_document(), "/constraints/max_latency_us",
                                 std::numeric_limits<double>::quiet_NaN()),
                            "$.constraints.max_latency_us");
  CHECK(p.message == "expected a finite number");
}

TEST_CASE("unknown keys get a suggestion", "[requirements][validation]") {
  auto p = problem_at(with(minimal_document(), "/objectve", "f1"), "$.objectve");
  CHECK(p.message == "unknown key 'objectve'; did you mean 'objective'?");
  CHECK(p.value == "\"f1\"");

  p = problem_at(with(minimal_document(), "/constraints/Interpretability", "none"), "$.constraints.Interpretability");
  CHECK(p.message == "unknown key 'Interpretability'; did you mean 'interpretability'?");

  p = problem_at(with(minimal_document(), "/colour", "red"), "$.colour");
  CHECK(p.message ==
        "unknown key 'colour'; allowed keys here: version, name, task, target, seed, features, exclude, pii, "
        "pii_handling, objective, derived_features, split, constraints");

  // A dotted key must not reach the nested field that its name spells.
  p = problem_at(with(minimal_document(), "/constraints.max_latency_us", 5), "$[\"constraints.max_latency_us\"]");
  CHECK_THAT(p.message, Contains("unknown key 'constraints.max_latency_us'"));
}

TEST_CASE("document must be an object", "[requirements][validation]") {
  const auto p = problem_at(json::array({1, 2}), "$");
  CHECK_THAT(p.message, Contains("expected an object, got an array"));
}

TEST_CASE("all problems are reported at once", "[requirements][validation]") {
  const std::string path = kDataDir + "bad_many_problems.json";
  try {
    lepton::load_requirements(path);
    FAIL("bad_many_problems.json was accepted");
  } catch (const lepton::ValidationError& error) {
    std::vector<std::string> paths;
    for (const auto& problem : error.problems()) paths.push_back(problem.path);

    CHECK(error.source() == path);
    CHECK_THAT(paths, Catch::Matchers::UnorderedEquals(std::vector<std::string>{
                          "$.version", "$.task", "$.target", "$.objectve", "$.seed", "$.split",
                          "$.constraints.max_latency_us", "$.constraints.max_model_bytes",
                          "$.constraints.privacy.epsilon", "$.constraints.privacy.delta",
                          "$.constraints.quantization_tolerance", "$.constraints.Interpretability"}));
    CHECK_THAT(error.what(), Contains(path + ": $.constraints.privacy.epsilon: "));
    CHECK_THAT(error.what(), Contains("did you mean 'objective'?"));
  }
}

// ---- Files

TEST_CASE("missing file is FileNotFound", "[requirements][file]") {
  const std::string path = kDataDir + "no_such_file.json";
  CHECK_THROWS_AS(lepton::load_requirements(path), lepton::FileNotFound);
  CHECK_THROWS_WITH(lepton::load_requirements(path), Contains("no_such_file.json"));
}

TEST_CASE("empty file is a clear ParseError", "[requirements][file]") {
  for (const char* name : {"empty.json", "blank.json"}) {
    const std::string path = kDataDir + name;
    CHECK_THROWS_AS(lepton::load_requirements(path), lepton::ParseError);
    CHECK_THROWS_WITH(lepton::load_requirements(path), Contains(path + ":1:1: the requirements file is empty"));
  }
}

TEST_CASE("syntax error names line and column", "[requirements][file]") {
  // The trailing comma is only detected at the closing brace on line 5, column 1.
  const std::string trailing = kDataDir + "bad_trailing_comma.json";
  CHECK_THROWS_AS(lepton::load_requirements(trailing), lepton::ParseError);
  CHECK_THROWS_WITH(lepton::load_requirements(trailing),
                    StartsWith(trailing + ":5:1: JSON syntax error: unexpected '}'; expected string literal"));
  CHECK_THROWS_WITH(lepton::load_requirements(trailing), EndsWith("; fix the JSON syntax there"));
  // The place is given once, in file:line:column form, without nlohmann's exception id or its own position.
  CHECK_THROWS_WITH(lepton::load_requirements(trailing), !Contains("json.exception"));
  CHECK_THROWS_WITH(lepton::load_requirements(trailing), !Contains("line 5"));
  CHECK_THROWS_WITH(lepton::load_requirements(trailing), !Contains("parse error"));

  // CRLF line ends: line 3 is `  "task": "regression" "target": "y"`. The position is that of the last
  // character nlohmann read, the closing quote of the unexpected "target" (columns 24 to 31); nlohmann
  // 3.11.2's own message says "line 3, column 31" too.
  const std::string crlf = kDataDir + "bad_missing_comma_crlf.json";
  CHECK_THROWS_WITH(lepton::load_requirements(crlf), Contains(crlf + ":3:31: "));
}

TEST_CASE("duplicate keys are reported", "[requirements][file]") {
  try {
    lepton::load_requirements(kDataDir + "bad_duplicate_key.json");
    FAIL("a duplicate key was accepted");
  } catch (const lepton::ValidationError& error) {
    REQUIRE(error.problems().size() == 1);
    CHECK(error.problems()[0].path == "$.constraints.max_latency_us");
    CHECK_THAT(error.problems()[0].message, Contains("duplicate key 'max_latency_us'"));
  }
}

// ---- Canonical JSON

TEST_CASE("to_json resolves every default", "[requirements][json]") {
  const json j = lepton::parse_requirements(minimal_document()).to_json();

  CHECK(j.at("version") == 1);
  CHECK(j.at("name") == "");
  CHECK(j.at("seed") == 42);
  CHECK(j.at("objective") == "f1");
  CHECK(j.at("features") == json::array());
  CHECK(j.at("exclude") == json::array());
  CHECK(j.at("split") == json({{"train", 0.6}, {"validation", 0.2}, {"test", 0.2}}));
  CHECK(j.at("constraints").at("interpretability") == "attribution");
  CHECK(j.at("constraints").at("quantization_tolerance") == 0.005);
  CHECK(j.at("constraints").at("privacy").is_null());
  CHECK(j.at("constraints").at("max_latency_us").is_null());
}

TEST_CASE("to_json writes every table field", "[requirements][json]") {
  const json j = lepton::load_requirements(kDataDir + "good_full.json").to_json();

  for (const auto& field : lepton::detail::requirement_fields()) {
    if (field.path.find("[]") != std::string::npos) continue;
    std::string pointer = "/" + field.path;
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    CHECK(j.contains(json::json_pointer(pointer)));
  }
}

TEST_CASE("to_json round-trips", "[requirements][json]") {
  for (const std::string& path : {kExample, kDataDir + "good_full.json", kDataDir + "good_minimal.json"}) {
    const json first = lepton::load_requirements(path).to_json();
    const json second = lepton::parse_requirements(first, "round trip").to_json();
    CHECK(first == second);
  }
}

TEST_CASE("to_json is canonical", "[requirements][json]") {
  // Keys come out sorted, so the dump, and the hash that provenance records, depend only on the content.
  json reordered = json::parse(R"({"target": "Machine failure", "task": "binary_classification", "version": 1})");
  CHECK(lepton::parse_requirements(reordered).to_json().dump() ==
        lepton::parse_requirements(minimal_document()).to_json().dump());

  const std::string dump = lepton::parse_requirements(minimal_document()).to_json().dump();
  CHECK(dump.find("\"constraints\"") < dump.find("\"exclude\""));
  CHECK(dump.find("\"version\"") > dump.find("\"target\""));
}

// ---- Names and did-you-mean

TEST_CASE("document spellings are pinned", "[requirements][names]") {
  // docs/requirements.md and existing requirements files use these spellings.
  CHECK(lepton::detail::task_names() ==
        std::vector<std::string>{"binary_classification", "multiclass_classification", "regression"});
  CHECK(lepton::detail::feature_type_names() == std::vector<std::string>{"numeric", "categorical", "text", "ignore"});
  CHECK(lepton::detail::metric_names() == std::vector<std::string>{"f1", "roc_auc", "pr_auc", "accuracy", "log_loss",
                                                                   "macro_f1", "weighted_f1", "mae", "rmse", "r2"});
  CHECK(lepton::detail::interpretability_names() == std::vector<std::string>{"none", "attribution", "transparent"});
}

TEST_CASE("edit distance counts transpositions", "[requirements][names]") {
  CHECK(lepton::detail::transposition_edit_distance("objectve", "objective") == 1);
  CHECK(lepton::detail::transposition_edit_distance("tets", "test") == 1);
  CHECK(lepton::detail::transposition_edit_distance("", "abc") == 3);
  CHECK(lepton::detail::transposition_edit_distance("seed", "seed") == 0);
  CHECK(lepton::detail::transposition_edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("closest match rejects far words", "[requirements][names]") {
  const std::vector<std::string> keys{"version", "name", "task"};
  CHECK(lepton::detail::closest_match("NAME", keys) == std::optional<std::string>("name"));
  CHECK(lepton::detail::closest_match("verison", keys) == std::optional<std::string>("version"));
  CHECK_FALSE(lepton::detail::closest_match("a", keys));
  CHECK_FALSE(lepton::detail::closest_match("colour", keys));
}

// ---- JSON Schema

TEST_CASE("schema file matches the field table", "[requirements][schema]") {
  const json generated = lepton::requirements_json_schema();
  const std::string generated_path = LEPTON_BINARY_DIR "/requirements.schema.json";
  const std::string committed_path = LEPTON_SOURCE_DIR "/docs/requirements.schema.json";
  std::ofstream(generated_path, std::ios::binary) << generated.dump(2) << '\n';

  INFO("docs/requirements.schema.json is missing or out of date; regenerate it with: cp " << generated_path << " "
                                                                                            << committed_path);
  json committed;
  REQUIRE_NOTHROW(committed = json::parse(read_text(committed_path)));
  CHECK(committed == generated);
}

TEST_CASE("schema closes every object", "[requirements][schema]") {
  const json schema = lepton::requirements_json_schema();

  CHECK(schema.at("$schema") == "https://json-schema.org/draft/2020-12/schema");
  CHECK(schema.at("additionalProperties") == false);
  CHECK(schema.at("required") == json({"version", "task", "target"}));
  CHECK(schema.at("properties").at("split").at("additionalProperties") == false);
  CHECK(schema.at("properties").at("features").at("items").at("additionalProperties") == false);
  const json& privacy = schema.at("properties").at("constraints").at("properties").at("privacy");
  CHECK(privacy.at("additionalProperties") == false);
  CHECK(privacy.at("type") == json({"object", "null"}));
  CHECK(privacy.at("properties").at("epsilon").at("exclusiveMinimum") == 0);
  CHECK(privacy.at("properties").at("delta").at("default") == 1e-5);
  CHECK(schema.at("properties").at("task").at("enum").size() == 3);
  CHECK(schema.at("properties").at("seed").at("default") == 42);
}

TEST_CASE("schema ties objective to task", "[requirements][schema]") {
  const json rules = lepton::requirements_json_schema().at("allOf");
  REQUIRE(rules.size() == 3);
  CHECK(rules[2].at("if").at("properties").at("task").at("const") == "regression");
  CHECK(rules[2].at("then").at("properties").at("objective").at("enum") == json({"mae", "rmse", "r2"}));
}

TEST_CASE("reference doc covers every field", "[requirements][schema]") {
  const std::string doc = read_text(LEPTON_SOURCE_DIR "/docs/requirements.md");
  REQUIRE_FALSE(doc.empty());
  for (const auto& field : lepton::detail::requirement_fields()) {
    INFO("docs/requirements.md lacks `" << field.path << "`");
    CHECK(doc.find("`" + field.path + "`") != std::string::npos);
  }
}

TEST_CASE("derived_features: screen per value", "[requirements][derived]") {
  struct Case {
    const char* value;
    bool search;
    bool products;
  };
  for (const Case& c : {Case{"auto", true, true}, Case{"products", true, true}, Case{"differences", true, false},
                        Case{"off", false, false}}) {
    INFO(c.value);
    json document = minimal_document();
    document["derived_features"] = c.value;
    const lepton::Requirements requirements = lepton::parse_requirements(document, "test.json");
    CHECK(requirements.search_derived_features == c.search);
    CHECK(requirements.derive_products == c.products);
  }

  // The default is "auto", and the canonical form writes "products" as "auto", its equal.
  CHECK(lepton::parse_requirements(minimal_document(), "test.json").derive_products);
  json products = minimal_document();
  products["derived_features"] = "products";
  CHECK(lepton::parse_requirements(products, "test.json").to_json().at("derived_features") == "auto");
  json differences = minimal_document();
  differences["derived_features"] = "differences";
  CHECK(lepton::parse_requirements(differences, "test.json").to_json().at("derived_features") == "differences");

  json ratio = minimal_document();
  ratio["derived_features"] = "ratios";
  const std::vector<lepton::ValidationProblem> problems = problems_of(ratio);
  REQUIRE(problems.size() == 1);
  CHECK(problems.front().path == "$.derived_features");
}
