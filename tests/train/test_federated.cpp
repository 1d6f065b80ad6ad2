// Federated averaging over c10d/Gloo on 127.0.0.1: a server and two clients, each a child process that
// runs the hidden "federated worker" case of this executable, since LibTorch's global generator makes two
// trainers in one process interfere.
#include <catch2/catch.hpp>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "lepton/distributed.hpp"
#include "lepton/error.hpp"
#include "lepton/table.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using lepton::FederatedOptions;
using lepton::ProcessGroup;
using lepton::TrainingData;

constexpr std::size_t kColumns = 4;

// Client 1 holds rows [0, 40), client 2 rows [40, 100); the classes depend on the row range, so the two
// clients' data differ in distribution.
TrainingData synthetic_rows(std::size_t begin, std::size_t end) {
  TrainingData data;
  data.features.rows = end - begin;
  data.features.cols = kColumns;
  for (std::size_t i = begin; i < end; ++i) {
    for (std::size_t j = 0; j < kColumns; ++j) {
      data.features.data.push_back(static_cast<float>(std::cos(0.53 * static_cast<double>(i) + 0.9 * j)));
    }
    const float* x = &data.features.data[data.features.data.size() - kColumns];
    data.labels.push_back(x[0] - 0.4f * x[2] + (i < 40 ? 0.3f : -0.3f) > 0 ? 1 : 0);
  }
  return data;
}

TrainingData client_rows(int rank) { return rank == 1 ? synthetic_rows(0, 40) : synthetic_rows(40, 100); }

lepton::ModelConfig small_config() {
  lepton::ModelConfig config;
  config.hidden_units = {8};
  config.batch_size = 10;
  config.learning_rate = 1e-2;
  config.lr_schedule = "constant";
  config.max_epochs = 2;
  config.patience = 0;
  config.seed = 5;
  return config;
}

FederatedOptions federated_options(bool secure) {
  return FederatedOptions().with_rounds(1).with_local_epochs(2).with_secure_aggregation(secure);
}

std::vector<float> flat_weights(const lepton::Mlp& network) {
  std::vector<float> flat;
  for (const auto& layer : network.layers) {
    flat.insert(flat.end(), layer.weight.begin(), layer.weight.end());
    flat.insert(flat.end(), layer.bias.begin(), layer.bias.end());
  }
  return flat;
}

void write_floats(const fs::path& path, const std::vector<float>& values) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
}

std::vector<float> read_floats(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

std::string environment_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : std::string(value);
}

pid_t spawn_worker(int rank, int world_size, int port, const fs::path& folder, bool secure) {
  std::vector<std::string> entries;
  for (char** variable = environ; *variable != nullptr; ++variable) entries.emplace_back(*variable);
  entries.push_back("RANK=" + std::to_string(rank));
  entries.push_back("WORLD_SIZE=" + std::to_string(world_size));
  entries.push_back("MASTER_ADDR=127.0.0.1");
  entries.push_back("MASTER_PORT=" + std::to_string(port));
  entries.push_back("LEPTON_DIST_TIMEOUT=10");
  entries.push_back("LEPTON_TEST_FOLDER=" + folder.string());
  entries.push_back(std::string("LEPTON_TEST_SECURE=") + (secure ? "1" : "0"));
  std::vector<char*> envp;
  for (std::string& entry : entries) envp.push_back(entry.data());
  envp.push_back(nullptr);

  std::string executable = fs::read_symlink("/proc/self/exe").string();
  std::string test_name = "federated worker";
  std::string log_option = "--out=" + (folder / ("catch.rank" + std::to_string(rank) + ".log")).string();
  std::vector<char*> argv{executable.data(), test_name.data(), log_option.data(), nullptr};
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, executable.c_str(), nullptr, nullptr, argv.data(), envp.data()) == 0);
  return pid;
}

int wait_worker(pid_t pid, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

// Runs a server and two clients; returns the folder with weights.rank0 .. weights.rank2.
fs::path run_group(const std::string& name, bool secure) {
  const fs::path folder = fs::temp_directory_path() / (name + "-" + std::to_string(getpid()));
  fs::remove_all(folder);
  fs::create_directories(folder);
  const int port = lepton::find_free_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < 3; ++rank) pids.push_back(spawn_worker(rank, 3, port, folder, secure));
  for (int rank = 0; rank < 3; ++rank) {
    INFO("federated rank " << rank << "; its log is in " << folder.string());
    CHECK(wait_worker(pids[static_cast<std::size_t>(rank)], 60) == 0);
  }
  return folder;
}

