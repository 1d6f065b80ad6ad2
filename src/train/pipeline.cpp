// The end-to-end job behind `lepton run`: each step calls one public stage, so a host application can
// compose the same stages itself.
#include "lepton/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "lepton/crypto.hpp"
#include "lepton/derived.hpp"
#include "lepton/ensemble.hpp"
#include "lepton/error.hpp"
#include "lepton/explain.hpp"
#include "lepton/io.hpp"
#include "lepton/log.hpp"
#include "lepton/predictor.hpp"
#include "lepton/quantize.hpp"
#include "lepton/version.hpp"
#include "train/checkpoint_files.hpp"
#include "train/privacy_pii.hpp"
#include "train/report.hpp"

namespace lepton {
namespace {

namespace fs = std::filesystem;

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// Centres of the stored explanation background. Exact SHAP costs 2^groups x centres model rows per
// explained row, and 20 weighted centres keep the report's explanations to seconds on one core.
constexpr std::size_t kBackgroundClusters = 20;

bool is_classification(Task task) { return task != Task::Regression; }

// Classes are read from every row before the split, because stratification needs each row's class id.
// Only the label set is taken from the test rows this way; no statistic that the model learns is.
struct SplitTarget {
  TargetEncoding encoding;
  Split split;
  std::vector<std::int64_t> labels;  // classification: class id of every row
};

SplitTarget split_rows(const Table& table, const Requirements& requirements) {
  SplitTarget result;
  std::vector<std::size_t> all_rows(table.rows());
  for (std::size_t i = 0; i < all_rows.size(); ++i) all_rows[i] = i;

  if (is_classification(requirements.task)) {
    result.encoding = TargetEncoding::fit(table, requirements.target, requirements.task, all_rows);
    result.labels = result.encoding.encode_labels(table, all_rows);
    result.split = stratified_split(result.labels, requirements.split, requirements.seed);
  } else {
    result.split = random_split(table.rows(), requirements.split, requirements.seed);
    result.encoding = TargetEncoding::fit(table, requirements.target, requirements.task, result.split.train);
  }
  return result;
}

TrainingData training_data(const Table& table, const Preprocessor& preprocessor, const SplitTarget& target,
                           const std::vector<std::size_t>& rows) {
  TrainingData data;
  data.features = preprocessor.transform(table, rows);
  if (is_classification(target.encoding.task)) {
    data.labels.reserve(rows.size());
    for (std::size_t row : rows) data.labels.push_back(target.labels[row]);
  } else {
    for (double value : target.encoding.encode_values(table, rows)) {
      data.values.push_back((value - target.encoding.mean) / target.encoding.scale);
    }
  }
  return data;
}

// Binary models keep the threshold that maximizes the objective on validation rows, never on test rows.
double select_threshold(const ModelConfig& config, const Predictions& validation,
                        const std::vector<std::int64_t>& truth) {
  if (config.task != Task::BinaryClassification || config.threshold_strategy != "optimize_objective_on_validation") {
    return 0.5;
  }
  return choose_threshold(truth, validation.probability, config.objective);
}

// Scores encoded rows against their targets; regression targets go back to the user's units first.
Evaluation evaluate_data(const Predictor& predictor, const TrainingData& data, const TargetEncoding& encoding) {
  const Predictions predictions = predictor.predict(data.features);
  if (is_classification(encoding.task)) return evaluate(predictions, data.labels);

  std::vector<double> truth;
  truth.reserve(data.values.size());
  for (double value : data.values) truth.push_back(value * encoding.scale + encoding.mean);
  return evaluate(predictions, truth);
}

// Predicts every training row with the member that did not train on it. Binary rows are labelled with the
// artifact's threshold.
Predictions out_of_fold_predictions(const ModelArtifact& base, const CrossFitResult& fit, const Matrix& features) {
  Predictions all;
  all.task = base.task;
  all.rows = features.rows;
  all.threshold = base.threshold;

  for (std::size_t member = 0; member < fit.members.size(); ++member) {
    std::vector<std::size_t> rows;
    for (std::size_t row = 0; row < features.rows; ++row) {
      if (fit.fold_of_row[row] == member) rows.push_back(row);
    }
    Matrix fold(rows.size(), features.cols);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::copy_n(features.row(rows[i]), features.cols, fold.row(i));
    }

    ModelArtifact single = base;
    single.network = fit.members[member].network;
    const Predictions part = Predictor(std::move(single)).predict(fold);

    // Each row's outputs: one probability (binary), one per class (multiclass), or one value (regression).
    const std::size_t width = part.rows == 0 ? 0 : part.probability.size() / part.rows;
    all.classes = part.classes;
    all.probability.resize(all.rows * width);
    all.label_index.resize(part.label_index.empty() ? 0 : all.rows);
    all.value.resize(part.value.empty() ? 0 : all.rows);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::copy_n(part.probability.begin() + static_cast<std::ptrdiff_t>(i * width), width,
                  all.probability.begin() + static_cast<std::ptrdiff_t>(rows[i] * width));
      if (!part.label_index.empty()) all.label_index[rows[i]] = part.label_index[i];
      if (!part.value.empty()) all.value[rows[i]] = part.value[i];
    }
  }
  return all;
}

