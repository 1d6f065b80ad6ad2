// Run report: one JSON document, and a Markdown view rendered from it so the two never disagree.
#include "train/report.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/log.hpp"
#include "lepton/predictor.hpp"
#include "lepton/version.hpp"
#include "runtime/artifact_detail.hpp"
#include "train/configurator_detail.hpp"

namespace lepton::detail {
namespace {

using nlohmann::json;

json constraint_row(const std::string& name, const json& required, const json& measured, bool met,
                    const std::string& note) {
  return {{"constraint", name}, {"required", required}, {"measured", measured}, {"met", met}, {"note", note}};
}

// The single-row latency that the latency limit judges: the int8 export's when the run wrote one.
struct JudgedLatency {
  bool int8 = false;
  double measured_us = 0;
  double estimated_us = 0;
  std::string file;  // The judged file's name in the output folder.
};

// The weight bytes that max_model_bytes judges: the int8 export's when the run wrote one, because the
// configurator chose that export to meet the limit.
struct JudgedSize {
  bool int8 = false;
  std::uint64_t bytes = 0;
  std::string file;  // The judged file's name in the output folder.
};

// Weights that are not zero, plus every bias. A merged cross-fitted network holds zeros between its members'
// blocks, which parameter_count() includes and this count leaves out.
std::size_t nonzero_parameter_count(const Mlp& network) {
  std::size_t count = 0;
  for (const DenseLayer& layer : network.layers) {
    count += static_cast<std::size_t>(
        std::count_if(layer.weight.begin(), layer.weight.end(), [](float weight) { return weight != 0.0f; }));
    count += layer.bias.size();
  }
  return count;
}

// The interpretability requirement and how the run meets it. Attribution is met by the exact SHAP section
// of this report, which the model's stored background lets `lepton explain` repeat for new rows.
// Transparent is met by one hidden layer of at most kTransparentMaxUnits units, the shape that the
// configurator builds for it.
json interpretability_row(const Requirements& requirements, const PipelineResult& result,
                          const ModelArtifact& artifact) {
  const Interpretability required = requirements.constraints.interpretability;
  const bool explained = result.explanations.is_object() && result.explanations.contains("global_importance");
  const std::string shap = explained ? "exact SHAP attributions" : "no attributions";

  if (required == Interpretability::Transparent) {
    const std::size_t hidden_layers = artifact.network.layers.empty() ? 0 : artifact.network.layers.size() - 1;
    const std::size_t units = hidden_layers == 0 ? 0 : artifact.network.layers.front().outputs;
    const bool met = hidden_layers <= 1 && units <= kTransparentMaxUnits;
    return constraint_row("interpretability", to_string(required),
                          fmt::format("{} hidden layer(s) of {} units", hidden_layers, units), met,
                          fmt::format("at most one hidden layer of at most {} units; {} in this report",
                                      kTransparentMaxUnits, shap));
  }
  if (required == Interpretability::Attribution) {
    return constraint_row("interpretability", to_string(required), shap, explained,
                          "exact Shapley values of the test rows over the background stored in the model, in "
                          "this report; `lepton explain` computes them for new rows");
  }
  return constraint_row("interpretability", to_string(required), shap, true, "no attribution required");
}

// Checks each constraint that can be measured after training against what the run produced.

json check_constraints(const Requirements& requirements, const PipelineResult& result, const ModelArtifact& artifact,
                       const JudgedLatency& latency, const JudgedSize& size) {
  const Constraints& c = requirements.constraints;
  json rows = json::array();

  if (c.min_metric) {
    const double measured = result.test.value(requirements.objective);
    const bool met = higher_is_better(requirements.objective) ? measured >= *c.min_metric : measured <= *c.min_metric;
    rows.push_back(constraint_row("min_metric", *c.min_metric, measured, met,
                                  fmt::format("{} on the test split", to_string(requirements.objective))));
  }
  if (c.max_model_bytes) {
    const std::string note = size.int8 ? fmt::format("int8 weights, fp32 biases and fp32 per-channel weight scales "
                                                     "of {}",
                                                     size.file)
                                       : fmt::format("fp32 weights and biases of {}", size.file);
    rows.push_back(
        constraint_row("max_model_bytes", *c.max_model_bytes, size.bytes, size.bytes <= *c.max_model_bytes, note));
  }
  if (c.max_latency_us) {
    rows.push_back(constraint_row("max_latency_us", *c.max_latency_us, latency.measured_us,
                                  latency.measured_us <= *c.max_latency_us,
                                  fmt::format("median single-row predict() of {} from an encoded row, measured on "
                                              "this machine",
                                              latency.file)));
  }
  if (c.max_training_seconds) {
    rows.push_back(constraint_row("max_training_seconds", *c.max_training_seconds, result.training.seconds,
                                  result.training.seconds <= *c.max_training_seconds * 1.05,
                                  "training stops after the epoch that passes the budget"));
  }
  rows.push_back(interpretability_row(requirements, result, artifact));
  return rows;
}

// The configurator's estimate for the network that the report measures: the members' multiply-adds when
// cross-fitted members were merged, because the kernels skip the zero blocks.
double estimated_latency_for(const PipelineResult& result, const ModelArtifact& artifact, bool int8) {
  const std::size_t members = std::max<std::size_t>(1, result.members.size());
  // The first layer also reads the input products, so its width counts them.
  const std::size_t first_layer_inputs = artifact.network.inputs() + artifact.network.products.size();
  const std::size_t multiply_adds = runtime_multiply_adds(first_layer_inputs, result.config.hidden_units,
                                                          artifact.network.outputs(), members, int8);
  return estimated_latency_us(multiply_adds, int8, default_simd_level());
}

// Compares the measured single-row latency with constraints.max_latency_us, or returns null when no limit is set.
// A miss is a warning and not an error: the latency depends on the machine and its load while measuring, and
// the trained model stays usable, so the run keeps its outputs (the CLI still exits with code 3).
json check_latency(const Requirements& requirements, const JudgedLatency& latency) {
  const std::optional<double> limit = requirements.constraints.max_latency_us;
  if (!limit) return nullptr;

  const double measured_us = latency.measured_us;
  const double estimated_us = latency.estimated_us;
  const std::string level = to_string(default_simd_level());
  const bool exceeded = measured_us > *limit;
  std::string message;
  if (exceeded) {
    message = fmt::format("the measured single-row latency {:.3g} us exceeds constraints.max_latency_us {:g} "
                          "(estimated {:.3g} us for the {} kernels); the model is kept. Deploy it on a machine with "
                          "faster kernels or less load, or raise max_latency_us",
                          measured_us, *limit, estimated_us, level);
    log(LogLevel::Warning, "run report: " + message);
  }
  return {{"max_latency_us", *limit},
          {"measured_us", measured_us},
          {"estimated_us", estimated_us},
          {"simd_level", level},
          {"model", latency.int8 ? "int8" : "fp32"},
          {"exceeded", exceeded},
          {"action", exceeded ? "warning" : "none"},
          {"message", message}};
}

// The training history as report.json lists it. With cross-fitting, every epoch names its member, counted
// from 1 as in report.md, progress lines and checkpoint names (EpochRecord::member counts from 0). The
// top-level best_epoch is null because each member has its own, listed under training.members.
json training_section(const PipelineResult& result) {
  json training = result.training.to_json();
  if (result.members.empty()) return training;

  json history = json::array();
  json members = json::array();
  for (std::size_t k = 0; k < result.members.size(); ++k) {
    const TrainingResult& member = result.members[k];
    const json member_json = member.to_json();
    for (json record : member_json.at("history")) {
      record["member"] = k + 1;
      record["members"] = result.members.size();
      history.push_back(std::move(record));
    }
    members.push_back({{"member", k + 1},
                       {"epochs", member.history.size()},
                       {"best_epoch", member.best_epoch},
                       {"stop_reason", member.stop_reason},
                       {"seconds", member.seconds},
                       {"resumed", member.resumed}});
  }
  training["history"] = std::move(history);
  training["members"] = std::move(members);
  training["best_epoch"] = nullptr;
  return training;
}

// Missing cells per column, and what the preprocessor puts in their place. The counts cover every row of
// the data file. The fill values were fitted on the rows the model learned from, and every split gets them.
json missing_values_section(const DataProfile& profile, const Preprocessor& preprocessor) {
  json columns = json::array();
  std::size_t cells = 0;
  for (const ColumnProfile& column : profile.columns) {
    if (column.missing == 0) continue;
    cells += column.missing;

    const auto feature = std::find_if(preprocessor.features().begin(), preprocessor.features().end(),
                                      [&](const FeatureTransform& transform) { return transform.column == column.name; });
    json entry = {{"column", column.name}, {"missing", column.missing}};
    if (feature == preprocessor.features().end()) {
      entry["imputation"] = "none";
      entry["fill"] = nullptr;
    } else if (feature->type == FeatureType::Numeric) {
      entry["imputation"] = "median";
      entry["fill"] = feature->fill;
    } else if (feature->type == FeatureType::Categorical) {
      entry["imputation"] = "mode";
      entry["fill"] = feature->fill_category;
    } else {
      entry["imputation"] = "no_tokens";
      entry["fill"] = nullptr;
    }
    entry["model_input"] = feature != preprocessor.features().end();
    columns.push_back(std::move(entry));
  }
  return {{"cells", cells}, {"columns", columns}};
}

// Lists the run's durations with what each measures. A resumed run's training time adds what its
// checkpoints recorded before the resume, while the wall time covers this invocation only.
json timing_section(const PipelineResult& result) {
  return {{"invocation_wall_seconds", result.seconds},
          {"training_seconds", result.training.seconds},
          {"resumed", result.training.resumed},
          {"meaning",
           "invocation_wall_seconds (also the top-level seconds) is the wall time of this run_pipeline call from "
           "its start to the export, without the int8 export and this report. training_seconds is the training "
           "time of the model; after --resume it adds the time that the checkpoints recorded in earlier "
           "invocations, so it can exceed invocation_wall_seconds"}};
}

}  // namespace

double measure_single_row_latency_us(const ModelArtifact& artifact, const Matrix& row, int repetitions) {
  const Predictor predictor(artifact);
  // A service reuses its workspace and output between calls, so the probe does too and times the steady state.
  Workspace workspace;
  Predictions predictions;
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(repetitions));
  for (int i = 0; i < repetitions; ++i) {
    const auto start = std::chrono::steady_clock::now();
    predictor.predict(row, workspace, predictions);
    const auto stop = std::chrono::steady_clock::now();
    if (predictions.rows != 1) throw InternalError("latency probe: predictor returned no row");
    samples.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
  }
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  return samples[samples.size() / 2];
}

