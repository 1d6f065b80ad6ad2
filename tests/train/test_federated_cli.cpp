// Runs `lepton federated` as three processes on 127.0.0.1: a server and two clients, each client with its
// own part of the real AI4I 2020 file (Type L rows, and Type M and H rows).
// NOTE: this executable needs the `lepton` binary; build the lepton_cli target before running it.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/distributed.hpp"
#include "lepton/model.hpp"
#include "lepton/predictor.hpp"
#include "lepton/table.hpp"

#include "support/cli_runner.hpp"

namespace {

using lepton::test_support::CommandResult;
using lepton::test_support::run_lepton;

namespace fs = std::filesystem;

const std::string& kLepton = lepton::test_support::kLeptonBinary;
const std::string kData = LEPTON_SHARED_DIR "/data/ai4i2020.csv";
constexpr int kRankTimeoutSeconds = 60;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A scratch folder per test case with two site CSVs, removed at the end.
struct Scratch {
  fs::path dir;

  explicit Scratch(const std::string& name)
      : dir(fs::temp_directory_path() / ("lepton_federated_cli_" + name + "_" + std::to_string(getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    split_sites();
  }
  ~Scratch() { fs::remove_all(dir); }

  // Type is the third column of AI4I, so the sites differ in product quality (non-IID). CRLF is kept.
  void split_sites() const {
    std::ifstream in(kData, std::ios::binary);
    REQUIRE(in.good());
    std::string header, line;
    std::getline(in, header);
    std::ofstream low(dir / "site_low.csv", std::ios::binary), other(dir / "site_other.csv", std::ios::binary);
    low << header << "\n";
    other << header << "\n";
    while (std::getline(in, line)) {
      const std::size_t first = line.find(',');
      const std::size_t second = line.find(',', first + 1);
      (line.compare(second + 1, 2, "L,") == 0 ? low : other) << line << "\n";
    }
  }

  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name, std::ios::binary) << text;
    return (dir / name).string();
  }
};

std::string requirements_json(const std::string& privacy) {
  return R"({"version": 1, "task": "binary_classification", "target": "Machine failure",
    "exclude": ["UDI", "Product ID", "TWF", "HDF", "PWF", "OSF", "RNF"], "objective": "f1", "seed": 42,
    "constraints": {)" + privacy + "}}";
}

std::string quoted(const std::string& text) { return "'" + text + "'"; }

// Starts the server and both clients in one shell, each under `timeout`, and records each exit status
// in <dir>/rank<k>.status and its output in <dir>/rank<k>.log.
void run_group(const Scratch& scratch, const std::string& requirements, const std::string& extra_flags) {
  const std::string common = "--world-size 3 --master-addr 127.0.0.1 --master-port " +
                             std::to_string(lepton::find_free_port()) + " --dist-timeout 20 -r " +
                             quoted(requirements) + " --rounds 2 --local-epochs 1 " + extra_flags;
  const std::string lepton = "timeout " + std::to_string(kRankTimeoutSeconds) + " " + quoted(kLepton) + " federated ";
  const std::string roles[3] = {"--role server --rank 0 --out out", "--role client --rank 1 --data site_low.csv",
                                "--role client --rank 2 --data site_other.csv"};
  // "cd ... || exit" rather than "cd ... &&", which would put the cd in the first background job only.
  std::string script = "cd " + quoted(scratch.dir.string()) + " || exit 1; ";
  for (int rank = 0; rank < 3; ++rank) {
    const std::string name = "rank" + std::to_string(rank);
    script += "(" + lepton + roles[rank] + " " + common + " > " + name + ".log 2>&1; echo $? > " + name +
              ".status) & ";
  }
  script += "wait";

  REQUIRE(fs::exists(kLepton));
  REQUIRE(std::system(script.c_str()) == 0);
  for (int rank = 0; rank < 3; ++rank) {
    const std::string name = "rank" + std::to_string(rank);
    INFO("rank " << rank << " output:\n" << read_text(scratch.dir / (name + ".log")));
    CHECK(read_text(scratch.dir / (name + ".status")) == "0\n");
  }
}


}  // namespace

TEST_CASE("federated CLI trains two sites", "[federated][cli]") {
  const Scratch scratch("plain");
  const std::string requirements = scratch.write("requirements.json", requirements_json(""));
  // Outputs of an earlier `lepton run` into the same folder, which would read as the federated model's.
  const std::vector<std::string> stale = {"config.json",          "metrics.json",      "report.json",
                                          "report.md",            "training_inputs.json", "model_int8.lepton",
                                          "checkpoint.member3.pt", "checkpoint.pt.tmp-12"};
  fs::create_directories(scratch.dir / "out");
  for (const std::string& name : stale) scratch.write("out/" + name, "old");
  scratch.write("out/notes.txt", "kept");
  run_group(scratch, requirements, "--fedprox-mu 0.01");

  for (const std::string& name : stale) {
    INFO(name);
    CHECK_FALSE(fs::exists(scratch.dir / "out" / name));
  }
  CHECK(read_text(scratch.dir / "out" / "notes.txt") == "kept");

  const nlohmann::json summary = nlohmann::json::parse(read_text(scratch.dir / "out" / "federated.json"));
  CHECK(summary.at("stop_reason") == "rounds");
  REQUIRE(summary.at("rounds").size() == 2);
  // The stratified 60/20/20 split of each site: the training rows of both sites together.
  const std::uint64_t samples = summary.at("rounds")[0].at("samples").get<std::uint64_t>();
  CHECK(samples >= 5990);
  CHECK(samples <= 6010);
  REQUIRE(summary.at("clients").size() == 2);
  const std::size_t low_test = summary.at("clients")[0].at("test").at("rows").get<std::size_t>();
  const std::size_t other_test = summary.at("clients")[1].at("test").at("rows").get<std::size_t>();
  CHECK(low_test + other_test >= 1990);
  CHECK(low_test + other_test <= 2010);
  CHECK(low_test > other_test);  // 6,000 of the 10,000 rows have Type L.

  // The server's model loads with the runtime and predicts the real file.
  const lepton::ModelArtifact artifact = lepton::load_artifact((scratch.dir / "out" / "model.lepton").string());
  const lepton::Predictions predictions = lepton::Predictor(artifact).predict(lepton::read_csv(kData));
  CHECK(predictions.rows == 10000);
  CHECK(artifact.target.classes == std::vector<std::string>{"0", "1"});
  // Each site holds only some Type values; the shared preprocessor has the union.
  std::vector<std::string> types;
  for (const auto& feature : artifact.preprocessor.features()) {
    if (feature.column == "Type") types = feature.categories;
  }
  CHECK(types == std::vector<std::string>{"H", "L", "M"});
}

