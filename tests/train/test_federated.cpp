// Federated averaging over c10d/Gloo on 127.0.0.1: a server and two clients, each a child process that
// runs the hidden "federated worker" case of this executable, since LibTorch's global generator makes two
// trainers in one process interfere.
#include <catch2/catch.hpp>

#include "train/weights_io.hpp"
#include "train/worker_process.hpp"

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
#include <iomanip>
#include <sstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/distributed.hpp"
#include "lepton/error.hpp"
#include "lepton/privacy.hpp"
#include "lepton/table.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using lepton::FederatedOptions;
using lepton::ProcessGroup;
using lepton::TrainingData;

constexpr std::size_t kColumns = 4;
constexpr double kDelta = 1e-5;

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

using lepton::test::flat_weights;
using lepton::test::read_floats;
using lepton::test::write_floats;

std::string environment_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : std::string(value);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

nlohmann::json read_summary(const fs::path& folder, int rank) {
  return nlohmann::json::parse(read_text(folder / ("summary.rank" + std::to_string(rank) + ".json")));
}

// DP-SGD settings of a worker group, passed through the environment. Empty: no DP-SGD.
struct PrivateSettings {
  std::size_t rounds = 1;
  double epsilon = 0;
  double noise_multiplier = 0;  // 0: each client solves it for all rounds.
};

// 17 significant digits, so that the worker reads back the same double.
std::string exact_text(double value) {
  std::ostringstream text;
  text << std::setprecision(17) << value;
  return text.str();
}

pid_t spawn_worker(int rank, int world_size, int port, const fs::path& folder, bool secure,
                   const PrivateSettings& privacy) {
  const std::vector<std::string> entries{"LEPTON_DIST_TIMEOUT=10",
                                         "LEPTON_TEST_FOLDER=" + folder.string(),
                                         std::string("LEPTON_TEST_SECURE=") + (secure ? "1" : "0"),
                                         "LEPTON_TEST_ROUNDS=" + std::to_string(privacy.rounds),
                                         "LEPTON_TEST_EPSILON=" + exact_text(privacy.epsilon),
                                         "LEPTON_TEST_NOISE=" + exact_text(privacy.noise_multiplier)};
  return lepton::test::spawn_rank("federated worker", rank, world_size, port, entries,
                                  folder / ("catch.rank" + std::to_string(rank) + ".log"));
}

using lepton::test::wait_rank;

// Runs a server and two clients; returns the folder with weights.rank0 .. weights.rank2.
fs::path run_group(const std::string& name, bool secure, const PrivateSettings& privacy = {}) {
  const fs::path folder = fs::temp_directory_path() / (name + "-" + std::to_string(getpid()));
  fs::remove_all(folder);
  fs::create_directories(folder);
  const int port = lepton::find_free_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < 3; ++rank) pids.push_back(spawn_worker(rank, 3, port, folder, secure, privacy));
  for (int rank = 0; rank < 3; ++rank) {
    INFO("federated rank " << rank << "; its log is in " << folder.string());
    CHECK(wait_rank(pids[static_cast<std::size_t>(rank)], 60) == 0);
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
  const FederatedOptions federated =
      federated_options(secure).with_rounds(std::stoul(environment_or("LEPTON_TEST_ROUNDS", "1")));

  lepton::ModelConfig config = small_config();
  const double epsilon = std::stod(environment_or("LEPTON_TEST_EPSILON", "0"));
  if (epsilon > 0) {
    config.privacy = lepton::PrivacyBudget{epsilon, kDelta, 1.0};
    config.noise_multiplier = std::stod(environment_or("LEPTON_TEST_NOISE", "0"));
  }

  ProcessGroup group = ProcessGroup::join(options);
  const std::string suffix = ".rank" + std::to_string(group.rank());
  lepton::FederatedResult result;
  try {
    if (group.rank() == 0) {
      result = lepton::run_federated_server(group, federated, config);
    } else {
      lepton::TrainerOptions trainer;
      trainer.with_config(config);
      trainer.insecure_privacy_seed = 17;  // Repeatable noise; these runs promise no privacy.
      result = lepton::run_federated_client(group, federated, trainer, client_rows(group.rank()),
                                            synthetic_rows(100, 130));
    }
  } catch (const lepton::Error& error) {
    std::ofstream(folder / ("error" + suffix)) << error.what();
    return;
  }
  write_floats(folder / ("weights" + suffix), flat_weights(result.network));
  if (!result.rounds.empty()) std::ofstream(folder / ("samples" + suffix)) << result.rounds.at(0).samples;

  nlohmann::json summary = {{"stop_reason", result.stop_reason},
                            {"rounds", result.rounds.size()},
                            {"privacy", result.privacy ? result.privacy->to_json() : nlohmann::json()},
                            {"client_privacy", nlohmann::json::array()}};
  for (const lepton::PrivacySpent& spent : result.client_privacy) summary["client_privacy"].push_back(spent.to_json());
  std::ofstream(folder / ("summary" + suffix + ".json")) << summary.dump();
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
  const lepton::Table site_a =
      lepton::parse_csv("x,kind,note\n1,a,oil leak\n2,a,oil\n3,b,leak leak\n", "site_a.csv");
  const lepton::Table site_b = lepton::parse_csv("x,kind,note\n10,c,oil leak oil\n20,c,leak\n", "site_b.csv");
  const lepton::Table pooled = lepton::parse_csv(
      "x,kind,note\n1,a,oil leak\n2,a,oil\n3,b,leak leak\n10,c,oil leak oil\n20,c,leak\n", "pooled.csv");
  const std::vector<lepton::FeatureSpec> specs{{"x", lepton::FeatureType::Numeric},
                                               {"kind", lepton::FeatureType::Categorical},
                                               {"note", lepton::FeatureType::Text}};
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
  CHECK(merged.encoded_width() == 4 + lepton::kTextBuckets);

  // Text buckets pool like numeric columns. Scales are compared where both sites saw the bucket vary,
  // because a site reports scale 1 for a constant bucket.
  const auto& note = merged.features().at(2);
  const auto& note_a = local_a.features()[2];
  const auto& note_b = local_b.features()[2];
  const auto& note_reference = reference.features()[2];
  for (std::size_t b = 0; b < lepton::kTextBuckets; ++b) {
    INFO("bucket " << b);
    CHECK(note.bucket_mean[b] == Approx(note_reference.bucket_mean[b]).margin(1e-12));
    if (note_a.bucket_scale[b] != 1.0 && note_b.bucket_scale[b] != 1.0) {
      CHECK(note.bucket_scale[b] == Approx(note_reference.bucket_scale[b]).epsilon(1e-12));
    }
  }
  CHECK(server.get().to_json() == merged.to_json());
  CHECK(client_a.get().to_json() == merged.to_json());
}