json build_report(const Requirements& requirements, const PipelineResult& result, const ModelArtifact& artifact,
                  const ModelArtifact* int8_artifact) {
  Matrix one_row(1, artifact.preprocessor.encoded_width(), 0.0f);
  const double latency_us = measure_single_row_latency_us(artifact, one_row);
  std::optional<double> int8_latency_us;
  if (int8_artifact != nullptr) int8_latency_us = measure_single_row_latency_us(*int8_artifact, one_row);

  JudgedLatency judged;
  judged.int8 = int8_latency_us.has_value();
  judged.measured_us = int8_latency_us.value_or(latency_us);
  judged.estimated_us = estimated_latency_for(result, artifact, judged.int8);
  judged.file = judged.int8 ? "model_int8.lepton" : "model.lepton";

  JudgedSize judged_size;
  judged_size.int8 = int8_artifact != nullptr;
  judged_size.bytes = stored_weight_bytes(judged_size.int8 ? int8_artifact->network : artifact.network);
  judged_size.file = judged.file;

  json report;
  report["lepton_version"] = LEPTON_VERSION_STRING;
  report["name"] = requirements.name;
  report["task"] = to_string(requirements.task);
  report["target"] = requirements.target;
  report["objective"] = to_string(requirements.objective);
  report["data"] = result.profile.to_json();
  report["data"]["missing_values"] = missing_values_section(result.profile, artifact.preprocessor);
  report["requirements"] = requirements.to_json();
  report["configuration"] = result.config.to_json();
  report["features"] = artifact.preprocessor.encoded_names();
  report["training"] = training_section(result);
  report["metrics"] = {{"threshold", artifact.threshold},
                       {"validation", result.validation.to_json()},
                       {"test", result.test.to_json()}};
  report["constraints"] = check_constraints(requirements, result, artifact, judged, judged_size);
  report["model"] = {{"path", result.model_path},
                     {"parameters", artifact.network.parameter_count()},
                     {"nonzero_parameters", nonzero_parameter_count(artifact.network)},
                     {"weight_bytes", stored_weight_bytes(artifact.network)},
                     {"single_row_latency_us", latency_us},
                     {"estimated_single_row_latency_us", estimated_latency_for(result, artifact, false)},
                     {"simd_level", to_string(default_simd_level())}};
  if (int8_artifact != nullptr) {
    if (!result.int8_model_path.empty()) report["model"]["int8_path"] = result.int8_model_path;
    report["model"]["int8_weight_bytes"] = stored_weight_bytes(int8_artifact->network);
    report["model"]["int8_single_row_latency_us"] = *int8_latency_us;
    report["model"]["estimated_int8_single_row_latency_us"] = judged.estimated_us;
  }
  report["latency_check"] = check_latency(requirements, judged);
  report["explanations"] = result.explanations;
  report["quantization"] = result.quantization;
  report["provenance"] = artifact.provenance.to_json();
  report["seconds"] = result.seconds;
  report["timing"] = timing_section(result);
  return report;
}

