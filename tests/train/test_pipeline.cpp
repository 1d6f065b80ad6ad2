// End to end on the real AI4I 2020 file: requirements -> trained, evaluated, exported model.
// Asserts the quality floor (mean over three seeds), replay of the saved artifact, and determinism.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <numeric>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/explain.hpp"
#include "lepton/io.hpp"
#include "lepton/log.hpp"
#include "lepton/pipeline.hpp"
#include "lepton/predictor.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kData = LEPTON_SHARED_DIR "/data/ai4i2020.csv";
const std::string kRequirements = LEPTON_SOURCE_DIR "/examples/predictive_maintenance/requirements.json";

// Seeds fixed before any result was seen; each changes both the split and the initial weights.
const std::vector<std::uint64_t> kSeeds = {1, 2, 3};

// CTest runs the test cases of this file as parallel processes, so each process writes its own folders.
fs::path output_dir(std::uint64_t seed, const std::string& tag) {
  return fs::temp_directory_path() /
         ("lepton_e2e_" + std::to_string(getpid()) + "_" + tag + "_" + std::to_string(seed));
}

// Removes this process's output folders when the test program exits.
struct OutputCleanup {
  std::vector<fs::path> folders;
  ~OutputCleanup() {
    for (const fs::path& folder : folders) fs::remove_all(folder);
  }
};

// Runs the pipeline once per seed and tag, and keeps the results for every test case in this file.
const lepton::PipelineResult& run_once(std::uint64_t seed, const std::string& tag = "main") {
  static std::map<std::pair<std::uint64_t, std::string>, lepton::PipelineResult> cache;
  const auto key = std::make_pair(seed, tag);
  auto found = cache.find(key);
  if (found != cache.end()) return found->second;

  lepton::Requirements requirements = lepton::load_requirements(kRequirements);
  requirements.seed = seed;
  // "differences": "derived_features": "differences", which screens differences alone.
  requirements.derive_products = tag != "differences";
  // The example's training-time budget would let a loaded machine cut members short, and then the metrics
  // and the determinism checks would depend on the load instead of the code.
  requirements.constraints.max_training_seconds.reset();
  static OutputCleanup cleanup;
  const fs::path out = output_dir(seed, tag);
  fs::remove_all(out);
  cleanup.folders.push_back(out);
  lepton::PipelineOptions options;
  options.data_path = kData;
  options.output_dir = out.string();
  return cache.emplace(key, lepton::run_pipeline(requirements, options)).first->second;
}

// 400 rows, a third of them positive, with a clear rule: small and fast, and large enough for 5 folds.
std::string small_csv() {
  std::string csv = "x,y,label\n";
  for (int i = 0; i < 400; ++i) {
    csv += std::to_string(i % 17) + "," + std::to_string((i * 7) % 13) + "," + (i % 3 == 0 ? "1" : "0") + "\n";
  }
  return csv;
}

// An empty folder with data.csv (small_csv), removed when the test program exits.
fs::path small_job_folder(const std::string& tag) {
  const fs::path folder = output_dir(0, tag);
  fs::remove_all(folder);
  fs::create_directories(folder);
  static OutputCleanup cleanup;
  cleanup.folders.push_back(folder);
  lepton::write_file_atomically((folder / "data.csv").string(), small_csv());
  return folder;
}

lepton::Requirements small_requirements() {
  lepton::Requirements requirements;
  requirements.target = "label";
  requirements.seed = 3;
  requirements.constraints.max_training_seconds = 20;
  return requirements;
}

// Reads folder/data.csv and writes into folder/out.
lepton::PipelineOptions small_options(const fs::path& folder) {
  lepton::PipelineOptions options;
  options.data_path = (folder / "data.csv").string();
  options.output_dir = (folder / "out").string();
  return options;
}

void touch(const fs::path& path) { lepton::write_file_atomically(path.string(), "x"); }

std::string member_file(std::size_t member) { return "checkpoint.member" + std::to_string(member) + ".pt"; }

