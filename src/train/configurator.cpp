// Maps requirements and a data profile to a ModelConfig, with the reason for every choice.
// The numbers behind the rules live in configurator_detail.hpp.

#include "lepton/configurator.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/log.hpp"
#include "lepton/privacy.hpp"
#include "runtime/text_detail.hpp"
#include "train/configurator_detail.hpp"
#include "train/requirements_detail.hpp"

namespace lepton {

namespace {

using namespace detail;

// driven_by values: where a choice comes from.
constexpr const char* kDrivenByDefault = "default";
constexpr const char* kDrivenByRows = "data.rows";
constexpr const char* kDrivenByColumns = "data.columns";
constexpr const char* kDrivenByClassBalance = "data.class_balance";
constexpr const char* kDrivenByTask = "requirements.task";
constexpr const char* kDrivenByObjective = "requirements.objective";
constexpr const char* kDrivenBySeed = "requirements.seed";
constexpr const char* kDrivenByFeatures = "requirements.features";
constexpr const char* kDrivenByModelBytes = "requirements.constraints.max_model_bytes";
constexpr const char* kDrivenByLatency = "requirements.constraints.max_latency_us";
constexpr const char* kDrivenByInterpretability = "requirements.constraints.interpretability";
constexpr const char* kDrivenByPrivacy = "requirements.constraints.privacy";
constexpr const char* kDrivenByTrainingSeconds = "requirements.constraints.max_training_seconds";
constexpr const char* kDrivenByMinMetric = "requirements.constraints.min_metric";
constexpr const char* kDrivenByDerivedFeatures = "requirements.derived_features";

void explain(ModelConfig& config, const std::string& field, const std::string& driven_by, const std::string& text) {
  log(LogLevel::Info, fmt::format("configure: {} ({}): {}", field, driven_by, text));
  config.reasons[field] = Reason{text, driven_by};
}

std::string format_layers(const std::vector<std::size_t>& hidden) {
  return fmt::format("{}", fmt::join(hidden, "-"));
}

// ---------------------------------------------------------------------------------------------
// Data shape: rows, encoded inputs and outputs

struct DataShape {
  std::size_t labelled_rows = 0;  ///< Rows with a target value.
  std::size_t training_rows = 0;  ///< labelled_rows * split.train, at least 1.
  /// Rows that each trained model learns from: training_rows for one model, and (K - 1) / K of the training
  /// and validation rows for each of K cross-fitted members. Set once the fold count is chosen.
  std::size_t rows_per_model = 0;
  std::size_t cross_fit_folds = 1;  ///< The chosen fold count, 1 for one model.
  std::size_t cross_fit_pool = 0;   ///< Training and validation rows that the folds split, 0 for one model.
  std::size_t encoded_width = 0;  ///< Inputs of the network after one-hot encoding.
  std::size_t outputs = 1;        ///< 1 for binary and regression, the class count for multiclass.
};

void check_target(const Requirements& requirements, const DataProfile& profile) {
  if (profile.target != requirements.target) {
    throw InvalidArgument(fmt::format(
        "configure: the data profile was computed for target '{}', but the requirements name target '{}'; "
        "profile the table with profile_table(table, \"{}\", task)",
        profile.target, requirements.target, requirements.target));
  }

  const ColumnProfile* target = nullptr;
  try {
    target = &profile.column(requirements.target);
  } catch (const InvalidArgument& error) {
    throw InvalidArgument(fmt::format("configure: the target column from the requirements is missing: {}",
                                      error.what()));
  }

  if (target->kind == ColumnKind::Empty || target->kind == ColumnKind::Constant) {
    throw InvalidArgument(fmt::format("configure: target column '{}' cannot be learned: {}; choose another target",
                                      requirements.target, target->reason));
  }
  if (requirements.task == Task::Regression) return;

  if (profile.classes.size() < 2 || profile.class_counts.size() != profile.classes.size()) {
    throw InvalidArgument(fmt::format(
        "configure: target column '{}' has {} class(es) in the profile; a classifier needs at least 2. "
        "Profile the table with task {} so that classes are counted, or check the target",
        requirements.target, profile.classes.size(), to_string(requirements.task)));
  }
  if (requirements.task == Task::BinaryClassification && profile.classes.size() != 2) {
    // The counts show a stray label at once: one 'yes' among thousands of 0s and 1s is a data error, not a class.
    std::vector<std::string> counted;
    for (std::size_t c = 0; c < profile.classes.size(); ++c) {
      counted.push_back(fmt::format("'{}' {} rows", profile.classes[c], profile.class_counts[c]));
    }
    throw InvalidArgument(fmt::format(
        "configure: task binary_classification needs a target with 2 classes, but '{}' has {}: {}. If a rare "
        "value is a data error, correct those cells or drop those rows; if every value is a real class, set "
        "task to multiclass_classification",
        requirements.target, profile.classes.size(), fmt::join(counted, ", ")));
  }
}

std::size_t labelled_rows(const Requirements& requirements, const DataProfile& profile) {
  if (requirements.task != Task::Regression) {
    return std::accumulate(profile.class_counts.begin(), profile.class_counts.end(), std::size_t{0});
  }
  return profile.rows - profile.column(requirements.target).missing;
}

std::size_t encoded_width(const std::vector<FeatureSpec>& features, const DataProfile& profile) {
  std::size_t width = 0;
  for (const FeatureSpec& feature : features) {
    // One-hot encoding writes one column per category seen in training, at most the distinct count.
    if (feature.type == FeatureType::Categorical) {
      width += std::max<std::size_t>(1, profile.column(feature.column).distinct);
    } else if (feature.type == FeatureType::Numeric) {
      width += 1;
    } else if (feature.type == FeatureType::Text) {
      width += kTextBuckets;
    }
  }
  return width;
}

DataShape describe_data(const Requirements& requirements, const DataProfile& profile,
                        const std::vector<FeatureSpec>& features) {
  DataShape shape;
  shape.labelled_rows = labelled_rows(requirements, profile);
  shape.training_rows = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::floor(static_cast<double>(shape.labelled_rows) * requirements.split.train)));
  shape.rows_per_model = shape.training_rows;
  shape.encoded_width = encoded_width(features, profile);
  shape.outputs = requirements.task == Task::MulticlassClassification ? profile.classes.size() : 1;
  return shape;
}

// ---------------------------------------------------------------------------------------------
// Architecture: the largest candidate that meets the size and latency limits

std::vector<std::size_t> base_hidden_units(const DataShape& shape) {
  std::vector<std::size_t> hidden;
  if (shape.training_rows < kSmallDataRows) {
    hidden = {32};
  } else if (shape.training_rows < kMediumDataRows) {
    hidden = {64, 32};
  } else if (shape.training_rows < kLargeDataRows) {
    hidden = {128, 64};
  } else {
    hidden = {256, 128, 64};
  }

  std::size_t wide_enough = 1;
  while (wide_enough < shape.encoded_width && wide_enough < kMaxFirstLayerUnits) wide_enough *= 2;
  hidden.front() = std::max(hidden.front(), std::min(wide_enough, kMaxFirstLayerUnits));
  return hidden;
}

// Candidates from `start` down to one layer of kSmallestHiddenUnits: halve every width, then drop the last layer.
std::vector<std::vector<std::size_t>> shrinking_candidates(std::vector<std::size_t> start) {
  std::vector<std::vector<std::size_t>> candidates{start};
  while (!(start.size() == 1 && start.front() == kSmallestHiddenUnits)) {
    const bool can_halve = std::any_of(start.begin(), start.end(), [](std::size_t u) { return u > kSmallestHiddenUnits; });
    if (can_halve) {
      for (std::size_t& units : start) units = std::max(kSmallestHiddenUnits, units / 2);
    } else {
      start.pop_back();
    }
    candidates.push_back(start);
  }
  return candidates;
}

struct Footprint {
  std::size_t parameters = 0;     ///< Weights and biases that the model file stores.
  std::uint64_t bytes = 0;
  std::size_t multiply_adds = 0;  ///< Per row, as the predictor's kernels run them.
  double latency_us = 0;          ///< Estimated for this machine's kernels (kernel_throughput).
};