namespace {

std::string number(const json& value, int digits = 4) {
  if (value.is_number_integer() || value.is_number_unsigned()) return value.dump();
  if (value.is_number()) return fmt::format("{:.{}f}", value.get<double>(), digits);
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

// Markdown table cells cannot hold '|' or newlines.
std::string cell(std::string text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|') out += "\\|";
    else if (ch == '\n') out += ' ';
    else out += ch;
  }
  return out;
}

void render_confusion_matrix(std::string& md, const json& counts) {
  md += "\nConfusion matrix (rows: true class, columns: predicted class):\n\n| |";
  for (std::size_t j = 0; j < counts.size(); ++j) md += fmt::format(" predicted {} |", j);
  md += "\n|---|";
  for (std::size_t j = 0; j < counts.size(); ++j) md += "---:|";
  md += "\n";
  for (std::size_t i = 0; i < counts.size(); ++i) {
    md += fmt::format("| true {} |", i);
    for (const json& count : counts[i]) md += fmt::format(" {} |", count.dump());
    md += "\n";
  }
}

// The metrics table: validation (out-of-fold with cross-fitting) next to test, and the test confusion matrix.
void render_metrics(std::string& md, const json& validation, const json& test, const std::string& validation_label) {
  static const std::vector<std::pair<std::string, std::string>> kMetricOrder = {
      {"f1", "F1 (positive class)"}, {"precision", "Precision"}, {"recall", "Recall"},
      {"roc_auc", "ROC-AUC"}, {"pr_auc", "PR-AUC (average precision)"}, {"accuracy", "Accuracy"},
      {"log_loss", "Log-loss"}, {"macro_f1", "Macro F1"}, {"weighted_f1", "Weighted F1"},
      {"roc_auc_ovr", "ROC-AUC (one-vs-rest, macro)"}, {"mae", "MAE"}, {"rmse", "RMSE"}, {"r2", "R²"}};
  const json& test_metrics = test.contains("binary") ? test["binary"] : test;
  const json& validation_metrics =
      validation.is_object() && validation.contains("binary") ? validation["binary"] : validation;

  md += fmt::format("| Metric | {} | Test |\n|---|---|---|\n", validation_label);
  for (const auto& [key, label] : kMetricOrder) {
    if (!test_metrics.contains(key) || !test_metrics[key].is_number()) continue;
    const bool has_validation = validation_metrics.is_object() && validation_metrics.contains(key) &&
                                validation_metrics[key].is_number();
    md += fmt::format("| {} | {} | {} |\n", label, has_validation ? number(validation_metrics[key]) : "n/a",
                      number(test_metrics[key]));
  }
  if (test_metrics.contains("confusion_matrix")) render_confusion_matrix(md, test_metrics["confusion_matrix"]);
}

// Rows of flagged test rows shown in Markdown; report.json lists all of them.
constexpr std::size_t kFlaggedRowsShown = 10;
// Rows of each misclassified list shown in Markdown; report.json lists all of them.
constexpr std::size_t kMisclassifiedRowsShown = 20;
constexpr std::size_t kReasonsShown = 3;

// "row 17, Product ID M14877, UDI 18": the 0-based data row, as `lepton predict` and `lepton explain --rows`
// count them, then the row's ID-like columns in name order, the order of a JSON object's keys.
std::string row_label(const json& row) {
  std::string label = fmt::format("row {}", row["row"].get<std::size_t>());
  if (row.contains("ids")) {
    for (const auto& [name, value] : row["ids"].items()) label += fmt::format(", {} {}", name, value.get<std::string>());
  }
  return label;
}

// The row's kReasonsShown largest SHAP contributions with the raw values behind them.
std::string main_reasons(const json& row) {
  std::string reasons;
  for (std::size_t k = 0; k < std::min(row["contributions"].size(), kReasonsShown); ++k) {
    const json& contribution = row["contributions"][k];
    const std::string feature = contribution["feature"].get<std::string>();
    const json& raw = row["values"].contains(feature) ? row["values"][feature] : json(nullptr);
    reasons += fmt::format("{}{} = {} ({:+.3f})", k ? "; " : "", feature,
                           raw.is_string() ? raw.get<std::string>() : "missing", contribution["shap"].get<double>());
  }
  return reasons;
}

// The output that the SHAP values attribute, for each output link of explain.hpp, and its unit.
std::string explained_output_text(const std::string& link) {
  if (link == "logistic") {
    return "the positive-class probability, which is the logistic function of the network's output logit, so "
           "each SHAP value is in probability units";
  }
  if (link == "softmax") {
    return "each class's probability, the softmax of the network's output logits (the base value below is the "
           "first class's)";
  }
  return "the network's output, which is the target standardized with its training mean and standard deviation";
}

// The positive class's share of the data rows as "3.39 % of the 10000 data rows are class `1`", or empty
// when the data section has no binary class counts.
std::string positive_share_text(const json& data) {
  if (!data.contains("classes") || !data.contains("class_counts") || data["class_counts"].size() != 2) return "";
  const std::uint64_t positives = data["class_counts"][1].get<std::uint64_t>();
  const std::uint64_t rows = data["class_counts"][0].get<std::uint64_t>() + positives;
  if (rows == 0) return "";
  return fmt::format("{:.2f} % of the {} data rows are class `{}`",
                     100.0 * static_cast<double>(positives) / static_cast<double>(rows), rows,
                     data["classes"][1].get<std::string>());
}

// Writes what the base value is, and for a binary model why it is not the positive class's share of the data.
void render_base_value(std::string& md, const json& section, const json& data) {
  const std::string link = section["output"].get<std::string>();
  md += fmt::format("Exact Shapley values of {}. A row's SHAP values add up to its output minus the base value. "
                    "The base value, {}, is the model's output at each of the {} background rows, averaged with "
                    "their weights. These rows are k-means centres of the rows that the model learned from, each "
                    "weighted by its cluster's share of those rows, and the model stores them.",
                    explained_output_text(link), number(section["base_value"][0]),
                    number(section["background"]["rows"]));

  const std::string share = positive_share_text(data);
  if (link == "logistic" && !share.empty()) {
    md += fmt::format(" So the base value is not the positive class's share of the data ({}), for two reasons. "
                      "The model's probability at a cluster centre differs from the mean of its probabilities over "
                      "the cluster's rows, because the model is not linear. And the model's probabilities need not "
                      "average to the class share",
                      share);
    if (section.contains("mean_output")) {
      md += fmt::format(": over the {} test rows they average {}", number(section["explained_rows"]),
                        number(section["mean_output"][0]));
    }
    md += ".";
  }
  md += "\n\n";
}

void render_explanations(std::string& md, const json& section, const json& data) {
  if (section.is_null()) return;
  md += "\n## Why the model decides as it does\n\n";
  render_base_value(md, section, data);
  md += fmt::format("Global importance over {} test rows (mean |SHAP| and its standard deviation):\n\n",
                    number(section["explained_rows"]));
  md += "| Feature | Mean \\|SHAP\\| | Std |\n|---|---:|---:|\n";
  for (const json& row : section["global_importance"]) {
    md += fmt::format("| {} | {} | {} |\n", cell(row["feature"].get<std::string>()), number(row["mean_abs_shap"]),
                      number(row["std_abs_shap"]));
  }

  const json& flagged = section["flagged_test_rows"];
  if (flagged.empty()) return;
  md += fmt::format("\nThe model flags {} test rows (all of them are in report.json). The {} most probable, with "
                    "the {} largest contributions (positive values raise the probability):\n\n",
                    flagged.size(), std::min(flagged.size(), kFlaggedRowsShown), kReasonsShown);
  md += "| Row | Probability | Main reasons |\n|---|---:|---|\n";
  for (std::size_t i = 0; i < std::min(flagged.size(), kFlaggedRowsShown); ++i) {
    const json& row = flagged[i];
    md += fmt::format("| {} | {} | {} |\n", cell(row_label(row)), number(row["probability"], 3),
                      cell(main_reasons(row)));
  }
}

// One list of misclassified test rows: its count, and its first kMisclassifiedRowsShown rows.
void render_misclassified_list(std::string& md, const json& rows, const std::string& title) {
  md += fmt::format("\n{}: {} in all", title, rows.size());
  if (rows.empty()) {
    md += ".\n";
    return;
  }
  const std::size_t shown = std::min(rows.size(), kMisclassifiedRowsShown);
  md += shown < rows.size() ? fmt::format(", the {} farthest from the threshold:\n\n", shown) : ":\n\n";
  md += "| Row | Probability | Distance from threshold | Main reasons |\n|---|---:|---:|---|\n";
  for (std::size_t i = 0; i < shown; ++i) {
    const json& row = rows[i];
    md += fmt::format("| {} | {} | {} | {} |\n", cell(row_label(row)), number(row["probability"], 3),
                      number(row["distance_from_threshold"], 3), cell(main_reasons(row)));
  }
}

// The test rows that the model got wrong (binary classification), under the confusion matrix they add up to.
void render_misclassified(std::string& md, const json& explanations) {
  if (!explanations.is_object() || !explanations.contains("misclassified_test_rows")) return;
  const json& section = explanations["misclassified_test_rows"];
  const std::string positive = section["positive_class"].get<std::string>();
  const std::string negative = section["negative_class"].get<std::string>();

  md += "\n### Test rows the model got wrong\n\n";
  md += fmt::format("Test rows whose predicted class at the threshold {} differs from their true class. Each list "
                    "starts with the rows whose probability lies farthest from the threshold, the most confident "
                    "mistakes, and report.json lists every row. Rows are 0-based data rows of the CSV file, as "
                    "`lepton predict` and `lepton explain --rows` count them. The main reasons are each row's {} "
                    "largest SHAP contributions to the probability.\n",
                    number(section["threshold"]), kReasonsShown);
  render_misclassified_list(md, section["false_negatives"],
                            fmt::format("Missed positives (false negatives: true class `{}`, predicted `{}`)", positive,
                                        negative));
  render_misclassified_list(md, section["false_positives"],
                            fmt::format("False alarms (false positives: true class `{}`, predicted `{}`)", negative,
                                        positive));
}

// A plain line under the constraints table when the measured latency misses max_latency_us.
void render_latency_check(std::string& md, const json& check) {
  if (!check.is_object() || !check.value("exceeded", false)) return;
  md += fmt::format("\n**Warning: latency limit exceeded.** The median single-row latency of the {} model measured "
                    "on this machine is {} µs, above max_latency_us {} µs (estimated {} µs before training, for the {} "
                    "kernels). The model was kept; deploy it on a faster machine, or raise max_latency_us.\n",
                    check.value("model", "fp32"), number(check["measured_us"], 2), number(check["max_latency_us"], 2),
                    number(check["estimated_us"], 2), check["simd_level"].get<std::string>());
}

// A configuration value as people read it: derived inputs by name, everything else as JSON.
std::string setting_text(const std::string& field, const json& value) {
  if (field != "derived_features" || !value.is_array()) return value.dump();
  if (value.empty()) return "none";
  std::vector<std::string> names;
  for (const json& derived : value) names.push_back(derived.value("name", derived.dump()));
  return fmt::format("{}", fmt::join(names, "; "));
}

// One line on missing cells: how many, in which columns, and what replaced them.
void render_missing_values(std::string& md, const json& data) {
  const json& missing = data.contains("missing_values") ? data["missing_values"] : json();
  if (!missing.is_object()) return;
  if (missing.value("cells", 0) == 0) {
    md += "\n\nMissing values: none; no cell was imputed.";
    return;
  }

  std::vector<std::string> parts;
  for (const json& column : missing["columns"]) {
    const std::string name = column["column"].get<std::string>();
    const std::string imputation = column["imputation"].get<std::string>();
    std::string how;
    if (imputation == "median") {
      how = fmt::format("imputed with the training median {}", number(column["fill"]));
    } else if (imputation == "mode") {
      how = fmt::format("imputed with the training mode `{}`", column["fill"].get<std::string>());
    } else if (imputation == "no_tokens") {
      how = "read as a text without tokens";
    } else {
      how = "not a model input, so not imputed";
    }
    parts.push_back(fmt::format("`{}` {} ({})", name, number(column["missing"]), how));
  }
  md += fmt::format("\n\nMissing values: {} cells in {} columns: {}. The fill values were fitted on the rows the "
                    "model learned from and replace missing cells in every split and at prediction time.",
                    number(missing["cells"]), missing["columns"].size(), fmt::format("{}", fmt::join(parts, "; ")));
}

// The model files with their parameters, nonzero parameters, stored weight bytes and measured latency.
void render_model_files(std::string& md, const json& model, const json& training) {
  const bool cross_fitted = training.contains("members");
  const std::string merged =
      cross_fitted ? fmt::format("; the {} cross-fitted members merged into one network, whose block-diagonal layers "
                                 "the file stores as their diagonal blocks",
                                 training["members"].size())
                   : "";
  md += fmt::format("- model file: `{}` ({} parameters, {} of them nonzero{}; {} bytes of stored fp32 weights; median "
                    "single-row latency {} µs)\n",
                    model["path"].get<std::string>(), number(model["parameters"]),
                    number(model.value("nonzero_parameters", json(nullptr))), merged,
                    number(model.value("weight_bytes", json(nullptr))), number(model["single_row_latency_us"], 2));
  if (model.contains("int8_single_row_latency_us")) {
    md += fmt::format("- int8 model file: `{}` ({} bytes of int8 weights, fp32 biases and scales; median single-row "
                      "latency {} µs)\n",
                      model.value("int8_path", std::string("model_int8.lepton")),
                      number(model.value("int8_weight_bytes", json(nullptr))),
                      number(model["int8_single_row_latency_us"], 2));
  }
}

// "N s of training", and after --resume how that differs from this invocation's wall time.
std::string training_seconds_text(const json& training, const json& timing) {
  std::string text = fmt::format("{} s of training", number(training.value("seconds", json(0.0)), 2));
  if (timing.is_object() && timing.value("resumed", false)) {
    text += fmt::format(" (resumed: this includes the training time that the checkpoints recorded in earlier runs, "
                        "while this run took {} s of wall time)",
                        number(timing["invocation_wall_seconds"], 2));
  }
  return text;
}

}  // namespace