// Collects the library's warnings while it lives, then restores the silent default.
struct WarningCapture {
  std::vector<std::string> warnings;
  WarningCapture() {
    lepton::set_log_sink([this](lepton::LogLevel level, std::string_view message) {
      if (level == lepton::LogLevel::Warning) warnings.emplace_back(message);
    });
    lepton::set_log_level(lepton::LogLevel::Warning);
  }
  ~WarningCapture() {
    lepton::set_log_sink({});
    lepton::set_log_level(lepton::LogLevel::Off);
  }
};

}  // namespace

TEST_CASE("pipeline: AI4I quality floor over three seeds", "[e2e]") {
  double f1_sum = 0, auc_sum = 0;
  for (std::uint64_t seed : kSeeds) {
    const lepton::PipelineResult& result = run_once(seed);
    INFO("seed " << seed << ": test F1 " << result.test.binary.f1 << ", ROC-AUC " << result.test.binary.roc_auc);
    CHECK(result.test.rows == 2000);
    f1_sum += result.test.binary.f1;
    auc_sum += result.test.binary.roc_auc;
  }
  const double mean_f1 = f1_sum / kSeeds.size();
  const double mean_auc = auc_sum / kSeeds.size();
  INFO("mean test F1 " << mean_f1 << ", mean ROC-AUC " << mean_auc);
  // The floors are the product's targets: F1 >= 0.80 and ROC-AUC >= 0.97 over three seeds. The default has 10
  // cross-fitted members and the failure rules' quantities as derived inputs, with a step at each one's best
  // split. On these three seeds it measured F1 0.850 and ROC-AUC 0.976 on the AMD development machine, and
  // 0.792 and 0.977 without the steps (docs/benchmarks.md, "Step inputs at the screen's splits").
  CHECK(mean_f1 >= 0.80);
  CHECK(mean_auc >= 0.97);
}

TEST_CASE("pipeline: AI4I trains cross-fitted members", "[e2e]") {
  const lepton::PipelineResult& result = run_once(kSeeds[0]);
  REQUIRE(result.config.cross_fit_folds == 10);
  CHECK(result.members.size() == 10);
  CHECK(result.training.stop_reason == "cross_fitted");
  // Out-of-fold metrics cover the 8,000 training and validation rows; the test split stays apart.
  CHECK(result.validation.rows == 8000);
  CHECK(result.test.rows == 2000);
  CHECK(result.training.network.layers.front().outputs == 10 * result.config.hidden_units.front());

  const fs::path out = output_dir(kSeeds[0], "main");
  // Members count from 1 in file names, as in progress lines.
  for (int k = 1; k <= 10; ++k) {
    INFO("member " << k);
    CHECK(fs::is_regular_file(out / ("checkpoint.member" + std::to_string(k) + ".pt")));
  }
  CHECK_FALSE(fs::exists(out / "checkpoint.member0.pt"));
  CHECK_FALSE(fs::exists(out / "checkpoint.member11.pt"));
  CHECK_FALSE(fs::exists(out / "checkpoint.fold0.pt"));
  CHECK_FALSE(fs::exists(out / "checkpoint.pt"));
}