// The latency estimate assumes the kernels that a Predictor built without options would dispatch to here.
SimdLevel estimate_level() { return default_simd_level(); }

// The footprint of `members` members with these hidden layers, merged into one network when members > 1
// (ensemble.hpp): its hidden layers are `members` times as wide. The model file stores only the diagonal
// blocks of its block-diagonal layers (docs/model-format.md), so it stores each member's weights and biases,
// except that the members share one output bias.
Footprint footprint(const DataShape& shape, const std::vector<std::size_t>& hidden, bool int8,
                    std::size_t members = 1) {
  std::vector<std::size_t> merged = hidden;
  for (std::size_t& units : merged) units *= members;

  Footprint result;
  const std::size_t member_parameters = parameter_count(shape.encoded_width, hidden, shape.outputs);
  // Without hidden layers the merged network is one layer that averages the members' weights.
  result.parameters = hidden.empty() ? member_parameters : members * member_parameters - (members - 1) * shape.outputs;
  result.bytes = int8 ? int8_bytes(result.parameters, output_channels(merged, shape.outputs))
                      : fp32_bytes(result.parameters);
  result.multiply_adds = runtime_multiply_adds(shape.encoded_width, hidden, shape.outputs, members, int8);
  result.latency_us = estimated_latency_us(result.multiply_adds, int8, estimate_level());
  return result;
}

// Appends the assumption behind the latency figures in `text`, as its last sentence.
std::string with_latency_basis(const std::string& text) {
  return fmt::format("{}. Latencies are estimates for the {} kernels that a Predictor on this machine "
                     "dispatches to; report.json records the measured single-row latency",
                     text, to_string(estimate_level()));
}

// The first violated limit's driven_by value, or nullptr when the footprint meets both.
const char* violated_limit(const Constraints& constraints, const Footprint& model) {
  if (constraints.max_model_bytes && model.bytes > *constraints.max_model_bytes) return kDrivenByModelBytes;
  if (constraints.max_latency_us && model.latency_us > *constraints.max_latency_us) return kDrivenByLatency;
  return nullptr;
}

// Returns the limits that `model` misses, in the words of limits_text, so that a reason never names a limit as
// exceeded when the model meets it.
std::string exceeded_limits_text(const Constraints& constraints, const Footprint& model) {
  std::vector<std::string> parts;
  if (constraints.max_model_bytes && model.bytes > *constraints.max_model_bytes) {
    parts.push_back(fmt::format("max_model_bytes {}", *constraints.max_model_bytes));
  }
  if (constraints.max_latency_us && model.latency_us > *constraints.max_latency_us) {
    parts.push_back(fmt::format("max_latency_us {:g}", *constraints.max_latency_us));
  }
  return fmt::format("{}", fmt::join(parts, " and "));
}

std::string limits_text(const Constraints& constraints) {
  std::vector<std::string> parts;
  if (constraints.max_model_bytes) parts.push_back(fmt::format("max_model_bytes {}", *constraints.max_model_bytes));
  if (constraints.max_latency_us) parts.push_back(fmt::format("max_latency_us {:g}", *constraints.max_latency_us));
  return fmt::format("{}", fmt::join(parts, " and "));
}

void report_unreachable_limits(const Constraints& constraints, const DataShape& shape,
                               std::vector<std::string>& conflicts) {
  const std::vector<std::size_t> smallest{kSmallestHiddenUnits};
  const Footprint fp32 = footprint(shape, smallest, false);
  const Footprint int8 = footprint(shape, smallest, true);
  // On small layers the int8 kernels' fixed cost can outweigh their faster multiply-adds.
  const bool int8_faster = int8.latency_us < fp32.latency_us;
  const Footprint& fastest = int8_faster ? int8 : fp32;
  const std::string model = fmt::format("one hidden layer of {} units on {} inputs, {} parameters",
                                        kSmallestHiddenUnits, shape.encoded_width, int8.parameters);

  if (constraints.max_model_bytes && int8.bytes > *constraints.max_model_bytes) {
    conflicts.push_back(fmt::format(
        "constraints.max_model_bytes = {} is below the smallest model Lepton builds ({}), which needs {} bytes as "
        "int8 and {} bytes as fp32; raise max_model_bytes to at least {}",
        *constraints.max_model_bytes, model, int8.bytes, fp32.bytes, int8.bytes));
  }
  if (constraints.max_latency_us && fastest.latency_us > *constraints.max_latency_us) {
    conflicts.push_back(fmt::format(
        "constraints.max_latency_us = {:g} is below the estimated latency of the smallest model Lepton builds "
        "({}): {:.3g} us as {}, of which {:g} us is fixed call overhead on this machine's {} kernels; raise "
        "max_latency_us to at least {:.3g}",
        *constraints.max_latency_us, model, fastest.latency_us, int8_faster ? "int8" : "fp32",
        kernel_throughput(estimate_level(), int8_faster).call_overhead_us, to_string(estimate_level()),
        fastest.latency_us));
  }
}

void explain_architecture(ModelConfig& config, const Requirements& requirements, const DataShape& shape,
                          const std::vector<std::size_t>& start, const char* shrunk_by) {
  const Footprint chosen = footprint(shape, config.hidden_units, config.quantize);
  const bool transparent = requirements.constraints.interpretability == Interpretability::Transparent;

  std::string text = fmt::format(
      "{} training rows and {} encoded inputs give hidden layers {} ({} parameters)", shape.training_rows,
      shape.encoded_width, format_layers(start), parameter_count(shape.encoded_width, start, shape.outputs));
  std::string driven_by = kDrivenByRows;
  if (transparent) {
    text += fmt::format(", limited to one layer of at most {} units because interpretability is transparent",
                        kTransparentMaxUnits);
    driven_by = kDrivenByInterpretability;
  }
  if (shrunk_by != nullptr) {
    text += fmt::format("; shrunk to {} ({} parameters, {} bytes, estimated {:.3g} us per row) to meet {}",
                        format_layers(config.hidden_units), chosen.parameters, chosen.bytes, chosen.latency_us,
                        limits_text(requirements.constraints));
    text = with_latency_basis(text);
    driven_by = shrunk_by;
  }
  explain(config, "hidden_units", driven_by, text);
}

void explain_quantize(ModelConfig& config, const Requirements& requirements, const DataShape& shape,
                      const char* limit) {
  const Footprint fp32 = footprint(shape, config.hidden_units, false);
  if (!config.quantize) {
    const bool limited = requirements.constraints.max_model_bytes || requirements.constraints.max_latency_us;
    explain(config, "quantize", kDrivenByDefault,
            limited ? with_latency_basis(fmt::format("The fp32 model ({} bytes, estimated {:.3g} us per row) meets "
                                                     "{}, so no int8 export is needed",
                                                     fp32.bytes, fp32.latency_us,
                                                     limits_text(requirements.constraints)))
                    : "No size or latency limit is set, so the model is exported in fp32 only");
    return;
  }

  const Footprint int8 = footprint(shape, config.hidden_units, true);
  explain(config, "quantize", limit,
          with_latency_basis(fmt::format(
              "The fp32 model ({} bytes, estimated {:.3g} us per row) exceeds {}, but the int8 export ({} bytes, "
              "estimated {:.3g} us) meets {}. The export must stay within a drop of {:g} in the objective",
              fp32.bytes, fp32.latency_us, exceeded_limits_text(requirements.constraints, fp32), int8.bytes,
              int8.latency_us, limits_text(requirements.constraints),
              requirements.constraints.quantization_tolerance)));
}