// ---------------------------------------------------------------------------------------------------
// Client-side DP-SGD over several rounds. Client 1 has 40 rows and client 2 has 60, with batch 10: Poisson
// rates 0.25 and 1/6, and 4 and 6 steps per round of one local epoch.

namespace {

constexpr double kRate1 = 10.0 / 40.0;
constexpr double kRate2 = 10.0 / 60.0;
constexpr std::uint64_t kSteps1 = 2 * 4;  // federated_options() trains 2 local epochs per round.
constexpr std::uint64_t kSteps2 = 2 * 6;

}  // namespace

TEST_CASE("composed rounds equal one long run", "[federated][privacy]") {
  for (const double rate : {0.01, 0.25, 1.0}) {
    for (const double sigma : {0.7, 1.1, 4.0}) {
      INFO("sample rate " << rate << ", noise multiplier " << sigma);
      const lepton::RdpAccountant accountant(rate, sigma);
      const std::vector<lepton::PrivateSteps> rounds(7, lepton::PrivateSteps{rate, sigma, 13});
      const lepton::EpsilonAtOrder composed = lepton::compose_private_steps(rounds, kDelta);
      const lepton::EpsilonAtOrder single = accountant.epsilon_at_order(7 * 13, kDelta);
      CHECK(composed.epsilon == single.epsilon);
      CHECK(composed.order == single.order);
      // One round's epsilon, which the trainer used to report for the whole federated run, is smaller.
      CHECK(accountant.epsilon(13, kDelta) < composed.epsilon);
    }
  }
}

TEST_CASE("composition mixes mechanisms", "[federated][privacy]") {
  const lepton::PrivateSteps a{0.1, 1.0, 50};
  const lepton::PrivateSteps b{0.3, 2.0, 20};
  const double both = lepton::compose_private_steps({a, b}, kDelta).epsilon;
  const double only_a = lepton::compose_private_steps({a}, kDelta).epsilon;
  const double only_b = lepton::compose_private_steps({b}, kDelta).epsilon;
  CHECK(both > only_a);
  CHECK(both > only_b);
  // RDP composition is tighter than adding the epsilons of the two runs.
  CHECK(both < only_a + only_b);
  CHECK(lepton::compose_private_steps({b, a}, kDelta).epsilon == both);
}