std::string render_report_markdown(const json& report) {
  std::string md;
  const std::string name = report.value("name", std::string());
  md += fmt::format("# Lepton report{}\n\n", name.empty() ? "" : ": " + name);
  md += fmt::format("Task: {} of `{}`, objective {}. Lepton {}.\n\n", report["task"].get<std::string>(),
                    report["target"].get<std::string>(), report["objective"].get<std::string>(),
                    report["lepton_version"].get<std::string>());

  // Headline numbers first: what a plant engineer or risk officer reads.
  md += "## Results on the held-out test split\n\n";
  const bool cross_fitted = report["training"].contains("members");
  md += fmt::format("Decision threshold: {} (chosen on {}).\n\n", number(report["metrics"]["threshold"]),
                    cross_fitted ? "out-of-fold predictions for the training and validation rows"
                                 : "the validation split");
  render_metrics(md, report["metrics"].value("validation", json()), report["metrics"]["test"],
                 cross_fitted ? "Out-of-fold" : "Validation");
  render_misclassified(md, report.value("explanations", json()));

  md += "\n## Constraints\n\n";
  if (report["constraints"].empty()) {
    md += "The requirements set no constraint that can be measured after training.\n";
  } else {
    md += "| Constraint | Required | Measured | Met | How it was measured |\n|---|---|---|---|---|\n";
    for (const json& row : report["constraints"]) {
      md += fmt::format("| {} | {} | {} | {} | {} |\n", row["constraint"].get<std::string>(), number(row["required"]),
                        number(row["measured"]), row["met"].get<bool>() ? "yes" : "**no**",
                        cell(row["note"].get<std::string>()));
    }
  }
  render_latency_check(md, report.value("latency_check", json()));

  render_explanations(md, report["explanations"], report["data"]);

  md += "\n## Data\n\n";
  const json& data = report["data"];
  md += fmt::format("{} rows. ", number(data.value("rows", json(0))));
  if (data.contains("classes") && data.contains("class_counts")) {
    md += "Classes: ";
    for (std::size_t i = 0; i < data["classes"].size(); ++i) {
      md += fmt::format("{}`{}` {}", i ? ", " : "", data["classes"][i].get<std::string>(),
                        number(data["class_counts"][i]));
    }
    md += ".";
  }
  md += "\n\nFeatures used (after encoding): ";
  for (std::size_t i = 0; i < report["features"].size(); ++i) {
    md += fmt::format("{}`{}`", i ? ", " : "", report["features"][i].get<std::string>());
  }
  md += ".";
  render_missing_values(md, data);
  md += "\n";

  md += "\n## Model configuration\n\nEach setting with the reason it was chosen and what drove it.\n\n";
  md += "| Setting | Value | Reason | Driven by |\n|---|---|---|---|\n";
  const json& config = report["configuration"];
  if (config.contains("reasons")) {
    for (const auto& [field, reason] : config["reasons"].items()) {
      const std::string value = config.contains(field) ? setting_text(field, config[field]) : "";
      md += fmt::format("| {} | {} | {} | {} |\n", field, cell(value), cell(reason.value("reason", "")),
                        cell(reason.value("driven_by", "")));
    }
  }

  md += "\n## Training\n\n";
  const json& training = report["training"];
  const std::string seconds = training_seconds_text(training, report.value("timing", json()));
  if (training.contains("members")) {
    md += fmt::format("{} cross-fitted members, merged into one network; {}. The out-of-fold metrics are those of "
                      "each training and validation row scored by the member that did not train on it.\n\n",
                      training["members"].size(), seconds);
    md += "| Member | Epochs | Best epoch | Stopped by | Seconds |\n|---|---|---|---|---|\n";
    for (const json& member : training["members"]) {
      md += fmt::format("| {} | {} | {} | {} | {} |\n", number(member["member"]), number(member["epochs"]),
                        number(member["best_epoch"]), member["stop_reason"].get<std::string>(),
                        number(member["seconds"], 2));
    }
  } else {
    md += fmt::format("Stopped by {} after {} epochs; best epoch {}; {}.\n",
                      training.value("stop_reason", std::string("?")),
                      training.contains("history") ? training["history"].size() : 0,
                      number(training.value("best_epoch", json(0))), seconds);
  }

  md += "\n## Provenance\n\n";
  for (const auto& [key, value] : report["provenance"].items()) {
    md += fmt::format("- {}: `{}`\n", key, value.is_string() ? value.get<std::string>() : value.dump());
  }
  render_model_files(md, report["model"], report["training"]);
  return md;
}

}  // namespace lepton::detail