// Sets hidden_units and quantize, or adds the limits that no candidate meets to `conflicts`.
// Each candidate is tried in fp32 and then in int8 before the next smaller one, so a tight limit
// quantizes before it shrinks: requirements bound the cost of int8 by quantization_tolerance, while
// halving the widths has no such bound.
void choose_architecture(ModelConfig& config, const Requirements& requirements, const DataShape& shape,
                         std::vector<std::string>& conflicts) {
  std::vector<std::size_t> start = base_hidden_units(shape);
  if (requirements.constraints.interpretability == Interpretability::Transparent) {
    start = {std::min(start.front(), kTransparentMaxUnits)};
  }

  const Constraints& constraints = requirements.constraints;
  const char* first_violation = violated_limit(constraints, footprint(shape, start, false));
  for (const std::vector<std::size_t>& candidate : shrinking_candidates(start)) {
    for (const bool int8 : {false, true}) {
      if (violated_limit(constraints, footprint(shape, candidate, int8)) != nullptr) continue;

      config.hidden_units = candidate;
      config.quantize = int8;
      explain_architecture(config, requirements, shape, start, candidate == start ? nullptr : first_violation);
      explain_quantize(config, requirements, shape, first_violation);
      return;
    }
  }

  // The training-time check that follows then judges the smallest model, the best case.
  config.hidden_units = {kSmallestHiddenUnits};
  report_unreachable_limits(constraints, shape, conflicts);
}

// ---------------------------------------------------------------------------------------------
// Cross-fitting

// Rows that cross-fitting trains and validates on: the training and validation splits together.
std::size_t cross_fit_rows(const Requirements& requirements, const DataShape& shape) {
  const double fraction = requirements.split.train + requirements.split.validation;
  return static_cast<std::size_t>(std::floor(static_cast<double>(shape.labelled_rows) * fraction));
}

// Rows that each of `folds` cross-fitted members trains on: all folds of the pool but its own.
std::size_t rows_per_member(std::size_t pool, std::size_t folds) { return pool * (folds - 1) / folds; }

std::size_t smallest_class_rows(const Requirements& requirements, const DataProfile& profile, double fraction) {
  if (requirements.task == Task::Regression) return std::numeric_limits<std::size_t>::max();
  const std::size_t smallest = *std::min_element(profile.class_counts.begin(), profile.class_counts.end());
  return static_cast<std::size_t>(std::floor(static_cast<double>(smallest) * fraction));
}

void choose_cross_fitting(ModelConfig& config, const Requirements& requirements, const DataProfile& profile,
                          const DataShape& shape) {
  config.cross_fit_folds = 1;
  if (requirements.constraints.privacy) {
    explain(config, "cross_fit_folds", kDrivenByPrivacy,
            "DP-SGD trains one model, because every cross-fitted member would spend the privacy budget on the "
            "same rows");
    return;
  }
  if (requirements.constraints.interpretability == Interpretability::Transparent) {
    explain(config, "cross_fit_folds", kDrivenByInterpretability,
            "A transparent model must stay one small network, so no members are merged into it");
    return;
  }

  const std::size_t rows = cross_fit_rows(requirements, shape);
  if (rows > kCrossFitMaxRows) {
    explain(config, "cross_fit_folds", kDrivenByRows,
            fmt::format("{} training and validation rows are more than {}, so one model early-stopped on the "
                        "validation split sees enough rows, and cross-fitting would multiply the training time",
                        rows, kCrossFitMaxRows));
    return;
  }

  const double pool_fraction = requirements.split.train + requirements.split.validation;
  const std::size_t smallest_class = smallest_class_rows(requirements, profile, pool_fraction);
  std::vector<std::string> rejected;
  const char* blocked_by = kDrivenByClassBalance;
  bool quoted_latency = false;
  for (const std::size_t folds : kCrossFitFolds) {
    if (smallest_class < folds * kMinClassRowsPerFold) {
      rejected.push_back(fmt::format("{} folds need {} rows of the smallest class, which has about {}", folds,
                                     folds * kMinClassRowsPerFold, smallest_class));
      continue;
    }
    if (const auto budget = requirements.constraints.max_training_seconds) {
      const std::size_t parameters = parameter_count(shape.encoded_width, config.hidden_units, shape.outputs);
      const double epoch_seconds = estimated_epoch_seconds(rows_per_member(rows, folds), parameters);
      const double epochs = *budget / static_cast<double>(folds) / epoch_seconds;
      if (epochs < static_cast<double>(kMinEpochsPerMember)) {
        blocked_by = kDrivenByTrainingSeconds;
        rejected.push_back(fmt::format("{} folds leave each member about {:.0f} epochs of max_training_seconds {:g}, "
                                       "fewer than {}",
                                       folds, epochs, *budget, kMinEpochsPerMember));
        continue;
      }
    }
    // The int8 export is tried before fewer folds, as for one model before a smaller network: the merged int8
    // network also skips its zero blocks, and quantization_tolerance bounds what it may cost.
    const std::string limits = limits_text(requirements.constraints);
    Footprint merged = footprint(shape, config.hidden_units, config.quantize, folds);
    const char* limit = violated_limit(requirements.constraints, merged);
    std::string int8_tried;
    if (limit != nullptr && !config.quantize) {
      const Footprint merged_int8 = footprint(shape, config.hidden_units, true, folds);
      int8_tried = fmt::format(", and {} bytes, estimated {:.3g} us, in int8", merged_int8.bytes,
                               merged_int8.latency_us);
      if (violated_limit(requirements.constraints, merged_int8) == nullptr) {
        config.quantize = true;
        explain(config, "quantize", limit,
                with_latency_basis(fmt::format(
                    "The merged fp32 model of {} members ({} bytes, estimated {:.3g} us per row) exceeds {}, but its "
                    "int8 export ({} bytes, estimated {:.3g} us) meets {}. The export must stay within a drop of "
                    "{:g} in the objective",
                    folds, merged.bytes, merged.latency_us, exceeded_limits_text(requirements.constraints, merged),
                    merged_int8.bytes, merged_int8.latency_us, limits,
                    requirements.constraints.quantization_tolerance)));
        merged = merged_int8;
        limit = nullptr;
      }
    }
    if (limit != nullptr) {
      blocked_by = limit;
      quoted_latency = true;
      rejected.push_back(fmt::format("{} folds give a merged network of {} bytes, estimated {:.3g} us per row{}, "
                                     "beyond {}",
                                     folds, merged.bytes, merged.latency_us, int8_tried,
                                     exceeded_limits_text(requirements.constraints, merged)));
      continue;
    }

    config.cross_fit_folds = folds;
    // The quantize reason was written for one member, and a size or latency limit now judges the merged model.
    if (!config.quantize && !limits.empty()) {
      explain(config, "quantize", kDrivenByDefault,
              with_latency_basis(fmt::format("The merged fp32 model ({} bytes, estimated {:.3g} us per row) meets "
                                             "{}, so no int8 export is needed",
                                             merged.bytes, merged.latency_us, limits)));
    }
    const std::string fewer =
        rejected.empty() ? "" : fmt::format(". Fewer folds than {}, because {}", kCrossFitFolds[0], fmt::join(rejected, "; "));
    const std::string minority =
        requirements.task == Task::Regression ? ""
                                              : fmt::format(" ({} in the smallest class)", smallest_class);
    explain(config, "cross_fit_folds", rejected.empty() ? kDrivenByRows : blocked_by,
            with_latency_basis(fmt::format(
                "{} training and validation rows{} are few, so {}-fold cross-fitting trains {} members, each on "
                "{} of those rows ({} of {} folds) and early-stopped on the rest, and chooses the threshold on "
                "out-of-fold predictions for all {} rows instead of one validation split. The members are merged "
                "into one network ({} bytes, {} multiply-adds per row{}, estimated {:.3g} us per row){}",
                rows, minority, folds, folds, rows_per_member(rows, folds), folds - 1, folds, rows, merged.bytes,
                merged.multiply_adds, " with zero blocks skipped", merged.latency_us, fewer)));
    return;
  }
  const std::string no_fit =
      fmt::format("One model, early-stopped on the validation split, because no fold count fits: {}",
                  fmt::join(rejected, "; "));
  explain(config, "cross_fit_folds", blocked_by, quoted_latency ? with_latency_basis(no_fit) : no_fit);
}

// Records the rows that each trained model learns from, once the fold count is known.
void record_rows_per_model(DataShape& shape, const Requirements& requirements, std::size_t folds) {
  shape.cross_fit_folds = folds;
  if (folds <= 1) {
    shape.cross_fit_pool = 0;
    shape.rows_per_model = shape.training_rows;
    return;
  }
  shape.cross_fit_pool = cross_fit_rows(requirements, shape);
  shape.rows_per_model = rows_per_member(shape.cross_fit_pool, folds);
}

