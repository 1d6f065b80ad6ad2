#include "train/checkpoint_files.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/log.hpp"

namespace lepton::detail {
namespace {

namespace fs = std::filesystem;

enum class CheckpointKind { Single, Member, OldFold, Temporary };

struct CheckpointFile {
  fs::path path;
  CheckpointKind kind = CheckpointKind::Single;
  /// Member counted from 1. OldFold files store their 0-based fold index + 1 here, so both kinds compare alike.
  std::size_t member = 0;
};

// Parses a decimal count written by fmt: digits only, no sign and no leading zero.
std::optional<std::size_t> parse_count(std::string_view digits) {
  if (digits.empty() || digits.size() > 9 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  if (!std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(std::stoul(std::string(digits)));
}

// Strips `prefix` and `suffix` from `name` and returns the middle, or nullopt when either is absent.
std::optional<std::string_view> between(std::string_view name, std::string_view prefix, std::string_view suffix) {
  if (name.size() < prefix.size() + suffix.size()) return std::nullopt;
  if (name.substr(0, prefix.size()) != prefix || name.substr(name.size() - suffix.size()) != suffix) {
    return std::nullopt;
  }
  return name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
}

// Classifies a checkpoint name (no temporary suffix) for the base "<stem><extension>", e.g. "checkpoint.pt".
std::optional<CheckpointFile> classify_checkpoint(std::string_view name, const std::string& stem,
                                                  const std::string& extension) {
  if (name == stem + extension) return CheckpointFile{{}, CheckpointKind::Single, 0};

  if (const auto digits = between(name, stem + ".member", extension)) {
    const std::optional<std::size_t> member = parse_count(*digits);
    if (member && *member >= 1) return CheckpointFile{{}, CheckpointKind::Member, *member};
  }
  if (const auto digits = between(name, stem + ".fold", extension)) {
    if (const std::optional<std::size_t> fold = parse_count(*digits)) {
      return CheckpointFile{{}, CheckpointKind::OldFold, *fold + 1};
    }
  }
  return std::nullopt;
}

// Classifies a file name of the scheme, or returns nullopt for any other file, which the run never touches.
std::optional<CheckpointFile> classify(const std::string& name, const std::string& stem, const std::string& extension) {
  // write_file_atomically names its temporary file "<path>.tmp-<process id>".
  const std::size_t temporary = name.rfind(".tmp-");
  if (temporary != std::string::npos) {
    const std::string_view pid = std::string_view(name).substr(temporary + 5);
    if (!parse_count(pid) || !classify_checkpoint(std::string_view(name).substr(0, temporary), stem, extension)) {
      return std::nullopt;
    }
    return CheckpointFile{{}, CheckpointKind::Temporary, 0};
  }
  return classify_checkpoint(name, stem, extension);
}

// Every file of the scheme next to `base`, ordered by kind and member so that messages read in order.
std::vector<CheckpointFile> find_checkpoint_files(const fs::path& base) {
  const fs::path folder = base.parent_path().empty() ? fs::path(".") : base.parent_path();
  const std::string stem = base.stem().string();
  const std::string extension = base.extension().string();

  std::vector<CheckpointFile> found;
  std::error_code error;
  for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    if (!it->is_regular_file(error)) continue;
    std::optional<CheckpointFile> file = classify(it->path().filename().string(), stem, extension);
    if (!file) continue;
    file->path = it->path();
    found.push_back(*file);
  }
  if (error && error != std::errc::no_such_file_or_directory) {
    throw IoError(fmt::format("failed to list the checkpoints in '{}': {}; check that the folder is readable",
                              folder.string(), error.message()));
  }

  std::sort(found.begin(), found.end(), [](const CheckpointFile& a, const CheckpointFile& b) {
    if (a.kind != b.kind) return a.kind < b.kind;
    if (a.member != b.member) return a.member < b.member;
    return a.path < b.path;
  });
  return found;
}

bool trained_by_this_run(const CheckpointFile& file, std::size_t members) {
  if (members <= 1) return file.kind == CheckpointKind::Single;
  return file.kind == CheckpointKind::Member && file.member <= members;
}

// "checkpoint.pt" or "checkpoint.member1.pt .. checkpoint.member10.pt".
std::string expected_names(const fs::path& base, std::size_t members) {
  if (members <= 1) return base.filename().string();
  return fmt::format("{} .. {}", fs::path(member_checkpoint_path(base.string(), 1)).filename().string(),
                     fs::path(member_checkpoint_path(base.string(), members)).filename().string());
}

std::string describe_run(const fs::path& base, std::size_t members) {
  if (members <= 1) return fmt::format("a single model ({})", expected_names(base, members));
  return fmt::format("{} cross-fitted members ({})", members, expected_names(base, members));
}

std::string describe_file(const CheckpointFile& file) {
  const std::string name = file.path.filename().string();
  switch (file.kind) {
    case CheckpointKind::Single: return fmt::format("{} (a single model)", name);
    case CheckpointKind::Member: return fmt::format("{} (member {})", name, file.member);
    case CheckpointKind::OldFold: return fmt::format("{} (member {})", name, file.member);
    case CheckpointKind::Temporary: return fmt::format("{} (an unfinished write)", name);
  }
  return name;
}

// "1-3, 5, 7, 8, 10" for {1, 2, 3, 5, 7, 8, 10}: runs of three or more become ranges. `numbers` is sorted.
std::string number_ranges(const std::vector<std::size_t>& numbers) {
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < numbers.size();) {
    std::size_t j = i;
    while (j + 1 < numbers.size() && numbers[j + 1] == numbers[j] + 1) ++j;
    if (j >= i + 2) {
      parts.push_back(fmt::format("{}-{}", numbers[i], numbers[j]));
    } else {
      for (std::size_t k = i; k <= j; ++k) parts.push_back(fmt::format("{}", numbers[k]));
    }
    i = j + 1;
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

// Lists the first kMaxListed files by name, so that a folder of many old checkpoints gives a readable message.
constexpr std::size_t kMaxListed = 6;

std::string foreign_checkpoints_message(const fs::path& base, std::size_t members,
                                        const std::vector<CheckpointFile>& foreign) {
  std::vector<std::string> listed;
  for (std::size_t i = 0; i < foreign.size() && i < kMaxListed; ++i) listed.push_back(describe_file(foreign[i]));
  if (foreign.size() > kMaxListed) listed.push_back(fmt::format("and {} more", foreign.size() - kMaxListed));

  const bool old_names = std::any_of(foreign.begin(), foreign.end(), [](const CheckpointFile& file) {
    return file.kind == CheckpointKind::OldFold;
  });
  const std::string old_names_note =
      old_names ? fmt::format(" The {}.foldK{} names come from older Lepton builds, which counted members from 0.",
                              base.stem().string(), base.extension().string())
                : "";

  const std::string count = foreign.size() == 1 ? "1 checkpoint" : fmt::format("{} checkpoints", foreign.size());
  return fmt::format("--resume: {} contains {} that this run does not train: {}.{} This run trains {}. Run without "
                     "--resume to train from the first epoch, which removes {}, or write to another output folder",
                     base.parent_path().string(), count, fmt::join(listed, ", "), old_names_note,
                     describe_run(base, members), foreign.size() == 1 ? "it" : "them");
}

// Empty when every model of the run has a checkpoint to resume from.
std::string resume_notice(const fs::path& base, std::size_t members, const std::vector<std::size_t>& present) {
  const std::string folder = base.parent_path().string();
  const std::size_t models = std::max<std::size_t>(members, 1);
  if (present.size() == models) return "";
  if (present.empty()) {
    return fmt::format("--resume found no checkpoint in {} ({}); training from the first epoch", folder,
                       expected_names(base, members));
  }

  std::vector<std::size_t> missing;
  for (std::size_t member = 1; member <= members; ++member) {
    if (!std::binary_search(present.begin(), present.end(), member)) missing.push_back(member);
  }
  return fmt::format("--resume found checkpoints of members {} of {} in {}; member{} {} {} from the first epoch",
                     number_ranges(present), members, folder, missing.size() == 1 ? "" : "s",
                     number_ranges(missing), missing.size() == 1 ? "starts" : "start");
}

}  // namespace

std::string member_checkpoint_path(const std::string& path, std::size_t member) {
  if (path.empty()) return path;
  const fs::path original(path);
  fs::path result = original.parent_path() / original.stem();
  result += fmt::format(".member{}", member);
  result += original.extension();
  return result.string();
}

FolderState output_folder_state(const std::string& folder) {
  std::error_code error;
  if (!fs::exists(folder, error)) return error ? FolderState::HasEntries : FolderState::Missing;
  return fs::is_directory(folder, error) && fs::is_empty(folder, error) ? FolderState::Empty : FolderState::HasEntries;
}

CheckpointPlan plan_checkpoints(const std::string& checkpoint_path, std::size_t members, bool resume,
                                FolderState folder_before_run) {
  CheckpointPlan plan;
  if (checkpoint_path.empty()) return plan;
  const fs::path base(checkpoint_path);

  std::vector<CheckpointFile> foreign;
  std::vector<std::size_t> present;  // models with a checkpoint, counted from 1; a single model is model 1
  for (const CheckpointFile& file : find_checkpoint_files(base)) {
    if (file.kind == CheckpointKind::Temporary || !resume) {
      plan.stale.push_back(file.path);
    } else if (trained_by_this_run(file, members)) {
      present.push_back(file.kind == CheckpointKind::Single ? 1 : file.member);
    } else {
      foreign.push_back(file);
    }
  }

  if (!foreign.empty()) {
    throw InvalidArgument(foreign_checkpoints_message(base, members, foreign));
  }
  if (resume) {
    plan.resume_notice = resume_notice(base, members, present);
  }
  if (!plan.resume_notice.empty() && folder_before_run != FolderState::HasEntries) {
    plan.resume_notice += fmt::format(". {} {} before this run; check the --out path", base.parent_path().string(),
                                      folder_before_run == FolderState::Missing ? "did not exist" : "was empty");
  }
  return plan;
}

void apply_checkpoint_plan(const CheckpointPlan& plan) {
  std::vector<std::string> removed;
  for (const fs::path& path : plan.stale) {
    std::error_code error;
    fs::remove(path, error);
    if (error) {
      throw IoError(fmt::format("failed to remove the stale checkpoint '{}': {}; delete it, or write to another "
                                "output folder",
                                path.string(), error.message()));
    }
    removed.push_back(path.filename().string());
  }

  if (!removed.empty()) {
    log(LogLevel::Info, fmt::format("removed {} checkpoint file(s) of an earlier run from {}: {}", removed.size(),
                                    plan.stale.front().parent_path().string(), fmt::join(removed, ", ")));
  }
  if (!plan.resume_notice.empty()) {
    log(LogLevel::Warning, plan.resume_notice);
  }
}

void remove_outputs_not_written(const fs::path& out, const std::vector<std::string>& written) {
  std::vector<std::string> removed;
  for (const std::string_view name : kOutputFiles) {
    if (std::find(written.begin(), written.end(), name) != written.end()) continue;

    const fs::path path = out / name;
    std::error_code error;
    const fs::file_type type = fs::symlink_status(path, error).type();
    if (type != fs::file_type::regular && type != fs::file_type::symlink) continue;
    fs::remove(path, error);
    if (error) {
      throw IoError(fmt::format("the run wrote its outputs to {}, but failed to remove '{}', which an earlier run "
                                "wrote: {}. Delete that file by hand, because it does not belong to this run",
                                out.string(), path.string(), error.message()));
    }
    removed.emplace_back(name);
  }

  if (!removed.empty()) {
    log(LogLevel::Info, fmt::format("removed {} output file(s) of an earlier run that this run did not write from "
                                    "{}: {}",
                                    removed.size(), out.string(), fmt::join(removed, ", ")));
  }
}

}  // namespace lepton::detail
