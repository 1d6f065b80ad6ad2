// Cross-fitted training. This file does not include LibTorch, because the members are trained through the
// public Trainer, and merge_mean_output (model.hpp, in the runtime) merges them.

#include "lepton/ensemble.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>

#include <fmt/format.h>

#include "lepton/dataset.hpp"
#include "lepton/error.hpp"
#include "train/checkpoint_files.hpp"

namespace lepton {

namespace {

using Clock = std::chrono::steady_clock;

void check_options(const TrainerOptions& options) {
  if (!options.initial_parameters.empty()) {
    throw InvalidArgument("fit_cross_fitted: options.initial_parameters is set, but each member starts from its "
                          "own initialization; clear it or train with Trainer::fit");
  }
  if (options.gradient_hook) {
    throw InvalidArgument("fit_cross_fitted: options.gradient_hook is set, but data-parallel training of members "
                          "is not supported; clear it or train with fit_data_parallel");
  }
  if (options.config.privacy) {
    throw InvalidArgument("fit_cross_fitted: options.config.privacy is set, but every member would spend the "
                          "privacy budget on the same rows; train a single DP-SGD model with Trainer::fit");
  }
}

TrainingData select_rows(const TrainingData& data, const std::vector<std::size_t>& rows) {
  TrainingData part;
  part.features = Matrix(rows.size(), data.features.cols);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::copy_n(data.features.row(rows[i]), data.features.cols, part.features.row(i));
  }
  if (!data.labels.empty()) {
    part.labels.reserve(rows.size());
    for (std::size_t row : rows) part.labels.push_back(data.labels[row]);
  }
  if (!data.values.empty()) {
    part.values.reserve(rows.size());
    for (std::size_t row : rows) part.values.push_back(data.values[row]);
  }
  return part;
}

std::vector<std::size_t> assign_folds(const TrainerOptions& options, const TrainingData& data, std::size_t folds) {
  if (options.config.task == Task::Regression) {
    return random_folds(data.features.rows, folds, options.config.seed);
  }
  if (data.labels.size() != data.features.rows) {
    throw InvalidArgument(fmt::format("fit_cross_fitted: data has {} labels for {} rows; pass one label per row",
                                      data.labels.size(), data.features.rows));
  }
  return stratified_folds(data.labels, folds, options.config.seed);
}

}  // namespace

std::uint64_t member_seed(std::uint64_t seed, std::size_t member) {
  // One SplitMix64 step over (seed, member): neighbouring members get unrelated seeds.
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (static_cast<std::uint64_t>(member) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

CrossFitResult fit_cross_fitted(const TrainerOptions& options, const TrainingData& data, std::size_t folds) {
  check_options(options);
  const Clock::time_point start = Clock::now();

  CrossFitResult result;
  result.fold_of_row = assign_folds(options, data, folds);

  for (std::size_t member = 0; member < folds; ++member) {
    std::vector<std::size_t> train_rows, validation_rows;
    for (std::size_t row = 0; row < result.fold_of_row.size(); ++row) {
      (result.fold_of_row[row] == member ? validation_rows : train_rows).push_back(row);
    }

    TrainerOptions member_options = options;
    member_options.config.seed = member_seed(options.config.seed, member);
    // Files count members from 1, as progress lines and messages do: fold 0 is member 1.
    member_options.checkpoint_path = detail::member_checkpoint_path(options.checkpoint_path, member + 1);
    // Members without a checkpoint start over without the Trainer's warning: the pipeline names them all in
    // one line, and each member's TrainingResult::resumed shows a direct caller.
    member_options.resume = options.resume && !member_options.checkpoint_path.empty() &&
                            std::filesystem::exists(member_options.checkpoint_path);
    if (options.max_seconds > 0) {
      // Each member gets an equal share of what is left, so a slow member does not starve the later ones.
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      member_options.max_seconds = std::max(0.0, options.max_seconds - elapsed) / static_cast<double>(folds - member);
      if (member_options.max_seconds <= 0) {
        result.stop_reason = "time_budget";
        break;
      }
    }
    if (options.on_epoch) {
      // Elapsed time and ETA cover the whole run: the finished members' seconds are added, and each member
      // still to come is assumed to take as long as the mean finished one (or this one, while it is the first).
      const double finished_seconds = std::accumulate(
          result.members.begin(), result.members.end(), 0.0,
          [](double sum, const TrainingResult& done) { return sum + done.seconds; });
      member_options.on_epoch = [&options, member, folds, finished_seconds](const EpochRecord& record) {
        const double member_seconds = member > 0 ? finished_seconds / static_cast<double>(member)
                                                 : record.elapsed_seconds + record.eta_seconds;
        EpochRecord tagged = record;
        tagged.member = member;
        tagged.members = folds;
        tagged.elapsed_seconds = finished_seconds + record.elapsed_seconds;
        tagged.eta_seconds = record.eta_seconds + static_cast<double>(folds - member - 1) * member_seconds;
        options.on_epoch(tagged);
      };
    }

    result.members.push_back(
        Trainer(member_options).fit(select_rows(data, train_rows), select_rows(data, validation_rows)));
    // The stored history names its member too, as the progress records do, so that it can be read alone.
    for (EpochRecord& record : result.members.back().history) {
      record.member = member;
      record.members = folds;
    }
    if (result.members.back().stop_reason == "stop_requested") {
      result.stop_reason = "stop_requested";
      break;
    }
  }

  if (result.stop_reason.empty()) result.stop_reason = "completed";
  std::vector<Mlp> networks;
  for (const TrainingResult& member : result.members) networks.push_back(member.network);
  if (!networks.empty()) result.network = merge_mean_output(networks);
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace lepton
