#pragma once
/// Maps requirements and a data profile to a model configuration, with the reason for each choice.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/dataset.hpp"
#include "lepton/derived.hpp"
#include "lepton/model.hpp"
#include "lepton/requirements.hpp"

namespace lepton {

/// Why one setting has its value, and which constraint or data property decided it.
struct Reason {
  std::string text;       ///< One sentence, e.g. "Minority class is 3.4 %, so positives are weighted 5.2x".
  std::string driven_by;  ///< "requirements.constraints.max_model_bytes", "data.class_balance", "default", ...
};

/// A resolved, trainable configuration. Every field has an entry in `reasons`, keyed by field name.
struct ModelConfig {
  Task task = Task::BinaryClassification;
  std::vector<FeatureSpec> features;
  std::vector<std::size_t> hidden_units{128, 64};
  Activation activation = Activation::Relu;
  double dropout = 0.0;
  double weight_decay = 1e-4;
  std::string optimizer = "adamw";
  double learning_rate = 1e-3;
  std::string lr_schedule = "cosine";  ///< "constant", "cosine" (with warm-up) or "plateau".
  std::size_t warmup_epochs = 0;
  std::size_t batch_size = 32;
  std::size_t max_epochs = 100;
  std::size_t patience = 15;            ///< Epochs without validation improvement before stopping.
  double positive_class_weight = 1.0;   ///< Binary: weight of positive rows in the loss.
  std::vector<double> class_weights;    ///< Multiclass: weight per class id.
  std::string threshold_strategy = "optimize_objective_on_validation";  ///< or "fixed_0.5".
  bool quantize = false;                ///< Export an int8 model as well.
  /// K > 1: train K members by K-fold cross-fitting on the training and validation rows together, choose the
  /// threshold on their out-of-fold predictions, and export the members merged into one network
  /// (ensemble.hpp). 1: one model, early-stopped on the validation split.
  std::size_t cross_fit_folds = 1;
  /// Screen differences of numeric features on the learning rows before training (derived.hpp). The
  /// pipeline runs the screen and fills `derived_features`. The trainer receives them as extra input
  /// columns, and the exported network takes the encoded columns alone.
  bool derived_search = false;
  /// With derived_search: screen products too (DerivedSearchOptions::products). Configurations written before
  /// this field existed lack it and mean false.
  bool derived_products = false;
  std::vector<DerivedInput> derived_features;
  Metric objective = Metric::F1;
  std::uint64_t seed = 42;
  std::optional<PrivacyBudget> privacy;  ///< DP-SGD budget; std::nullopt trains without differential privacy.
  /// DP-SGD noise standard deviation in units of privacy->max_grad_norm, solved by the accountant for the
  /// budget and the schedule (max_epochs x ceil(rows / batch_size) steps). 0 with a finite budget: the
  /// trainer solves it. Stored in the JSON form's "privacy" object.
  double noise_multiplier = 0;
  std::map<std::string, Reason> reasons;

  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j, const std::string& json_path = "$");
};

/// The columns that become features: the explicit list, or every column that is not the target,
/// excluded, ID-like, constant, empty or text. `reasons` receives one line per dropped column.
std::vector<FeatureSpec> select_features(const Requirements& requirements, const DataProfile& profile,
                                         std::vector<std::string>* reasons = nullptr);

/// Chooses a configuration for the requirements and data. Throws ConstraintError that names every
/// constraint that no configuration can meet, and InvalidArgument for a target column that is missing.
ModelConfig configure(const Requirements& requirements, const DataProfile& profile);

}  // namespace lepton
