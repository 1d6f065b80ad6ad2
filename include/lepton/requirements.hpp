#pragma once
/// The requirements spec: what the enterprise wants from a model. JSON, versioned; the schema is
/// docs/requirements.schema.json, generated from the same field table that validates documents.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/dataset.hpp"
#include "lepton/metrics.hpp"
#include "lepton/preprocess.hpp"

namespace lepton {

/// How much the model's decisions must be explainable.
enum class Interpretability {
  None,          ///< Any model; no attribution required.
  Attribution,   ///< Every prediction must be explainable with SHAP-style attribution (the default).
  Transparent,   ///< A small model that a person can inspect: few layers, few units.
};

std::string to_string(Interpretability level);

/// Differential-privacy budget for training.
struct PrivacyBudget {
  double epsilon = 0;
  double delta = 1e-5;
  double max_grad_norm = 1.0;  ///< Per-sample clipping norm C.
};

/// Limits the model must respect. Unset fields are unconstrained.
struct Constraints {
  std::optional<double> max_latency_us;         ///< Per-row inference latency, microseconds.
  std::optional<std::uint64_t> max_model_bytes; ///< Size of the artifact's weights.
  std::optional<double> min_metric;             ///< Floor on the objective metric, on the test split.
  Interpretability interpretability = Interpretability::Attribution;
  std::optional<PrivacyBudget> privacy;
  std::optional<double> max_training_seconds;
  double quantization_tolerance = 0.005;        ///< Largest objective drop accepted from int8 export.
};

/// What happens to columns with personal data (Requirements::pii) before anything else reads the table.
enum class PiiHandling {
  Drop,  ///< Removed from the table.
  Hash,  ///< Each value replaced by its keyed BLAKE2b hash, so equal values stay equal; the key is secret.
};

std::string to_string(PiiHandling handling);

/// A parsed and validated requirements document.
struct Requirements {
  static constexpr int kSchemaVersion = 1;

  int version = kSchemaVersion;
  std::string name;
  Task task = Task::BinaryClassification;
  std::string target;
  std::vector<FeatureSpec> features;  ///< Empty: infer from the data.
  std::vector<std::string> exclude;   ///< Columns never used as features (IDs, leakage).
  /// Columns with personal data. Their raw values never reach the model, the report, the logs or error
  /// messages: they are dropped or hashed as soon as the data are read.
  std::vector<std::string> pii;
  PiiHandling pii_handling = PiiHandling::Drop;
  Metric objective = Metric::F1;
  /// "derived_features": "auto" (true) lets the configurator screen differences of numeric features as
  /// extra inputs (derived.hpp); "off" (false) trains on the listed features alone.
  bool search_derived_features = true;
  /// With search_derived_features: true ("auto" or "products") screens differences and products with boosted
  /// splits; false ("differences") screens differences alone.
  bool derive_products = true;
  Constraints constraints;
  SplitFractions split;
  std::uint64_t seed = 42;

  /// The document as canonical JSON (every field, defaults resolved); hashed for provenance.
  nlohmann::json to_json() const;
};

/// Validates and parses a requirements document. Reports every problem at once in a ValidationError,
/// each with its JSON path, the bad value and what is allowed; an unknown key gets "did you mean".
Requirements parse_requirements(const nlohmann::json& document, const std::string& source = "<memory>");

/// Reads and parses a requirements file. JSON syntax errors name file:line:column.
Requirements load_requirements(const std::string& path);

/// The JSON Schema (draft 2020-12) of requirements documents, generated from the field table.
nlohmann::json requirements_json_schema();

}  // namespace lepton