// The rows that each trained model learns from, as the reasons name them.
std::string rows_per_model_text(const DataShape& shape) {
  if (shape.cross_fit_folds <= 1) return fmt::format("{} training rows", shape.training_rows);
  return fmt::format("{} training rows per cross-fitted member ({} of {} folds of the {} training and validation "
                     "rows)",
                     shape.rows_per_model, shape.cross_fit_folds - 1, shape.cross_fit_folds, shape.cross_fit_pool);
}

// The layers were sized from the single split's training rows before the fold count was known. With
// cross-fitting, the reason also names the rows each member trains on and what the row rule gives for them.
void explain_member_rows(ModelConfig& config, const DataShape& shape) {
  if (shape.cross_fit_folds <= 1) return;

  DataShape member_shape = shape;
  member_shape.training_rows = shape.rows_per_model;
  const std::vector<std::size_t> member_rule = base_hidden_units(member_shape);
  const std::vector<std::size_t> split_rule = base_hidden_units(shape);
  const Reason sized = config.reasons.at("hidden_units");
  // NOTE: the layers stay sized from the single split when the member rows cross a size threshold, because
  // the fold count is chosen for the size and latency of the merged network of these layers.
  const std::string member_text =
      member_rule == split_rule
          ? fmt::format(". Each cross-fitted member trains on {} rows, for which the same rule gives {}",
                        shape.rows_per_model, format_layers(member_rule))
          : fmt::format(". Each cross-fitted member trains on {} rows, for which the rule alone would give {}. "
                        "The layers stay sized from the {} rows of the single training split",
                        shape.rows_per_model, format_layers(member_rule), shape.training_rows);
  explain(config, "hidden_units", sized.driven_by, sized.text + member_text);
}

// ---------------------------------------------------------------------------------------------
// Derived inputs

// Above this many numeric features the differences screen's pairs (n (n - 1) / 2, each cross-validated) would
// take longer than training itself. 12 features give 66 pairs, which took 21 s at the screen's 20,000-row cap
// on 2 Intel cores and 118 s on 2 AMD cores without AVX-512 (tests/bench/bench_derived_screen.py).
// TODO: the products screen, the default, took 2.2 s there; it could screen more features.
constexpr std::size_t kDerivedSearchMaxNumeric = 12;

void choose_derived_search(ModelConfig& config, const Requirements& requirements) {
  config.derived_search = false;
  config.derived_products = false;
  config.derived_features.clear();
  std::size_t numeric = 0;
  for (const FeatureSpec& feature : config.features) numeric += feature.type == FeatureType::Numeric ? 1 : 0;

  const char* driven_by = kDrivenByDefault;
  std::string text;
  if (!requirements.search_derived_features) {
    driven_by = kDrivenByDerivedFeatures;
    text = "No derived inputs: the requirements set derived_features to off";
  } else if (requirements.constraints.privacy) {
    driven_by = kDrivenByPrivacy;
    text = "No derived inputs: the screen reads the training rows outside DP-SGD's privacy accounting";
  } else if (requirements.task != Task::BinaryClassification) {
    driven_by = kDrivenByTask;
    // TODO: screen with a multinomial or squared-error model for multiclass and regression tasks.
    text = fmt::format("No derived inputs: the screen fits a binary logistic model, and the task is {}",
                       to_string(requirements.task));
  } else if (numeric < 2) {
    driven_by = kDrivenByColumns;
    text = fmt::format("No derived inputs: a difference needs two numeric features, and there {} {}",
                       numeric == 1 ? "is" : "are", numeric);
  } else if (numeric > kDerivedSearchMaxNumeric) {
    driven_by = kDrivenByColumns;
    text = fmt::format("No derived inputs: {} numeric features give {} pairs, too many to screen in less time "
                       "than training takes (at most {} features)",
                       numeric, numeric * (numeric - 1) / 2, kDerivedSearchMaxNumeric);
  } else {
    config.derived_search = true;
    driven_by = kDrivenByColumns;
    text = fmt::format("{} numeric features give {} pairs. A failure rule often compares the difference of two "
                       "related measurements (two temperatures) or a product (torque x speed, the power) with a "
                       "threshold, and an MLP learns such a threshold far better when the quantity is an input. "
                       "Before training, a screen on the learning rows chooses which to add",
                       numeric, numeric * (numeric - 1) / 2);
    config.derived_products = requirements.derive_products;
  }
  explain(config, "derived_search", driven_by, text);
  std::string products_text = "No products, because the screen is off";
  if (config.derived_products) {
    products_text = "The screen tries the difference of every pair of numeric features and the product of every "
                    "pair that is never below 0. Boosted splits on a binned additive model's out-of-fold logits "
                    "choose what to keep: a candidate whose splits remove at least 4 % of the log-loss. Each kept "
                    "one also brings a step input at its best split, because ReLU units draw a soft edge where a "
                    "rule has a hard threshold";
  } else if (config.derived_search) {
    products_text = "The requirements set derived_features to differences: differences alone, kept by forward "
                    "selection while one cuts an additive model's cross-validated log-loss by at least 1.5 %";
  }
  explain(config, "derived_products", config.derived_search ? kDrivenByDerivedFeatures : driven_by, products_text);
  explain(config, "derived_features", driven_by,
          config.derived_search ? "Filled in by the screen before training" : "None, because the screen is off");
}

// ---------------------------------------------------------------------------------------------
// Training settings

void choose_regularization(ModelConfig& config, const DataShape& shape) {
  const std::size_t parameters = parameter_count(shape.encoded_width, config.hidden_units, shape.outputs);
  const double rows_per_parameter = static_cast<double>(shape.rows_per_model) / static_cast<double>(parameters);

  config.dropout = rows_per_parameter < kMinRowsPerParameter ? kDropout : 0.0;
  explain(config, "dropout", kDrivenByRows,
          fmt::format("{} for {} parameters is {:.2f} rows per parameter, {} {:g}, so dropout is {:g}",
                      rows_per_model_text(shape), parameters, rows_per_parameter,
                      rows_per_parameter < kMinRowsPerParameter ? "below" : "at least", kMinRowsPerParameter,
                      config.dropout));

  config.weight_decay = kWeightDecay;
  explain(config, "weight_decay", kDrivenByDefault,
          fmt::format("Weight decay {:g} is AdamW's light default regularization for standardized inputs",
                      kWeightDecay));

  config.activation = Activation::Relu;
  explain(config, "activation", kDrivenByDefault,
          "ReLU is cheap at inference and trains reliably in small MLPs");
}

void choose_optimizer(ModelConfig& config) {
  config.optimizer = "adamw";
  explain(config, "optimizer", kDrivenByDefault,
          "AdamW adapts the step per weight and decouples weight decay from the gradient");

  config.learning_rate = kLearningRate;
  explain(config, "learning_rate", kDrivenByDefault,
          fmt::format("Learning rate {:g} with AdamW, decayed by the cosine schedule", kLearningRate));

  config.lr_schedule = "cosine";
  explain(config, "lr_schedule", kDrivenByDefault,
          "Cosine decay after a linear warm-up lowers the step smoothly as training converges");
}

void choose_batch_size(ModelConfig& config, const Requirements& requirements, const DataShape& shape) {
  const std::size_t rows = shape.rows_per_model;
  std::size_t batch = 256;
  if (rows < kSmallBatchRows) {
    batch = 32;
  } else if (rows < kMediumBatchRows) {
    batch = 64;
  } else if (rows < kLargeBatchRows) {
    batch = 128;
  }
  std::string text = fmt::format("{} give batch size {}", rows_per_model_text(shape), batch);
  std::string driven_by = kDrivenByRows;

  if (requirements.constraints.privacy && batch < kPrivateBatchSize) {
    batch = kPrivateBatchSize;
    text = fmt::format("DP-SGD (epsilon {:g}) averages its gradient noise over the batch, so the batch size is "
                       "raised to {}",
                       requirements.constraints.privacy->epsilon, batch);
    driven_by = kDrivenByPrivacy;
  }
  if (batch > rows) {
    batch = rows;
    text += fmt::format(", capped at the {} training rows", rows);
  }

  config.batch_size = batch;
  explain(config, "batch_size", driven_by, text);
}

