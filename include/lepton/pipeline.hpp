#pragma once
/// The end-to-end job that `lepton run` performs, composed from the public stages:
/// requirements -> profile -> configurator -> split and preprocessor -> trainer -> evaluator -> exporter.

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/configurator.hpp"
#include "lepton/crypto.hpp"
#include "lepton/distributed.hpp"
#include "lepton/evaluator.hpp"
#include "lepton/requirements.hpp"
#include "lepton/trainer.hpp"

namespace lepton {

/// Options of run_pipeline.
struct PipelineOptions {
  std::string data_path;
  std::string output_dir;
  std::function<void(const EpochRecord&)> on_epoch;  ///< Progress; empty for none.
  /// Resume training from the checkpoints in output_dir: checkpoint.pt for one model, checkpoint.memberK.pt
  /// for cross-fitted member K (counted from 1). Models without a checkpoint train from the first epoch, with
  /// one warning through the log. Rejects a folder holding checkpoints of models that this run does not train.
  bool resume = false;
  int threads = 1;
  const std::atomic<bool>* stop_requested = nullptr;
  /// Set: this process is one rank of a data-parallel group, and every rank calls run_pipeline with the
  /// same inputs. Each rank trains on its shard of the training rows. Rank 0 evaluates and writes the
  /// outputs; the other ranks return after training, with only `config`, `profile` and `training` set.
  std::optional<DistributedOptions> distributed;
  /// Encryption and signing of model.lepton, model_int8.lepton and the training checkpoints. Unset: the keys
  /// that SaveOptions::from_environment() finds (LEPTON_MODEL_KEY, LEPTON_MODEL_KEY_FILE,
  /// LEPTON_SIGNING_KEY_FILE), as the CLI does. A host application that must not read the environment sets
  /// it, to SaveOptions{} for unprotected files.
  std::optional<SaveOptions> protection;
  /// Key of "pii_handling": "hash". Unset: LEPTON_PII_KEY or the file named by LEPTON_PII_KEY_FILE.
  std::optional<EncryptionKey> pii_key;
};

/// Outputs and measurements of run_pipeline.
struct PipelineResult {
  ModelConfig config;
  DataProfile profile;
  /// The trained network and its epochs. With cross-fitting: the merged network, every member's epochs in
  /// member order, and stop_reason "cross_fitted" (or the reason that ended the run early).
  TrainingResult training;
  std::vector<TrainingResult> members;  ///< Cross-fitted members, member k early-stopped on fold k; else empty.
  /// Validation split metrics, or with cross-fitting the out-of-fold metrics over the training and
  /// validation rows.
  Evaluation validation;
  Evaluation test;
  std::string model_path;      ///< output_dir/model.lepton
  std::string int8_model_path; ///< output_dir/model_int8.lepton when the configuration quantizes, else empty.
  nlohmann::json quantization; ///< The int8 accuracy gate's measurements, or null.
  std::string report_json_path;
  std::string report_md_path;
  /// SHAP section of the report: global importance over the test rows and the attributions of the test rows
  /// that the model flags (binary classification), computed exactly over the stored background.
  nlohmann::json explanations;
  double seconds = 0;
};

/// Runs the whole job and writes into output_dir: config.json, model.lepton, metrics.json,
/// report.json and report.md, and model_int8.lepton when the configuration requests int8. The model stores a weighted k-means background for explanations. Every file is written to a temporary name and then renamed.
PipelineResult run_pipeline(const Requirements& requirements, const PipelineOptions& options);

}  // namespace lepton