// What one client computes in round 1: 2 local epochs from the server's starting weights, with the
// round's seed (config.seed + 1) for the batch order.
std::vector<float> local_round(int rank) {
  lepton::ModelConfig config = small_config();
  lepton::TrainerOptions trainer;
  trainer.with_config(config);
  trainer.config.seed = config.seed + 1;
  trainer.initial_parameters = lepton::initial_parameters(config, kColumns, 1);
  trainer.restore_best = false;
  return flat_weights(lepton::Trainer(trainer).fit(client_rows(rank), synthetic_rows(100, 130)).network);
}

}  // namespace

TEST_CASE("federated worker", "[.worker]") {
  const lepton::DistributedOptions options = lepton::DistributedOptions::from_environment();
  const fs::path folder = environment_or("LEPTON_TEST_FOLDER", "");
  REQUIRE(!folder.empty());
  const bool secure = environment_or("LEPTON_TEST_SECURE", "0") == "1";

  ProcessGroup group = ProcessGroup::join(options);
  lepton::FederatedResult result;
  if (group.rank() == 0) {
    result = lepton::run_federated_server(group, federated_options(secure), small_config());
  } else {
    lepton::TrainerOptions trainer;
    trainer.with_config(small_config());
    result = lepton::run_federated_client(group, federated_options(secure), trainer, client_rows(group.rank()),
                                          synthetic_rows(100, 130));
  }
  write_floats(folder / ("weights.rank" + std::to_string(group.rank())), flat_weights(result.network));
  std::ofstream(folder / ("samples.rank" + std::to_string(group.rank()))) << result.rounds.at(0).samples;
}

TEST_CASE("FedAvg weights clients by rows", "[federated]") {
  const fs::path folder = run_group("lepton-fedavg", false);
  const std::vector<float> client1 = local_round(1);
  const std::vector<float> client2 = local_round(2);

  const std::vector<float> server = read_floats(folder / "weights.rank0");
  REQUIRE(server.size() == client1.size());
  for (std::size_t i = 0; i < server.size(); ++i) {
    const double expected = (40.0 * client1[i] + 60.0 * client2[i]) / 100.0;
    // 1e-6: the server sums the same doubles and rounds once to float32 (relative error 6e-8).
    CHECK(std::abs(server[i] - expected) <= 1e-6);
  }
  CHECK(read_floats(folder / "weights.rank1") == server);
  CHECK(read_floats(folder / "weights.rank2") == server);
  std::ifstream samples(folder / "samples.rank0");
  std::uint64_t rows = 0;
  samples >> rows;
  CHECK(rows == 100);
  fs::remove_all(folder);
}

TEST_CASE("secure aggregation equals plain sum", "[federated]") {
  const fs::path plain = run_group("lepton-fed-plain", false);
  const fs::path secure = run_group("lepton-fed-secure", true);
  const std::vector<float> expected = read_floats(plain / "weights.rank0");
  const std::vector<float> masked = read_floats(secure / "weights.rank0");
  REQUIRE(masked.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    // 1e-6: fixed point with 2^-24 resolution per row-weighted value, divided by 100 rows.
    CHECK(std::abs(masked[i] - expected[i]) <= 1e-6);
  }
  fs::remove_all(plain);
  fs::remove_all(secure);
}

TEST_CASE("FedProx pulls toward the centre", "[federated]") {
  const lepton::ModelConfig config = small_config();
  const std::vector<float> centre = lepton::initial_parameters(config, kColumns, 1);
  auto distance_after = [&](double mu) {
    lepton::TrainerOptions trainer;
    trainer.with_config(config);
    trainer.initial_parameters = centre;
    trainer.proximal_mu = mu;
    trainer.restore_best = false;
    const std::vector<float> weights =
        flat_weights(lepton::Trainer(trainer).fit(client_rows(1), synthetic_rows(100, 130)).network);
    double squares = 0;
    for (std::size_t i = 0; i < weights.size(); ++i) squares += std::pow(weights[i] - centre[i], 2);
    return std::sqrt(squares);
  };
  const double plain = distance_after(0);
  const double proximal = distance_after(10);
  CHECK(plain > 0);
  CHECK(proximal < 0.5 * plain);
}

