// Runs `lepton run` on the real AI4I file and reads what it wrote. The end-of-run summary must list the files
// that the run wrote. When the configurator chose the int8 export to meet max_model_bytes, report.json and
// report.md must judge that limit on the int8 export.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/cli_runner.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

using lepton::test_support::CommandResult;
using lepton::test_support::run_lepton;

const std::string kData = LEPTON_SHARED_DIR "/data/ai4i2020.csv";
const std::string kExample = LEPTON_SOURCE_DIR "/examples/predictive_maintenance/requirements.json";


std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A scratch folder per test case and process, removed at the end.
struct Scratch {
  fs::path dir;
  explicit Scratch(const std::string& name)
      : dir(fs::temp_directory_path() / ("lepton_report_cli_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
  fs::path out() const { return dir / "out"; }
};

// The example requirements with extra constraints merged in, written into the scratch folder.
std::string example_with(const Scratch& scratch, const nlohmann::json& constraints) {
  nlohmann::json requirements = nlohmann::json::parse(read_text(kExample));
  requirements["constraints"].update(constraints);
  const fs::path path = scratch.dir / "requirements.json";
  std::ofstream(path, std::ios::binary) << requirements.dump(2);
  return path.string();
}

nlohmann::json constraint(const nlohmann::json& report, const std::string& name) {
  for (const nlohmann::json& row : report.at("constraints")) {
    if (row.at("constraint") == name) return row;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("report cli: int8 export meets max_model_bytes", "[cli][report][ai4i]") {
  // Only the int8 export of one model (8 encoded columns and 2 products, 10-64-32-1) fits 5000 bytes: its fp32
  // weights take 11268. The tolerance allows two of the validation rows' 68 failures to flip, because a flip
  // near the threshold moves F1 by 0.013, more than the default 0.005; the gate has its own tests, and this
  // one checks the size.
  const Scratch scratch("int8_size");
  const std::string requirements =
      example_with(scratch, {{"max_model_bytes", 5000}, {"quantization_tolerance", 0.03}});

  const CommandResult result =
      run_lepton("run --quiet -r '" + requirements + "' -d '" + kData + "' -o '" + scratch.out().string() + "'");
  INFO(result.output);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.output, !Contains("error: constraint"));
  CHECK_THAT(result.output, Contains("Wrote " + scratch.out().string() +
                                     "/: config.json, model.lepton, model_int8.lepton, metrics.json, report.json, "
                                     "report.md\n"));
  REQUIRE(fs::is_regular_file(scratch.out() / "model_int8.lepton"));

  const nlohmann::json report = nlohmann::json::parse(read_text(scratch.out() / "report.json"));
  REQUIRE(report.at("configuration").at("quantize") == true);
  const nlohmann::json row = constraint(report, "max_model_bytes");
  REQUIRE(row.is_object());
  CHECK(row.at("met") == true);
  CHECK(row.at("measured") == report.at("model").at("int8_weight_bytes"));
  CHECK(row.at("measured").get<std::uint64_t>() <= 5000);
  CHECK_THAT(row.at("note").get<std::string>(), Contains("model_int8.lepton"));

  const std::string md = read_text(scratch.out() / "report.md");
  CHECK_THAT(md, Contains("| max_model_bytes | 5000 | " + row.at("measured").dump() + " | yes |"));
  CHECK_THAT(md, Contains("| interpretability | attribution | exact SHAP attributions | yes |"));
  CHECK_THAT(md, Contains("| Metric | Validation | Test |"));
  CHECK_THAT(md, Contains("Missing values: none; no cell was imputed."));
}

TEST_CASE("report cli: summary without int8 export", "[cli][report][ai4i]") {
  // A run that misses a floor no model reaches still writes every output and exits 3. No size or latency
  // limit needs int8 here, so the run writes no int8 export and the summary does not list one.
  const Scratch scratch("fp32_only");
  const std::string requirements =
      example_with(scratch, {{"min_metric", 0.9999}, {"max_training_seconds", 20}});

  const CommandResult result =
      run_lepton("run --quiet -r '" + requirements + "' -d '" + kData + "' -o '" + scratch.out().string() + "'");
  INFO(result.output);
  CHECK(result.exit_code == 3);
  CHECK_FALSE(fs::exists(scratch.out() / "model_int8.lepton"));
  CHECK_THAT(result.output, Contains("Wrote " + scratch.out().string() +
                                     "/: config.json, model.lepton, metrics.json, report.json, report.md\n"));

  const nlohmann::json report = nlohmann::json::parse(read_text(scratch.out() / "report.json"));
  CHECK(report.at("training").at("best_epoch").is_null());
  CHECK(report.at("model").at("nonzero_parameters").get<std::size_t>() <
        report.at("model").at("parameters").get<std::size_t>());
  REQUIRE(report.at("training").contains("members"));
  const std::size_t members = report.at("training").at("members").size();
  REQUIRE(members > 1);
  // Members count from 1, as in report.md, the progress lines and the checkpoint names.
  CHECK(report.at("training").at("history").front().at("member") == 1);
  CHECK(report.at("training").at("history").back().at("member") == members);
  CHECK(report.at("training").at("members").front().at("member") == 1);
  CHECK(report.at("training").at("members").back().at("member") == members);
  CHECK_THAT(read_text(scratch.out() / "report.md"), Contains("| Metric | Out-of-fold | Test |"));

  // The misclassified test rows add up to the confusion matrix, and their row numbers are the file's data
  // rows: AI4I numbers its rows from UDI 1, so data row r has UDI r + 1.
  const nlohmann::json& confusion = report.at("metrics").at("test").at("confusion_matrix");
  const nlohmann::json& wrong = report.at("explanations").at("misclassified_test_rows");
  const double threshold = report.at("metrics").at("threshold").get<double>();
  CHECK(wrong.at("threshold") == threshold);
  CHECK(wrong.at("false_negatives").size() == confusion[1][0].get<std::size_t>());
  CHECK(wrong.at("false_positives").size() == confusion[0][1].get<std::size_t>());
  for (const char* list : {"false_negatives", "false_positives"}) {
    for (const nlohmann::json& row : wrong.at(list)) {
      INFO(list << ": " << row.dump());
      CHECK(row.at("ids").at("UDI") == std::to_string(row.at("row").get<std::size_t>() + 1));
      CHECK(row.at("ids").contains("Product ID"));
      CHECK((row.at("probability").get<double>() >= threshold) == (std::string(list) == "false_positives"));
    }
  }
  CHECK_THAT(read_text(scratch.out() / "report.md"),
             Contains(fmt::format("Missed positives (false negatives: true class `1`, predicted `0`): {} in all",
                                  confusion[1][0].get<std::size_t>())));
}