TEST_CASE("pipeline: AI4I keeps rule quantities", "[e2e][derived]") {
  const lepton::PipelineResult& result = run_once(kSeeds[0]);
  REQUIRE(result.config.derived_search);
  REQUIRE(result.config.derived_products);
  const std::vector<lepton::DerivedInput>& derived = result.config.derived_features;
  REQUIRE(derived.size() == 6);
  CHECK(derived[0].name() == "Rotational speed [rpm] * Torque [Nm]");
  CHECK(derived[1].name() == "Torque [Nm] * Tool wear [min]");
  CHECK(derived[2].name() == "Air temperature [K] - Process temperature [K]");
  // Then a step at each quantity's best split.
  for (std::size_t k = 3; k < 6; ++k) {
    INFO(derived[k].name());
    CHECK(derived[k].step.has_value());
    CHECK(derived[k].name().rfind(derived[k - 3].name() + " > ", 0) == 0);
  }
  CHECK_THAT(result.config.reasons.at("derived_features").text,
             Catch::Matchers::Contains("Kept 3 of 20") && Catch::Matchers::Contains("A step at each one's best split"));

  // The exported network takes the 8 encoded columns. It computes the two products and the three steps before
  // its first layer, which reads 13 columns, and the difference is folded into that layer.
  const lepton::ModelArtifact artifact = lepton::load_artifact(result.model_path);
  CHECK(artifact.network.inputs() == 8);
  CHECK(artifact.network.inputs() == artifact.preprocessor.encoded_width());
  REQUIRE(artifact.network.products.size() == 5);
  CHECK(artifact.network.layers.front().inputs == 13);
  CHECK(artifact.configuration.at("derived_features").size() == 6);

  // Each encoded column belongs to one raw feature, so explanations still have six groups.
  CHECK(lepton::FeatureGroups::from_preprocessor(artifact.preprocessor).size() == 6);

  const std::string report = lepton::read_file(result.report_md_path);
  CHECK(report.find("| derived_features | Rotational speed [rpm] * Torque [Nm]; Torque [Nm] * Tool wear [min]; "
                    "Air temperature [K] - Process temperature [K]; Rotational speed [rpm] * Torque [Nm] > ") !=
        std::string::npos);
}

TEST_CASE("pipeline: differences screen on AI4I", "[e2e][derived]") {
  const lepton::PipelineResult& result = run_once(kSeeds[0], "differences");
  REQUIRE(result.config.derived_search);
  REQUIRE_FALSE(result.config.derived_products);
  REQUIRE(result.config.derived_features.size() == 1);
  CHECK(result.config.derived_features.front().name() == "Air temperature [K] - Process temperature [K]");
  CHECK_THAT(result.config.reasons.at("derived_features").text, Catch::Matchers::Contains("Kept 1 of 10"));

  // The difference was folded into the first layer, so the network computes no products.
  const lepton::ModelArtifact artifact = lepton::load_artifact(result.model_path);
  CHECK(artifact.network.inputs() == 8);
  CHECK(artifact.network.products.empty());
  CHECK(artifact.network.layers.front().inputs == 8);

  const std::string report = lepton::read_file(result.report_md_path);
  CHECK(report.find("| derived_features | Air temperature [K] - Process temperature [K] |") != std::string::npos);
}

TEST_CASE("pipeline: writes every output and no temporary file", "[e2e]") {
  const lepton::PipelineResult& result = run_once(kSeeds[0]);
  const fs::path out = output_dir(kSeeds[0], "main");
  for (const char* name : {"config.json", "model.lepton", "metrics.json", "report.json", "report.md"}) {
    INFO(name);
    CHECK(fs::is_regular_file(out / name));
  }
  for (const auto& entry : fs::directory_iterator(out)) {
    INFO(entry.path());
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
  }
  CHECK(result.model_path == (out / "model.lepton").string());
}

TEST_CASE("pipeline: every configuration field states a reason", "[e2e]") {
  const lepton::PipelineResult& result = run_once(kSeeds[0]);
  const nlohmann::json config = result.config.to_json();
  for (const char* field : {"hidden_units", "activation", "dropout", "weight_decay", "optimizer", "learning_rate",
                            "batch_size", "max_epochs", "patience", "positive_class_weight", "threshold_strategy",
                            "quantize", "cross_fit_folds", "derived_search", "derived_products", "derived_features"}) {
    INFO(field);
    REQUIRE(result.config.reasons.count(field) == 1);
    CHECK_FALSE(result.config.reasons.at(field).text.empty());
    CHECK_FALSE(result.config.reasons.at(field).driven_by.empty());
  }
}

TEST_CASE("pipeline: the saved artifact replays the reported test metrics", "[e2e]") {
  const lepton::PipelineResult& result = run_once(kSeeds[0]);
  const lepton::Predictor predictor = lepton::Predictor::load(result.model_path);
  const nlohmann::json stored = predictor.artifact().metrics.at("test");

  // Re-evaluating the whole file through the loaded artifact exercises preprocessing replay from raw CSV.
  const lepton::Table table = lepton::read_csv(kData);
  const lepton::Evaluation all_rows = lepton::evaluate(predictor, table);
  CHECK(all_rows.rows == 10000);
  CHECK(stored == result.test.to_json());
  CHECK(all_rows.binary.roc_auc > 0.97);
}

