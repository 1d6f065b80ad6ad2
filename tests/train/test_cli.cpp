// Runs the `lepton` binary on malformed inputs: each must exit non-zero with one clear message that names
// the place, and leave no file in the output folder. The last cases check what `run` prints and removes when
// the output folder already contains checkpoints.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

namespace {

const std::string kLepton = LEPTON_BINARY_DIR "/lepton";
const std::string kData = LEPTON_SHARED_DIR "/data/ai4i2020.csv";
const std::string kRequirements = LEPTON_SOURCE_DIR "/examples/predictive_maintenance/requirements.json";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

CommandResult run(const std::string& arguments) {
  CommandResult result;
  FILE* pipe = popen((kLepton + " " + arguments + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) result.output += buffer.data();
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// A scratch folder per test case, removed at the end.
struct Scratch {
  fs::path dir;
  explicit Scratch(const std::string& name) : dir(fs::temp_directory_path() / ("lepton_cli_" + name)) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name, std::ios::binary) << text;
    return (dir / name).string();
  }
  std::string out() const { return (dir / "out").string(); }
  bool out_is_empty() const { return !fs::exists(dir / "out") || fs::is_empty(dir / "out"); }
};

// The first `rows` data lines of the real AI4I file, header included, with CRLF kept.
std::string ai4i_head(std::size_t rows) {
  std::ifstream in(kData, std::ios::binary);
  std::string line, text;
  for (std::size_t i = 0; i <= rows && std::getline(in, line); ++i) text += line + "\n";
  return text;
}

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

std::string run_arguments(const std::string& requirements, const std::string& data, const Scratch& scratch) {
  return "run --quiet --requirements '" + requirements + "' --data '" + data + "' --out '" + scratch.out() + "'";
}

}  // namespace

