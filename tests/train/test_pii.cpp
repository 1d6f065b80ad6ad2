// PII columns: dropped or hashed before any stage reads them, and their raw values absent from every output
// file, every log line and every error message.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "lepton/crypto.hpp"
#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "lepton/log.hpp"
#include "lepton/pipeline.hpp"
#include "lepton/requirements.hpp"
#include "train/privacy_pii.hpp"

namespace fs = std::filesystem;
using namespace lepton;

namespace {

// Raw PII values carry this marker so that a scan cannot miss a partial copy of one.
constexpr const char* kMarker = "Zq7sentinel";

std::string email(std::size_t row) { return std::string(kMarker) + "." + std::to_string(row) + "@example.org"; }
std::string segment(std::size_t row) { return std::string(kMarker) + "-segment-" + std::to_string(row % 3); }

// 400 rows: x0 and x1 decide the label; "email" is unique per row and "segment" has 3 values.
std::string write_data(const fs::path& folder) {
  std::mt19937 engine(5);
  std::normal_distribution<double> normal;
  std::string csv = "email,segment,x0,x1,label\n";
  for (std::size_t row = 0; row < 400; ++row) {
    const double x0 = normal(engine);
    const double x1 = normal(engine);
    csv += email(row) + "," + segment(row) + "," + std::to_string(x0) + "," + std::to_string(x1) + "," +
           (x0 + x1 > 0.3 ? "1" : "0") + "\n";
  }
  const std::string path = (folder / "people.csv").string();
  write_file_atomically(path, csv);
  return path;
}

Requirements pii_requirements(PiiHandling handling) {
  return parse_requirements(nlohmann::json{{"version", 1},
                                           {"task", "binary_classification"},
                                           {"target", "label"},
                                           {"pii", {"email", "segment"}},
                                           {"pii_handling", handling == PiiHandling::Hash ? "hash" : "drop"},
                                           {"constraints", {{"privacy", {{"epsilon", 4.0}}}}}});
}

fs::path fresh_folder(const std::string& name) {
  const fs::path folder = fs::path(LEPTON_BINARY_DIR) / "test_pii" / name;
  fs::remove_all(folder);
  fs::create_directories(folder);
  return folder;
}

// Every file below `folder` whose bytes contain the marker.
std::vector<std::string> files_with_marker(const fs::path& folder) {
  std::vector<std::string> hits;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    if (entry.is_regular_file() && read_file(entry.path().string()).find(kMarker) != std::string::npos) {
      hits.push_back(entry.path().string());
    }
  }
  return hits;
}

// Runs the pipeline with a Debug-level sink and returns everything it logged.
std::string run_logged(const Requirements& requirements, const std::string& data, const fs::path& out) {
  std::string logged;
  set_log_sink([&logged](LogLevel, std::string_view message) {
    logged.append(message);
    logged += '\n';
  });
  set_log_level(LogLevel::Debug);

  PipelineOptions options;
  options.data_path = data;
  options.output_dir = out.string();
  try {
    run_pipeline(requirements, options);
  } catch (...) {
    set_log_sink({});
    set_log_level(LogLevel::Off);
    throw;
  }
  set_log_sink({});
  set_log_level(LogLevel::Off);
  return logged;
}

}  // namespace

TEST_CASE("pii drop leaves no raw value in outputs or logs", "[pii][pipeline]") {
  const fs::path folder = fresh_folder("drop");
  const std::string data = write_data(folder);
  const fs::path out = folder / "out";

  const std::string logged = run_logged(pii_requirements(PiiHandling::Drop), data, out);

  // The input file itself contains the marker; the outputs must not.
  CHECK(read_file(data).find(kMarker) != std::string::npos);
  CHECK(files_with_marker(out).empty());
  CHECK(logged.find(kMarker) == std::string::npos);
  CHECK_FALSE(logged.empty());

  const nlohmann::json report = nlohmann::json::parse(read_file((out / "report.json").string()));
  CHECK(report["privacy"]["pii"]["handling"] == "drop");
  CHECK(report["privacy"]["dp_sgd"]["epsilon"].get<double>() <= 4.0);
  CHECK(load_artifact((out / "model.lepton").string()).extensions["privacy"]["dp_sgd"]["steps"].get<int>() > 0);
}

TEST_CASE("pii hash leaves no raw value in outputs or logs", "[pii][pipeline]") {
  const fs::path folder = fresh_folder("hash");
  const std::string data = write_data(folder);
  const fs::path out = folder / "out";
  const EncryptionKey key = EncryptionKey::generate();
  ::setenv(detail::kPiiKeyVariable, key.to_hex().c_str(), 1);

  const std::string logged = run_logged(pii_requirements(PiiHandling::Hash), data, out);
  ::unsetenv(detail::kPiiKeyVariable);

  CHECK(files_with_marker(out).empty());
  CHECK(logged.find(kMarker) == std::string::npos);
  // The key must not leak either.
  CHECK(logged.find(key.to_hex()) == std::string::npos);

  // The 3-valued segment column survives as a hashed categorical feature.
  const std::string model = read_file((out / "model.lepton").string());
  CHECK(model.find(detail::pii_hash(segment(0), key)) != std::string::npos);
}