TEST_CASE("pipeline: same seed gives the same model and metrics", "[e2e][determinism]") {
  const lepton::PipelineResult& first = run_once(kSeeds[0]);
  const lepton::PipelineResult& second = run_once(kSeeds[0], "repeat");
  CHECK(first.test.binary.f1 == second.test.binary.f1);
  CHECK(first.test.binary.roc_auc == second.test.binary.roc_auc);
  CHECK(first.training.best_epoch == second.training.best_epoch);
  REQUIRE(first.members.size() == second.members.size());
  for (std::size_t k = 0; k < first.members.size(); ++k) {
    INFO("member " << k);
    CHECK(first.members[k].best_epoch == second.members[k].best_epoch);
  }
  REQUIRE(first.training.network.layers.size() == second.training.network.layers.size());
  for (std::size_t i = 0; i < first.training.network.layers.size(); ++i) {
    INFO("layer " << i);
    CHECK(first.training.network.layers[i].weight == second.training.network.layers[i].weight);
    CHECK(first.training.network.layers[i].bias == second.training.network.layers[i].bias);
  }
}

TEST_CASE("pipeline: resume rejects a changed data file", "[e2e][resume]") {
  const fs::path folder = small_job_folder("resume");
  const std::string csv = small_csv();
  const fs::path data = folder / "data.csv";
  lepton::Requirements requirements = small_requirements();
  lepton::PipelineOptions options = small_options(folder);
  const lepton::PipelineResult first = lepton::run_pipeline(requirements, options);
  CHECK(fs::is_regular_file(folder / "out" / "training_inputs.json"));

  // The same file resumes from the finished checkpoints and gives the same model.
  options.resume = true;
  const lepton::PipelineResult again = lepton::run_pipeline(requirements, options);
  CHECK(again.training.resumed);
  CHECK(again.test.to_json() == first.test.to_json());
  // The training time recorded before the resume is kept, not replaced by the resume's few milliseconds.
  CHECK(again.training.seconds >= 0.9 * first.training.seconds);

  // One changed cell: the checkpoints no longer match the data.
  lepton::write_file_atomically(data.string(), csv + "5,5,1\n");
  CHECK_THROWS_WITH(lepton::run_pipeline(requirements, options),
                    Catch::Matchers::Contains("is not the data file that the checkpoints") &&
                        Catch::Matchers::Contains("run without --resume"));

  // Changed requirements are rejected too; without --resume the run starts over.
  lepton::write_file_atomically(data.string(), csv);
  requirements.seed = 4;
  CHECK_THROWS_WITH(lepton::run_pipeline(requirements, options),
                    Catch::Matchers::Contains("the requirements differ"));
  options.resume = false;
  CHECK_NOTHROW(lepton::run_pipeline(requirements, options));
}

TEST_CASE("pipeline: fresh run removes stale checkpoints", "[e2e][checkpoint]") {
  const fs::path folder = small_job_folder("stale");
  const fs::path out = folder / "out";
  fs::create_directories(out);
  // An older 10-member run with 0-based names, a larger run, a single model and an unfinished write.
  const std::vector<std::string> stale = {"checkpoint.fold0.pt", "checkpoint.fold9.pt", member_file(12),
                                          "checkpoint.pt", "checkpoint.member2.pt.tmp-99"};
  for (const std::string& name : stale) touch(out / name);
  touch(out / "notes.txt");
  touch(out / "checkpoint.pt.bak");

  const lepton::PipelineResult result = lepton::run_pipeline(small_requirements(), small_options(folder));
  const std::size_t members = result.config.cross_fit_folds;
  REQUIRE(members > 1);

  for (const std::string& name : stale) {
    INFO(name);
    CHECK_FALSE(fs::exists(out / name));
  }
  CHECK(fs::is_regular_file(out / "notes.txt"));
  CHECK(fs::is_regular_file(out / "checkpoint.pt.bak"));
  for (std::size_t k = 1; k <= members; ++k) {
    INFO("member " << k);
    CHECK(fs::is_regular_file(out / member_file(k)));
  }
  CHECK_FALSE(fs::exists(out / member_file(members + 1)));
  for (const fs::directory_entry& entry : fs::directory_iterator(out)) {
    INFO(entry.path());
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
  }
}

