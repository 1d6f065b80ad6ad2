// Requirements documents: the field table, validation that reports every problem at once,
// default resolution, canonical JSON and the JSON Schema generated from the same table.

#include "lepton/requirements.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "runtime/json_syntax.hpp"
#include "train/requirements_detail.hpp"

namespace lepton {

std::string to_string(Interpretability level) {
  switch (level) {
    case Interpretability::None: return "none";
    case Interpretability::Attribution: return "attribution";
    case Interpretability::Transparent: return "transparent";
  }
  throw InternalError(fmt::format("to_string: unknown Interpretability value {}", static_cast<int>(level)));
}

std::string to_string(PiiHandling handling) { return handling == PiiHandling::Hash ? "hash" : "drop"; }

namespace detail {

// ---------------------------------------------------------------------------------------------
// Names

namespace {

constexpr Task kAllTasks[] = {Task::BinaryClassification, Task::MulticlassClassification, Task::Regression};
constexpr FeatureType kAllFeatureTypes[] = {FeatureType::Numeric, FeatureType::Categorical, FeatureType::Text,
                                            FeatureType::Ignore};
constexpr Metric kAllMetrics[] = {Metric::F1,      Metric::RocAuc,     Metric::PrAuc, Metric::Accuracy,
                                  Metric::LogLoss, Metric::MacroF1,    Metric::WeightedF1,
                                  Metric::Mae,     Metric::Rmse,       Metric::R2};
constexpr Interpretability kAllInterpretability[] = {Interpretability::None, Interpretability::Attribution,
                                                     Interpretability::Transparent};

template <typename Enum, std::size_t N>
std::vector<std::string> names_of(const Enum (&values)[N]) {
  std::vector<std::string> names;
  for (Enum value : values) names.push_back(to_string(value));
  return names;
}

template <typename Enum, std::size_t N>
std::optional<Enum> parse_name(const Enum (&values)[N], const std::string& name) {
  for (Enum value : values) {
    if (to_string(value) == name) return value;
  }
  return std::nullopt;
}

std::string join(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

std::vector<std::string> task_names() { return names_of(kAllTasks); }
std::vector<std::string> feature_type_names() { return names_of(kAllFeatureTypes); }
std::vector<std::string> metric_names() { return names_of(kAllMetrics); }
std::vector<std::string> interpretability_names() { return names_of(kAllInterpretability); }

std::optional<Task> parse_task(const std::string& name) { return parse_name(kAllTasks, name); }
std::optional<FeatureType> parse_feature_type(const std::string& name) { return parse_name(kAllFeatureTypes, name); }
std::optional<Interpretability> parse_interpretability(const std::string& name) {
  return parse_name(kAllInterpretability, name);
}

std::vector<Metric> metrics_for_task(Task task) {
  switch (task) {
    case Task::BinaryClassification:
      return {Metric::F1, Metric::RocAuc, Metric::PrAuc, Metric::Accuracy, Metric::LogLoss};
    case Task::MulticlassClassification:
      return {Metric::Accuracy, Metric::MacroF1, Metric::WeightedF1, Metric::LogLoss};
    case Task::Regression:
      return {Metric::Mae, Metric::Rmse, Metric::R2};
  }
  throw InternalError(fmt::format("metrics_for_task: unknown Task value {}", static_cast<int>(task)));
}

Metric default_objective(Task task) {
  switch (task) {
    case Task::BinaryClassification: return Metric::F1;
    case Task::MulticlassClassification: return Metric::MacroF1;
    case Task::Regression: return Metric::Rmse;
  }
  throw InternalError(fmt::format("default_objective: unknown Task value {}", static_cast<int>(task)));
}

MetricRange metric_range(Metric metric) {
  switch (metric) {
    case Metric::F1:
    case Metric::RocAuc:
    case Metric::PrAuc:
    case Metric::Accuracy:
    case Metric::MacroF1:
    case Metric::WeightedF1:
      return {0.0, 1.0};
    case Metric::LogLoss:
    case Metric::Mae:
    case Metric::Rmse:
      return {0.0, std::nullopt};
    case Metric::R2:
      return {std::nullopt, 1.0};
  }
  throw InternalError(fmt::format("metric_range: unknown Metric value {}", static_cast<int>(metric)));
}

std::string check_min_metric(Metric objective, double min_metric) {
  const MetricRange range = metric_range(objective);
  const std::string name = to_string(objective);

  if (!std::isfinite(min_metric)) {
    return fmt::format("min_metric must be a finite number; got {}", min_metric);
  }
  if (range.lowest && min_metric < *range.lowest) {
    return fmt::format("min_metric {} cannot be met: {} is never below {:g}; use a value of at least {:g}",
                       min_metric, name, *range.lowest, *range.lowest);
  }
  if (range.highest && min_metric > *range.highest) {
    return fmt::format("min_metric {} cannot be met: {} is never above {:g}; use a value of at most {:g}",
                       min_metric, name, *range.highest, *range.highest);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Did you mean

std::size_t transposition_edit_distance(std::string_view a, std::string_view b) {
  // Full (a.size()+1) x (b.size()+1) table: keys are short, and the transposition step reads two rows back.
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1, 0));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;

  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + substitution});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::optional<std::string> closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  // Within distance 2, a short word would match almost anything ("a" -> "name"), so it must keep half its letters.
  constexpr std::size_t kMaxDistance = 2;