// Screens differences and products of numeric features on the learning rows and records the kept
// ones, with the reason, in the configuration. The test rows take no part.
void search_derived_inputs(ModelConfig& config, const Preprocessor& preprocessor, const TrainingData& learning) {
  const DerivedSearchOptions search =
      DerivedSearchOptions().with_seed(config.seed).with_products(config.derived_products);
  std::size_t positives = 0;
  for (std::int64_t label : learning.labels) positives += label == 1 ? 1 : 0;
  const std::size_t smallest = std::min(positives, learning.labels.size() - positives);
  if (smallest < 2 * search.folds) {
    config.derived_search = false;
    config.reasons["derived_search"] =
        Reason{fmt::format("No derived inputs: the smallest class has {} learning rows, fewer than the {} that "
                           "the screen's {}-fold cross-validation needs",
                           smallest, 2 * search.folds, search.folds),
               "data.class_balance"};
    config.reasons["derived_features"] = Reason{"None, because the screen is off", "data.class_balance"};
    return;
  }

  const DerivedSearchResult found = screen_derived_inputs(preprocessor, learning.features, learning.labels, search);
  config.derived_features = found.kept;
  std::vector<std::string> kept, steps;
  for (const DerivedInput& derived : found.kept) {
    std::vector<std::string>& list = derived.step ? steps : kept;
    list.push_back(fmt::format("{} (log-loss cut {:.1f} %)", derived.name(), 100.0 * derived.loss_reduction));
  }
  const std::string step_text =
      steps.empty() ? "" : fmt::format(". A step at each one's best split: {}", fmt::join(steps, ", "));
  const std::string best = found.best_rejected.empty()
                               ? ""
                               : fmt::format(". The best rejected one, {}, cut it by {:.1f} %", found.best_rejected,
                                             100.0 * found.best_rejected_reduction);
  std::string text;
  if (!config.derived_products) {
    text = found.kept.empty()
               ? fmt::format("None: no difference of the {} screened cut the cross-validated log-loss ({:.4f}) by "
                             "1.5 %{}",
                             found.candidates, found.base_loss, best)
               : fmt::format("Kept {} of {} screened differences: {}. The screen's cross-validated log-loss fell "
                             "from {:.4f} to {:.4f}{}. They are extra inputs in training and are folded into the "
                             "first layer of the exported network",
                             found.kept.size(), found.candidates, fmt::join(kept, ", "), found.base_loss,
                             found.final_loss, best);
  } else {
    text = found.kept.empty()
               ? fmt::format("None: the splits of none of the {} screened differences and products "
                             "removed {:.0f} % of the cross-validated log-loss ({:.4f}) of an additive model{}",
                             found.candidates, 100.0 * search.min_split_reduction, found.base_loss, best)
               : fmt::format("Kept {} of {} screened differences and products: {}. Their splits cut the "
                             "cross-validated log-loss of an additive model from {:.4f} to {:.4f}{}{}. They are "
                             "extra inputs in training. The exported network folds a difference into its first "
                             "layer and computes a product or a step before it",
                             kept.size(), found.candidates, fmt::join(kept, ", "), found.base_loss,
                             found.final_loss, best, step_text);
  }
  config.reasons["derived_features"] = Reason{text, "data.columns"};
  kept.insert(kept.end(), steps.begin(), steps.end());
  log(LogLevel::Info, found.kept.empty() ? std::string("derived inputs: none kept")
                                         : fmt::format("derived inputs: {}", fmt::join(kept, ", ")));
}

