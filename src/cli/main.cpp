// The `lepton` command: a thin shell over the public API of lepton::runtime and lepton::train.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/csv_fields.hpp"
#include "cli/distributed_commands.hpp"
#include "cli/input_files.hpp"
#include "lepton/configurator.hpp"
#include "lepton/crypto.hpp"
#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "lepton/log.hpp"
#include "lepton/pipeline.hpp"
#include "lepton/predictor.hpp"
#include "lepton/requirements.hpp"
#include "lepton/version.hpp"

namespace {

// Exit codes: 0 success, 1 bad input or failed run, 2 usage error (CLI11), 3 a constraint was not met,
// 4 internal error, 130 interrupted.
constexpr int kExitInput = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConstraintNotMet = 3;
constexpr int kExitInternal = 4;
constexpr int kExitInterrupted = 130;

std::atomic<bool> g_stop_requested{false};

extern "C" void request_stop(int) { g_stop_requested.store(true); }

std::string format_duration(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  return fmt::format("{}m{:02d}s", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
}

// Prints one progress line per epoch. On a terminal the line is rewritten in place.
void print_progress(const lepton::EpochRecord& record, const std::string& metric_name) {
  static const bool is_terminal = isatty(fileno(stderr)) != 0;
  const std::string member =
      record.members > 1 ? fmt::format("member {:>2}/{:<2}  ", record.member + 1, record.members) : "";
  const std::string line = fmt::format(
      "{}epoch {:>3}/{:<3}  loss {:.4f}  val_loss {:.4f}  val_{} {:.4f}{}  lr {:.2e}  {}  ETA {}",
      member, record.epoch, record.max_epochs, record.train_loss, record.validation_loss, metric_name,
      record.validation_metric, record.improved ? "*" : " ", record.learning_rate,
      format_duration(record.elapsed_seconds), format_duration(record.eta_seconds));
  if (is_terminal) {
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

// The output files that run_pipeline wrote, by name. config.json and metrics.json have no path in the result,
// because run_pipeline always writes them under these names.
std::vector<std::string> written_files(const lepton::PipelineResult& result) {
  const auto name = [](const std::string& path) { return std::filesystem::path(path).filename().string(); };
  std::vector<std::string> files = {"config.json", name(result.model_path)};
  if (!result.int8_model_path.empty()) files.push_back(name(result.int8_model_path));
  files.push_back("metrics.json");
  files.push_back(name(result.report_json_path));
  files.push_back(name(result.report_md_path));
  return files;
}

void print_summary(const lepton::PipelineResult& result, const std::string& out_dir) {
  const lepton::Evaluation& test = result.test;
  if (result.members.empty()) {
    std::cout << fmt::format("\nTrained {} epochs (best {}, stopped by {}) in {}.\n", result.training.history.size(),
                             result.training.best_epoch, result.training.stop_reason,
                             format_duration(result.training.seconds));
  } else {
    std::vector<std::size_t> best_epochs;
    for (const lepton::TrainingResult& member : result.members) best_epochs.push_back(member.best_epoch);
    std::cout << fmt::format("\nTrained {} cross-fitted members, {} epochs in all (best epochs {}) in {}.\n",
                             result.members.size(), result.training.history.size(), fmt::join(best_epochs, ", "),
                             format_duration(result.training.seconds));
  }
  if (test.task == lepton::Task::BinaryClassification) {
    const lepton::BinaryMetrics& m = test.binary;
    std::cout << fmt::format(
        "Test split ({} rows): F1 {:.4f}  precision {:.4f}  recall {:.4f}  ROC-AUC {:.4f}  PR-AUC {:.4f}  "
        "threshold {:.4f}\n",
        test.rows, m.f1, m.precision, m.recall, m.roc_auc, m.pr_auc, m.threshold);
  } else if (test.task == lepton::Task::MulticlassClassification) {
    const lepton::MulticlassMetrics& m = test.multiclass;
    std::cout << fmt::format("Test split ({} rows): accuracy {:.4f}  macro F1 {:.4f}  weighted F1 {:.4f}\n", test.rows,
                             m.accuracy, m.macro_f1, m.weighted_f1);
  } else {
    const lepton::RegressionMetrics& m = test.regression;
    std::cout << fmt::format("Test split ({} rows): MAE {:.4f}  RMSE {:.4f}  R² {:.4f}\n", test.rows, m.mae, m.rmse, m.r2);
  }
  std::cout << fmt::format("Wrote {}/: {}\n", out_dir, fmt::join(written_files(result), ", "));
}

int run_command(const std::string& requirements_path, const std::string& data_path, const std::string& out_dir,
                bool quiet, bool resume, int threads) {
  // Warnings reach stderr even with --quiet and without --verbose, because each one reports a change to what
  // the user requested, such as a --resume that finds no checkpoint and trains from the first epoch.
  if (lepton::log_level() > lepton::LogLevel::Warning) {
    lepton::set_log_sink(lepton::stderr_log_sink());
    lepton::set_log_level(lepton::LogLevel::Warning);
  }

  lepton::cli::check_input_file("--requirements", requirements_path);
  lepton::cli::check_input_file("--data", data_path);
  const lepton::Requirements requirements = lepton::load_requirements(requirements_path);

  lepton::PipelineOptions options;
  options.data_path = data_path;
  options.output_dir = out_dir;
  options.resume = resume;
  options.threads = threads;
  options.stop_requested = &g_stop_requested;
  options.distributed = lepton::cli::run_distribution();
  const bool is_rank0 = !options.distributed || options.distributed->rank == 0;
  const std::string metric_name = lepton::to_string(requirements.objective);
  if (!quiet && is_rank0) {
    options.on_epoch = [metric_name](const lepton::EpochRecord& record) { print_progress(record, metric_name); };
  }

  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  const lepton::PipelineResult result = lepton::run_pipeline(requirements, options);
  if (!is_rank0) return 0;  // Rank 0 prints the summary and checks the constraints.
  if (!quiet) std::fprintf(stderr, "\n");
  print_summary(result, out_dir);

  // A run that finished but missed a measured constraint still writes its outputs, and names the failed constraint.
  const nlohmann::json report = nlohmann::json::parse(lepton::read_file(result.report_json_path));
  int exit_code = 0;
  for (const auto& row : report["constraints"]) {
    if (!row["met"].get<bool>()) {
      // Numbers print with 6 significant digits, so 0.784 is not shown as 0.7839999999999999.
      const auto value_text = [](const nlohmann::json& value) {
        return value.is_number_float() ? fmt::format("{:.6g}", value.get<double>()) : value.dump();
      };
      std::cerr << fmt::format("error: constraint {} not met: required {}, measured {}\n",
                               row["constraint"].get<std::string>(), value_text(row["required"]),
                               value_text(row["measured"]));
      exit_code = kExitConstraintNotMet;
    }
  }
  return exit_code;
}

// Key file options. They reach the library through the environment variables that SaveOptions and
// LoadOptions::from_environment read, so that run, predict and explain all honour them.
struct KeyOptions {
  std::string key_file, sign_key, trusted_key, pii_key_file;
};

void export_key_options(const KeyOptions& keys) {
  const std::pair<const char*, const std::string*> key_files[] = {{"--key-file", &keys.key_file},
                                                                 {"--sign-key", &keys.sign_key},
                                                                 {"--trusted-key", &keys.trusted_key},
                                                                 {"--pii-key-file", &keys.pii_key_file}};
  for (const auto& [option, path] : key_files) {
    if (!path->empty()) lepton::cli::check_input_file(option, *path);
  }

  if (!keys.key_file.empty()) {
    ::unsetenv(lepton::kModelKeyVariable);  // An explicit --key-file wins over LEPTON_MODEL_KEY.
    ::setenv(lepton::kModelKeyFileVariable, keys.key_file.c_str(), 1);
  }
  if (!keys.sign_key.empty()) ::setenv(lepton::kSigningKeyFileVariable, keys.sign_key.c_str(), 1);
  if (!keys.trusted_key.empty()) ::setenv(lepton::kTrustedKeyFileVariable, keys.trusted_key.c_str(), 1);
  if (!keys.pii_key_file.empty()) {
    ::unsetenv("LEPTON_PII_KEY");  // An explicit --pii-key-file wins over LEPTON_PII_KEY.
    ::setenv("LEPTON_PII_KEY_FILE", keys.pii_key_file.c_str(), 1);
  }
}

int validate_command(const std::string& requirements_path) {
  lepton::cli::check_input_file("--requirements", requirements_path);
  const lepton::Requirements requirements = lepton::load_requirements(requirements_path);
  std::cout << fmt::format("{}: valid (task {}, target '{}')\n", requirements_path,
                           lepton::to_string(requirements.task), requirements.target);
  return 0;
}

int profile_command(const std::string& data_path, const std::string& target) {
  lepton::cli::check_input_file("--data", data_path);
  const lepton::Table table = lepton::read_csv(data_path);
  const lepton::DataProfile profile = lepton::profile_table(table, target);
  std::cout << profile.to_json().dump(2) << "\n";
  return 0;
}

int configure_command(const std::string& requirements_path, const std::string& data_path) {
  lepton::cli::check_input_file("--requirements", requirements_path);
  lepton::cli::check_input_file("--data", data_path);
  const lepton::Requirements requirements = lepton::load_requirements(requirements_path);
  const lepton::Table table = lepton::read_csv(data_path);
  table.column_index(requirements.target);
  const lepton::ModelConfig config =
      lepton::configure(requirements, lepton::profile_table(table, requirements.target, requirements.task));
  std::cout << config.to_json().dump(2) << "\n";
  return 0;
}

int predict_command(const std::string& model_path, const std::string& data_path, const std::string& out_path) {
  lepton::cli::check_input_file("--model", model_path);
  lepton::cli::check_input_file("--data", data_path);
  const lepton::Predictor predictor = lepton::Predictor::load(model_path);
  const lepton::Table records = lepton::read_csv(data_path);
  const lepton::Predictions predictions = predictor.predict(records);
  const lepton::ModelArtifact& artifact = predictor.artifact();

  // ID-like columns (a serial number, a product code) go into the output after the row number, so that each
  // prediction can be matched to its machine or customer without counting rows.
  std::vector<std::size_t> id_columns;
  for (const lepton::ColumnProfile& column : lepton::profile_table(records).columns) {
    if (column.kind == lepton::ColumnKind::IdLike) id_columns.push_back(records.column_index(column.name));
  }
  auto row_start = [&](std::size_t row) {
    std::string text = std::to_string(row);
    for (const std::size_t column : id_columns) text += "," + lepton::cli::csv_field(records.cell(row, column));
    return text;
  };
  std::string csv = "row";
  for (const std::size_t column : id_columns) csv += "," + lepton::cli::csv_field(records.column_names()[column]);

  if (predictions.task == lepton::Task::Regression) {
    csv += ",prediction\n";
    for (std::size_t i = 0; i < predictions.rows; ++i) {
      csv += fmt::format("{},{:.9g}\n", row_start(i), predictions.value[i]);
    }
  } else if (predictions.task == lepton::Task::BinaryClassification) {
    csv += ",label,probability\n";
    for (std::size_t i = 0; i < predictions.rows; ++i) {
      csv += fmt::format("{},{},{:.9g}\n", row_start(i),
                         lepton::cli::csv_field(artifact.target.classes[predictions.label_index[i]]),
                         predictions.probability[i]);
    }
  } else {
    csv += ",label";
    for (const std::string& name : artifact.target.classes) csv += "," + lepton::cli::csv_field("probability_" + name);
    csv += "\n";
    for (std::size_t i = 0; i < predictions.rows; ++i) {
      csv += fmt::format("{},{}", row_start(i),
                         lepton::cli::csv_field(artifact.target.classes[predictions.label_index[i]]));
      for (std::size_t k = 0; k < predictions.classes; ++k) {
        csv += fmt::format(",{:.9g}", predictions.probability[i * predictions.classes + k]);
      }
      csv += "\n";
    }
  }
  lepton::write_file_atomically(out_path, csv);
  std::cout << fmt::format("Wrote {} predictions to {}\n", predictions.rows, out_path);
  return 0;
}

// Rejects a --rows value that names no row, such as '' or ' , ', as a usage error. Without this check an empty
// value would read as an absent option, which explains every row of the file.
void check_row_list_option(const CLI::App& explain, const std::string& rows) {
  if (explain.count("--rows") == 0 || rows.find_first_not_of(" ,") != std::string::npos) return;
  throw CLI::ValidationError("--rows", fmt::format("'{}' names no row; pass 0-based row numbers and ranges such as "
                                                   "0-9,15, or leave out --rows to explain every row",
                                                   rows));
}

// Rejects an empty output path as a usage error, before the library would report it by a C++ function name.
void check_output_option(const CLI::App& command, const std::string& path) {
  if (!command || !path.empty()) return;
  throw CLI::ValidationError("--out", "the path is empty; name the file or folder to write");
}

}  // namespace

int main(int argc, char** argv) {
  // NOTE: the CLI keeps the library's quiet default, except that `run` prints warnings. --verbose routes
  // every decision to stderr.
  CLI::App app{"Lepton: from a requirements file and a CSV to a trained, evaluated, deployable model."};
  app.set_version_flag("--version", std::string("lepton ") + LEPTON_VERSION_STRING);
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log configuration decisions and details to stderr");
  KeyOptions keys;
  app.add_option("--key-file", keys.key_file,
                 "File with the model encryption key (64 hex digits or 32 bytes): run encrypts model and checkpoint "
                 "with it, predict and explain decrypt. Default: the LEPTON_MODEL_KEY environment variable");
  app.add_option("--sign-key", keys.sign_key, "File with an Ed25519 seed (64 hex digits): run signs the model with it");
  app.add_option("--trusted-key", keys.trusted_key,
                 "File with a trusted Ed25519 public key (64 hex digits): predict and explain load only models "
                 "signed by it");
  app.add_option("--pii-key-file", keys.pii_key_file,
                 "File with the PII hashing key (64 hex digits), for pii_handling \"hash\". Default: LEPTON_PII_KEY");

  std::string requirements_path, data_path, out_dir, model_path, out_path, target;
  bool quiet = false, resume = false;
  int threads = 1;

  CLI::App* run = app.add_subcommand("run", "Configure, train, evaluate and export a model");
  run->add_option("-r,--requirements", requirements_path, "Requirements JSON file")->required();
  run->add_option("-d,--data", data_path, "Training data CSV file")->required();
  run->add_option("-o,--out", out_dir, "Output folder for config, model and report")->required();
  run->add_flag("-q,--quiet", quiet, "Do not print per-epoch progress");
  run->add_flag("--resume", resume, "Continue from the checkpoint in the output folder");
  run->add_option("-j,--threads", threads, "Threads for training")->check(CLI::Range(1, 256));
  lepton::cli::add_distributed_run_flags(*run);

  CLI::App* validate = app.add_subcommand("validate", "Check a requirements file and report every problem");
  validate->add_option("-r,--requirements", requirements_path, "Requirements JSON file")->required();

  CLI::App* profile = app.add_subcommand("profile", "Infer the schema of a CSV file and print its profile as JSON");
  profile->add_option("-d,--data", data_path, "CSV file")->required();
  profile->add_option("-t,--target", target, "Target column, to count its classes");

  CLI::App* configure = app.add_subcommand("configure", "Print the model configuration and its reasons as JSON");
  configure->add_option("-r,--requirements", requirements_path, "Requirements JSON file")->required();
  configure->add_option("-d,--data", data_path, "Training data CSV file")->required();

  CLI::App* predict = app.add_subcommand("predict", "Predict the rows of a CSV file with a model artifact");
  predict->add_option("-m,--model", model_path, "Model artifact (.lepton)")->required();
  predict->add_option("-d,--data", data_path, "CSV file with the model's input columns")->required();
  predict->add_option("-o,--out", out_path, "Predictions CSV to write")->required();

  lepton::cli::ExplainArguments explain_arguments;
  CLI::App* explain = app.add_subcommand("explain", "Explain predictions with SHAP values from the model's stored background");
  explain->add_option("-m,--model", explain_arguments.model_path, "Model artifact (.lepton)")->required();
  explain->add_option("-d,--data", explain_arguments.data_path, "CSV file with the rows to explain")->required();
  explain->add_option("-o,--out", explain_arguments.output_dir, "Output folder for attributions.json, .csv and top_k.txt")
      ->required();
  explain->add_option("--rows", explain_arguments.rows, "0-based data rows to explain, e.g. 0-9,15 (default: all)");
  explain->add_option("--method", explain_arguments.method, "exact, kernel, permutation or gradient")
      ->capture_default_str()
      ->check(CLI::IsMember({"exact", "kernel", "permutation", "gradient"}));
  explain->add_option("--path", explain_arguments.path,
                      "fast (float, as lepton run's report) or reference (double, bit-reproducible, slower); "
                      "exact, kernel and permutation only")
      ->capture_default_str()
      ->check(CLI::IsMember({"fast", "reference"}));
  explain->add_option("--samples", explain_arguments.samples,
                      "Kernel SHAP coalitions or permutation pairs (default: the method's own)");
  explain->add_option("--top-k", explain_arguments.top_k, "Features listed per row in top_k.txt")->check(CLI::PositiveNumber);
  explain->add_option("-j,--threads", explain_arguments.threads, "Rows explained in parallel")->check(CLI::Range(1, 256));
  explain->add_option("--seed", explain_arguments.seed, "Seed of the sampling explainers");

  CLI::App* schema = app.add_subcommand("schema", "Print the JSON Schema of requirements files");

  lepton::cli::add_distributed_commands(app);

  try {
    app.parse(argc, argv);
    check_row_list_option(*explain, explain_arguments.rows);
    check_output_option(*run, out_dir);
    check_output_option(*predict, out_path);
    check_output_option(*explain, explain_arguments.output_dir);
  } catch (const CLI::ParseError& error) {
    // A misspelled command leaves no subcommand parsed, and CLI11 would only report that one is required.
    const std::vector<std::string> unparsed = app.remaining();
    if (app.get_subcommands().empty() && !unparsed.empty() && unparsed.front().rfind('-', 0) != 0) {
      std::vector<std::string> commands;
      for (const CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
        commands.push_back(command->get_name());
      }
      std::cerr << fmt::format("error: unknown command '{}'; the commands are {} (see lepton --help)\n",
                               unparsed.front(), fmt::join(commands, ", "));
      return kExitUsage;
    }
    // --help and --version are "errors" with exit code 0; every real usage error exits with 2.
    return app.exit(error) == 0 ? 0 : kExitUsage;
  }
  if (verbose) {
    lepton::set_log_sink(lepton::stderr_log_sink());
    lepton::set_log_level(lepton::LogLevel::Info);
  }

  try {
    export_key_options(keys);
    if (const std::optional<int> code = lepton::cli::run_distributed_command()) return *code;
    if (*run) return run_command(requirements_path, data_path, out_dir, quiet, resume, threads);
    if (*validate) return validate_command(requirements_path);
    if (*profile) return profile_command(data_path, target);
    if (*configure) return configure_command(requirements_path, data_path);
    if (*predict) return predict_command(model_path, data_path, out_path);
    if (*explain) return lepton::cli::explain_command(explain_arguments);
    if (*schema) {
      std::cout << lepton::requirements_json_schema().dump(2) << "\n";
      return 0;
    }
  } catch (const lepton::InternalError& e) {
    std::cerr << "internal error: " << e.what() << "\nPlease report this as a bug.\n";
    return kExitInternal;
  } catch (const lepton::Error& e) {
    std::cerr << "\nerror: " << e.what() << "\n";
    return g_stop_requested.load() ? kExitInterrupted : kExitInput;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\nPlease report this as a bug.\n";
    return kExitInternal;
  }
  return kExitInput;
}