TEST_CASE("initial parameters match the trainer", "[federated]") {
  // Training with lr -> 0 barely moves the weights, so the trainer's own initialization shows through.
  lepton::ModelConfig config = small_config();
  config.learning_rate = 1e-12;
  config.weight_decay = 0;
  config.max_epochs = 1;
  lepton::TrainerOptions trainer;
  trainer.with_config(config);
  const std::vector<float> trained =
      flat_weights(lepton::Trainer(trainer).fit(client_rows(1), synthetic_rows(100, 130)).network);
  const std::vector<float> initial = lepton::initial_parameters(config, kColumns, 1);
  REQUIRE(initial.size() == trained.size());
  for (std::size_t i = 0; i < initial.size(); ++i) CHECK(std::abs(initial[i] - trained[i]) <= 1e-9);
}

TEST_CASE("trainer rejects a proximal term without centre", "[federated]") {
  lepton::TrainerOptions trainer;
  trainer.with_config(small_config());
  trainer.proximal_mu = 0.1;
  CHECK_THROWS_WITH(lepton::Trainer(trainer), Catch::Contains("initial_parameters"));
  trainer.proximal_mu = -1;
  CHECK_THROWS_WITH(lepton::Trainer(trainer), Catch::Contains("proximal_mu is -1"));
}

TEST_CASE("federated options reject zero rounds", "[federated]") {
  CHECK_THROWS_WITH(FederatedOptions().with_rounds(0).validate(), Catch::Contains("rounds is 0"));
  CHECK_THROWS_WITH(FederatedOptions().with_local_epochs(0).validate(), Catch::Contains("local_epochs is 0"));
  CHECK_THROWS_WITH(FederatedOptions().with_proximal_mu(-0.5).validate(), Catch::Contains("proximal_mu"));
}

TEST_CASE("federated preprocessor pools statistics", "[federated]") {
  // Two clients in threads: the preprocessor exchange goes through the TCPStore only.
  const lepton::Table site_a = lepton::parse_csv("x,kind\n1,a\n2,a\n3,b\n", "site_a.csv");
  const lepton::Table site_b = lepton::parse_csv("x,kind\n10,c\n20,c\n", "site_b.csv");
  const lepton::Table pooled = lepton::parse_csv("x,kind\n1,a\n2,a\n3,b\n10,c\n20,c\n", "pooled.csv");
  const std::vector<lepton::FeatureSpec> specs{{"x", lepton::FeatureType::Numeric},
                                               {"kind", lepton::FeatureType::Categorical}};
  const auto local_a = lepton::Preprocessor::fit(site_a, specs, {0, 1, 2});
  const auto local_b = lepton::Preprocessor::fit(site_b, specs, {0, 1});
  const auto reference = lepton::Preprocessor::fit(pooled, specs, {0, 1, 2, 3, 4});

  const int port = lepton::find_free_port();
  auto join_and_merge = [port](int rank, const lepton::Preprocessor* local, std::size_t rows) {
    lepton::DistributedOptions options;
    options.with_master("127.0.0.1", port).with_world(3, rank).with_timeout(10);
    ProcessGroup group = ProcessGroup::join(options);
    return lepton::federated_preprocessor(group, local, rows);
  };
  auto server = std::async(std::launch::async, join_and_merge, 0, nullptr, 0);
  auto client_a = std::async(std::launch::async, join_and_merge, 1, &local_a, 3);
  const lepton::Preprocessor merged = join_and_merge(2, &local_b, 2);

  const auto& x = merged.features().at(0);
  CHECK(x.mean == Approx(reference.features()[0].mean).epsilon(1e-12));
  CHECK(x.scale == Approx(reference.features()[0].scale).epsilon(1e-12));
  CHECK(merged.features().at(1).categories == std::vector<std::string>{"a", "b", "c"});
  CHECK(merged.encoded_width() == 4);
  CHECK(server.get().to_json() == merged.to_json());
  CHECK(client_a.get().to_json() == merged.to_json());
}