void choose_epochs(ModelConfig& config, const Requirements& requirements, const DataShape& shape,
                   std::vector<std::string>& conflicts) {
  if (shape.rows_per_model < kManyEpochsRows) {
    config.max_epochs = 200;
    config.patience = 25;
  } else if (shape.rows_per_model < kSomeEpochsRows) {
    config.max_epochs = 100;
    config.patience = 15;
  } else {
    config.max_epochs = 50;
    config.patience = 10;
  }
  std::string epochs_text = fmt::format("{} allow up to {} epochs", rows_per_model_text(shape), config.max_epochs);
  std::string epochs_driven_by = kDrivenByRows;

  if (const auto total_budget = requirements.constraints.max_training_seconds) {
    // Cross-fitted members share the budget, and each trains on (K - 1) / K of the pooled rows.
    const std::size_t members = config.cross_fit_folds;
    const std::size_t member_rows = shape.rows_per_model;
    const double budget = *total_budget / static_cast<double>(members);
    const std::string budget_text =
        members > 1 ? fmt::format("max_training_seconds {:g} shared by {} cross-fitted members ({:.3g} s each)",
                                  *total_budget, members, budget)
                    : fmt::format("max_training_seconds {:g}", *total_budget);
    const std::size_t parameters = parameter_count(shape.encoded_width, config.hidden_units, shape.outputs);
    const double epoch_seconds = estimated_epoch_seconds(member_rows, parameters);
    const double affordable = std::floor(budget / epoch_seconds);

    if (affordable < 1) {
      conflicts.push_back(fmt::format(
          "constraints.max_training_seconds = {:g} is too short: {} is shorter than one epoch, estimated at {:.3g} s "
          "for {} rows and {} parameters ({:g} us per row per 10,000 parameters); raise max_training_seconds to at "
          "least {:.3g}",
          *total_budget, budget_text, epoch_seconds, member_rows, parameters, kTrainingUsPerRowPer10kParameters,
          epoch_seconds * static_cast<double>(members)));
    } else if (affordable < static_cast<double>(config.max_epochs)) {
      config.max_epochs = static_cast<std::size_t>(affordable);
      epochs_text = fmt::format(
          "An epoch is estimated at {:.3g} s ({:g} us per row per 10,000 parameters, {} rows, {} parameters), so "
          "{} allows {} epochs",
          epoch_seconds, kTrainingUsPerRowPer10kParameters, member_rows, parameters, budget_text, config.max_epochs);
      epochs_driven_by = kDrivenByTrainingSeconds;
    } else {
      epochs_text += fmt::format("; the estimated {:.3g} s per epoch fits them all into {}", epoch_seconds,
                                 budget_text);
    }
  }
  explain(config, "max_epochs", epochs_driven_by, epochs_text);

  config.patience = std::max<std::size_t>(1, std::min(config.patience, config.max_epochs));
  explain(config, "patience", kDrivenByRows,
          fmt::format("Training stops after {} epochs without improvement on the validation {}. It keeps the "
                      "weights of the best epoch: among epochs that tie on {}, the one with the lowest validation "
                      "loss. A tie does not restart the count",
                      config.patience, to_string(config.objective), to_string(config.objective)));

  config.warmup_epochs = std::min(kWarmupEpochs, config.max_epochs / kEpochsPerWarmupEpoch);
  explain(config, "warmup_epochs", config.warmup_epochs == kWarmupEpochs ? kDrivenByDefault : epochs_driven_by,
          fmt::format("{} warm-up epochs (at most one in {} of the {} epochs) keep the first AdamW steps small",
                      config.warmup_epochs, kEpochsPerWarmupEpoch, config.max_epochs));
}

void choose_class_weights(ModelConfig& config, const Requirements& requirements, const DataProfile& profile) {
  config.positive_class_weight = 1.0;
  config.class_weights.clear();

  if (requirements.task == Task::BinaryClassification) {
    // classes are sorted, and the runtime's label 1 (the positive class) is the second one.
    const double negatives = static_cast<double>(profile.class_counts[0]);
    const double positives = static_cast<double>(profile.class_counts[1]);
    const double ratio = negatives / positives;
    config.positive_class_weight = std::sqrt(ratio);
    explain(config, "positive_class_weight", kDrivenByClassBalance,
            fmt::format("Positive class '{}' is {:.2f} % of labelled rows (imbalance {:.1f}:1), so positive rows are "
                        "weighted sqrt({:.1f}) = {:.2f}, which lifts recall without the full inverse-frequency swing",
                        profile.classes[1], 100.0 * positives / (negatives + positives), ratio, ratio,
                        config.positive_class_weight));
    explain(config, "class_weights", kDrivenByTask, "Binary tasks weight classes through positive_class_weight");
    return;
  }

  if (requirements.task == Task::MulticlassClassification) {
    std::vector<double> inverse;
    for (std::size_t count : profile.class_counts) inverse.push_back(1.0 / static_cast<double>(count));
    const double mean = std::accumulate(inverse.begin(), inverse.end(), 0.0) / static_cast<double>(inverse.size());
    for (double value : inverse) config.class_weights.push_back(value / mean);

    const auto rarest = static_cast<std::size_t>(
        std::max_element(config.class_weights.begin(), config.class_weights.end()) - config.class_weights.begin());
    explain(config, "class_weights", kDrivenByClassBalance,
            fmt::format("Inverse class frequencies normalised to mean 1; the rarest class '{}' ({} rows, {:.2f} % of "
                        "labelled rows) gets weight {:.2f}",
                        profile.classes[rarest], profile.class_counts[rarest], 100.0 * profile.minority_fraction,
                        config.class_weights[rarest]));
    explain(config, "positive_class_weight", kDrivenByTask, "Multiclass tasks weight classes through class_weights");
    return;
  }

  explain(config, "positive_class_weight", kDrivenByTask, "Regression has no classes to weight");
  explain(config, "class_weights", kDrivenByTask, "Regression has no classes to weight");
}

void choose_threshold_strategy(ModelConfig& config, const Requirements& requirements) {
  if (requirements.task != Task::BinaryClassification) {
    config.threshold_strategy = "fixed_0.5";
    explain(config, "threshold_strategy", kDrivenByTask,
            requirements.task == Task::Regression
                ? "Regression predicts a value, so no decision threshold applies"
                : "Multiclass predictions take the most probable class, so no threshold is tuned");
    return;
  }

  const bool threshold_dependent = config.objective == Metric::F1 || config.objective == Metric::Accuracy;
  config.threshold_strategy = threshold_dependent ? "optimize_objective_on_validation" : "fixed_0.5";
  explain(config, "threshold_strategy", kDrivenByObjective,
          threshold_dependent
              ? fmt::format("{} depends on the decision threshold, so the threshold that maximizes it on {} "
                            "is used",
                            to_string(config.objective),
                            config.cross_fit_folds > 1
                                ? "out-of-fold predictions for the training and validation rows"
                                : "the validation split")
              : fmt::format("{} does not depend on a threshold, so predictions use 0.5", to_string(config.objective)));
}

