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

// Checks each constraint that can be measured after training against what the run produced.

json check_constraints(const Requirements& requirements, const PipelineResult& result, const ModelArtifact& artifact,
                       const JudgedLatency& latency) {
  const Constraints& c = requirements.constraints;
  json rows = json::array();

  if (c.min_metric) {
    const double measured = result.test.value(requirements.objective);
    const bool met = higher_is_better(requirements.objective) ? measured >= *c.min_metric : measured <= *c.min_metric;
    rows.push_back(constraint_row("min_metric", *c.min_metric, measured, met,
                                  fmt::format("{} on the test split", to_string(requirements.objective))));
  }
  if (c.max_model_bytes) {
    const std::uint64_t weight_bytes = artifact.network.parameter_count() * sizeof(float);
    rows.push_back(constraint_row("max_model_bytes", *c.max_model_bytes, weight_bytes, weight_bytes <= *c.max_model_bytes,
                                  "fp32 weights and biases"));
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
  return rows;
}

// The configurator's estimate for the network that the report measures: the members' multiply-adds when
// cross-fitted members were merged, because the kernels skip the zero blocks.
double estimated_latency_for(const PipelineResult& result, const ModelArtifact& artifact, bool int8) {
  const std::size_t members = std::max<std::size_t>(1, result.members.size());
  const std::size_t multiply_adds = runtime_multiply_adds(artifact.network.inputs(), result.config.hidden_units,
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

  json report;
  report["lepton_version"] = LEPTON_VERSION_STRING;
  report["name"] = requirements.name;
  report["task"] = to_string(requirements.task);
  report["target"] = requirements.target;
  report["objective"] = to_string(requirements.objective);
  report["data"] = result.profile.to_json();
  report["requirements"] = requirements.to_json();
  report["configuration"] = result.config.to_json();
  report["features"] = artifact.preprocessor.encoded_names();
  report["training"] = result.training.to_json();
  if (!result.members.empty()) {
    nlohmann::json members = nlohmann::json::array();
    for (const TrainingResult& member : result.members) {
      members.push_back({{"epochs", member.history.size()},
                         {"best_epoch", member.best_epoch},
                         {"stop_reason", member.stop_reason},
                         {"seconds", member.seconds}});
    }
    report["training"]["members"] = members;
  }
  report["metrics"] = {{"threshold", artifact.threshold},
                       {"validation", result.validation.to_json()},
                       {"test", result.test.to_json()}};
  report["constraints"] = check_constraints(requirements, result, artifact, judged);
  report["model"] = {{"path", result.model_path},
                     {"parameters", artifact.network.parameter_count()},
                     {"single_row_latency_us", latency_us},
                     {"estimated_single_row_latency_us", estimated_latency_for(result, artifact, false)},
                     {"simd_level", to_string(default_simd_level())}};
  if (int8_latency_us) {
    report["model"]["int8_single_row_latency_us"] = *int8_latency_us;
    report["model"]["estimated_int8_single_row_latency_us"] = judged.estimated_us;
  }
  report["latency_check"] = check_latency(requirements, judged);
  report["explanations"] = result.explanations;
  report["quantization"] = result.quantization;
  report["provenance"] = artifact.provenance.to_json();
  report["seconds"] = result.seconds;
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

void render_metrics(std::string& md, const json& test) {
  static const std::vector<std::pair<std::string, std::string>> kMetricOrder = {
      {"f1", "F1 (positive class)"}, {"precision", "Precision"}, {"recall", "Recall"},
      {"roc_auc", "ROC-AUC"}, {"pr_auc", "PR-AUC (average precision)"}, {"accuracy", "Accuracy"},
      {"log_loss", "Log-loss"}, {"macro_f1", "Macro F1"}, {"weighted_f1", "Weighted F1"},
      {"roc_auc_ovr", "ROC-AUC (one-vs-rest, macro)"}, {"mae", "MAE"}, {"rmse", "RMSE"}, {"r2", "R²"}};
  const json& metrics = test.contains("binary") ? test["binary"] : test;
  md += "| Metric | Test |\n|---|---|\n";
  for (const auto& [key, label] : kMetricOrder) {
    if (metrics.contains(key) && metrics[key].is_number()) md += fmt::format("| {} | {} |\n", label, number(metrics[key]));
  }
  if (metrics.contains("confusion_matrix")) render_confusion_matrix(md, metrics["confusion_matrix"]);
}

// Rows of flagged test rows shown in Markdown; report.json lists all of them.
constexpr std::size_t kFlaggedRowsShown = 10;
constexpr std::size_t kReasonsShown = 3;

void render_explanations(std::string& md, const json& section) {
  if (section.is_null()) return;
  md += "\n## Why the model decides as it does\n\n";
  md += fmt::format("Exact Shapley values of the {} over a weighted background of {} training-row summaries. "
                    "Base value (expected output): {}.\n\n",
                    section["output"].get<std::string>() == "logistic" ? "positive-class probability" : "model output",
                    number(section["background"]["rows"]), number(section["base_value"][0]));
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
    std::string reasons;
    for (std::size_t k = 0; k < std::min(row["contributions"].size(), kReasonsShown); ++k) {
      const json& contribution = row["contributions"][k];
      const std::string feature = contribution["feature"].get<std::string>();
      const json& raw = row["values"].contains(feature) ? row["values"][feature] : json(nullptr);
      reasons += fmt::format("{}{} = {} ({:+.3f})", k ? "; " : "", feature,
                             raw.is_string() ? raw.get<std::string>() : "missing", contribution["shap"].get<double>());
    }
    // Rows are 0-based data rows, as `lepton predict` and `lepton explain --rows` count them.
    std::string label = fmt::format("row {}", row["row"].get<std::size_t>());
    if (row.contains("ids")) {
      for (const auto& [name, value] : row["ids"].items()) label += fmt::format(", {} {}", name, value.get<std::string>());
    }
    md += fmt::format("| {} | {} | {} |\n", cell(label), number(row["probability"], 3), cell(reasons));
  }
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
  render_metrics(md, report["metrics"]["test"]);

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

  render_explanations(md, report["explanations"]);

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
  md += ".\n";

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
  if (training.contains("members")) {
    md += fmt::format("{} cross-fitted members, merged into one network; {} s of training. The validation metrics "
                      "in report.json are out-of-fold: each training and validation row is scored by the member "
                      "that did not train on it.\n\n",
                      training["members"].size(), number(training.value("seconds", json(0.0)), 2));
    md += "| Member | Epochs | Best epoch | Stopped by | Seconds |\n|---|---|---|---|---|\n";
    for (std::size_t i = 0; i < training["members"].size(); ++i) {
      const json& member = training["members"][i];
      md += fmt::format("| {} | {} | {} | {} | {} |\n", i + 1, number(member["epochs"]), number(member["best_epoch"]),
                        member["stop_reason"].get<std::string>(), number(member["seconds"], 2));
    }
  } else {
    md += fmt::format("Stopped by {} after {} epochs; best epoch {}; {} s of training.\n",
                      training.value("stop_reason", std::string("?")),
                      training.contains("history") ? training["history"].size() : 0,
                      number(training.value("best_epoch", json(0))), number(training.value("seconds", json(0.0)), 2));
  }

  md += "\n## Provenance\n\n";
  for (const auto& [key, value] : report["provenance"].items()) {
    md += fmt::format("- {}: `{}`\n", key, value.is_string() ? value.get<std::string>() : value.dump());
  }
  const std::string merged =
      report["training"].contains("members")
          ? fmt::format(", the {} cross-fitted members merged into one network", report["training"]["members"].size())
          : "";
  md += fmt::format("- model file: `{}` ({} parameters{}, median single-row latency {} µs)\n",
                    report["model"]["path"].get<std::string>(), number(report["model"]["parameters"]), merged,
                    number(report["model"]["single_row_latency_us"], 2));
  if (report["model"].contains("int8_single_row_latency_us")) {
    md += fmt::format("- int8 model file: `model_int8.lepton` (median single-row latency {} µs)\n",
                      number(report["model"]["int8_single_row_latency_us"], 2));
  }
  return md;
}

}  // namespace lepton::detail