TEST_CASE("pipeline: resume warns about members that start over", "[e2e][resume][checkpoint]") {
  const fs::path folder = small_job_folder("resume_notice");
  const fs::path out = folder / "out";
  lepton::PipelineOptions options = small_options(folder);
  options.resume = true;
  WarningCapture capture;

  // No checkpoint at all: one warning, and the run trains from the first epoch.
  const lepton::PipelineResult first = lepton::run_pipeline(small_requirements(), options);
  const std::size_t members = first.config.cross_fit_folds;
  REQUIRE(members > 1);
  REQUIRE(capture.warnings.size() == 1);
  CHECK(capture.warnings[0] == "--resume found no checkpoint in " + out.string() + " (checkpoint.member1.pt .. " +
                                   member_file(members) + "); training from the first epoch. " + out.string() +
                                   " did not exist before this run; check the --out path");
  CHECK_FALSE(first.training.resumed);

  // The last two members lost their checkpoints: the warning names them, and the others resume.
  fs::remove(out / member_file(members));
  fs::remove(out / member_file(members - 1));
  capture.warnings.clear();
  const lepton::PipelineResult second = lepton::run_pipeline(small_requirements(), options);
  REQUIRE(capture.warnings.size() == 1);
  // With 5 or more members the kept ones form a range, and the two lost ones are listed.
  REQUIRE(members >= 5);
  CHECK(capture.warnings[0] == fmt::format("--resume found checkpoints of members 1-{} of {} in {}; members {}, {} "
                                           "start from the first epoch",
                                           members - 2, members, out.string(), members - 1, members));
  CHECK(second.members.front().resumed);
  CHECK_FALSE(second.members.back().resumed);

  // Every member has its checkpoint now: no warning.
  capture.warnings.clear();
  CHECK(lepton::run_pipeline(small_requirements(), options).training.resumed);
  CHECK(capture.warnings.empty());
}

TEST_CASE("pipeline: resume rejects checkpoints of other members", "[e2e][resume][checkpoint]") {
  const fs::path folder = small_job_folder("resume_foreign");
  const fs::path out = folder / "out";
  fs::create_directories(out);
  lepton::PipelineOptions options = small_options(folder);
  options.resume = true;
  touch(out / "checkpoint.fold3.pt");

  CHECK_THROWS_AS(lepton::run_pipeline(small_requirements(), options), lepton::InvalidArgument);
  CHECK_THROWS_WITH(lepton::run_pipeline(small_requirements(), options),
                    Catch::Matchers::Contains(out.string() + " contains 1 checkpoint that this run does not train: "
                                              "checkpoint.fold3.pt") &&
                        Catch::Matchers::Contains("Run without --resume"));
  // A rejected resume changes nothing in the folder.
  CHECK(fs::is_regular_file(out / "checkpoint.fold3.pt"));
  CHECK_FALSE(fs::exists(out / "training_inputs.json"));
  CHECK_FALSE(fs::exists(out / member_file(1)));
}

namespace {

// Collects the library's info lines that start with `prefix` while it lives, then restores the silent default.
struct InfoCapture {
  std::vector<std::string> lines;
  explicit InfoCapture(std::string prefix) {
    lepton::set_log_sink([this, prefix](lepton::LogLevel level, std::string_view message) {
      if (level == lepton::LogLevel::Info && message.substr(0, prefix.size()) == prefix) lines.emplace_back(message);
    });
    lepton::set_log_level(lepton::LogLevel::Info);
  }
  ~InfoCapture() {
    lepton::set_log_sink({});
    lepton::set_log_level(lepton::LogLevel::Off);
  }
};

// Every file name of the run scheme besides checkpoints and training_inputs.json, which the run rewrites before
// it trains.
const std::vector<std::string> kOutputNames = {"config.json", "metrics.json", "model.lepton", "model_int8.lepton",
                                               "report.json", "report.md"};

}  // namespace