// Solves the DP-SGD noise multiplier with the RDP accountant for the schedule that the trainer runs:
// max_epochs x ceil(rows / batch) steps, each sampling rows with probability batch / rows.
void choose_noise_multiplier(ModelConfig& config, const DataShape& shape) {
  if (!config.privacy) {
    return;
  }

  const PrivacyBudget& budget = *config.privacy;
  const std::size_t rows = std::max<std::size_t>(1, shape.training_rows);
  const std::size_t batch = std::min(config.batch_size, rows);
  const double sample_rate = static_cast<double>(batch) / static_cast<double>(rows);
  const std::uint64_t steps = static_cast<std::uint64_t>(config.max_epochs) * ((rows + batch - 1) / batch);
  try {
    config.noise_multiplier = solve_noise_multiplier(budget.epsilon, budget.delta, sample_rate, steps);
  } catch (const InvalidArgument& error) {
    throw ConstraintError(fmt::format("constraints.privacy: epsilon {:g} cannot be met: {}", budget.epsilon,
                                      error.what()));
  }
  explain(config, "noise_multiplier", kDrivenByPrivacy,
          fmt::format("The RDP accountant gives noise multiplier {:.4f}: {} steps ({} epochs of {} rows, Poisson "
                      "sampling rate {:.5f}) then spend at most epsilon {:g} at delta {:g}",
                      config.noise_multiplier, steps, config.max_epochs, rows, sample_rate, budget.epsilon,
                      budget.delta));
}

void record_constraints(ModelConfig& config, const Requirements& requirements) {
  const Constraints& constraints = requirements.constraints;

  if (constraints.privacy) {
    config.privacy = constraints.privacy;
    explain(config, "privacy", kDrivenByPrivacy,
            fmt::format("Train with DP-SGD for (epsilon {:g}, delta {:g}) differential privacy, clipping each "
                        "sample's gradient to norm {:g}",
                        constraints.privacy->epsilon, constraints.privacy->delta, constraints.privacy->max_grad_norm));
  }

  // run_pipeline checks min_metric against the test metric in the report, and the CLI exits with code 3 when it fails.
  if (constraints.min_metric) {
    explain(config, "min_metric", kDrivenByMinMetric,
            fmt::format("{} {} {:g} cannot be checked before training; the pipeline compares it with the test-split "
                        "{} after evaluation",
                        to_string(config.objective), higher_is_better(config.objective) ? ">=" : "<=",
                        *constraints.min_metric, to_string(config.objective)));
  }
}

void check_requirements_consistency(const Requirements& requirements, std::vector<std::string>& conflicts) {
  // parse_requirements checks these too, but a host may build Requirements in code.
  const std::vector<Metric> allowed = metrics_for_task(requirements.task);
  if (std::find(allowed.begin(), allowed.end(), requirements.objective) == allowed.end()) {
    std::vector<std::string> names;
    for (Metric metric : allowed) names.push_back(to_string(metric));
    conflicts.push_back(fmt::format("objective {} does not fit task {}; use one of: {}",
                                    to_string(requirements.objective), to_string(requirements.task),
                                    fmt::join(names, ", ")));
  }

  if (requirements.constraints.min_metric) {
    const std::string problem = check_min_metric(requirements.objective, *requirements.constraints.min_metric);
    if (!problem.empty()) conflicts.push_back("constraints." + problem);
  }
}

void throw_if_conflicts(const std::vector<std::string>& conflicts) {
  if (conflicts.empty()) return;

  std::string message = fmt::format("configure: no configuration meets the requirements ({} conflict{}):",
                                    conflicts.size(), conflicts.size() == 1 ? "" : "s");
  for (const std::string& conflict : conflicts) message += "\n  - " + conflict;
  throw ConstraintError(message);
}

void explain_features(ModelConfig& config, const Requirements& requirements, const DataShape& shape,
                      const std::vector<std::string>& dropped) {
  std::vector<std::string> names;
  for (const FeatureSpec& feature : config.features) {
    names.push_back(fmt::format("{} ({})", feature.column, to_string(feature.type)));
  }

  std::string text = fmt::format("{} features, {} encoded inputs: {}", config.features.size(), shape.encoded_width,
                                 fmt::join(names, ", "));
  if (!dropped.empty()) text += fmt::format(". Dropped: {}", fmt::join(dropped, "; "));
  explain(config, "features", requirements.features.empty() ? kDrivenByColumns : kDrivenByFeatures, text);
}

// ---------------------------------------------------------------------------------------------
// Feature selection

bool is_excluded(const Requirements& requirements, const std::string& column) {
  return std::find(requirements.exclude.begin(), requirements.exclude.end(), column) != requirements.exclude.end();
}

// Why inference leaves a column out, or std::nullopt when it becomes a feature.
std::optional<std::string> drop_reason(const Requirements& requirements, const ColumnProfile& column) {
  if (column.name == requirements.target) return "it is the target";
  if (is_excluded(requirements, column.name)) return "listed in exclude";

  switch (column.kind) {
    case ColumnKind::IdLike: return "ID-like: " + column.reason;
    case ColumnKind::Constant: return "constant: " + column.reason;
    case ColumnKind::Empty: return "empty: " + column.reason;
    // Free text is a feature only when the requirements list it with type text: hashed tokens of an
    // unreviewed column (comments, names, addresses) could leak what the model must not see.
    case ColumnKind::Text:
      return "free text, which becomes a feature only when listed in features with type text: " + column.reason;
    case ColumnKind::Numeric:
    case ColumnKind::Categorical: return std::nullopt;
  }
  return std::nullopt;
}

std::vector<FeatureSpec> listed_features(const Requirements& requirements, const DataProfile& profile,
                                         std::vector<std::string>* reasons) {
  std::vector<FeatureSpec> features;
  std::set<std::string> listed;
  for (std::size_t i = 0; i < requirements.features.size(); ++i) {
    const FeatureSpec& spec = requirements.features[i];
    try {
      profile.column(spec.column);
    } catch (const InvalidArgument& error) {
      // Name the requirements field too, as for the target, because the fix may belong in either file.
      throw InvalidArgument(fmt::format("requirements $.features[{}].column: {}. Fix the column name in the "
                                        "requirements or the header of the data file",
                                        i, error.what()));
    }
    listed.insert(spec.column);

    if (spec.type == FeatureType::Ignore) {
      if (reasons) reasons->push_back(fmt::format("'{}': type ignore in features", spec.column));
    } else {
      features.push_back(spec);
    }
  }

  for (const ColumnProfile& column : profile.columns) {
    if (listed.count(column.name) == 0 && reasons) {
      const bool target = column.name == requirements.target;
      reasons->push_back(fmt::format("'{}': {}", column.name, target ? "it is the target" : "not listed in features"));
    }
  }
  return features;
}

std::vector<FeatureSpec> inferred_features(const Requirements& requirements, const DataProfile& profile,
                                           std::vector<std::string>* reasons) {
  std::vector<FeatureSpec> features;
  for (const ColumnProfile& column : profile.columns) {
    if (const auto reason = drop_reason(requirements, column)) {
      if (reasons) reasons->push_back(fmt::format("'{}': {}", column.name, *reason));
      continue;
    }
    features.push_back({column.name, column.kind == ColumnKind::Categorical ? FeatureType::Categorical
                                                                            : FeatureType::Numeric});
  }
  return features;
}

}  // namespace

std::vector<FeatureSpec> select_features(const Requirements& requirements, const DataProfile& profile,
                                         std::vector<std::string>* reasons) {
  std::vector<FeatureSpec> features = requirements.features.empty()
                                          ? inferred_features(requirements, profile, reasons)
                                          : listed_features(requirements, profile, reasons);

  // A misspelled exclude entry would let an ID or leakage column into the model, so it is an error.
  std::vector<std::string> column_names;
  for (const ColumnProfile& column : profile.columns) column_names.push_back(column.name);
  std::vector<std::string> unknown;
  for (const std::string& name : requirements.exclude) {
    if (std::find(column_names.begin(), column_names.end(), name) != column_names.end()) continue;
    const std::string suggestion = detail::closest_name(name, column_names);
    unknown.push_back(suggestion.empty() ? fmt::format("'{}'", name)
                                         : fmt::format("'{}' (did you mean '{}'?)", name, suggestion));
  }
  if (!unknown.empty()) {
    throw InvalidArgument(fmt::format(
        "requirements $.exclude lists {} that the data does not have: {}. Fix the spelling or remove the entry, "
        "because a misspelled exclusion would let that column into the model",
        unknown.size() == 1 ? "a column" : "columns", fmt::join(unknown, ", ")));
  }
  return features;
}