TEST_CASE("composition edge cases", "[federated][privacy]") {
  CHECK(lepton::compose_private_steps({}, kDelta).epsilon == 0.0);
  CHECK(lepton::compose_private_steps({{0.5, 1.0, 0}}, kDelta).epsilon == 0.0);
  CHECK(std::isinf(lepton::compose_private_steps({{0.5, 0.0, 1}}, kDelta).epsilon));
  CHECK_THROWS_AS(lepton::compose_private_steps({}, 0.0), lepton::InvalidArgument);
  CHECK_THROWS_AS(lepton::compose_private_steps({{1.5, 1.0, 3}}, kDelta), lepton::InvalidArgument);
}

TEST_CASE("federated DP spends budget over rounds", "[federated][privacy]") {
  PrivateSettings privacy;
  privacy.rounds = 3;
  privacy.epsilon = 2.0;
  const fs::path folder = run_group("lepton-fed-dp", false, privacy);

  for (int rank = 1; rank <= 2; ++rank) {
    INFO("client rank " << rank);
    const nlohmann::json spent = read_summary(folder, rank).at("privacy");
    const double rate = rank == 1 ? kRate1 : kRate2;
    const std::uint64_t steps = 3 * (rank == 1 ? kSteps1 : kSteps2);
    CHECK(spent.at("steps").get<std::uint64_t>() == steps);
    CHECK(spent.at("sample_rate").get<double>() == rate);
    const lepton::RdpAccountant accountant(rate, spent.at("noise_multiplier").get<double>());
    CHECK(spent.at("epsilon").get<double>() == accountant.epsilon(steps, kDelta));
    CHECK(spent.at("epsilon").get<double>() <= 2.0);
    // The multiplier was solved for all 3 rounds, so the total lands near the target (solver tolerance 1e-4).
    CHECK(spent.at("epsilon").get<double>() >= 2.0 * (1 - 1e-4));
    CHECK_FALSE(spent.at("budget_exhausted").get<bool>());
  }

  const nlohmann::json server = read_summary(folder, 0);
  CHECK(server.at("stop_reason") == "rounds");
  CHECK(server.at("rounds") == 3);
  CHECK(server.at("privacy").is_null());
  REQUIRE(server.at("client_privacy").size() == 2);
  CHECK(server.at("client_privacy")[0] == read_summary(folder, 1).at("privacy"));
  CHECK(server.at("client_privacy")[1] == read_summary(folder, 2).at("privacy"));
  fs::remove_all(folder);
}

TEST_CASE("federated DP stops before overspending", "[federated][privacy]") {
  // A fixed multiplier and a target between client 1's epsilon after 2 and after 3 rounds.
  const double sigma = 1.0;
  const lepton::RdpAccountant client1(kRate1, sigma);
  const lepton::RdpAccountant client2(kRate2, sigma);
  PrivateSettings privacy;
  privacy.rounds = 5;
  privacy.noise_multiplier = sigma;
  privacy.epsilon = 0.5 * (client1.epsilon(2 * kSteps1, kDelta) + client1.epsilon(3 * kSteps1, kDelta));
  REQUIRE(client2.epsilon(2 * kSteps2, kDelta) <= privacy.epsilon);  // Client 2 could afford round 2.

  const fs::path folder = run_group("lepton-fed-dp-stop", false, privacy);
  for (int rank = 0; rank <= 2; ++rank) {
    INFO("rank " << rank);
    const nlohmann::json summary = read_summary(folder, rank);
    CHECK(summary.at("stop_reason") == "privacy_budget");
    CHECK(summary.at("rounds") == 2);
  }
  const nlohmann::json spent = read_summary(folder, 1).at("privacy");
  CHECK(spent.at("steps").get<std::uint64_t>() == 2 * kSteps1);
  CHECK(spent.at("epsilon").get<double>() <= privacy.epsilon);
  CHECK(spent.at("budget_exhausted").get<bool>());
  CHECK(read_floats(folder / "weights.rank1") == read_floats(folder / "weights.rank0"));
  fs::remove_all(folder);
}

TEST_CASE("federated DP rejects an unaffordable round", "[federated][privacy]") {
  const lepton::RdpAccountant client1(kRate1, 1.0);
  PrivateSettings privacy;
  privacy.rounds = 2;
  privacy.noise_multiplier = 1.0;
  privacy.epsilon = 0.9 * client1.epsilon(kSteps1, kDelta);  // Not even round 1 fits on client 1.

  const fs::path folder = run_group("lepton-fed-dp-reject", false, privacy);
  for (int rank = 0; rank <= 2; ++rank) {
    INFO("rank " << rank);
    const std::string message = read_text(folder / ("error.rank" + std::to_string(rank)));
    CHECK_THAT(message, Catch::Contains("client rank(s) 1"));
    CHECK_THAT(message, Catch::Contains("noise_multiplier"));
  }
  fs::remove_all(folder);
}