TEST_CASE("cli: missing data file names the path", "[cli]") {
  Scratch scratch("missing_data");
  const CommandResult r = run(run_arguments(kRequirements, (scratch.dir / "absent.csv").string(), scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("absent.csv"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: empty data file is rejected", "[cli]") {
  Scratch scratch("empty_data");
  const CommandResult r = run(run_arguments(kRequirements, scratch.write("empty.csv", ""), scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("empty.csv"));
  CHECK_THAT(r.output, Catch::Contains("empty"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: missing target column suggests the closest name", "[cli]") {
  Scratch scratch("missing_target");
  const std::string data = scratch.write("data.csv", replace_once(ai4i_head(50), "Machine failure", "Machine_failed"));
  const CommandResult r = run(run_arguments(kRequirements, data, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("Machine failure"));
  CHECK_THAT(r.output, Catch::Contains("did you mean 'Machine_failed'"));
  CHECK_THAT(r.output, Catch::Contains("requirements $.target"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: non-numeric value names file, line and column", "[cli]") {
  Scratch scratch("non_numeric");
  // Line 4 of the file is data row 3: "3,L47182,L,298.1,308.5,1498,49.4,5,0,0,0,0,0,0".
  const std::string data = scratch.write("data.csv", replace_once(ai4i_head(300), ",1498,49.4,", ",1498,forty,"));
  const CommandResult r = run(run_arguments(kRequirements, data, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("data.csv:4:"));
  CHECK_THAT(r.output, Catch::Contains("forty"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: ragged row names its line", "[cli]") {
  Scratch scratch("ragged");
  const std::string data = scratch.write("data.csv", replace_once(ai4i_head(50), "1498,49.4,5,", "1498,49.4,"));
  const CommandResult r = run(run_arguments(kRequirements, data, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("data.csv:4:"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: target with one class is rejected", "[cli]") {
  Scratch scratch("one_class");
  // The first 50 AI4I rows hold no failure, so 'Machine failure' is all zeros there.
  const std::string data = scratch.write("data.csv", ai4i_head(50));
  const CommandResult r = run(run_arguments(kRequirements, data, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("'Machine failure'"));
  CHECK_THAT(r.output, Catch::Contains("are '0'"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: unknown requirements key gets did-you-mean", "[cli]") {
  Scratch scratch("unknown_key");
  const std::string requirements = scratch.write(
      "req.json", R"({"version": 1, "task": "binary_classification", "target": "Machine failure", "objectve": "f1"})");
  const CommandResult r = run(run_arguments(requirements, kData, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("$.objectve"));
  CHECK_THAT(r.output, Catch::Contains("did you mean 'objective'"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: wrong type in requirements names the JSON path", "[cli]") {
  Scratch scratch("wrong_type");
  const std::string requirements = scratch.write(
      "req.json", R"({"version": 1, "task": "binary_classification", "target": "Machine failure", "seed": "seven"})");
  const CommandResult r = run(run_arguments(requirements, kData, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("$.seed"));
  CHECK_THAT(r.output, Catch::Contains("\"seven\""));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: JSON syntax error names line and column", "[cli]") {
  Scratch scratch("json_syntax");
  const std::string requirements = scratch.write("req.json", "{\n  \"version\": 1,\n  \"task\": }\n");
  const CommandResult r = run(run_arguments(requirements, kData, scratch));
  CHECK(r.exit_code == 1);
  // Column 11 of line 3 is the '}' where a value should be.
  CHECK_THAT(r.output, Catch::Contains("req.json:3:11: JSON syntax error: unexpected '}'; expected '[', '{', or a "
                                       "literal; fix the JSON syntax there"));
  CHECK_THAT(r.output, !Catch::Contains("json.exception"));
  CHECK_THAT(r.output, !Catch::Contains("line 3"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: missing requirements file names the path", "[cli]") {
  Scratch scratch("missing_requirements");
  const CommandResult r = run(run_arguments((scratch.dir / "nope.json").string(), kData, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("nope.json"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: usage error exits with code 2", "[cli]") {
  const CommandResult r = run("run --data x.csv");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("--requirements"));
}

TEST_CASE("cli: predict rejects a file that is not a model", "[cli]") {
  Scratch scratch("bad_model");
  const std::string model = scratch.write("model.lepton", "this is not a model");
  const CommandResult r =
      run("predict --model '" + model + "' --data '" + kData + "' --out '" + scratch.out() + "/p.csv'");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("model.lepton"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: misspelled exclude entry stops the run", "[cli]") {
  Scratch scratch("misspelled_exclude");
  const std::string requirements = scratch.write(
      "req.json", R"({"version": 1, "task": "binary_classification", "target": "Machine failure",
                      "exclude": ["UDI", "Product ID", "TWF", "HDF", "PWF", "osf", "RNF"]})");
  const CommandResult r = run(run_arguments(requirements, kData, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("'osf' (did you mean 'OSF'?)"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: missed min_metric exits with code 3", "[cli]") {
  // 400 rows with a label that the features cannot predict, so a floor of 0.99 cannot be met.
  const Scratch scratch("min_metric");
  std::string csv = "x,y,label\n";
  for (int i = 0; i < 400; ++i) {
    csv += std::to_string(i % 17) + "," + std::to_string((i * 7) % 13) + "," + ((i * 31) % 3 == 0 ? "1" : "0") + "\n";
  }
  const std::string data = scratch.write("data.csv", csv);
  const std::string requirements = scratch.write(
      "requirements.json",
      R"({"version": 1, "task": "binary_classification", "target": "label", "seed": 1,
          "constraints": {"min_metric": 0.99, "max_training_seconds": 20}})");

  const CommandResult result = run("run --quiet -r " + requirements + " -d " + data + " -o " + scratch.out());
  INFO(result.output);
  CHECK(result.exit_code == 3);
  CHECK(result.output.find("error: constraint min_metric not met: required 0.99, measured 0.") != std::string::npos);
  // The measured value prints with at most 6 significant digits.
  const std::size_t measured = result.output.find("measured 0.");
  REQUIRE(measured != std::string::npos);
  const std::size_t end = result.output.find('\n', measured);
  CHECK(end - (measured + std::string("measured ").size()) <= 8);
  CHECK(fs::is_regular_file(fs::path(scratch.out()) / "model.lepton"));
}

namespace {

// A small job that trains cross-fitted members in seconds: 400 rows, a third positive, with a clear rule.
struct SmallJob {
  std::string data, requirements;
};

SmallJob small_job(const Scratch& scratch) {
  std::string csv = "x,y,label\n";
  for (int i = 0; i < 400; ++i) {
    csv += std::to_string(i % 17) + "," + std::to_string((i * 7) % 13) + "," + (i % 3 == 0 ? "1" : "0") + "\n";
  }
  return {scratch.write("data.csv", csv),
          scratch.write("requirements.json",
                        R"({"version": 1, "task": "binary_classification", "target": "label", "seed": 3,
                            "constraints": {"max_training_seconds": 20}})")};
}

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

}  // namespace

TEST_CASE("cli: resume without checkpoint warns in quiet mode", "[cli][resume]") {
  const Scratch scratch("resume_none_" + std::to_string(::getpid()));
  const SmallJob job = small_job(scratch);

  const CommandResult r = run(run_arguments(job.requirements, job.data, scratch) + " --resume");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("[lepton] warning: --resume found no checkpoint in " + scratch.out() +
                                       " (checkpoint.member1.pt .. checkpoint.member"));
  CHECK_THAT(r.output, Catch::Contains("); training from the first epoch\n"));
  CHECK(count_of(r.output, "--resume found") == 1);
  CHECK(fs::is_regular_file(fs::path(scratch.out()) / "checkpoint.member1.pt"));
  CHECK_FALSE(fs::exists(fs::path(scratch.out()) / "checkpoint.fold0.pt"));

  // All members have checkpoints now, so a second resume prints no warning.
  const CommandResult again = run(run_arguments(job.requirements, job.data, scratch) + " --resume");
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.output, !Catch::Contains("warning"));
}

TEST_CASE("cli: stale checkpoints are rejected or removed", "[cli][resume]") {
  const Scratch scratch("resume_stale_" + std::to_string(::getpid()));
  const SmallJob job = small_job(scratch);
  const fs::path out = scratch.out();
  fs::create_directories(out);
  std::ofstream(out / "checkpoint.fold7.pt") << "old";
  std::ofstream(out / "notes.txt") << "mine";

  // --resume rejects a checkpoint that this run does not train and changes nothing.
  const CommandResult rejected = run(run_arguments(job.requirements, job.data, scratch) + " --resume");
  INFO(rejected.output);
  CHECK(rejected.exit_code == 1);
  CHECK_THAT(rejected.output, Catch::Contains("error: --resume: " + out.string() + " contains 1 checkpoint that "
                                              "this run does not train: checkpoint.fold7.pt (member 8"));
  CHECK_THAT(rejected.output, Catch::Contains("Run without --resume to train from the first epoch, which removes it"));
  CHECK(fs::is_regular_file(out / "checkpoint.fold7.pt"));

  // Without --resume the run removes the stale checkpoint and keeps every other file.
  const CommandResult fresh = run(run_arguments(job.requirements, job.data, scratch));
  INFO(fresh.output);
  CHECK(fresh.exit_code == 0);
  CHECK_FALSE(fs::exists(out / "checkpoint.fold7.pt"));
  CHECK(fs::is_regular_file(out / "notes.txt"));
  CHECK(fs::is_regular_file(out / "checkpoint.member1.pt"));
  CHECK_THAT(fresh.output, !Catch::Contains("warning"));
}