TEST_CASE("pipeline: new run removes an older int8 export", "[e2e][outputs]") {
  const fs::path folder = small_job_folder("old_int8");
  const fs::path out = folder / "out";
  fs::create_directories(out);
  for (const std::string& name : kOutputNames) lepton::write_file_atomically((out / name).string(), "old");
  lepton::write_file_atomically((out / "notes.txt").string(), "mine");
  lepton::write_file_atomically((out / "model_int8.lepton.bak").string(), "mine");
  InfoCapture capture("removed ");

  const lepton::PipelineResult result = lepton::run_pipeline(small_requirements(), small_options(folder));
  // The small job stays far below every size and latency limit, so it writes no int8 export.
  REQUIRE_FALSE(result.config.quantize);

  CHECK(result.int8_model_path.empty());
  CHECK_FALSE(fs::exists(out / "model_int8.lepton"));
  CHECK(lepton::read_file((out / "model.lepton").string()) != "old");
  CHECK(lepton::read_file((out / "report.md").string()) != "old");
  CHECK(lepton::read_file((out / "notes.txt").string()) == "mine");
  CHECK(lepton::read_file((out / "model_int8.lepton.bak").string()) == "mine");
  REQUIRE(capture.lines.size() == 1);
  CHECK(capture.lines[0] == "removed 1 output file(s) of an earlier run that this run did not write from " +
                                out.string() + ": model_int8.lepton");
}

TEST_CASE("pipeline: run into an empty folder removes nothing", "[e2e][outputs]") {
  const fs::path folder = small_job_folder("no_old_outputs");
  InfoCapture capture("removed ");

  lepton::run_pipeline(small_requirements(), small_options(folder));

  CHECK(capture.lines.empty());
  CHECK(fs::is_regular_file(folder / "out" / "model.lepton"));
}

TEST_CASE("pipeline: failed run keeps the older outputs", "[e2e][outputs]") {
  const fs::path folder = small_job_folder("failed_keeps_old");
  const fs::path out = folder / "out";
  fs::create_directories(out);
  for (const std::string& name : kOutputNames) lepton::write_file_atomically((out / name).string(), "old");
  lepton::PipelineOptions options = small_options(folder);
  // A stop request fails the run after training has started, so the failure comes after the folder checks.
  std::atomic<bool> stop{true};
  options.stop_requested = &stop;

  CHECK_THROWS_WITH(lepton::run_pipeline(small_requirements(), options),
                    Catch::Matchers::Contains("training was interrupted"));

  for (const std::string& name : kOutputNames) {
    INFO(name);
    CHECK(lepton::read_file((out / name).string()) == "old");
  }
}

TEST_CASE("pipeline: resume into an empty folder hints at the path", "[e2e][resume][outputs]") {
  const fs::path folder = small_job_folder("resume_empty");
  const fs::path out = folder / "out";
  fs::create_directories(out);
  lepton::PipelineOptions options = small_options(folder);
  options.resume = true;
  WarningCapture capture;

  lepton::run_pipeline(small_requirements(), options);

  REQUIRE(capture.warnings.size() == 1);
  CHECK_THAT(capture.warnings[0], Catch::EndsWith("); training from the first epoch. " + out.string() +
                                                  " was empty before this run; check the --out path"));
}

TEST_CASE("pipeline: resume into a used folder gives no path hint", "[e2e][resume][outputs]") {
  const fs::path folder = small_job_folder("resume_used");
  const fs::path out = folder / "out";
  fs::create_directories(out);
  touch(out / "notes.txt");
  lepton::PipelineOptions options = small_options(folder);
  options.resume = true;
  WarningCapture capture;

  lepton::run_pipeline(small_requirements(), options);

  REQUIRE(capture.warnings.size() == 1);
  CHECK_THAT(capture.warnings[0], Catch::EndsWith("); training from the first epoch"));
  CHECK_THAT(capture.warnings[0], !Catch::Contains("--out"));
}
