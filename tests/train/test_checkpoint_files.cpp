// The checkpoint naming scheme of an output folder (src/train/checkpoint_files.hpp). The cases check which
// files a fresh run removes and which a resuming run rejects. They also check the notice when a resume finds
// no checkpoint for some members.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "lepton/error.hpp"
#include "lepton/log.hpp"
#include "train/checkpoint_files.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using lepton::detail::apply_checkpoint_plan;
using lepton::detail::CheckpointPlan;
using lepton::detail::FolderState;
using lepton::detail::member_checkpoint_path;
using lepton::detail::output_folder_state;
using lepton::detail::plan_checkpoints;
using lepton::detail::remove_outputs_not_written;

namespace {

// A fresh folder per test case, because CTest runs the cases of this file as parallel processes.
struct Folder {
  fs::path dir;
  explicit Folder(const std::string& name)
      : dir(fs::temp_directory_path() / ("lepton_checkpoints_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Folder() { fs::remove_all(dir); }

  void touch(const std::string& name) const { std::ofstream(dir / name) << "x"; }
  bool has(const std::string& name) const { return fs::exists(dir / name); }
  std::string base() const { return (dir / "checkpoint.pt").string(); }
};

std::vector<std::string> names_of(const std::vector<fs::path>& paths) {
  std::vector<std::string> names;
  for (const fs::path& path : paths) names.push_back(path.filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Captures every message at or above Info while it lives, then restores the silent default.
struct LogCapture {
  std::vector<std::pair<lepton::LogLevel, std::string>> messages;
  LogCapture() {
    lepton::set_log_sink([this](lepton::LogLevel level, std::string_view message) {
      messages.emplace_back(level, std::string(message));
    });
    lepton::set_log_level(lepton::LogLevel::Info);
  }
  ~LogCapture() {
    lepton::set_log_sink({});
    lepton::set_log_level(lepton::LogLevel::Off);
  }
};

// Files that match no part of the scheme, which no run may remove.
const std::vector<std::string> kUnrelated = {
    "notes.txt",           "model.lepton",         "checkpoint.pt.bak",      "old.checkpoint.pt",
    "checkpoint.member0.pt", "checkpoint.member03.pt", "checkpoint.memberX.pt", "checkpoint.pt.tmp-abc",
    "checkpoint.fold.pt",  "checkpoint.member2.pt.tmp-", "checkpoint.member1.json"};

}  // namespace

TEST_CASE("ensemble checkpoints: members count from 1", "[ensemble][checkpoint]") {
  CHECK(member_checkpoint_path("runs/pm/checkpoint.pt", 1) == "runs/pm/checkpoint.member1.pt");
  CHECK(member_checkpoint_path("runs/pm/checkpoint.pt", 10) == "runs/pm/checkpoint.member10.pt");
  CHECK(member_checkpoint_path("checkpoint.pt", 3) == "checkpoint.member3.pt");
  CHECK(member_checkpoint_path("", 3).empty());
}

TEST_CASE("ensemble checkpoints: fresh run removes old files", "[ensemble][checkpoint]") {
  Folder folder("fresh");
  for (const std::string& name : kUnrelated) folder.touch(name);
  for (const std::string& name : {"checkpoint.pt", "checkpoint.member1.pt", "checkpoint.member12.pt",
                                  "checkpoint.fold0.pt", "checkpoint.fold9.pt", "checkpoint.member4.pt.tmp-4242"}) {
    folder.touch(name);
  }
  fs::create_directories(folder.dir / "checkpoint.member2.pt");  // a folder, not a checkpoint

  const CheckpointPlan plan = plan_checkpoints(folder.base(), 5, /*resume=*/false);
  CHECK(names_of(plan.stale) == std::vector<std::string>{"checkpoint.fold0.pt", "checkpoint.fold9.pt",
                                                         "checkpoint.member1.pt", "checkpoint.member12.pt",
                                                         "checkpoint.member4.pt.tmp-4242", "checkpoint.pt"});
  CHECK(plan.resume_notice.empty());

  // Planning removes nothing. Applying removes exactly the stale files.
  CHECK(folder.has("checkpoint.fold9.pt"));
  apply_checkpoint_plan(plan);
  for (const fs::path& path : plan.stale) {
    INFO(path);
    CHECK_FALSE(fs::exists(path));
  }
  for (const std::string& name : kUnrelated) {
    INFO(name);
    CHECK(folder.has(name));
  }
  CHECK(fs::is_directory(folder.dir / "checkpoint.member2.pt"));
}

TEST_CASE("ensemble checkpoints: empty or missing folder", "[ensemble][checkpoint]") {
  Folder folder("empty");
  CHECK(plan_checkpoints(folder.base(), 10, false).stale.empty());
  CHECK(plan_checkpoints((folder.dir / "absent" / "checkpoint.pt").string(), 10, false).stale.empty());
  CHECK(plan_checkpoints("", 10, true).resume_notice.empty());
}

TEST_CASE("ensemble checkpoints: resume with every member present", "[ensemble][checkpoint]") {
  Folder folder("complete");
  for (int k = 1; k <= 10; ++k) folder.touch("checkpoint.member" + std::to_string(k) + ".pt");
  folder.touch("checkpoint.member10.pt.tmp-77");
  folder.touch("notes.txt");

  const CheckpointPlan plan = plan_checkpoints(folder.base(), 10, /*resume=*/true);
  CHECK(plan.resume_notice.empty());
  // Only the unfinished write goes, because the run resumes from the checkpoints.
  CHECK(names_of(plan.stale) == std::vector<std::string>{"checkpoint.member10.pt.tmp-77"});
}

TEST_CASE("ensemble checkpoints: resume names restarted members", "[ensemble][checkpoint]") {
  Folder folder("partial");
  for (int k : {1, 2, 3, 5}) folder.touch("checkpoint.member" + std::to_string(k) + ".pt");

  const CheckpointPlan plan = plan_checkpoints(folder.base(), 10, /*resume=*/true);
  CHECK(plan.stale.empty());
  CHECK(plan.resume_notice == "--resume found checkpoints of members 1-3, 5 of 10 in " + folder.dir.string() +
                                  "; members 4, 6-10 start from the first epoch");

  // Two neighbours are listed, not written as a range.
  fs::remove(folder.dir / "checkpoint.member3.pt");
  fs::remove(folder.dir / "checkpoint.member5.pt");
  CHECK(plan_checkpoints(folder.base(), 4, true).resume_notice ==
        "--resume found checkpoints of members 1, 2 of 4 in " + folder.dir.string() +
            "; members 3, 4 start from the first epoch");
  folder.touch("checkpoint.member3.pt");
  folder.touch("checkpoint.member5.pt");

  folder.touch("checkpoint.member4.pt");
  for (int k = 6; k <= 9; ++k) folder.touch("checkpoint.member" + std::to_string(k) + ".pt");
  CHECK(plan_checkpoints(folder.base(), 10, true).resume_notice ==
        "--resume found checkpoints of members 1-9 of 10 in " + folder.dir.string() +
            "; member 10 starts from the first epoch");
}

TEST_CASE("ensemble checkpoints: resume without any checkpoint", "[ensemble][checkpoint]") {
  Folder folder("none");
  folder.touch("notes.txt");
  CHECK(plan_checkpoints(folder.base(), 10, true).resume_notice ==
        "--resume found no checkpoint in " + folder.dir.string() +
            " (checkpoint.member1.pt .. checkpoint.member10.pt); training from the first epoch");
  CHECK(plan_checkpoints(folder.base(), 1, true).resume_notice ==
        "--resume found no checkpoint in " + folder.dir.string() + " (checkpoint.pt); training from the first epoch");

  folder.touch("checkpoint.pt");
  CHECK(plan_checkpoints(folder.base(), 1, true).resume_notice.empty());
}

TEST_CASE("output folder state before a run", "[checkpoint][outputs]") {
  Folder folder("state");
  CHECK(output_folder_state(folder.dir.string()) == FolderState::Empty);
  CHECK(output_folder_state((folder.dir / "absent").string()) == FolderState::Missing);
  folder.touch("notes.txt");
  CHECK(output_folder_state(folder.dir.string()) == FolderState::HasEntries);
  // A file where the folder should be is not empty, so the hint about the path stays off.
  CHECK(output_folder_state((folder.dir / "notes.txt").string()) == FolderState::HasEntries);
}

TEST_CASE("resume notice: missing folder hints at --out", "[checkpoint][resume]") {
  Folder folder("hint_missing");
  CHECK(plan_checkpoints(folder.base(), 10, true, FolderState::Missing).resume_notice ==
        "--resume found no checkpoint in " + folder.dir.string() +
            " (checkpoint.member1.pt .. checkpoint.member10.pt); training from the first epoch. " +
            folder.dir.string() + " did not exist before this run; check the --out path");
}

TEST_CASE("resume notice: empty folder hints at --out", "[checkpoint][resume]") {
  Folder folder("hint_empty");
  CHECK(plan_checkpoints(folder.base(), 1, true, FolderState::Empty).resume_notice ==
        "--resume found no checkpoint in " + folder.dir.string() + " (checkpoint.pt); training from the first "
            "epoch. " + folder.dir.string() + " was empty before this run; check the --out path");
}

TEST_CASE("resume notice: used folder has no hint", "[checkpoint][resume]") {
  Folder folder("hint_used");
  CHECK_THAT(plan_checkpoints(folder.base(), 1, true, FolderState::HasEntries).resume_notice,
             !Contains("check the --out path"));
  CHECK_THAT(plan_checkpoints(folder.base(), 1, true).resume_notice, !Contains("check the --out path"));
}

TEST_CASE("resume notice: no hint without resume", "[checkpoint][resume]") {
  Folder folder("hint_fresh");
  CHECK(plan_checkpoints(folder.base(), 10, false, FolderState::Missing).resume_notice.empty());
  CHECK(plan_checkpoints(folder.base(), 10, false, FolderState::Empty).resume_notice.empty());
}

TEST_CASE("ensemble checkpoints: resume rejects members beyond the count", "[ensemble][checkpoint]") {
  Folder folder("beyond");
  for (int k = 1; k <= 10; ++k) folder.touch("checkpoint.member" + std::to_string(k) + ".pt");

  const auto plan = [&folder] { return plan_checkpoints(folder.base(), 5, true); };
  CHECK_THROWS_AS(plan(), lepton::InvalidArgument);
  CHECK_THROWS_WITH(plan(), Contains(folder.dir.string() + " contains 5 checkpoints that this run does not train"));
  CHECK_THROWS_WITH(plan(), Contains("checkpoint.member6.pt (member 6)"));
  CHECK_THROWS_WITH(plan(), Contains("checkpoint.member10.pt (member 10)"));
  CHECK_THROWS_WITH(plan(), !Contains("checkpoint.member5.pt (member 5)"));
  CHECK_THROWS_WITH(plan(), Contains("This run trains 5 cross-fitted members (checkpoint.member1.pt .. "
                                     "checkpoint.member5.pt)"));
  CHECK_THROWS_WITH(plan(), Contains("Run without --resume to train from the first epoch, which removes them"));

  // Rejecting removes nothing.
  CHECK(folder.has("checkpoint.member10.pt"));
}

TEST_CASE("ensemble checkpoints: long rejection lists six files", "[ensemble][checkpoint]") {
  Folder folder("many");
  for (int k = 0; k < 10; ++k) folder.touch("checkpoint.fold" + std::to_string(k) + ".pt");

  const auto plan = [&folder] { return plan_checkpoints(folder.base(), 10, true); };
  CHECK_THROWS_WITH(plan(), Contains("contains 10 checkpoints that this run does not train: checkpoint.fold0.pt "
                                     "(member 1), checkpoint.fold1.pt (member 2)"));
  CHECK_THROWS_WITH(plan(), Contains("checkpoint.fold5.pt (member 6), and 4 more."));
  CHECK_THROWS_WITH(plan(), !Contains("checkpoint.fold6.pt"));
}

TEST_CASE("ensemble checkpoints: resume rejects old fold names", "[ensemble][checkpoint]") {
  Folder folder("fold");
  folder.touch("checkpoint.member1.pt");
  folder.touch("checkpoint.fold3.pt");

  const auto plan = [&folder] { return plan_checkpoints(folder.base(), 10, true); };
  CHECK_THROWS_AS(plan(), lepton::InvalidArgument);
  CHECK_THROWS_WITH(plan(), Contains("contains 1 checkpoint that this run does not train: checkpoint.fold3.pt "
                                     "(member 4). The checkpoint.foldK.pt names come from older Lepton builds, "
                                     "which counted members from 0."));
  CHECK_THROWS_WITH(plan(), Contains("which removes it"));
  CHECK(folder.has("checkpoint.fold3.pt"));
}

TEST_CASE("ensemble checkpoints: resume rejects kind mixes", "[ensemble][checkpoint]") {
  Folder folder("mix");
  folder.touch("checkpoint.pt");
  CHECK_THROWS_WITH(plan_checkpoints(folder.base(), 10, true),
                    Contains("checkpoint.pt (a single model). This run trains 10 cross-fitted members"));

  fs::remove(folder.dir / "checkpoint.pt");
  folder.touch("checkpoint.member1.pt");
  CHECK_THROWS_WITH(plan_checkpoints(folder.base(), 1, true),
                    Contains("checkpoint.member1.pt (member 1). This run trains a single model (checkpoint.pt)"));
}

TEST_CASE("ensemble checkpoints: notice and removals reach the log", "[ensemble][checkpoint]") {
  Folder folder("log");
  folder.touch("checkpoint.member1.pt.tmp-12");
  LogCapture capture;

  apply_checkpoint_plan(plan_checkpoints(folder.base(), 3, true));

  REQUIRE(capture.messages.size() == 2);
  CHECK(capture.messages[0].first == lepton::LogLevel::Info);
  CHECK_THAT(capture.messages[0].second, Contains("removed 1 checkpoint file(s)"));
  CHECK_THAT(capture.messages[0].second, Contains("checkpoint.member1.pt.tmp-12"));
  CHECK(capture.messages[1].first == lepton::LogLevel::Warning);
  CHECK_THAT(capture.messages[1].second, Contains("--resume found no checkpoint in " + folder.dir.string()));
  CHECK_FALSE(folder.has("checkpoint.member1.pt.tmp-12"));
}

// ---- Outputs of an earlier run

TEST_CASE("outputs: remove those not written", "[checkpoint][outputs]") {
  Folder folder("outputs");
  for (const std::string_view name : lepton::detail::kOutputFiles) folder.touch(std::string(name));
  folder.touch("notes.txt");
  folder.touch("report.md.bak");
  LogCapture capture;

  // What the `lepton federated` server writes.
  remove_outputs_not_written(folder.dir, {"model.lepton", "federated.json"});

  CHECK(folder.has("model.lepton"));
  CHECK(folder.has("federated.json"));
  for (const std::string& name : {"config.json", "metrics.json", "report.json", "report.md", "training_inputs.json",
                                  "model_int8.lepton"}) {
    INFO(name);
    CHECK_FALSE(folder.has(name));
  }
  CHECK(folder.has("notes.txt"));
  CHECK(folder.has("report.md.bak"));
  REQUIRE(capture.messages.size() == 1);
  CHECK_THAT(capture.messages[0].second, Contains("removed 6 output file(s) of an earlier run"));
}

TEST_CASE("outputs: run removes federated.json", "[checkpoint][outputs]") {
  Folder folder("outputs_run");
  folder.touch("federated.json");
  folder.touch("model.lepton");

  remove_outputs_not_written(folder.dir, {"config.json", "metrics.json", "model.lepton", "report.json", "report.md",
                                          "training_inputs.json"});

  CHECK_FALSE(folder.has("federated.json"));
  CHECK(folder.has("model.lepton"));
}

TEST_CASE("outputs: folders are kept", "[checkpoint][outputs]") {
  Folder folder("outputs_folder");
  fs::create_directories(folder.dir / "report.md");

  remove_outputs_not_written(folder.dir, {});

  CHECK(fs::is_directory(folder.dir / "report.md"));
}
