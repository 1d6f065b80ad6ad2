#pragma once
/// Trains the configured MLP with LibTorch. LibTorch is an implementation detail: this header does not
/// include it, and the result is a runtime Mlp.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/configurator.hpp"
#include "lepton/crypto.hpp"
#include "lepton/matrix.hpp"
#include "lepton/model.hpp"
#include "lepton/privacy.hpp"

namespace lepton {

/// One finished epoch, as reported to the progress callback and stored in the history.
struct EpochRecord {
  std::size_t epoch = 0;           ///< 1-based.
  std::size_t max_epochs = 0;
  double train_loss = 0;
  double validation_loss = 0;
  double validation_metric = 0;    ///< The configured objective on the validation split.
  double learning_rate = 0;
  double elapsed_seconds = 0;
  double eta_seconds = 0;          ///< Estimate for the remaining epochs at the mean epoch time.
  bool improved = false;           ///< The epoch became the best: a better objective, or a tie at lower validation loss.
  std::size_t member = 0;           ///< Cross-fitted training: the member (0-based) that this epoch trains.
  std::size_t members = 1;          ///< Cross-fitted training: the number of members; 1 otherwise.
};

/// Training data in the form the trainer consumes: encoded features and the encoded target.
struct TrainingData {
  Matrix features;
  std::vector<std::int64_t> labels;  ///< Classification class ids.
  std::vector<double> values;        ///< Regression targets, already standardized.
};

/// Options of the Trainer. Chainable setters return *this.
struct TrainerOptions {
  ModelConfig config;
  std::function<void(const EpochRecord&)> on_epoch;  ///< Called after each epoch, on the training thread.
  std::string checkpoint_path;   ///< Empty: no checkpoints. Written atomically after each epoch.
  bool resume = false;           ///< Continue from checkpoint_path when it exists and matches the config.
  double max_seconds = 0;        ///< 0: no time budget. Otherwise stop after the epoch that passes it.
  int threads = 1;               ///< Intra-op threads for LibTorch.
  const std::atomic<bool>* stop_requested = nullptr;  ///< Polled between batches; set it to stop cleanly.
  /// Called after each backward pass with the flat gradient of all parameters (float32, `count` values, the
  /// batch mean), before the optimizer step. Data-parallel training averages it across ranks here. Empty: none.
  std::function<void(float* gradient, std::size_t count)> gradient_hook;
  /// Set: checkpoints are encrypted with this key (XChaCha20-Poly1305), and resuming needs the same key.
  std::optional<EncryptionKey> checkpoint_key;
  /// DP-SGD only, for tests: draw the noise and the Poisson samples from a ChaCha20 stream seeded with this
  /// value instead of the operating system's CSPRNG, so that a run repeats bit for bit. Whoever knows the
  /// seed can recompute and subtract the noise, so a seeded run has no privacy guarantee.
  std::optional<std::uint64_t> insecure_privacy_seed;
  /// Returns the order in which the training rows of an epoch are visited: a permutation of [0, rows), with
  /// `epoch` counted from 0. Data-parallel ranks use it to take their part of a shared global batch. Empty:
  /// a permutation drawn from config.seed.
  std::function<std::vector<std::int64_t>(std::size_t epoch, std::size_t rows)> row_order;
  /// Starting weights as one flat float32 vector in the layout W1, b1, W2, b2, ... (each weight [out, in],
  /// row-major), the layout of Mlp's layers. Empty: PyTorch's initialization from config.seed.
  std::vector<float> initial_parameters;
  /// FedProx: adds mu / 2 * ||w - initial_parameters||^2 to the loss. 0: no proximal term. Needs
  /// initial_parameters when > 0.
  double proximal_mu = 0;
  /// Returns the weights of the best validation epoch (true) or of the last epoch (false, as federated
  /// clients need).
  bool restore_best = true;

  TrainerOptions& with_config(ModelConfig c) { config = std::move(c); return *this; }
  TrainerOptions& with_progress(std::function<void(const EpochRecord&)> f) { on_epoch = std::move(f); return *this; }
  TrainerOptions& with_checkpoint(std::string path, bool resume_from_it) { checkpoint_path = std::move(path); resume = resume_from_it; return *this; }
  TrainerOptions& with_time_budget(double seconds) { max_seconds = seconds; return *this; }
  TrainerOptions& with_threads(int n) { threads = n; return *this; }
  TrainerOptions& with_gradient_hook(std::function<void(float*, std::size_t)> f) { gradient_hook = std::move(f); return *this; }
};

/// Result of training: the best weights (by the validation objective) and the history.
struct TrainingResult {
  Mlp network;
  std::vector<EpochRecord> history;
  std::size_t best_epoch = 0;
  /// "early_stopping", "max_epochs", "time_budget", "stop_requested", or "privacy_budget" when one more
  /// DP-SGD step would spend more than the target epsilon.
  std::string stop_reason;
  double seconds = 0;  ///< Training time, including the time recorded in the checkpoint when resumed.
  bool resumed = false;
  std::optional<PrivacySpent> privacy;  ///< DP-SGD runs: the budget spent; std::nullopt otherwise.

  nlohmann::json to_json() const;
};

/// Trains an MLP with AdamW, class weighting, a learning-rate schedule and early stopping.
/// Deterministic for a given config.seed on one machine, except DP-SGD (config.privacy set), whose noise and
/// batches come from a CSPRNG unless TrainerOptions::insecure_privacy_seed is set.
///
/// DP-SGD computes every row's gradient through each Linear layer, clips it to max_grad_norm, sums, adds
/// N(0, (noise_multiplier * max_grad_norm)^2) noise per coordinate and divides by the expected batch size.
/// Each step samples rows independently with rate batch_size / rows, so batches vary in size and may be
/// empty. Training stops before a step that would spend more than privacy->epsilon.
class Trainer {
 public:
  explicit Trainer(TrainerOptions options);

  /// Trains on `train`, selects the best epoch on `validation`. Throws InvalidArgument for empty or
  /// mismatched inputs.
  TrainingResult fit(const TrainingData& train, const TrainingData& validation) const;

  const TrainerOptions& options() const noexcept { return options_; }

 private:
  TrainerOptions options_;
};

}  // namespace lepton
