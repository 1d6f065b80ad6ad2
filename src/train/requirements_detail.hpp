#pragma once
/// Private: the field table of requirements documents, and the name lookups that validation,
/// the JSON Schema and the configurator share. Not installed.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/dataset.hpp"
#include "lepton/error.hpp"
#include "lepton/metrics.hpp"
#include "lepton/requirements.hpp"

namespace lepton::detail {

/// JSON type of a field, as JSON Schema names it.
enum class JsonKind { Object, Array, String, Number, Integer };

/// Whether a field may be left out of a document, and what then applies.
enum class Presence {
  Required,   ///< Must be present and not null.
  Defaulted,  ///< May be left out; `default_value` applies.
  Nullable,   ///< May be left out or null; means "not set" (for example "no latency limit").
  Derived,    ///< May be left out; the default depends on other fields (objective from task).
};

/// One field of a requirements document. The table of these drives validation, defaults, to_json,
/// the JSON Schema and docs/requirements.md.
struct RequirementField {
  /// Dotted path without "$". "[]" stands for every element of an array: "features[].column".
  std::string path;
  JsonKind kind = JsonKind::String;
  Presence presence = Presence::Defaulted;
  nlohmann::json default_value;  ///< Defaulted fields only; null otherwise.
  nlohmann::json minimum;        ///< Null when unbounded.
  nlohmann::json maximum;        ///< Null when unbounded.
  bool exclusive_minimum = false;
  bool exclusive_maximum = false;
  std::vector<std::string> allowed;  ///< Enumerated string values; empty when any string is allowed.
  nlohmann::json constant;           ///< The only allowed value, or null.
  bool non_empty = false;            ///< Strings: at least one character.
  bool unique_items = false;         ///< Arrays: no element may repeat.
  std::string description;

  RequirementField(std::string field_path, JsonKind field_kind)
      : path(std::move(field_path)), kind(field_kind) {}

  RequirementField& required() { presence = Presence::Required; return *this; }
  RequirementField& nullable() { presence = Presence::Nullable; return *this; }
  RequirementField& derived() { presence = Presence::Derived; return *this; }
  RequirementField& defaults_to(nlohmann::json value) { presence = Presence::Defaulted; default_value = std::move(value); return *this; }
  RequirementField& at_least(nlohmann::json bound) { minimum = std::move(bound); exclusive_minimum = false; return *this; }
  RequirementField& above(nlohmann::json bound) { minimum = std::move(bound); exclusive_minimum = true; return *this; }
  RequirementField& below(nlohmann::json bound) { maximum = std::move(bound); exclusive_maximum = true; return *this; }
  RequirementField& at_most(nlohmann::json bound) { maximum = std::move(bound); exclusive_maximum = false; return *this; }
  RequirementField& one_of(std::vector<std::string> values) { allowed = std::move(values); return *this; }
  RequirementField& equal_to(nlohmann::json value) { constant = std::move(value); return *this; }
  RequirementField& not_empty() { non_empty = true; return *this; }
  RequirementField& unique() { unique_items = true; return *this; }
  RequirementField& describe(std::string text) { description = std::move(text); return *this; }

  /// The last path segment: "epsilon" for "constraints.privacy.epsilon", "[]" for array elements.
  std::string key() const;
  /// The path of the enclosing object or array: "" for top-level keys.
  std::string parent() const;
};

/// Every field of a version 1 document, parents before children.
const std::vector<RequirementField>& requirement_fields();

/// The field at `path`, or nullptr.
const RequirementField* find_requirement_field(std::string_view path);

/// The fields directly inside the object at `parent_path` ("" for the document root), in table order.
std::vector<const RequirementField*> child_fields(std::string_view parent_path);

/// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent transpositions
/// each cost 1 (the restricted Damerau-Levenshtein distance).
std::size_t transposition_edit_distance(std::string_view a, std::string_view b);  // distinct from the runtime's Levenshtein edit_distance

/// The candidate closest to `word` when it equals it ignoring case or lies within edit distance 2;
/// std::nullopt otherwise. Ties keep the earlier candidate.
std::optional<std::string> closest_match(const std::string& word, const std::vector<std::string>& candidates);

/// Names as requirements documents spell them. They come from the to_string functions of the runtime,
/// so that every part of Lepton spells a value the same way.
std::vector<std::string> task_names();
std::vector<std::string> feature_type_names();
std::vector<std::string> metric_names();
std::vector<std::string> interpretability_names();

std::optional<Task> parse_task(const std::string& name);
std::optional<FeatureType> parse_feature_type(const std::string& name);
std::optional<Interpretability> parse_interpretability(const std::string& name);

/// The objectives that make sense for a task, in the order the docs list them.
std::vector<Metric> metrics_for_task(Task task);

/// The objective used when a document names none: f1, macro_f1 or rmse.
Metric default_objective(Task task);

/// The values a metric can take, for checking min_metric. Null bounds are unbounded.
struct MetricRange {
  std::optional<double> lowest;
  std::optional<double> highest;
};
MetricRange metric_range(Metric metric);

/// Checks min_metric against the range of the objective. Returns the problem text, or an empty string.
std::string check_min_metric(Metric objective, double min_metric);

/// Validates `document` on top of the `problems` found so far and throws ValidationError listing all
/// of them. load_requirements passes in the duplicate keys that it found while parsing the text.
Requirements parse_requirements_collecting(const nlohmann::json& document, const std::string& source,
                                           std::vector<ValidationProblem> problems);

}  // namespace lepton::detail