  std::optional<std::string> best;
  std::size_t best_distance = kMaxDistance + 1;
  for (const std::string& candidate : candidates) {
    if (lower(candidate) == lower(word)) return candidate;

    const std::size_t distance = transposition_edit_distance(word, candidate);
    const bool close_enough = distance <= kMaxDistance && distance * 2 <= std::max(word.size(), candidate.size());
    if (close_enough && distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// The field table

std::string RequirementField::key() const {
  const auto dot = path.rfind('.');
  if (path.size() >= 2 && path.compare(path.size() - 2, 2, "[]") == 0) return "[]";
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

std::string RequirementField::parent() const {
  if (key() == "[]") return path.substr(0, path.size() - 2);
  const auto dot = path.rfind('.');
  return dot == std::string::npos ? std::string() : path.substr(0, dot);
}

namespace {

std::vector<RequirementField> build_requirement_fields() {
  using K = JsonKind;
  std::vector<RequirementField> fields;

  fields.push_back(RequirementField("version", K::Integer).required().equal_to(Requirements::kSchemaVersion)
      .describe("Format version of this document. This Lepton reads version 1."));
  fields.push_back(RequirementField("name", K::String).defaults_to("")
      .describe("Name of the model, shown in reports."));
  fields.push_back(RequirementField("task", K::String).required().one_of(task_names())
      .describe("Kind of prediction: two classes, more than two classes, or a number."));
  fields.push_back(RequirementField("target", K::String).required().not_empty()
      .describe("Name of the CSV column to predict."));
  fields.push_back(RequirementField("seed", K::Integer).defaults_to(42).at_least(0)
      .at_most(std::numeric_limits<std::uint64_t>::max())
      .describe("Seed of the split, the weight initialization and the batch order. The same seed, data and "
                "requirements give the same model on one machine."));

  fields.push_back(RequirementField("features", K::Array).defaults_to(nlohmann::json::array())
      .describe("Columns to use and how to encode them. Empty or left out: every column that is not the "
                "target, excluded, ID-like, constant, empty or free text, with the type inferred from the data."));
  fields.push_back(RequirementField("features[]", K::Object).describe("One feature column."));
  fields.push_back(RequirementField("features[].column", K::String).required().not_empty()
      .describe("Column name, exactly as in the CSV header. Each column may appear once."));
  fields.push_back(RequirementField("features[].type", K::String).required().one_of(feature_type_names())
      .describe("Encoding: numeric (standardized), categorical (one-hot), text, or ignore (not used)."));

  fields.push_back(RequirementField("exclude", K::Array).defaults_to(nlohmann::json::array()).unique()
      .describe("Columns that are never features: row IDs and columns that leak the target."));
  fields.push_back(RequirementField("exclude[]", K::String).not_empty().describe("Column name."));
  fields.push_back(RequirementField("pii", K::Array).defaults_to(nlohmann::json::array()).unique()
      .describe("Columns with personal data. They are dropped or hashed right after the data are read, so their "
                "raw values never reach the model, the report, the logs or error messages."));
  fields.push_back(RequirementField("pii[]", K::String).not_empty().describe("Column name."));
  fields.push_back(RequirementField("pii_handling", K::String).defaults_to("drop").one_of({"drop", "hash"})
      .describe("drop: remove pii columns. hash: replace each value by its BLAKE2b hash keyed with the secret in "
                "LEPTON_PII_KEY (64 hex digits) or the file named by LEPTON_PII_KEY_FILE; equal values keep equal "
                "hashes, so a hashed column can still be a categorical feature."));

  fields.push_back(RequirementField("objective", K::String).derived().one_of(metric_names())
      .describe("Metric that model selection optimizes and min_metric refers to. It must fit the task: "
                "f1, roc_auc, pr_auc, accuracy or log_loss for binary_classification; accuracy, macro_f1, "
                "weighted_f1 or log_loss for multiclass_classification; mae, rmse or r2 for regression. "
                "Default: f1, macro_f1 or rmse, by task."));

  fields.push_back(RequirementField("derived_features", K::String)
      .defaults_to("auto").one_of({"auto", "products", "differences", "off"})
      .describe("auto or products: before training, screen the difference and the product of every pair of "
                "numeric features with boosted splits, and add those that explain failures as extra inputs "
                "(binary classification only); the exported model still takes the listed features alone. "
                "differences: screen differences alone, by forward selection with a cross-validated additive "
                "model. off: no derived inputs."));

  fields.push_back(RequirementField("split", K::Object).defaults_to(nlohmann::json::object())
      .describe("Fractions of the rows in the train, validation and test splits. They must sum to 1."));
  fields.push_back(RequirementField("split.train", K::Number).defaults_to(0.6).above(0).below(1)
      .describe("Fraction of rows used to fit the weights."));
  fields.push_back(RequirementField("split.validation", K::Number).defaults_to(0.2).above(0).below(1)
      .describe("Fraction of rows used for early stopping and the decision threshold."));
  fields.push_back(RequirementField("split.test", K::Number).defaults_to(0.2).above(0).below(1)
      .describe("Fraction of rows held out for the final metrics."));

  fields.push_back(RequirementField("constraints", K::Object).defaults_to(nlohmann::json::object())
      .describe("Limits the model must respect. A limit that is left out or null does not apply."));
  fields.push_back(RequirementField("constraints.max_latency_us", K::Number).nullable().above(0)
      .describe("Largest estimated inference latency per row, in microseconds."));
  fields.push_back(RequirementField("constraints.max_model_bytes", K::Integer).nullable().at_least(1)
      .at_most(std::numeric_limits<std::uint64_t>::max())
      .describe("Largest size of the model weights, in bytes (4 per fp32 weight, or 1 per int8 weight plus "
                "4 per output channel)."));
  fields.push_back(RequirementField("constraints.min_metric", K::Number).nullable()
      .describe("Required value of the objective on the test split, checked after evaluation: a floor for "
                "metrics where higher is better, a ceiling for log_loss, mae and rmse."));
  fields.push_back(RequirementField("constraints.interpretability", K::String).defaults_to("attribution")
      .one_of(interpretability_names())
      .describe("none: any model. attribution: every prediction can be explained with SHAP-style "
                "attribution. transparent: one hidden layer of at most 16 units, small enough to inspect."));
  fields.push_back(RequirementField("constraints.privacy", K::Object).nullable()
      .describe("Differential privacy for training (DP-SGD). Left out or null: no privacy guarantee."));
  fields.push_back(RequirementField("constraints.privacy.epsilon", K::Number).required().above(0)
      .describe("Privacy budget epsilon; smaller is more private."));
  fields.push_back(RequirementField("constraints.privacy.delta", K::Number).defaults_to(1e-5).above(0).below(1)
      .describe("Privacy parameter delta; keep it below 1 / rows."));
  fields.push_back(RequirementField("constraints.privacy.max_grad_norm", K::Number).defaults_to(1.0).above(0)
      .describe("Per-sample gradient clipping norm C."));
  fields.push_back(RequirementField("constraints.max_training_seconds", K::Number).nullable().above(0)
      .describe("Wall-clock budget for training, in seconds."));
  fields.push_back(RequirementField("constraints.quantization_tolerance", K::Number).defaults_to(0.005).at_least(0)
      .describe("Largest drop of the objective accepted from the int8 export, in the metric's units."));

  return fields;
}

}  // namespace

const std::vector<RequirementField>& requirement_fields() {
  static const std::vector<RequirementField> fields = build_requirement_fields();
  return fields;
}

const RequirementField* find_requirement_field(std::string_view path) {
  for (const RequirementField& field : requirement_fields()) {
    if (field.path == path) return &field;
  }
  return nullptr;
}

std::vector<const RequirementField*> child_fields(std::string_view parent_path) {
  std::vector<const RequirementField*> children;
  for (const RequirementField& field : requirement_fields()) {
    if (field.parent() == parent_path && field.key() != "[]") children.push_back(&field);
  }
  return children;
}

// ---------------------------------------------------------------------------------------------
// Structural validation, driven by the table

namespace {

using nlohmann::json;
using Problems = std::vector<ValidationProblem>;

// Long values are cut so that one problem stays one readable line.
constexpr std::size_t kMaxValueChars = 200;

// Tolerance of the split sum, which absorbs decimal rounding such as 0.7 + 0.2 + 0.1.
constexpr double kSplitSumTolerance = 1e-9;

std::string value_text(const json& value) {
  std::string text = value.dump();
  if (text.size() > kMaxValueChars) text = text.substr(0, kMaxValueChars) + "...";
  return text;
}

bool is_identifier(const std::string& key) {
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0]))) return false;
  return std::all_of(key.begin(), key.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

std::string member_path(const std::string& json_path, const std::string& key) {
  if (is_identifier(key)) return json_path + "." + key;
  return json_path + "[" + json(key).dump() + "]";
}

std::string element_path(const std::string& json_path, std::size_t index) {
  return fmt::format("{}[{}]", json_path, index);
}

std::string child_table_path(const std::string& table_path, const std::string& key) {
  return table_path.empty() ? key : table_path + "." + key;
}

std::string with_article(std::string_view noun) {
  const bool vowel = !noun.empty() && std::string_view("aeiou").find(noun[0]) != std::string_view::npos;
  return fmt::format("{} {}", vowel ? "an" : "a", noun);
}

std::string kind_name(JsonKind kind) {
  switch (kind) {
    case JsonKind::Object: return "object";
    case JsonKind::Array: return "array";
    case JsonKind::String: return "string";
    case JsonKind::Number: return "number";
    case JsonKind::Integer: return "integer";
  }
  return "value";
}

std::string json_type_phrase(const json& value) {
  if (value.is_null()) return "null";
  return with_article(value.type_name());
}

bool is_integral(const json& value) {
  if (value.is_number_integer()) return true;
  if (!value.is_number_float()) return false;
  const double number = value.get<double>();
  return std::isfinite(number) && std::floor(number) == number;
}

bool has_kind(const json& value, JsonKind kind) {
  switch (kind) {
    case JsonKind::Object: return value.is_object();
    case JsonKind::Array: return value.is_array();
    case JsonKind::String: return value.is_string();
    case JsonKind::Number: return value.is_number();
    // JSON Schema counts 42.0 as an integer, so the validator does too.
    case JsonKind::Integer: return is_integral(value);
  }
  return false;
}

std::string bound_text(const json& bound) {
  if (bound.is_number_float()) return fmt::format("{:g}", bound.get<double>());
  return bound.dump();
}

std::string range_text(const RequirementField& field) {
  std::vector<std::string> parts;
  if (!field.minimum.is_null()) {
    parts.push_back(fmt::format("{} {}", field.exclusive_minimum ? "greater than" : "at least",
                                bound_text(field.minimum)));
  }
  if (!field.maximum.is_null()) {
    parts.push_back(fmt::format("{} {}", field.exclusive_maximum ? "less than" : "at most",
                                bound_text(field.maximum)));
  }
  return join(parts, " and ");
}

// 2^64 as a double: the smallest float that does not fit in std::uint64_t.
constexpr double kTwoToThe64 = 18446744073709551616.0;

bool in_range(const RequirementField& field, const json& value) {
  const double number = value.get<double>();

  // Compare unsigned bounds as integers, because a double cannot hold every uint64 seed.
  if (field.maximum.is_number_unsigned()) {
    if (value.is_number_unsigned() && value.get<std::uint64_t>() > field.maximum.get<std::uint64_t>()) return false;
    if (value.is_number_float() && number >= kTwoToThe64) return false;
  }

  if (!field.minimum.is_null()) {
    const double low = field.minimum.get<double>();
    if (field.exclusive_minimum ? !(number > low) : !(number >= low)) return false;
  }
  if (!field.maximum.is_null() && !field.maximum.is_number_unsigned()) {
    const double high = field.maximum.get<double>();
    if (field.exclusive_maximum ? !(number < high) : !(number <= high)) return false;
  }
  return true;
}

std::optional<Task> document_task(const json& document);

class StructureValidator {
 public:
  // `document` names the task, so the message for an unknown objective lists that task's objectives only.
  StructureValidator(Problems& problems, const json& document) : problems_(problems) {
    if (const auto task = document_task(document)) {
      for (Metric metric : metrics_for_task(*task)) task_objectives_.push_back(to_string(metric));
    }
  }

  void validate_object(const json& object, const std::string& table_path, const std::string& json_path) {
    const std::vector<const RequirementField*> children = child_fields(table_path);

    for (const auto& [key, value] : object.items()) {
      // The parent check stops a dotted key such as "constraints.seed" from matching a nested field.
      const RequirementField* field = find_requirement_field(child_table_path(table_path, key));
      if (field == nullptr || field->parent() != table_path || field->key() == "[]") {
        report_unknown_key(key, value, children, member_path(json_path, key));
        continue;
      }
      validate_value(value, *field, member_path(json_path, key));
    }

    for (const RequirementField* field : children) {
      if (field->presence == Presence::Required && !object.contains(field->key())) {
        const std::string hint = field->allowed.empty() ? field->description
                                                        : "allowed values: " + join(field->allowed);
        report(member_path(json_path, field->key()), "",
               fmt::format("missing required key '{}'; add it ({})", field->key(), hint));
      }
    }
  }

  void validate_value(const json& value, const RequirementField& field, const std::string& json_path) {
    if (value.is_null() && field.presence == Presence::Nullable) return;

    if (!has_kind(value, field.kind)) {
      report_wrong_type(value, field, json_path);
      return;
    }

    switch (field.kind) {
      case JsonKind::Object: validate_object(value, field.path, json_path); break;
      case JsonKind::Array: validate_array(value, field, json_path); break;
      case JsonKind::String: validate_string(value, field, json_path); break;
      case JsonKind::Number:
      case JsonKind::Integer: validate_number(value, field, json_path); break;
    }
  }

 private:
  void report(std::string path, std::string value, std::string message) {
    problems_.push_back({std::move(path), std::move(value), std::move(message)});
  }

  void report_unknown_key(const std::string& key, const json& value,
                          const std::vector<const RequirementField*>& children, const std::string& json_path) {
    std::vector<std::string> allowed;
    for (const RequirementField* child : children) allowed.push_back(child->key());

    if (const auto suggestion = closest_match(key, allowed)) {
      report(json_path, value_text(value), fmt::format("unknown key '{}'; did you mean '{}'?", key, *suggestion));
    } else {
      report(json_path, value_text(value),
             fmt::format("unknown key '{}'; allowed keys here: {}", key, join(allowed)));
    }
  }

  void report_wrong_type(const json& value, const RequirementField& field, const std::string& json_path) {
    std::string expected = with_article(kind_name(field.kind));
    if (field.presence == Presence::Nullable) expected += " or null";
    report(json_path, value_text(value), fmt::format("expected {}, got {}", expected, json_type_phrase(value)));
  }

  void validate_array(const json& array, const RequirementField& field, const std::string& json_path) {
    const RequirementField* element = find_requirement_field(field.path + "[]");
    std::map<std::string, std::size_t> first_index;

    for (std::size_t i = 0; i < array.size(); ++i) {
      if (element != nullptr) validate_value(array[i], *element, element_path(json_path, i));

      if (!field.unique_items) continue;
      const auto [it, inserted] = first_index.emplace(array[i].dump(), i);
      if (!inserted) {
        report(element_path(json_path, i), value_text(array[i]),
               fmt::format("duplicate entry, first listed at {}; list each entry once",
                           element_path(json_path, it->second)));
      }
    }
  }

  void validate_string(const json& value, const RequirementField& field, const std::string& json_path) {
    const std::string text = value.get<std::string>();

    if (field.non_empty && text.empty()) {
      report(json_path, value_text(value), "must not be empty; give a column name");
      return;
    }
    if (field.allowed.empty() ||
        std::find(field.allowed.begin(), field.allowed.end(), text) != field.allowed.end()) {
      return;
    }

    // Membership is checked against every metric above, because check_objective_fits_task reports a metric
    // of another task. The message lists what this document's task allows.
    const std::vector<std::string>& listed =
        field.path == "objective" && !task_objectives_.empty() ? task_objectives_ : field.allowed;
    std::string message = fmt::format("unknown {} '{}'; expected one of: {}", field.key(), text, join(listed));
    if (const auto suggestion = closest_match(text, listed)) {
      message = fmt::format("unknown {} '{}'; did you mean '{}'? Allowed: {}", field.key(), text, *suggestion,
                            join(listed));
    }
    report(json_path, value_text(value), message);
  }

  void validate_number(const json& value, const RequirementField& field, const std::string& json_path) {
    if (!std::isfinite(value.get<double>())) {
      report(json_path, value_text(value), "expected a finite number");
      return;
    }
    if (!field.constant.is_null() && value.get<double>() != field.constant.get<double>()) {
      report(json_path, value_text(value),
             fmt::format("unsupported {} {}; this Lepton reads {} {} only", field.key(), value_text(value),
                         field.key(), field.constant.dump()));
      return;
    }
    if (!in_range(field, value)) {
      report(json_path, value_text(value),
             fmt::format("out of range: expected {} {}", with_article(kind_name(field.kind)), range_text(field)));
    }
  }

  Problems& problems_;
  std::vector<std::string> task_objectives_;  // empty when the task is missing or unknown
};

// ---------------------------------------------------------------------------------------------
// Checks across fields. Each one reads only values whose type the structural pass accepted.

const json* find_member(const json& object, const std::string& key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

const json* find_path(const json& document, const std::string& dotted_path) {
  const json* node = &document;
  std::size_t start = 0;
  while (node != nullptr && start <= dotted_path.size()) {
    const std::size_t dot = dotted_path.find('.', start);
    const std::string key = dotted_path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    node = find_member(*node, key);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return node;
}

// The value at `dotted_path`, or the table default when the key is left out. Null when neither applies.
json resolved_value(const json& document, const std::string& dotted_path) {
  if (const json* value = find_path(document, dotted_path)) return *value;
  const RequirementField* field = find_requirement_field(dotted_path);
  return field != nullptr ? field->default_value : json();
}

std::optional<Task> document_task(const json& document) {
  const json* task = find_member(document, "task");
  if (task == nullptr || !task->is_string()) return std::nullopt;
  return parse_task(task->get<std::string>());
}

std::optional<Metric> document_objective(const json& document) {
  const json* objective = find_member(document, "objective");
  if (objective == nullptr) {
    const auto task = document_task(document);
    return task ? std::optional<Metric>(default_objective(*task)) : std::nullopt;
  }

  Metric metric{};
  if (!objective->is_string() || !parse_metric(objective->get<std::string>(), metric)) return std::nullopt;
  return metric;
}

void check_objective_fits_task(const json& document, Problems& problems) {
  const auto task = document_task(document);
  const json* objective = find_member(document, "objective");
  Metric metric{};
  if (!task || objective == nullptr || !objective->is_string() ||
      !parse_metric(objective->get<std::string>(), metric)) {
    return;
  }

  const std::vector<Metric> allowed = metrics_for_task(*task);
  if (std::find(allowed.begin(), allowed.end(), metric) != allowed.end()) return;

  std::vector<std::string> names;
  for (Metric m : allowed) names.push_back(to_string(m));
  problems.push_back({"$.objective", value_text(*objective),
                      fmt::format("objective '{}' does not fit task '{}'; use one of: {}", to_string(metric),
                                  to_string(*task), join(names))});
}

void check_split_sum(const json& document, Problems& problems) {
  double sum = 0;
  for (const char* part : {"split.train", "split.validation", "split.test"}) {
    const json value = resolved_value(document, part);
    if (!value.is_number()) return;
    sum += value.get<double>();
  }
  if (std::abs(sum - 1.0) <= kSplitSumTolerance) return;

  const json* split = find_member(document, "split");
  problems.push_back({"$.split", split != nullptr ? value_text(*split) : "",
                      fmt::format("train + validation + test must sum to 1 (within {:g}), but they sum to {:.12g} "
                                  "with defaults 0.6, 0.2 and 0.2 for parts left out; adjust the fractions",
                                  kSplitSumTolerance, sum)});
}

std::optional<std::string> document_target(const json& document) {
  const json* target = find_member(document, "target");
  if (target == nullptr || !target->is_string() || target->get<std::string>().empty()) return std::nullopt;
  return target->get<std::string>();
}

void check_feature_columns(const json& document, Problems& problems) {
  const json* features = find_member(document, "features");
  if (features == nullptr || !features->is_array()) return;

  const auto target = document_target(document);
  std::map<std::string, std::size_t> first_index;
  for (std::size_t i = 0; i < features->size(); ++i) {
    const json* column = find_member((*features)[i], "column");
    if (column == nullptr || !column->is_string()) continue;

    const std::string name = column->get<std::string>();
    const std::string path = element_path("$.features", i) + ".column";
    if (target && name == *target) {
      problems.push_back({path, value_text(*column),
                          fmt::format("the target '{}' cannot also be a feature; remove this entry", name)});
    }

    const auto [it, inserted] = first_index.emplace(name, i);
    if (!inserted) {
      problems.push_back({path, value_text(*column),
                          fmt::format("duplicate feature column '{}', first listed at $.features[{}]; list each "
                                      "column once",
                                      name, it->second)});
    }
  }
}

// A column counts as "used" when features lists it with a type other than ignore.
std::optional<std::size_t> used_feature_index(const json& document, const std::string& name) {
  const json* features = find_member(document, "features");
  if (features == nullptr || !features->is_array()) return std::nullopt;

  for (std::size_t i = 0; i < features->size(); ++i) {
    const json* column = find_member((*features)[i], "column");
    const json* type = find_member((*features)[i], "type");
    const bool ignored = type != nullptr && type->is_string() && parse_feature_type(type->get<std::string>()) &&
                         *parse_feature_type(type->get<std::string>()) == FeatureType::Ignore;
    if (column != nullptr && column->is_string() && column->get<std::string>() == name && !ignored) return i;
  }
  return std::nullopt;
}

void check_excluded_columns(const json& document, Problems& problems) {
  const json* exclude = find_member(document, "exclude");
  if (exclude == nullptr || !exclude->is_array()) return;

  const auto target = document_target(document);
  for (std::size_t i = 0; i < exclude->size(); ++i) {
    const json& entry = (*exclude)[i];
    if (!entry.is_string()) continue;

    const std::string name = entry.get<std::string>();
    const std::string path = element_path("$.exclude", i);
    if (target && name == *target) {
      problems.push_back({path, value_text(entry),
                          fmt::format("the target '{}' is also excluded; remove it from exclude", name)});
    } else if (const auto feature = used_feature_index(document, name)) {
      problems.push_back({path, value_text(entry),
                          fmt::format("column '{}' is excluded but also listed as a feature at $.features[{}]; "
                                      "remove one of the two",
                                      name, *feature)});
    }
  }
}

void check_pii_columns(const json& document, Problems& problems) {
  const json* pii = find_member(document, "pii");
  if (pii == nullptr || !pii->is_array()) return;

  const auto target = document_target(document);
  for (std::size_t i = 0; i < pii->size(); ++i) {
    const json& entry = (*pii)[i];
    if (target && entry.is_string() && entry.get<std::string>() == *target) {
      problems.push_back({element_path("$.pii", i), value_text(entry),
                          fmt::format("the target '{}' is marked pii; a model cannot predict a column that is "
                                      "dropped or hashed, so remove it from pii or choose another target",
                                      *target)});
    }
  }
}

void check_min_metric_range(const json& document, Problems& problems) {
  const json* min_metric = find_path(document, "constraints.min_metric");
  const auto objective = document_objective(document);
  if (min_metric == nullptr || !min_metric->is_number() || !objective) return;

  const std::string problem = check_min_metric(*objective, min_metric->get<double>());
  if (!problem.empty()) {
    problems.push_back({"$.constraints.min_metric", value_text(*min_metric), problem});
  }
}

// ---------------------------------------------------------------------------------------------
// Reading a validated document

template <typename T>
T get_resolved(const json& document, const std::string& dotted_path) {
  return resolved_value(document, dotted_path).get<T>();
}

std::optional<double> get_optional_number(const json& document, const std::string& dotted_path) {
  const json* value = find_path(document, dotted_path);
  if (value == nullptr || value->is_null()) return std::nullopt;
  return value->get<double>();
}

template <typename T>
T require_parsed(const std::optional<T>& parsed, const std::string& what) {
  // Validation accepted the name, so a failed parse means the table and the parsers disagree.
  if (!parsed) throw InternalError(fmt::format("requirements: validated {} does not parse", what));
  return *parsed;
}

// Validation accepted integral floats such as 1e6 below 2^64, which convert exactly.
std::uint64_t get_uint64(const json& value) {
  return value.is_number_float() ? static_cast<std::uint64_t>(value.get<double>()) : value.get<std::uint64_t>();
}

Constraints read_constraints(const json& document) {
  Constraints constraints;
  constraints.max_latency_us = get_optional_number(document, "constraints.max_latency_us");
  const json* max_model_bytes = find_path(document, "constraints.max_model_bytes");
  if (max_model_bytes != nullptr && !max_model_bytes->is_null()) {
    constraints.max_model_bytes = get_uint64(*max_model_bytes);
  }
  constraints.min_metric = get_optional_number(document, "constraints.min_metric");
  constraints.interpretability = require_parsed(
      parse_interpretability(get_resolved<std::string>(document, "constraints.interpretability")), "interpretability");

  const json* privacy = find_path(document, "constraints.privacy");
  if (privacy != nullptr && !privacy->is_null()) {
    PrivacyBudget budget;
    budget.epsilon = get_resolved<double>(document, "constraints.privacy.epsilon");
    budget.delta = get_resolved<double>(document, "constraints.privacy.delta");
    budget.max_grad_norm = get_resolved<double>(document, "constraints.privacy.max_grad_norm");
    constraints.privacy = budget;
  }

  constraints.max_training_seconds = get_optional_number(document, "constraints.max_training_seconds");
  constraints.quantization_tolerance = get_resolved<double>(document, "constraints.quantization_tolerance");
  return constraints;
}

Requirements read_requirements(const json& document) {
  Requirements requirements;
  requirements.version = get_resolved<int>(document, "version");
  requirements.name = get_resolved<std::string>(document, "name");
  requirements.task = require_parsed(parse_task(get_resolved<std::string>(document, "task")), "task");
  requirements.target = get_resolved<std::string>(document, "target");

  for (const json& feature : resolved_value(document, "features")) {
    const std::string type = feature.at("type").get<std::string>();
    requirements.features.push_back(
        {feature.at("column").get<std::string>(), require_parsed(parse_feature_type(type), "feature type")});
  }
  requirements.exclude = get_resolved<std::vector<std::string>>(document, "exclude");
  requirements.pii = get_resolved<std::vector<std::string>>(document, "pii");
  requirements.pii_handling =
      get_resolved<std::string>(document, "pii_handling") == "hash" ? PiiHandling::Hash : PiiHandling::Drop;
  requirements.objective = require_parsed(document_objective(document), "objective");
  const std::string derived = get_resolved<std::string>(document, "derived_features");
  requirements.search_derived_features = derived != "off";
  requirements.derive_products = derived == "auto" || derived == "products";

  requirements.constraints = read_constraints(document);
  requirements.split.train = get_resolved<double>(document, "split.train");
  requirements.split.validation = get_resolved<double>(document, "split.validation");
  requirements.split.test = get_resolved<double>(document, "split.test");

  requirements.seed = get_uint64(resolved_value(document, "seed"));
  return requirements;
}

}  // namespace

Requirements parse_requirements_collecting(const nlohmann::json& document, const std::string& source,
                                           std::vector<ValidationProblem> problems) {
  if (!document.is_object()) {
    problems.push_back({"$", value_text(document),
                        fmt::format("expected an object, got {}; a requirements document looks like "
                                    "{{\"version\": 1, \"task\": \"binary_classification\", \"target\": \"label\"}}",
                                    json_type_phrase(document))});
    throw ValidationError(source, std::move(problems));
  }

  StructureValidator(problems, document).validate_object(document, "", "$");
  check_objective_fits_task(document, problems);
  check_split_sum(document, problems);
  check_feature_columns(document, problems);
  check_excluded_columns(document, problems);
  check_pii_columns(document, problems);
  check_min_metric_range(document, problems);

  if (!problems.empty()) throw ValidationError(source, std::move(problems));
  return read_requirements(document);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Public entry points

Requirements parse_requirements(const nlohmann::json& document, const std::string& source) {
  return detail::parse_requirements_collecting(document, source, {});
}

namespace {

bool is_blank(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

// Tracks the JSON path during parsing so that a repeated key, which nlohmann would silently resolve
// to its last value, becomes a validation problem.
class DuplicateKeyFinder {
 public:
  bool on_event(int /*depth*/, nlohmann::json::parse_event_t event, const nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start: frames_.push_back({false, 0, {}, child_path()}); break;
      case Event::array_start: frames_.push_back({true, 0, {}, child_path()}); break;
      case Event::key: record_key(parsed.get<std::string>()); break;
      case Event::value: child_path(); break;
      case Event::object_end:
      case Event::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
    }
    return true;
  }

  std::vector<ValidationProblem> take_problems() { return std::move(problems_); }

 private:
  struct Frame {
    bool is_array = false;
    std::size_t next_index = 0;
    std::set<std::string> keys;
    std::string path;
  };

  // The path of the value that starts now; advances the element index inside arrays.
  std::string child_path() {
    if (frames_.empty()) return "$";
    Frame& frame = frames_.back();
    if (frame.is_array) return fmt::format("{}[{}]", frame.path, frame.next_index++);
    return detail_member_path(frame.path, last_key_);
  }

  void record_key(const std::string& key) {
    last_key_ = key;
    if (frames_.empty()) return;
    if (!frames_.back().keys.insert(key).second) {
      problems_.push_back({detail_member_path(frames_.back().path, key), "",
                           fmt::format("duplicate key '{}'; JSON keeps only the last value, so remove the "
                                       "other occurrences",
                                       key)});
    }
  }

  static std::string detail_member_path(const std::string& path, const std::string& key) {
    const bool identifier = !key.empty() && !std::isdigit(static_cast<unsigned char>(key[0])) &&
                            std::all_of(key.begin(), key.end(),
                                        [](unsigned char c) { return std::isalnum(c) || c == '_'; });
    return identifier ? path + "." + key : path + "[" + nlohmann::json(key).dump() + "]";
  }

  std::vector<Frame> frames_;
  std::string last_key_;
  std::vector<ValidationProblem> problems_;
};

}  // namespace

Requirements load_requirements(const std::string& path) {
  const std::string text = read_file(path);

  if (is_blank(text)) {
    throw ParseError(fmt::format("{}:1:1: the requirements file is empty; write a JSON object such as "
                                 "{{\"version\": 1, \"task\": \"binary_classification\", \"target\": \"label\"}}",
                                 path));
  }

  DuplicateKeyFinder duplicates;
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(text, [&duplicates](int depth, nlohmann::json::parse_event_t event,
                                                        nlohmann::json& parsed) {
      return duplicates.on_event(depth, event, parsed);
    });
  } catch (const nlohmann::json::parse_error& error) {
    throw detail::json_syntax_error(error, text, path, "fix the JSON syntax there");
  }

  return detail::parse_requirements_collecting(document, path, duplicates.take_problems());
}

// ---------------------------------------------------------------------------------------------
// Canonical JSON

nlohmann::json Requirements::to_json() const {
  std::string derived_features = "auto";
  if (!search_derived_features) derived_features = "off";
  if (search_derived_features && !derive_products) derived_features = "differences";

  nlohmann::json features_json = nlohmann::json::array();
  for (const FeatureSpec& feature : features) {
    features_json.push_back({{"column", feature.column}, {"type", lepton::to_string(feature.type)}});
  }

  nlohmann::json privacy_json;  // null: no privacy constraint
  if (constraints.privacy) {
    privacy_json = {{"epsilon", constraints.privacy->epsilon},
                    {"delta", constraints.privacy->delta},
                    {"max_grad_norm", constraints.privacy->max_grad_norm}};
  }

  const auto optional_json = [](const auto& value) {
    return value ? nlohmann::json(*value) : nlohmann::json();
  };

  // nlohmann::json keeps object keys in a std::map, so the output is sorted and therefore canonical.
  return {
      {"version", version},
      {"name", name},
      {"task", lepton::to_string(task)},
      {"target", target},
      {"seed", seed},
      {"features", features_json},
      {"exclude", exclude},
      {"pii", pii},
      {"pii_handling", lepton::to_string(pii_handling)},
      {"objective", lepton::to_string(objective)},
      {"derived_features", derived_features},
      {"split", {{"train", split.train}, {"validation", split.validation}, {"test", split.test}}},
      {"constraints",
       {{"max_latency_us", optional_json(constraints.max_latency_us)},
        {"max_model_bytes", optional_json(constraints.max_model_bytes)},
        {"min_metric", optional_json(constraints.min_metric)},
        {"interpretability", lepton::to_string(constraints.interpretability)},
        {"privacy", privacy_json},
        {"max_training_seconds", optional_json(constraints.max_training_seconds)},
        {"quantization_tolerance", constraints.quantization_tolerance}}},
  };
}

// ---------------------------------------------------------------------------------------------
// JSON Schema

namespace {

nlohmann::json schema_type(const detail::RequirementField& field) {
  const std::string name = detail::kind_name(field.kind);
  if (field.presence == detail::Presence::Nullable) return nlohmann::json::array({name, "null"});
  return name;
}

nlohmann::json field_schema(const detail::RequirementField& field);

nlohmann::json object_schema(const std::string& table_path) {
  nlohmann::json properties = nlohmann::json::object();
  nlohmann::json required = nlohmann::json::array();
  for (const detail::RequirementField* child : detail::child_fields(table_path)) {
    properties[child->key()] = field_schema(*child);
    if (child->presence == detail::Presence::Required) required.push_back(child->key());
  }

  nlohmann::json schema = {{"properties", properties}, {"additionalProperties", false}};
  if (!required.empty()) schema["required"] = required;
  return schema;
}

nlohmann::json field_schema(const detail::RequirementField& field) {
  nlohmann::json schema = {{"type", schema_type(field)}, {"description", field.description}};

  if (field.presence == detail::Presence::Defaulted) schema["default"] = field.default_value;
  if (!field.allowed.empty()) schema["enum"] = field.allowed;
  if (!field.constant.is_null()) schema["const"] = field.constant;
  if (field.non_empty) schema["minLength"] = 1;
  if (!field.minimum.is_null()) schema[field.exclusive_minimum ? "exclusiveMinimum" : "minimum"] = field.minimum;
  if (!field.maximum.is_null()) schema[field.exclusive_maximum ? "exclusiveMaximum" : "maximum"] = field.maximum;

  if (field.kind == detail::JsonKind::Object) schema.update(object_schema(field.path));
  if (field.kind == detail::JsonKind::Array) {
    if (const detail::RequirementField* element = detail::find_requirement_field(field.path + "[]")) {
      schema["items"] = field_schema(*element);
    }
    if (field.unique_items) schema["uniqueItems"] = true;
  }
  return schema;
}

// One if/then rule per task, so that a schema-aware editor flags an objective that does not fit the task.
nlohmann::json objective_rules() {
  nlohmann::json rules = nlohmann::json::array();
  for (const std::string& task_name : detail::task_names()) {
    std::vector<std::string> objectives;
    for (Metric metric : detail::metrics_for_task(*detail::parse_task(task_name))) {
      objectives.push_back(lepton::to_string(metric));
    }
    rules.push_back({{"if", {{"properties", {{"task", {{"const", task_name}}}}}, {"required", {"task"}}}},
                     {"then", {{"properties", {{"objective", {{"enum", objectives}}}}}}}});
  }
  return rules;
}

}  // namespace

nlohmann::json requirements_json_schema() {
  nlohmann::json schema = {
      {"$schema", "https://json-schema.org/draft/2020-12/schema"},
      {"title", "Lepton requirements, version 1"},
      {"description", "What a model must predict and the limits it must respect. Generated from the field table "
                      "in src/train/requirements.cpp; docs/requirements.md explains each field."},
      {"type", "object"},
  };
  schema.update(object_schema(""));
  schema["allOf"] = objective_rules();
  return schema;
}

}  // namespace lepton
