#pragma once
// Names of the training checkpoints in an output folder, the check that a run makes of them before it
// trains, and the removal of an earlier run's outputs that a new run did not write. Not installed.
//
// The scheme, for the base path "DIR/checkpoint.pt":
//   DIR/checkpoint.pt           a single model
//   DIR/checkpoint.memberK.pt   cross-fitted member K, counted from 1 as in progress lines and messages
//   DIR/checkpoint.foldK.pt     the older name, which counted members from 0 (fold 0 was member 1)
//   DIR/<one of the above>.tmp-PID   a write that a killed process did not finish (see write_file_atomically)

#include <array>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace lepton::detail {

/// Returns the checkpoint path of cross-fitted member `member` (counted from 1):
/// "runs/pm/checkpoint.pt" -> "runs/pm/checkpoint.member3.pt". An empty path (no checkpoints) stays empty.
std::string member_checkpoint_path(const std::string& path, std::size_t member);

/// Actions that a run takes on the checkpoint files in its folder before it trains.
struct CheckpointPlan {
  /// Files of the scheme that the run removes: every checkpoint when it does not resume, and unfinished
  /// temporary files always.
  std::vector<std::filesystem::path> stale;
  /// A warning for the user, or empty. Set when a resuming run finds no checkpoint for some or all models,
  /// because those models then train from the first epoch although the user requested a resume.
  std::string resume_notice;
};

/// Contents of an output folder before a run creates or fills it.
enum class FolderState {
  HasEntries,  ///< The folder has at least one entry, or its contents could not be read.
  Empty,       ///< The folder exists and has no entries.
  Missing,     ///< Nothing exists at the path.
};

/// Classifies the contents of `folder` now. A run calls it before it creates the folder or writes into it.
FolderState output_folder_state(const std::string& folder);

/// Checks the checkpoint files next to `checkpoint_path` against a run that trains `members` models
/// (1: a single model at checkpoint_path itself; K > 1: members 1 to K). Removes nothing.
/// `folder_before_run` is the folder's state before the run created or filled it. When a resume finds no
/// checkpoint in a folder that was empty or missing, the notice adds that the --out path may be mistyped,
/// because such a resume is more often a mistyped path than an interrupted run.
/// Throws InvalidArgument when `resume` is set and the folder contains a checkpoint that this run does not
/// train (another member count, a single model, or an old "foldK" name), naming the file and the fix.
CheckpointPlan plan_checkpoints(const std::string& checkpoint_path, std::size_t members, bool resume,
                                FolderState folder_before_run = FolderState::HasEntries);

/// Removes the plan's stale files and sends its notice to the log as a warning. Throws IoError naming the
/// file that cannot be removed.
void apply_checkpoint_plan(const CheckpointPlan& plan);

/// Names of the output files that `lepton run` (the first seven) and the `lepton federated` server
/// (model.lepton and federated.json) write into an output folder, besides checkpoints.
inline constexpr std::array<std::string_view, 8> kOutputFiles = {
    "config.json",          "metrics.json",      "model.lepton",  "report.json", "report.md",
    "training_inputs.json", "model_int8.lepton", "federated.json"};

/// Removes the files of kOutputFiles in `out` that are not in `written`, so that an earlier run's file, such
/// as an int8 export or a report, never sits next to this run's model as if it belonged to it. A run calls it
/// after it has written every output, so a run that fails earlier leaves the earlier run complete. Only
/// regular files and links are removed, and every other file stays. Logs the removed names at Info, and
/// throws IoError naming a file that cannot be removed.
void remove_outputs_not_written(const std::filesystem::path& out, const std::vector<std::string>& written);

}  // namespace lepton::detail