TrainingData with_derived(const TrainingData& data, const std::vector<DerivedInput>& derived) {
  TrainingData out = data;
  if (!derived.empty()) out.features = append_derived(data.features, derived);
  return out;
}

// Re-labels binary predictions with a new threshold.
void apply_threshold(Predictions& predictions, double threshold) {
  if (predictions.task != Task::BinaryClassification) return;
  predictions.threshold = threshold;
  for (std::size_t row = 0; row < predictions.rows; ++row) {
    predictions.label_index[row] = predictions.probability[row] >= threshold ? 1 : 0;
  }
}

Evaluation evaluate_predictions(const Predictions& predictions, const TrainingData& data,
                                const TargetEncoding& encoding) {
  if (is_classification(encoding.task)) return evaluate(predictions, data.labels);

  std::vector<double> truth;
  truth.reserve(data.values.size());
  for (double value : data.values) truth.push_back(value * encoding.scale + encoding.mean);
  return evaluate(predictions, truth);
}

// The pipeline's view of cross-fitted training: the merged network, every member's epochs in order, the
// total time, and a stop reason that run_pipeline and the report read like a single model's.
TrainingResult summarize_members(const CrossFitResult& fit) {
  TrainingResult summary;
  summary.network = fit.network;
  for (const TrainingResult& member : fit.members) {
    summary.history.insert(summary.history.end(), member.history.begin(), member.history.end());
  }
  summary.stop_reason = fit.stop_reason == "completed" ? "cross_fitted" : fit.stop_reason;
  summary.seconds = fit.seconds;
  summary.resumed = std::any_of(fit.members.begin(), fit.members.end(),
                                [](const TrainingResult& member) { return member.resumed; });
  if (summary.resumed) {
    // The members' times include what their checkpoints recorded before the resume.
    summary.seconds = 0;
    for (const TrainingResult& member : fit.members) summary.seconds += member.seconds;
  }
  return summary;
}

// Records which data and requirements the checkpoints in the output folder come from, and on --resume
// rejects a run whose data file or requirements changed since: resuming would silently mix two data sets.
void check_resume_inputs(const fs::path& out, bool resume, bool write, const std::string& data_path,
                         const std::string& data_sha256, const std::string& requirements_sha256) {
  const fs::path record_path = out / "training_inputs.json";
  if (resume && fs::is_regular_file(record_path)) {
    const nlohmann::json record = nlohmann::json::parse(read_file(record_path.string()), nullptr, false);
    const std::string old_data = record.is_object() ? record.value("data_sha256", std::string()) : "";
    const std::string old_requirements = record.is_object() ? record.value("requirements_sha256", std::string()) : "";
    if (old_data != data_sha256) {
      throw InvalidArgument(fmt::format(
          "--resume: {} is not the data file that the checkpoints in {} were trained on (SHA-256 {} then, {} "
          "now); restore that file, or run without --resume to train from the start",
          data_path, out.string(), old_data.empty() ? "unknown" : old_data, data_sha256));
    }
    if (old_requirements != requirements_sha256) {
      throw InvalidArgument(fmt::format(
          "--resume: the requirements differ from those that the checkpoints in {} were trained with; use the "
          "same requirements file, or run without --resume to train from the start",
          out.string()));
    }
  }
  if (write) {
    const nlohmann::json record = {{"data_file", data_path},
                                   {"data_sha256", data_sha256},
                                   {"requirements_sha256", requirements_sha256}};
    write_file_atomically(record_path.string(), record.dump(2) + "\n");
  }
}

// The privacy section of the artifact and the report: the DP-SGD budget spent and how PII columns were
// handled. Column names are not personal data; their values never appear here.
nlohmann::json privacy_section(const Requirements& requirements, const PipelineResult& result) {
  nlohmann::json section = nlohmann::json::object();
  if (result.training.privacy) {
    section["dp_sgd"] = result.training.privacy->to_json();
  }
  if (!requirements.pii.empty()) {
    section["pii"] = {{"columns", requirements.pii},
                      {"handling", to_string(requirements.pii_handling)},
                      {"hash", requirements.pii_handling == PiiHandling::Hash ? "BLAKE2b-256, keyed" : ""}};
  }
  return section;
}

