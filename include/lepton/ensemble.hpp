#pragma once
/// Cross-fitted ensembles. The training rows are cut into K folds, and member k trains on the other K - 1
/// folds and stops early on fold k. Every row thus gets an out-of-fold prediction from a member that never
/// trained on it, and the decision threshold and the validation metrics come from those predictions. The
/// members are then merged into one Mlp whose output is their mean logit (merge_mean_output, model.hpp), so
/// the runtime, the int8 export and the explainers work on an ordinary network.

#include <cstddef>
#include <vector>

#include "lepton/model.hpp"
#include "lepton/trainer.hpp"

namespace lepton {

/// Result of cross-fitted training.
struct CrossFitResult {
  Mlp network;                           ///< The merged members: its output is their mean output.
  std::vector<TrainingResult> members;   ///< Member k, early-stopped on fold k.
  std::vector<std::size_t> fold_of_row;  ///< Fold id of each training row.
  /// "completed", or the reason that ended the whole run early: "stop_requested", or "time_budget" when no
  /// time was left for the next member. Then `members` contains the members trained so far, and `network`
  /// merges them.
  std::string stop_reason;
  double seconds = 0;
};

/// Returns the seed of member `member`: distinct per member and fixed for a given base seed.
std::uint64_t member_seed(std::uint64_t seed, std::size_t member);

/// Trains `folds` members with `options` on `data`. Folds are stratified by class for classification.
/// Member k (counted from 0) uses member_seed(options.config.seed, k), its own checkpoint file
/// (options.checkpoint_path with ".member<k + 1>" before the extension), and an equal share of the time budget
/// that is left when it starts. With options.resume, a member resumes when its file exists and otherwise trains
/// from the first epoch without a warning; its TrainingResult::resumed shows which.
/// Each EpochRecord passed to the progress callback has member and members set, and its elapsed time and ETA
/// cover the whole run.
/// Throws InvalidArgument when folds < 2, a class has fewer rows than folds, or the options use
/// initial_parameters, a gradient hook or DP-SGD, which cross-fitting does not support.
CrossFitResult fit_cross_fitted(const TrainerOptions& options, const TrainingData& data, std::size_t folds);

}  // namespace lepton