ModelConfig configure(const Requirements& requirements, const DataProfile& profile) {
  check_target(requirements, profile);

  ModelConfig config;
  config.task = requirements.task;
  explain(config, "task", kDrivenByTask, fmt::format("The requirements ask for {}", to_string(requirements.task)));
  config.objective = requirements.objective;
  explain(config, "objective", kDrivenByObjective,
          fmt::format("Model selection and the threshold optimize {}", to_string(requirements.objective)));
  config.seed = requirements.seed;
  explain(config, "seed", kDrivenBySeed,
          fmt::format("Seed {} fixes the split, the initial weights and the batch order", requirements.seed));

  std::vector<std::string> dropped;
  config.features = select_features(requirements, profile, &dropped);
  if (config.features.empty()) {
    throw InvalidArgument(fmt::format("configure: no feature columns remain ({}); list features in the "
                                      "requirements or remove columns from exclude",
                                      fmt::format("{}", fmt::join(dropped, "; "))));
  }
  DataShape shape = describe_data(requirements, profile, config.features);
  explain_features(config, requirements, shape, dropped);

  std::vector<std::string> conflicts;
  check_requirements_consistency(requirements, conflicts);
  choose_architecture(config, requirements, shape, conflicts);
  choose_cross_fitting(config, requirements, profile, shape);
  record_rows_per_model(shape, requirements, config.cross_fit_folds);
  explain_member_rows(config, shape);
  choose_derived_search(config, requirements);
  choose_epochs(config, requirements, shape, conflicts);
  throw_if_conflicts(conflicts);

  choose_regularization(config, shape);
  choose_optimizer(config);
  choose_batch_size(config, requirements, shape);
  choose_class_weights(config, requirements, profile);
  choose_threshold_strategy(config, requirements);
  record_constraints(config, requirements);
  choose_noise_multiplier(config, shape);
  return config;
}

// ---------------------------------------------------------------------------------------------
// JSON form of ModelConfig

namespace {

const std::vector<std::string> kLrSchedules{"constant", "cosine", "plateau"};
const std::vector<std::string> kThresholdStrategies{"optimize_objective_on_validation", "fixed_0.5"};
const std::vector<std::string> kOptimizers{"adamw"};

std::optional<Activation> parse_activation_name(const std::string& name) {
  for (Activation activation : {Activation::Identity, Activation::Relu, Activation::Gelu, Activation::Tanh}) {
    if (to_string(activation) == name) return activation;
  }
  return std::nullopt;
}

std::vector<std::string> activation_names() {
  std::vector<std::string> names;
  for (Activation activation : {Activation::Identity, Activation::Relu, Activation::Gelu, Activation::Tanh}) {
    names.push_back(to_string(activation));
  }
  return names;
}

// JSON built in C++ from an int holds a signed integer even when it is positive, so both forms count.
bool is_non_negative_integer(const nlohmann::json& value) {
  return value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0);
}

// Reads the members of one JSON object and collects every problem, each prefixed with its JSON path.
class ObjectReader {
 public:
  ObjectReader(const nlohmann::json& object, std::string path, std::vector<std::string>& problems)
      : object_(object), path_(std::move(path)), problems_(problems) {
    if (!object_.is_object()) fail(path_, fmt::format("expected an object, got {}", object_.type_name()));
  }

  bool valid() const { return object_.is_object(); }
  std::string member_path(const std::string& key) const { return path_ + "." + key; }

  // Reports every member that is not in `known`.
  void reject_unknown(const std::vector<std::string>& known) {
    if (!valid()) return;
    for (const auto& [key, value] : object_.items()) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      const auto suggestion = closest_match(key, known);
      fail(member_path(key), suggestion ? fmt::format("unknown key '{}'; did you mean '{}'?", key, *suggestion)
                                        : fmt::format("unknown key '{}'", key));
    }
  }

  // The member, or nullptr after reporting it missing (when required) or of the wrong type.
  const nlohmann::json* find(const std::string& key, nlohmann::json::value_t type, bool required = true) {
    if (!valid()) return nullptr;
    const auto it = object_.find(key);
    if (it == object_.end()) {
      if (required) fail(member_path(key), "missing required key");
      return nullptr;
    }

    const bool matches = type == nlohmann::json::value_t::number_float ? it->is_number()
                         : type == nlohmann::json::value_t::number_unsigned ? is_non_negative_integer(*it)
                                                                            : it->type() == type;
    if (!matches) {
      const std::string expected = type == nlohmann::json::value_t::number_unsigned ? "non-negative integer"
                                   : type == nlohmann::json::value_t::number_float ? "number"
                                                                                   : nlohmann::json(type).type_name();
      fail(member_path(key), fmt::format("expected {}, got {}", expected, it->dump()));
      return nullptr;
    }
    return &*it;
  }

  void read_string(const std::string& key, std::string& out, const std::vector<std::string>& allowed) {
    const nlohmann::json* value = find(key, nlohmann::json::value_t::string);
    if (value == nullptr) return;
    const std::string text = value->get<std::string>();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), text) == allowed.end()) {
      fail(member_path(key), fmt::format("unknown value '{}'; expected one of: {}", text, fmt::join(allowed, ", ")));
      return;
    }
    out = text;
  }

  void read_count(const std::string& key, std::size_t& out, std::size_t minimum, bool required = true) {
    const nlohmann::json* value = find(key, nlohmann::json::value_t::number_unsigned, required);
    if (value == nullptr) return;
    if (value->get<std::uint64_t>() < minimum) {
      fail(member_path(key), fmt::format("expected at least {}, got {}", minimum, value->dump()));
      return;
    }
    out = value->get<std::size_t>();
  }

  // Reads a finite number in [low, high), or in [low, inf) when high is not finite.
  void read_number(const std::string& key, double& out, double low, double high) {
    const nlohmann::json* value = find(key, nlohmann::json::value_t::number_float);
    if (value == nullptr) return;
    const double number = value->get<double>();
    if (!std::isfinite(number) || number < low || (std::isfinite(high) && number >= high)) {
      fail(member_path(key), std::isfinite(high)
                                 ? fmt::format("expected a number in [{:g}, {:g}), got {}", low, high, value->dump())
                                 : fmt::format("expected a number of at least {:g}, got {}", low, value->dump()));
      return;
    }
    out = number;
  }

  void fail(const std::string& path, const std::string& message) {
    problems_.push_back(fmt::format("{}: {}", path, message));
  }

 private:
  const nlohmann::json& object_;
  std::string path_;
  std::vector<std::string>& problems_;
};

constexpr double kUnbounded = std::numeric_limits<double>::infinity();

template <typename Enum>
void read_enum(ObjectReader& reader, const std::string& key, Enum& out, const std::vector<std::string>& names,
               std::optional<Enum> (*parse)(const std::string&)) {
  std::string text;
  reader.read_string(key, text, names);
  if (const auto parsed = parse(text)) out = *parsed;
}

std::optional<Metric> parse_metric_name(const std::string& name) {
  Metric metric{};
  if (!parse_metric(name, metric)) return std::nullopt;
  return metric;
}

void read_features(ObjectReader& reader, ModelConfig& config, std::vector<std::string>& problems) {
  const nlohmann::json* features = reader.find("features", nlohmann::json::value_t::array);
  if (features == nullptr) return;

  config.features.clear();
  for (std::size_t i = 0; i < features->size(); ++i) {
    ObjectReader feature(features->at(i), fmt::format("{}[{}]", reader.member_path("features"), i), problems);
    feature.reject_unknown({"column", "type", "log_column"});
    FeatureSpec spec;
    feature.read_string("column", spec.column, {});
    read_enum(feature, "type", spec.type, feature_type_names(), &parse_feature_type);
    // Optional: only features that a product or ratio input reads have it.
    if (const nlohmann::json* log_column = feature.find("log_column", nlohmann::json::value_t::boolean, false)) {
      spec.log_column = log_column->get<bool>();
    }
    config.features.push_back(spec);
  }
}