std::string privacy_markdown(const nlohmann::json& section) {
  if (section.empty()) {
    return "";
  }

  std::string md = "\n## Privacy\n\n";
  if (section.contains("dp_sgd")) {
    const nlohmann::json& dp = section["dp_sgd"];
    md += fmt::format("Trained with DP-SGD: epsilon {:.4f} spent of {:g} at delta {:g} (RDP accountant), noise "
                      "multiplier {:.4f}, clipping norm {:g}, {} steps at Poisson sampling rate {:.5f}.{}\n",
                      dp["epsilon"].get<double>(), dp["target_epsilon"].get<double>(), dp["delta"].get<double>(),
                      dp["noise_multiplier"].get<double>(), dp["max_grad_norm"].get<double>(),
                      dp["steps"].get<std::uint64_t>(), dp["sample_rate"].get<double>(),
                      dp["budget_exhausted"].get<bool>() ? " Training stopped when the budget was spent." : "");
  }
  if (section.contains("pii")) {
    md += fmt::format("\nPII columns ({}): {}.\n", section["pii"]["handling"].get<std::string>(),
                      fmt::join(section["pii"]["columns"].get<std::vector<std::string>>(), ", "));
  }
  return md;
}

}  // namespace

PipelineResult run_pipeline(const Requirements& requirements, const PipelineOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  if (options.output_dir.empty()) throw InvalidArgument("run_pipeline: output_dir is empty; name a folder to write into");
  if (options.data_path.empty()) throw InvalidArgument("run_pipeline: data_path is empty; name a CSV file");

  PipelineResult result;

  // Data: read, check the target, profile.
  const std::string data_bytes = read_file(options.data_path);
  std::optional<EncryptionKey> pii_key;
  if (requirements.pii_handling == PiiHandling::Hash) {
    pii_key = options.pii_key ? options.pii_key : detail::pii_key_from_environment();
  }
  const Table table = detail::mask_pii(parse_csv(data_bytes, options.data_path), requirements, pii_key);
  if (table.rows() == 0) {
    throw ParseError(fmt::format("{}: the file has a header but no data rows; a model needs rows to learn from",
                                 options.data_path));
  }
  try {
    table.column_index(requirements.target);
  } catch (const InvalidArgument& error) {
    // Name the requirements field too, because the fix may belong in either file.
    throw InvalidArgument(fmt::format("requirements $.target: {}. Fix the target in the requirements or the "
                                      "header of the data file",
                                      error.what()));
  }
  result.profile = profile_table(table, requirements.target, requirements.task);

  // Configuration with a reason for each choice.
  result.config = configure(requirements, result.profile);
  log(LogLevel::Info, fmt::format("configured an MLP with hidden units [{}]", fmt::join(result.config.hidden_units, ", ")));

  if (options.distributed && result.config.cross_fit_folds > 1) {
    // NOTE: the configurator chose batch size, epochs and dropout for the rows of one cross-fitted member, and
    // their reasons quote those rows. The data-parallel model trains on the training split instead, which
    // differs by a tenth. A configure() option to rule out cross-fitting would let it decide for those rows.
    result.config.cross_fit_folds = 1;
    result.config.reasons["cross_fit_folds"] =
        Reason{"Data-parallel training trains one model across the ranks, so cross-fitting is off",
               "options.distributed"};
    log(LogLevel::Info, "data-parallel training: cross-fitting is off, one model is trained");
  }
  const bool cross_fit = result.config.cross_fit_folds > 1;

  // Split, then fit preprocessing on the rows that the model learns from: the training split, or with
  // cross-fitting the training and validation splits together. The test rows are never among them.
  const SplitTarget target = split_rows(table, requirements);
  std::vector<std::size_t> learning_rows = target.split.train;
  if (cross_fit) {
    learning_rows.insert(learning_rows.end(), target.split.validation.begin(), target.split.validation.end());
    std::sort(learning_rows.begin(), learning_rows.end());
  }
  const Preprocessor preprocessor = Preprocessor::fit(table, result.config.features, learning_rows);
  const TrainingData train = training_data(table, preprocessor, target, learning_rows);
  const TrainingData validation =
      cross_fit ? TrainingData{} : training_data(table, preprocessor, target, target.split.validation);
  // Encoding the test rows now reports a bad cell there before training, not after it.
  const TrainingData test = training_data(table, preprocessor, target, target.split.test);

  // Derived inputs, screened on the learning rows. Data-parallel ranks would each need the same screen.
  if (options.distributed && result.config.derived_search) {
    result.config.derived_search = false;
    result.config.reasons["derived_search"] =
        Reason{"No derived inputs: data-parallel training does not run the screen", "options.distributed"};
    result.config.reasons["derived_features"] = Reason{"None, because the screen is off", "options.distributed"};
  }
  if (result.config.derived_search) search_derived_inputs(result.config, preprocessor, train);
  const std::vector<DerivedInput>& derived = result.config.derived_features;

  // Train.
  const detail::FolderState output_dir_before_run = detail::output_folder_state(options.output_dir);
  std::error_code io_error;
  fs::create_directories(options.output_dir, io_error);
  if (io_error) {
    throw IoError(fmt::format("cannot create output folder '{}': {}", options.output_dir, io_error.message()));
  }
  const std::string data_sha256 = sha256_hex(data_bytes);
  const std::string requirements_sha256 = sha256_hex(requirements.to_json().dump());
  const bool writes_outputs = !options.distributed || options.distributed->rank == 0;
  const std::string checkpoint_path = (fs::path(options.output_dir) / "checkpoint.pt").string();
  // Rank 0 owns the folder's checkpoints. The plan is checked before anything is written or removed, so a
  // rejected resume leaves the folder as it was.
  std::optional<detail::CheckpointPlan> checkpoint_plan;
  if (writes_outputs) {
    checkpoint_plan = detail::plan_checkpoints(checkpoint_path, cross_fit ? result.config.cross_fit_folds : 1,
                                               options.resume, output_dir_before_run);
  }
  check_resume_inputs(options.output_dir, options.resume, writes_outputs, options.data_path, data_sha256,
                      requirements_sha256);
  if (checkpoint_plan) detail::apply_checkpoint_plan(*checkpoint_plan);
  // The plan has already warned about a missing single-model checkpoint, so the Trainer is not asked to resume
  // from one that does not exist. Cross-fitted members check their own files.
  const bool resume_trainer =
      options.resume && (cross_fit || !checkpoint_plan || fs::exists(checkpoint_path));
  TrainerOptions trainer_options;
  trainer_options.with_config(result.config)
      .with_progress(options.on_epoch)
      .with_checkpoint(checkpoint_path, resume_trainer)
      .with_threads(options.threads);
  if (requirements.constraints.max_training_seconds) {
    trainer_options.with_time_budget(*requirements.constraints.max_training_seconds);
  }
  trainer_options.stop_requested = options.stop_requested;
  const SaveOptions protection = options.protection ? *options.protection : SaveOptions::from_environment();
  trainer_options.checkpoint_key = protection.key;
  std::optional<CrossFitResult> cross_fitted;
  if (cross_fit) {
    cross_fitted = fit_cross_fitted(trainer_options, with_derived(train, derived), result.config.cross_fit_folds);
    // From here on every network takes the encoded columns alone.
    cross_fitted->network = fold_derived(cross_fitted->network, derived);
    for (TrainingResult& member : cross_fitted->members) member.network = fold_derived(member.network, derived);
    result.training = summarize_members(*cross_fitted);
    result.members = cross_fitted->members;
  } else if (options.distributed) {
    result.training = fit_data_parallel(*options.distributed, trainer_options, train, validation);
  } else {
    result.training = Trainer(trainer_options).fit(with_derived(train, derived), with_derived(validation, derived));
    result.training.network = fold_derived(result.training.network, derived);
  }
  if (result.training.stop_reason == "stop_requested") {
    const std::string where =
        result.members.empty()
            ? fmt::format("after epoch {}", result.training.history.size())
            : fmt::format("in member {} of {} after its epoch {}", result.members.size(),
                          result.config.cross_fit_folds, result.members.back().history.size());
    throw Error(fmt::format("training was interrupted {}; the checkpoints in {} are kept, so run again with "
                            "--resume to continue",
                            where, options.output_dir));
  }
  if (options.distributed && options.distributed->rank != 0) {
    return result;  // Rank 0 evaluates and writes the outputs.
  }

  // Assemble the artifact, choose the threshold on validation, evaluate on the held-out test rows.
  ModelArtifact artifact;
  artifact.task = requirements.task;
  artifact.preprocessor = preprocessor;
  artifact.target = target.encoding;
  artifact.network = result.training.network;
  artifact.configuration = result.config.to_json();
  artifact.provenance.lepton_version = LEPTON_VERSION_STRING;
  artifact.provenance.created_utc = utc_timestamp();
  artifact.provenance.data_file = options.data_path;
  artifact.provenance.data_sha256 = data_sha256;
  artifact.provenance.requirements_sha256 = requirements_sha256;
  artifact.provenance.seed = requirements.seed;

  if (cross_fit) {
    // Out-of-fold predictions stand in for the validation split: every learning row, scored by a member
    // that never trained on it.
    Predictions out_of_fold = out_of_fold_predictions(artifact, *cross_fitted, train.features);
    artifact.threshold = select_threshold(result.config, out_of_fold, train.labels);
    apply_threshold(out_of_fold, artifact.threshold);
    result.validation = evaluate_predictions(out_of_fold, train, target.encoding);
  } else {
    const Predictor draft(artifact);
    const Predictions validation_predictions = draft.predict(validation.features);
    artifact.threshold = select_threshold(result.config, validation_predictions, validation.labels);
    result.validation = evaluate_data(Predictor(artifact), validation, target.encoding);
  }
  const Predictor predictor(artifact);
  result.test = evaluate_data(predictor, test, target.encoding);
  artifact.metrics = {{"validation", result.validation.to_json()}, {"test", result.test.to_json()}};

  // Explanations: a weighted k-means summary of the training rows goes into the artifact, so that deployed
  // models explain predictions without the training data.
  store_background(artifact, Background::kmeans(train.features, FeatureGroups::from_preprocessor(preprocessor),
                                                KMeansOptions().clusters(kBackgroundClusters).seed(requirements.seed)));
  std::vector<std::string> id_columns;
  for (const ColumnProfile& column : result.profile.columns) {
    if (column.kind == ColumnKind::IdLike) id_columns.push_back(column.name);
  }
  result.explanations = detail::explain_test_rows(artifact, table, target.split.test, id_columns, options.threads);

  // Export: every file goes to a temporary name first, so the folder never contains a partial file.
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const fs::path out(options.output_dir);
  result.model_path = (out / "model.lepton").string();
  result.report_json_path = (out / "report.json").string();
  result.report_md_path = (out / "report.md").string();

  // int8 export when the configuration requests it: the gate compares it with fp32 on validation rows.
  std::optional<QuantizationResult> quantized;
  if (result.config.quantize) {
    QuantizationOptions quantization;
    quantization.with_tolerance(requirements.constraints.quantization_tolerance)
        .with_objective(to_string(result.config.objective));
    // With cross-fitting there is no separate validation split, so the gate compares int8 with fp32 on the
    // learning rows. It measures agreement between the two exports, not generalization, so those rows serve.
    const TrainingData& gate = cross_fit ? train : validation;
    const std::vector<std::size_t>& gate_rows = cross_fit ? learning_rows : target.split.validation;
    quantized = is_classification(requirements.task)
                    ? quantize(artifact, train.features, gate.features, gate.labels, quantization)
                    : quantize(artifact, train.features, gate.features,
                               target.encoding.encode_values(table, gate_rows), quantization);
    result.int8_model_path = (out / "model_int8.lepton").string();
    result.quantization = quantized->to_json();
  }

  const nlohmann::json privacy = privacy_section(requirements, result);
  if (!privacy.empty()) {
    artifact.extensions["privacy"] = privacy;
    if (quantized) quantized->artifact.extensions["privacy"] = privacy;
  }
  nlohmann::json report =
      detail::build_report(requirements, result, artifact, quantized ? &quantized->artifact : nullptr);
  if (!privacy.empty()) {
    report["privacy"] = privacy;
  }
  write_file_atomically((out / "config.json").string(), result.config.to_json().dump(2) + "\n");
  write_file_atomically((out / "metrics.json").string(), report.at("metrics").dump(2) + "\n");
  save_artifact(artifact, result.model_path, protection);
  if (quantized) save_artifact(quantized->artifact, result.int8_model_path, protection);
  write_file_atomically(result.report_json_path, report.dump(2) + "\n");
  write_file_atomically(result.report_md_path, detail::render_report_markdown(report) + privacy_markdown(privacy));

  std::vector<std::string> written = {"config.json", "metrics.json", "model.lepton",
                                      "report.json", "report.md",    "training_inputs.json"};
  if (quantized) written.emplace_back("model_int8.lepton");
  detail::remove_outputs_not_written(out, written);
  return result;
}

}  // namespace lepton