TEST_CASE("federated CLI accounts DP over rounds", "[federated][cli][privacy]") {
  const Scratch scratch("private");
  const std::string requirements =
      scratch.write("requirements.json", requirements_json(R"("privacy": {"epsilon": 4, "delta": 1e-5})"));
  run_group(scratch, requirements, "--secure-aggregation");

  const nlohmann::json summary = nlohmann::json::parse(read_text(scratch.dir / "out" / "federated.json"));
  CHECK(summary.at("stop_reason") == "rounds");
  REQUIRE(summary.at("clients").size() == 2);
  for (const nlohmann::json& client : summary.at("clients")) {
    INFO(client.dump());
    const nlohmann::json& privacy = client.at("privacy");
    CHECK(privacy.at("epsilon").get<double>() <= 4.0);
    CHECK(privacy.at("epsilon").get<double>() >= 4.0 * (1 - 1e-4));  // Solved for both rounds together.
    CHECK(privacy.at("target_epsilon").get<double>() == 4.0);
  }
  const lepton::ModelArtifact artifact = lepton::load_artifact((scratch.dir / "out" / "model.lepton").string());
  CHECK(artifact.extensions.at("privacy").at("federated_dp_sgd").size() == 2);
}

TEST_CASE("federated CLI rejects misplaced flags", "[federated][cli]") {
  const Scratch scratch("flags");
  const std::string requirements = scratch.write("requirements.json", requirements_json(""));
  const std::string group = "--world-size 3 --master-port 29999 -r '" + requirements + "'";

  const CommandResult server_with_data =
      run_lepton("federated --role server --rank 0 " + group + " --out x --data site.csv");
  CHECK(server_with_data.exit_code == 1);
  CHECK_THAT(server_with_data.output, Catch::Contains("--data site.csv") && Catch::Contains("has no data"));

  const CommandResult client_without_data = run_lepton("federated --role client --rank 2 " + group);
  CHECK(client_without_data.exit_code == 1);
  CHECK_THAT(client_without_data.output, Catch::Contains("client rank 2 needs --data"));

  const CommandResult server_rank = run_lepton("federated --role server --rank 1 " + group + " --out x");
  CHECK(server_rank.exit_code == 1);
  CHECK_THAT(server_rank.output, Catch::Contains("needs rank 0") && Catch::Contains("the rank is 1"));

  const CommandResult bad_role = run_lepton("federated --role observer --rank 1 " + group);
  CHECK(bad_role.exit_code == 2);  // CLI11 usage error.
}

TEST_CASE("federated CLI names the PII key file variable", "[federated][cli][privacy]") {
  const Scratch scratch("pii_key");
  const std::string requirements = scratch.write(
      "requirements.json",
      R"({"version": 1, "task": "binary_classification", "target": "Machine failure", "pii": ["Product ID"],
    "pii_handling": "hash", "exclude": ["UDI", "TWF", "HDF", "PWF", "OSF", "RNF"], "objective": "f1"})");
  const std::string client = "federated --role client --rank 1 --world-size 2 --master-port 29999 -r '" +
                             requirements + "' --data '" + (scratch.dir / "site_low.csv").string() + "'";
  ::unsetenv("LEPTON_PII_KEY");

  const std::string missing = (scratch.dir / "absent.key").string();
  ::setenv("LEPTON_PII_KEY_FILE", missing.c_str(), 1);
  const CommandResult not_found = run_lepton(client);
  CHECK(not_found.exit_code == 1);
  CHECK_THAT(not_found.output, Catch::Contains("LEPTON_PII_KEY_FILE (also set by --pii-key-file) names the key file '" +
                                               missing + "', which failed to load: "));
  CHECK_THAT(not_found.output, Catch::Contains("not found"));

  const std::string short_key = scratch.write("short.key", "abcd\n");
  ::setenv("LEPTON_PII_KEY_FILE", short_key.c_str(), 1);
  const CommandResult invalid = run_lepton(client);
  ::unsetenv("LEPTON_PII_KEY_FILE");
  CHECK(invalid.exit_code == 1);
  CHECK_THAT(invalid.output, Catch::Contains("LEPTON_PII_KEY_FILE (also set by --pii-key-file) names the key file '" +
                                             short_key + "'"));
  CHECK_THAT(invalid.output, Catch::Contains("64 hex digits"));
}