void read_hidden_units(ObjectReader& reader, ModelConfig& config) {
  const nlohmann::json* hidden = reader.find("hidden_units", nlohmann::json::value_t::array);
  if (hidden == nullptr) return;

  config.hidden_units.clear();
  for (std::size_t i = 0; i < hidden->size(); ++i) {
    const nlohmann::json& units = hidden->at(i);
    if (!is_non_negative_integer(units) || units.get<std::uint64_t>() == 0) {
      reader.fail(fmt::format("{}[{}]", reader.member_path("hidden_units"), i),
                  fmt::format("expected a positive integer, got {}", units.dump()));
      continue;
    }
    config.hidden_units.push_back(units.get<std::size_t>());
  }
}

void read_class_weights(ObjectReader& reader, ModelConfig& config) {
  const nlohmann::json* weights = reader.find("class_weights", nlohmann::json::value_t::array);
  if (weights == nullptr) return;

  config.class_weights.clear();
  for (std::size_t i = 0; i < weights->size(); ++i) {
    const nlohmann::json& weight = weights->at(i);
    if (!weight.is_number() || !(weight.get<double>() > 0) || !std::isfinite(weight.get<double>())) {
      reader.fail(fmt::format("{}[{}]", reader.member_path("class_weights"), i),
                  fmt::format("expected a positive number, got {}", weight.dump()));
      continue;
    }
    config.class_weights.push_back(weight.get<double>());
  }
}

void read_privacy(ObjectReader& reader, ModelConfig& config, std::vector<std::string>& problems) {
  const nlohmann::json* privacy = reader.find("privacy", nlohmann::json::value_t::object, false);
  if (privacy == nullptr) return;

  ObjectReader budget_reader(*privacy, reader.member_path("privacy"), problems);
  budget_reader.reject_unknown({"epsilon", "delta", "max_grad_norm", "noise_multiplier"});
  PrivacyBudget budget;
  budget_reader.read_number("epsilon", budget.epsilon, std::numeric_limits<double>::min(), kUnbounded);
  budget_reader.read_number("delta", budget.delta, std::numeric_limits<double>::min(), 1.0);
  budget_reader.read_number("max_grad_norm", budget.max_grad_norm, std::numeric_limits<double>::min(), kUnbounded);
  budget_reader.read_number("noise_multiplier", config.noise_multiplier, 0.0, kUnbounded);
  config.privacy = budget;
}

void read_reasons(ObjectReader& reader, ModelConfig& config, std::vector<std::string>& problems) {
  const nlohmann::json* reasons = reader.find("reasons", nlohmann::json::value_t::object, false);
  if (reasons == nullptr) return;

  config.reasons.clear();
  for (const auto& [field, entry] : reasons->items()) {
    ObjectReader reason_reader(entry, reader.member_path("reasons") + "." + field, problems);
    reason_reader.reject_unknown({"reason", "driven_by"});
    Reason reason;
    reason_reader.read_string("reason", reason.text, {});
    reason_reader.read_string("driven_by", reason.driven_by, {});
    config.reasons[field] = reason;
  }
}

}  // namespace

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json features_json = nlohmann::json::array();
  for (const FeatureSpec& feature : features) {
    nlohmann::json entry = {{"column", feature.column}, {"type", lepton::to_string(feature.type)}};
    if (feature.log_column) entry["log_column"] = true;
    features_json.push_back(std::move(entry));
  }

  nlohmann::json reasons_json = nlohmann::json::object();
  for (const auto& [field, reason] : reasons) {
    reasons_json[field] = {{"reason", reason.text}, {"driven_by", reason.driven_by}};
  }

  nlohmann::json derived_json = nlohmann::json::array();
  for (const DerivedInput& derived : derived_features) derived_json.push_back(derived.to_json());

  nlohmann::json j = {
      {"task", lepton::to_string(task)},
      {"features", features_json},
      {"hidden_units", hidden_units},
      {"activation", lepton::to_string(activation)},
      {"dropout", dropout},
      {"weight_decay", weight_decay},
      {"optimizer", optimizer},
      {"learning_rate", learning_rate},
      {"lr_schedule", lr_schedule},
      {"warmup_epochs", warmup_epochs},
      {"batch_size", batch_size},
      {"max_epochs", max_epochs},
      {"patience", patience},
      {"positive_class_weight", positive_class_weight},
      {"class_weights", class_weights},
      {"threshold_strategy", threshold_strategy},
      {"quantize", quantize},
      {"cross_fit_folds", cross_fit_folds},
      {"derived_search", derived_search},
      {"derived_products", derived_products},
      {"derived_features", derived_json},
      {"objective", lepton::to_string(objective)},
      {"seed", seed},
      {"reasons", reasons_json},
  };
  if (privacy) {
    j["privacy"] = {{"epsilon", privacy->epsilon},
                    {"delta", privacy->delta},
                    {"max_grad_norm", privacy->max_grad_norm},
                    {"noise_multiplier", noise_multiplier}};
  }
  return j;
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& json_path) {
  std::vector<std::string> problems;
  ObjectReader reader(j, json_path, problems);
  reader.reject_unknown({"task", "features", "hidden_units", "activation", "dropout", "weight_decay", "optimizer",
                         "learning_rate", "lr_schedule", "warmup_epochs", "batch_size", "max_epochs", "patience",
                         "positive_class_weight", "class_weights", "threshold_strategy", "quantize", "cross_fit_folds", "derived_search", "derived_products", "derived_features",
                         "objective", "seed", "privacy", "reasons"});

  ModelConfig config;
  read_enum(reader, "task", config.task, task_names(), &parse_task);
  read_features(reader, config, problems);
  read_hidden_units(reader, config);
  read_enum(reader, "activation", config.activation, activation_names(), &parse_activation_name);
  reader.read_number("dropout", config.dropout, 0.0, 1.0);
  reader.read_number("weight_decay", config.weight_decay, 0.0, kUnbounded);
  reader.read_string("optimizer", config.optimizer, kOptimizers);
  reader.read_number("learning_rate", config.learning_rate, std::numeric_limits<double>::min(), kUnbounded);
  reader.read_string("lr_schedule", config.lr_schedule, kLrSchedules);
  reader.read_count("warmup_epochs", config.warmup_epochs, 0);
  reader.read_count("batch_size", config.batch_size, 1);
  reader.read_count("max_epochs", config.max_epochs, 1);
  reader.read_count("patience", config.patience, 1);
  reader.read_number("positive_class_weight", config.positive_class_weight, std::numeric_limits<double>::min(),
                     kUnbounded);
  read_class_weights(reader, config);
  reader.read_string("threshold_strategy", config.threshold_strategy, kThresholdStrategies);
  if (const nlohmann::json* quantize = reader.find("quantize", nlohmann::json::value_t::boolean)) {
    config.quantize = quantize->get<bool>();
  }
  // Optional, because configurations written before cross-fitting existed do not have it.
  reader.read_count("cross_fit_folds", config.cross_fit_folds, 1, false);
  // Optional too: configurations written before the derived-input screen existed have neither key.
  if (const nlohmann::json* products = reader.find("derived_products", nlohmann::json::value_t::boolean, false)) {
    config.derived_products = products->get<bool>();
  }
  if (const nlohmann::json* search = reader.find("derived_search", nlohmann::json::value_t::boolean, false)) {
    config.derived_search = search->get<bool>();
  }
  if (const nlohmann::json* derived = reader.find("derived_features", nlohmann::json::value_t::array, false)) {
    for (std::size_t i = 0; i < derived->size(); ++i) {
      try {
        config.derived_features.push_back(
            DerivedInput::from_json((*derived)[i], fmt::format("{}.derived_features[{}]", json_path, i)));
      } catch (const ParseError& error) {
        problems.push_back(error.what());
      }
    }
  }
  read_enum(reader, "objective", config.objective, metric_names(), &parse_metric_name);
  if (const nlohmann::json* seed = reader.find("seed", nlohmann::json::value_t::number_unsigned)) {
    config.seed = seed->get<std::uint64_t>();
  }
  read_privacy(reader, config, problems);
  read_reasons(reader, config, problems);

  if (!problems.empty()) {
    throw ParseError(fmt::format("ModelConfig::from_json: {} problem{}: {}", problems.size(),
                                 problems.size() == 1 ? "" : "s", fmt::join(problems, "; ")));
  }
  return config;
}

}  // namespace lepton