TEST_CASE("pii hash takes its key from PipelineOptions", "[pii][pipeline]") {
  const fs::path folder = fresh_folder("option_key");
  const std::string data = write_data(folder);
  ::unsetenv(detail::kPiiKeyVariable);
  ::unsetenv(detail::kPiiKeyFileVariable);
  const EncryptionKey key = EncryptionKey::generate();

  PipelineOptions options;
  options.data_path = data;
  options.output_dir = (folder / "out").string();
  options.pii_key = key;
  run_pipeline(pii_requirements(PiiHandling::Hash), options);

  const std::string model = read_file((folder / "out" / "model.lepton").string());
  CHECK(model.find(detail::pii_hash(segment(0), key)) != std::string::npos);
  CHECK(files_with_marker(folder / "out").empty());
}

TEST_CASE("pipeline encrypts with the keys in PipelineOptions", "[pii][pipeline][crypto]") {
  const fs::path folder = fresh_folder("protection");
  const std::string data = write_data(folder);
  ::unsetenv(kModelKeyVariable);
  ::unsetenv(kModelKeyFileVariable);
  const EncryptionKey key = EncryptionKey::generate();

  PipelineOptions options;
  options.data_path = data;
  options.output_dir = (folder / "out").string();
  options.protection = SaveOptions().with_key(key);
  const PipelineResult result = run_pipeline(pii_requirements(PiiHandling::Drop), options);

  CHECK_THROWS_AS(load_artifact(result.model_path, LoadOptions{}), InvalidArgument);
  const ModelArtifact artifact = load_artifact(result.model_path, LoadOptions().with_key(key));
  CHECK(artifact.network.inputs() > 0);
}

TEST_CASE("pii hash without a key names the variable, not a value", "[pii][errors]") {
  const fs::path folder = fresh_folder("no_key");
  const std::string data = write_data(folder);
  ::unsetenv(detail::kPiiKeyVariable);
  ::unsetenv(detail::kPiiKeyFileVariable);

  PipelineOptions options;
  options.data_path = data;
  options.output_dir = (folder / "out").string();
  CHECK_THROWS_WITH(run_pipeline(pii_requirements(PiiHandling::Hash), options),
                    Catch::Contains("LEPTON_PII_KEY") && !Catch::Contains(kMarker));
}

TEST_CASE("pii column that is also a feature fails without its values", "[pii][errors]") {
  const fs::path folder = fresh_folder("feature");
  const std::string data = write_data(folder);

  nlohmann::json document{{"version", 1},
                          {"task", "binary_classification"},
                          {"target", "label"},
                          {"pii", {"email"}},
                          {"features", {{{"column", "email"}, {"type", "categorical"}}, {{"column", "x0"}, {"type", "numeric"}}}}};
  PipelineOptions options;
  options.data_path = data;
  options.output_dir = (folder / "out").string();
  try {
    run_pipeline(parse_requirements(document), options);
    FAIL("run_pipeline accepted a feature column that pii drops");
  } catch (const Error& error) {
    CHECK(std::string(error.what()).find(kMarker) == std::string::npos);
  }
  // The run fails while configuring, before it creates the output folder.
  CHECK_FALSE(fs::exists(folder / "out"));
}

TEST_CASE("pii target is rejected by validation", "[pii][requirements]") {
  nlohmann::json document{{"version", 1}, {"task", "binary_classification"}, {"target", "label"}, {"pii", {"label"}}};
  CHECK_THROWS_WITH(parse_requirements(document), Catch::Contains("$.pii[0]") && Catch::Contains("target"));
}

TEST_CASE("mask_pii drops or hashes only pii columns", "[pii]") {
  const Table table({"name", "age", "city"},
                    {{"Ann", "Bob", "Ann", ""}, {"30", "41", "30", "22"}, {"Oslo", "Rome", "Oslo", "Oslo"}});
  Requirements requirements;
  requirements.pii = {"name"};

  const Table dropped = detail::mask_pii(table, requirements, std::nullopt);
  CHECK(dropped.column_names() == std::vector<std::string>{"age", "city"});
  CHECK(dropped.column(0) == table.column(1));

  const EncryptionKey key = EncryptionKey::generate();
  requirements.pii_handling = PiiHandling::Hash;
  const Table hashed = detail::mask_pii(table, requirements, key);
  CHECK(hashed.column_names() == table.column_names());
  CHECK(hashed.cell(0, 0) == detail::pii_hash("Ann", key));
  CHECK(hashed.cell(0, 0) == hashed.cell(2, 0));
  CHECK(hashed.cell(0, 0) != hashed.cell(1, 0));
  CHECK(hashed.cell(0, 0).size() == 64);
  CHECK(hashed.is_missing(3, 0));
  CHECK(hashed.column(2) == table.column(2));

  const Table other_key = detail::mask_pii(table, requirements, EncryptionKey::generate());
  CHECK(other_key.cell(0, 0) != hashed.cell(0, 0));
}

TEST_CASE("mask_pii rejects unknown columns", "[pii][errors]") {
  const Table table({"name"}, {{"Ann"}});
  Requirements requirements;
  requirements.pii = {"nmae"};
  CHECK_THROWS_WITH(detail::mask_pii(table, requirements, std::nullopt), Catch::Contains("'nmae'"));
}
