// Runs the `lepton` binary on malformed inputs: each must exit non-zero with one clear message that names
// the place, and leave no file in the output folder. The last cases check what `run` prints and removes when
// the output folder already contains checkpoints or older outputs, and how `explain` reads --rows.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli_runner.hpp"

namespace fs = std::filesystem;

namespace {

using lepton::test_support::CommandResult;
using lepton::test_support::run_lepton;

const std::string kData = LEPTON_SHARED_DIR "/data/ai4i2020.csv";
const std::string kRequirements = LEPTON_SOURCE_DIR "/examples/predictive_maintenance/requirements.json";
// A model trained by `lepton run` on AI4I, with a stored explanation background (tests/golden/README.md).
const std::string kAi4iModel = LEPTON_SOURCE_DIR "/tests/golden/ai4i_mlp.lepton";


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
  const std::string absent = (scratch.dir / "absent.csv").string();
  const CommandResult r = run_lepton(run_arguments(kRequirements, absent, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("error: --data '" + absent + "': file not found; check the path"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: missing input names its option", "[cli]") {
  Scratch scratch("missing_option_file");
  const std::string absent = (scratch.dir / "absent").string();
  const std::string not_found = " '" + absent + "': file not found; check the path";
  const std::string predict_out = " --out '" + scratch.out() + "/p.csv'";

  const CommandResult predict_model = run_lepton("predict --model '" + absent + "' --data '" + kData + "'" + predict_out);
  CHECK(predict_model.exit_code == 1);
  CHECK_THAT(predict_model.output, Catch::Contains("error: --model" + not_found));

  const CommandResult predict_data = run_lepton("predict --model '" + kAi4iModel + "' --data '" + absent + "'" + predict_out);
  CHECK(predict_data.exit_code == 1);
  CHECK_THAT(predict_data.output, Catch::Contains("error: --data" + not_found));

  const CommandResult explain_model =
      run_lepton("explain --model '" + absent + "' --data '" + kData + "' --out '" + scratch.out() + "'");
  CHECK(explain_model.exit_code == 1);
  CHECK_THAT(explain_model.output, Catch::Contains("error: --model" + not_found));

  const CommandResult validate = run_lepton("validate --requirements '" + absent + "'");
  CHECK(validate.exit_code == 1);
  CHECK_THAT(validate.output, Catch::Contains("error: --requirements" + not_found));

  const CommandResult profile = run_lepton("profile --data '" + absent + "'");
  CHECK(profile.exit_code == 1);
  CHECK_THAT(profile.output, Catch::Contains("error: --data" + not_found));

  const CommandResult key = run_lepton("--key-file '" + absent + "' predict --model '" + kAi4iModel + "' --data '" + kData +
                                "'" + predict_out);
  CHECK(key.exit_code == 1);
  CHECK_THAT(key.output, Catch::Contains("error: --key-file" + not_found));

  const CommandResult folder = run_lepton("profile --data '" + scratch.dir.string() + "'");
  CHECK(folder.exit_code == 1);
  CHECK_THAT(folder.output, Catch::Contains("error: --data '" + scratch.dir.string() + "' is a folder"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: empty data file is rejected", "[cli]") {
  Scratch scratch("empty_data");
  const CommandResult r = run_lepton(run_arguments(kRequirements, scratch.write("empty.csv", ""), scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("empty.csv"));
  CHECK_THAT(r.output, Catch::Contains("empty"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: missing target column suggests the closest name", "[cli]") {
  Scratch scratch("missing_target");
  const std::string data = scratch.write("data.csv", replace_once(ai4i_head(50), "Machine failure", "Machine_failed"));
  const CommandResult r = run_lepton(run_arguments(kRequirements, data, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("Machine failure"));
  CHECK_THAT(r.output, Catch::Contains("did you mean 'Machine_failed'"));
  CHECK_THAT(r.output, Catch::Contains("requirements $.target"));
  CHECK_THAT(r.output, Catch::Contains("Fix the target in the requirements"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: non-numeric value names file, line and column", "[cli]") {
  Scratch scratch("non_numeric");
  // Line 4 of the file is data row 3: "3,L47182,L,298.1,308.5,1498,49.4,5,0,0,0,0,0,0".
  const std::string data = scratch.write("data.csv", replace_once(ai4i_head(300), ",1498,49.4,", ",1498,forty,"));
  const CommandResult r = run_lepton(run_arguments(kRequirements, data, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("data.csv:4:"));
  CHECK_THAT(r.output, Catch::Contains("forty"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: ragged row names its line", "[cli]") {
  Scratch scratch("ragged");
  const std::string data = scratch.write("data.csv", replace_once(ai4i_head(50), "1498,49.4,5,", "1498,49.4,"));
  const CommandResult r = run_lepton(run_arguments(kRequirements, data, scratch));
  CHECK(r.exit_code == 1);
  // Line 4 is data row 2, the number that `predict` and `explain --rows` give that row.
  CHECK_THAT(r.output, Catch::Contains("data.csv:4:1: data row 2 (0-based) has 13 fields"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: target with one class is rejected", "[cli]") {
  Scratch scratch("one_class");
  // The first 50 AI4I rows hold no failure, so 'Machine failure' is all zeros there.
  const std::string data = scratch.write("data.csv", ai4i_head(50));
  const CommandResult r = run_lepton(run_arguments(kRequirements, data, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("'Machine failure'"));
  CHECK_THAT(r.output, Catch::Contains("are '0'"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: unknown requirements key gets did-you-mean", "[cli]") {
  Scratch scratch("unknown_key");
  const std::string requirements = scratch.write(
      "req.json", R"({"version": 1, "task": "binary_classification", "target": "Machine failure", "objectve": "f1"})");
  const CommandResult r = run_lepton(run_arguments(requirements, kData, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("$.objectve"));
  CHECK_THAT(r.output, Catch::Contains("did you mean 'objective'"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: wrong type in requirements names the JSON path", "[cli]") {
  Scratch scratch("wrong_type");
  const std::string requirements = scratch.write(
      "req.json", R"({"version": 1, "task": "binary_classification", "target": "Machine failure", "seed": "seven"})");
  const CommandResult r = run_lepton(run_arguments(requirements, kData, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("$.seed"));
  CHECK_THAT(r.output, Catch::Contains("\"seven\""));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: JSON syntax error names line and column", "[cli]") {
  Scratch scratch("json_syntax");
  const std::string requirements = scratch.write("req.json", "{\n  \"version\": 1,\n  \"task\": }\n");
  const CommandResult r = run_lepton(run_arguments(requirements, kData, scratch));
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
  const CommandResult r = run_lepton(run_arguments((scratch.dir / "nope.json").string(), kData, scratch));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("error: --requirements '" + (scratch.dir / "nope.json").string() +
                                       "': file not found"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: usage error exits with code 2", "[cli]") {
  const CommandResult r = run_lepton("run --data x.csv");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("--requirements"));
}

TEST_CASE("cli: unknown command names the commands", "[cli]") {
  const CommandResult r = run_lepton("inspect model.lepton");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("unknown command 'inspect'"));
  CHECK_THAT(r.output, Catch::Contains("run, validate"));
  CHECK_THAT(r.output, !Catch::Contains("A subcommand is required"));

  // Without any command, CLI11's own message stays.
  const CommandResult none = run_lepton("--verbose");
  CHECK(none.exit_code == 2);
  CHECK_THAT(none.output, Catch::Contains("subcommand"));
}

TEST_CASE("cli: empty --out is a usage error", "[cli]") {
  const std::string inputs = "--data '" + kData + "' ";
  for (const std::string command : {"run --requirements '" + kRequirements + "' " + inputs,
                                    "predict --model '" + kAi4iModel + "' " + inputs,
                                    "explain --model '" + kAi4iModel + "' " + inputs}) {
    INFO(command);
    const CommandResult r = run_lepton(command + "--out ''");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("--out: the path is empty; name the file or folder to write"));
    CHECK_THAT(r.output, !Catch::Contains("run_pipeline"));
  }
}

TEST_CASE("cli: predict carries the ID columns", "[cli]") {
  Scratch scratch("predict_ids");
  const std::string data = scratch.write("data.csv", ai4i_head(20));
  const std::string out = (fs::path(data).parent_path() / "p.csv").string();
  const CommandResult r = run_lepton("predict --model '" + kAi4iModel + "' --data '" + data + "' --out '" + out + "'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);

  std::ifstream file(out);
  std::string header, first;
  std::getline(file, header);
  std::getline(file, first);
  CHECK(header == "row,UDI,Product ID,label,probability");
  CHECK_THAT(first, Catch::StartsWith("0,1,M14860,0,"));
}

TEST_CASE("cli: predict rejects a file that is not a model", "[cli]") {
  Scratch scratch("bad_model");
  const std::string model = scratch.write("model.lepton", "this is not a model");
  const CommandResult r =
      run_lepton("predict --model '" + model + "' --data '" + kData + "' --out '" + scratch.out() + "/p.csv'");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains(model + ": not a Lepton model file"));
  CHECK_THAT(r.output, Catch::Contains("pass a model file written by `lepton run` or lepton::save_artifact"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: misspelled exclude entry stops the run", "[cli]") {
  Scratch scratch("misspelled_exclude");
  const std::string requirements = scratch.write(
      "req.json", R"({"version": 1, "task": "binary_classification", "target": "Machine failure",
                      "exclude": ["UDI", "Product ID", "TWF", "HDF", "PWF", "osf", "RNF"]})");
  const CommandResult r = run_lepton(run_arguments(requirements, kData, scratch));
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

  const CommandResult result = run_lepton("run --quiet -r " + requirements + " -d " + data + " -o " + scratch.out());
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

  const CommandResult r = run_lepton(run_arguments(job.requirements, job.data, scratch) + " --resume");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("[lepton] warning: --resume found no checkpoint in " + scratch.out() +
                                       " (checkpoint.member1.pt .. checkpoint.member"));
  // The folder did not exist, which more often means a mistyped --out than an interrupted run.
  CHECK_THAT(r.output, Catch::Contains("); training from the first epoch. " + scratch.out() +
                                       " did not exist before this run; check the --out path\n"));
  CHECK(count_of(r.output, "--resume found") == 1);
  CHECK(fs::is_regular_file(fs::path(scratch.out()) / "checkpoint.member1.pt"));
  CHECK_FALSE(fs::exists(fs::path(scratch.out()) / "checkpoint.fold0.pt"));

  // All members have checkpoints now, so a second resume prints no warning.
  const CommandResult again = run_lepton(run_arguments(job.requirements, job.data, scratch) + " --resume");
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
  const CommandResult rejected = run_lepton(run_arguments(job.requirements, job.data, scratch) + " --resume");
  INFO(rejected.output);
  CHECK(rejected.exit_code == 1);
  CHECK_THAT(rejected.output, Catch::Contains("error: --resume: " + out.string() + " contains 1 checkpoint that "
                                              "this run does not train: checkpoint.fold7.pt (member 8"));
  CHECK_THAT(rejected.output, Catch::Contains("Run without --resume to train from the first epoch, which removes it"));
  CHECK(fs::is_regular_file(out / "checkpoint.fold7.pt"));

  // Without --resume the run removes the stale checkpoint and keeps every other file.
  const CommandResult fresh = run_lepton(run_arguments(job.requirements, job.data, scratch));
  INFO(fresh.output);
  CHECK(fresh.exit_code == 0);
  CHECK_FALSE(fs::exists(out / "checkpoint.fold7.pt"));
  CHECK(fs::is_regular_file(out / "notes.txt"));
  CHECK(fs::is_regular_file(out / "checkpoint.member1.pt"));
  CHECK_THAT(fresh.output, !Catch::Contains("warning"));
}

TEST_CASE("cli: explain rejects a blank --rows", "[cli][explain]") {
  Scratch scratch("explain_blank_rows");
  // An empty list must not read as "every row", which explains all 10,000 rows for minutes.
  for (const std::string rows : {"", " ", ",", " , ,"}) {
    INFO("--rows '" << rows << "'");
    const CommandResult r = run_lepton("explain --model '" + kAi4iModel + "' --data '" + kData + "' --out '" +
                                scratch.out() + "' --rows '" + rows + "'");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("--rows: '" + rows + "' names no row"));
    CHECK_THAT(r.output, Catch::Contains("leave out --rows to explain every row"));
    CHECK(scratch.out_is_empty());
  }
}

TEST_CASE("cli: explain --rows quotes the bad item", "[cli][explain]") {
  Scratch scratch("explain_bad_rows");
  const std::string data = scratch.write("data.csv", ai4i_head(20));
  const std::string command =
      "explain --model '" + kAi4iModel + "' --data '" + data + "' --out '" + scratch.out() + "' --rows ";

  const CommandResult negative = run_lepton(command + "-1");
  CHECK(negative.exit_code == 1);
  CHECK_THAT(negative.output, Catch::Contains("--rows '-1': '-1' is not a row number; rows are 0-based non-negative "
                                              "numbers"));

  const CommandResult negative_in_list = run_lepton(command + "'3, -2'");
  CHECK(negative_in_list.exit_code == 1);
  CHECK_THAT(negative_in_list.output, Catch::Contains("--rows '3, -2': '-2' is not a row number"));

  const CommandResult word = run_lepton(command + "'0-x'");
  CHECK(word.exit_code == 1);
  CHECK_THAT(word.output, Catch::Contains("--rows '0-x': '0-x' is not a row number or range"));

  const CommandResult empty_item = run_lepton(command + "'0,,2'");
  CHECK(empty_item.exit_code == 1);
  CHECK_THAT(empty_item.output, Catch::Contains("--rows '0,,2': an item between commas is empty"));

  const CommandResult outside = run_lepton(command + "20");
  CHECK(outside.exit_code == 1);
  CHECK_THAT(outside.output, Catch::Contains("--rows '20': '20' is outside the file's rows 0-19"));

  const CommandResult huge = run_lepton(command + "99999999999999999999999");
  CHECK(huge.exit_code == 1);
  CHECK_THAT(huge.output, Catch::Contains("is outside the file's rows 0-19"));

  const CommandResult backwards = run_lepton(command + "5-2");
  CHECK(backwards.exit_code == 1);
  CHECK_THAT(backwards.output, Catch::Contains("the range '5-2' runs backwards"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: explain --rows selects 0-based rows", "[cli][explain]") {
  Scratch scratch("explain_rows");
  const std::string data = scratch.write("data.csv", ai4i_head(20));

  const CommandResult r = run_lepton("explain --model '" + kAi4iModel + "' --data '" + data + "' --out '" + scratch.out() +
                              "' --method gradient --rows ' 19, 0-1'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::StartsWith("row 0: "));
  CHECK_THAT(r.output, Catch::Contains("\nrow 1: "));
  CHECK_THAT(r.output, Catch::Contains("\nrow 19: "));
  CHECK_THAT(r.output, !Catch::Contains("row 2: "));
}

TEST_CASE("cli: explain's fast path agrees with the reference path", "[cli][explain]") {
  Scratch scratch("explain_paths");
  const std::string data = scratch.write("data.csv", ai4i_head(5));
  const std::string command = "explain --model '" + kAi4iModel + "' --data '" + data + "' --out '";

  const std::string fast_out = scratch.out() + "/fast";
  const std::string reference_out = scratch.out() + "/reference";
  REQUIRE(run_lepton(command + fast_out + "'").exit_code == 0);
  REQUIRE(run_lepton(command + reference_out + "' --path reference").exit_code == 0);

  const nlohmann::json fast = nlohmann::json::parse(std::ifstream(fast_out + "/attributions.json"));
  const nlohmann::json reference = nlohmann::json::parse(std::ifstream(reference_out + "/attributions.json"));
  CHECK(fast.at("coalition_path") == "fast");
  CHECK(reference.at("coalition_path") == "reference");
  REQUIRE(fast.at("rows").size() == 5);
  double largest = 0;
  for (std::size_t r = 0; r < 5; ++r) {
    for (const auto& [feature, values] : fast.at("rows")[r].at("values").items()) {
      const double other = reference.at("rows")[r].at("values").at(feature)[0].get<double>();
      largest = std::max(largest, std::abs(values[0].get<double>() - other));
    }
  }
  // The fast path runs the later layers in float: about 1e-8 here, far below any attribution a reader acts on.
  CHECK(largest < 1e-6);
}

TEST_CASE("cli: explain rejects an unknown --path", "[cli][explain]") {
  Scratch scratch("explain_bad_path");
  const CommandResult r =
      run_lepton("explain --model '" + kAi4iModel + "' --data '" + kData + "' --out '" + scratch.out() + "' --path quick");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("--path"));
  CHECK(scratch.out_is_empty());
}

TEST_CASE("cli: new run removes an older int8 export", "[cli][outputs]") {
  const Scratch scratch("old_int8_" + std::to_string(::getpid()));
  const SmallJob job = small_job(scratch);
  const fs::path out = scratch.out();
  fs::create_directories(out);
  std::ofstream(out / "model_int8.lepton") << "old";
  std::ofstream(out / "notes.txt") << "mine";

  const CommandResult r = run_lepton("--verbose " + run_arguments(job.requirements, job.data, scratch));
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK_FALSE(fs::exists(out / "model_int8.lepton"));
  CHECK(fs::is_regular_file(out / "notes.txt"));
  CHECK(fs::is_regular_file(out / "model.lepton"));
  CHECK_THAT(r.output, Catch::Contains("removed 1 output file(s) of an earlier run that this run did not write from " +
                                       out.string() + ": model_int8.lepton\n"));
}

TEST_CASE("cli: --pii-key-file wins over LEPTON_PII_KEY", "[cli][pii]") {
  const Scratch scratch("pii_key_file_" + std::to_string(::getpid()));
  std::string csv = "customer,x,y,label\n";
  for (int i = 0; i < 400; ++i) {
    csv += "c" + std::to_string(i) + "," + std::to_string(i % 17) + "," + std::to_string((i * 7) % 13) + "," +
           (i % 3 == 0 ? "1" : "0") + "\n";
  }
  const std::string data = scratch.write("data.csv", csv);
  const std::string requirements =
      scratch.write("requirements.json", R"({"version": 1, "task": "binary_classification", "target": "label",
                                             "seed": 3, "pii": ["customer"], "pii_handling": "hash",
                                             "constraints": {"max_training_seconds": 20}})");
  const std::string key_file = scratch.write("pii.key", std::string(64, 'a') + "\n");

  // The variable contains no valid key, so the run can only succeed when the option replaces it.
  ::setenv("LEPTON_PII_KEY", "not-a-key", 1);
  const CommandResult r = run_lepton("--pii-key-file '" + key_file + "' " + run_arguments(requirements, data, scratch));
  ::unsetenv("LEPTON_PII_KEY");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, !Catch::Contains("LEPTON_PII_KEY"));
}
