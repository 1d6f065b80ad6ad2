// Data-parallel training over c10d/Gloo on 127.0.0.1. Multi-rank cases start this test executable again as
// child processes that run the hidden "distributed worker" case, because LibTorch's global generator and
// thread settings make two trainers in one process interfere.
#include <catch2/catch.hpp>

#include "train/weights_io.hpp"
#include "train/worker_process.hpp"

#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lepton/distributed.hpp"
#include "lepton/error.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using lepton::DistributedError;
using lepton::DistributedOptions;
using lepton::ProcessGroup;
using lepton::TrainingData;

constexpr std::size_t kGlobalRows = 96;
constexpr std::size_t kColumns = 5;
constexpr std::size_t kPerRankBatch = 8;
constexpr int kWorkerTimeoutSeconds = 3;

// Deterministic, nearly separable binary data; row i depends only on i.
TrainingData synthetic_rows(const std::vector<std::size_t>& rows) {
  TrainingData data;
  data.features.rows = rows.size();
  data.features.cols = kColumns;
  for (const std::size_t i : rows) {
    for (std::size_t j = 0; j < kColumns; ++j) {
      data.features.data.push_back(static_cast<float>(std::sin(0.37 * static_cast<double>(i) + 1.3 * j)));
    }
    const float* x = &data.features.data[data.features.data.size() - kColumns];
    data.labels.push_back(x[0] + 0.5f * x[1] - 0.2f * x[3] > 0 ? 1 : 0);
  }
  return data;
}

std::vector<std::size_t> all_rows(std::size_t count) {
  std::vector<std::size_t> rows(count);
  for (std::size_t i = 0; i < count; ++i) rows[i] = i;
  return rows;
}

lepton::ModelConfig small_config(std::size_t batch_size, std::size_t epochs) {
  lepton::ModelConfig config;
  config.hidden_units = {12, 6};
  config.batch_size = batch_size;
  config.learning_rate = 1e-2;
  config.lr_schedule = "constant";
  config.max_epochs = epochs;
  config.patience = 0;
  config.seed = 11;
  return config;
}

using lepton::test::flat_weights;
using lepton::test::read_floats;
using lepton::test::write_floats;

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

fs::path fresh_folder(const std::string& name) {
  const fs::path folder = fs::temp_directory_path() / (name + "-" + std::to_string(getpid()));
  fs::remove_all(folder);
  fs::create_directories(folder);
  return folder;
}

std::string environment_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : std::string(value);
}

// Starts this executable as rank `rank` of the hidden worker case, with `extra` environment entries.
pid_t spawn_worker(int rank, int world_size, int port, const std::string& scenario, const fs::path& folder,
                   const std::vector<std::string>& extra) {
  std::vector<std::string> entries{"LEPTON_DIST_TIMEOUT=" + std::to_string(kWorkerTimeoutSeconds),
                                   "LEPTON_TEST_SCENARIO=" + scenario, "LEPTON_TEST_FOLDER=" + folder.string()};
  entries.insert(entries.end(), extra.begin(), extra.end());
  return lepton::test::spawn_rank("distributed worker", rank, world_size, port, entries,
                                  folder / ("catch.rank" + std::to_string(rank) + ".log"));
}

using lepton::test::wait_rank;

// Runs `world_size` workers of `scenario` and requires each to exit with status 0 within 60 s.
void run_workers(int world_size, const std::string& scenario, const fs::path& folder,
                 const std::vector<std::string>& extra = {}) {
  const int port = lepton::find_free_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < world_size; ++rank) pids.push_back(spawn_worker(rank, world_size, port, scenario, folder, extra));
  for (int rank = 0; rank < world_size; ++rank) {
    INFO("worker rank " << rank << " of scenario " << scenario << "; its log is in " << folder.string());
    CHECK(wait_rank(pids[static_cast<std::size_t>(rank)], 60) == 0);
  }
}

// One rank of the "train" scenario: fits its shard and writes the weights and the stop reason.
void train_worker(const DistributedOptions& options, const fs::path& folder) {
  ProcessGroup group = ProcessGroup::join(options);
  const TrainingData shard = synthetic_rows(lepton::shard_rows(kGlobalRows, group.rank(), group.world_size()));
  const TrainingData validation = synthetic_rows(all_rows(32));

  std::atomic<bool> stop{false};
  const std::size_t stop_after = std::stoul(environment_or("LEPTON_TEST_STOP_AFTER", "0"));
  lepton::TrainerOptions trainer;
  trainer.with_config(small_config(kPerRankBatch, std::stoul(environment_or("LEPTON_TEST_EPOCHS", "2"))));
  trainer.restore_best = false;
  trainer.stop_requested = &stop;
  // LEPTON_TEST_STOP_RANK: only that rank requests the stop; unset: every rank does.
  const std::string stop_rank = environment_or("LEPTON_TEST_STOP_RANK", "");
  const bool requests_stop = stop_rank.empty() || stop_rank == std::to_string(group.rank());
  trainer.on_epoch = [&stop, stop_after, requests_stop](const lepton::EpochRecord& record) {
    if (requests_stop && record.epoch == stop_after) stop = true;
  };
  // The time budget applies only on the ranks listed in LEPTON_TEST_BUDGET_RANKS ("0", "1", "01").
  if (environment_or("LEPTON_TEST_BUDGET_RANKS", "").find(std::to_string(group.rank())) != std::string::npos) {
    trainer.with_time_budget(1e-9);
  }
  const std::string checkpoint = environment_or("LEPTON_TEST_CHECKPOINT", "");
  if (!checkpoint.empty()) {
    trainer.with_checkpoint(checkpoint, environment_or("LEPTON_TEST_RESUME", "0") == "1");
  }

  const lepton::TrainingResult result = lepton::fit_data_parallel(group, trainer, shard, validation);
  const std::string suffix = ".rank" + std::to_string(group.rank());
  write_floats((folder / ("weights" + suffix)).string(), flat_weights(result.network));
  write_text((folder / ("stop" + suffix)).string(), result.stop_reason);
  write_text((folder / ("steps" + suffix)).string(), std::to_string(group.stats().gradient_steps));
}

// One rank of the "die" and "hang" scenarios: rank 1 leaves or stalls after joining, rank 0 all-reduces and
// records the error it gets and how long that took.
void fault_worker(const DistributedOptions& options, const fs::path& folder, const std::string& scenario) {
  ProcessGroup group = ProcessGroup::join(options);
  if (group.rank() == 1) {
    if (scenario == "die") _exit(0);
    std::this_thread::sleep_for(std::chrono::seconds(30));  // The parent kills this rank.
    return;
  }

  std::vector<float> values(1000, 1.0f);
  const auto start = std::chrono::steady_clock::now();
  std::string message = "no error";
  try {
    group.all_reduce_sum(values.data(), values.size());
  } catch (const DistributedError& error) {
    message = error.what();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_text((folder / "error.txt").string(), message);
  write_text((folder / "seconds.txt").string(), std::to_string(seconds));
}

}  // namespace

TEST_CASE("distributed worker", "[.worker]") {
  const DistributedOptions options = DistributedOptions::from_environment();
  const fs::path folder = environment_or("LEPTON_TEST_FOLDER", "");
  const std::string scenario = environment_or("LEPTON_TEST_SCENARIO", "");
  REQUIRE(!folder.empty());
  if (scenario == "train") {
    train_worker(options, folder);
  } else {
    fault_worker(options, folder, scenario);
  }
}

TEST_CASE("shard rows partition the set", "[distributed]") {
  std::set<std::size_t> seen;
  for (int rank = 0; rank < 3; ++rank) {
    const std::vector<std::size_t> shard = lepton::shard_rows(10, rank, 3);
    CHECK(shard.size() == 3);
    for (const std::size_t row : shard) {
      CHECK(row % 3 == static_cast<std::size_t>(rank));
      CHECK(seen.insert(row).second);
    }
  }
  CHECK(seen.count(9) == 0);  // 10 % 3 rows are left out, as DistributedSampler(drop_last=True) does.
  CHECK_THROWS_AS(lepton::shard_rows(10, 3, 3), lepton::InvalidArgument);
  CHECK(lepton::shard_rows(2, 0, 3).empty());
}

TEST_CASE("data-parallel order expands groups", "[distributed]") {
  const std::vector<std::int64_t> groups = lepton::data_parallel_order(5, 0, 7, 1);
  const std::vector<std::int64_t> expanded = lepton::data_parallel_order(5, 0, 7, 3);
  REQUIRE(expanded.size() == 21);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (std::size_t m = 0; m < 3; ++m) {
      CHECK(expanded[g * 3 + m] == groups[g] * 3 + static_cast<std::int64_t>(m));
    }
  }
  std::vector<std::int64_t> sorted = groups;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) CHECK(sorted[i] == static_cast<std::int64_t>(i));
  CHECK(lepton::data_parallel_order(5, 1, 7, 1) != groups);  // A new epoch draws a new order.
}

TEST_CASE("options read torchrun variables", "[distributed]") {
  setenv("MASTER_ADDR", "10.0.0.5", 1);
  setenv("MASTER_PORT", "29511", 1);
  setenv("WORLD_SIZE", "4", 1);
  setenv("RANK", "3", 1);
  setenv("LEPTON_DIST_TIMEOUT", "7.5", 1);
  const DistributedOptions options = DistributedOptions::from_environment();
  CHECK(options.master_addr == "10.0.0.5");
  CHECK(options.master_port == 29511);
  CHECK(options.world_size == 4);
  CHECK(options.rank == 3);
  CHECK(options.timeout_seconds == 7.5);

  setenv("WORLD_SIZE", "four", 1);
  CHECK_THROWS_WITH(DistributedOptions::from_environment(), Catch::Contains("WORLD_SIZE"));
  for (const char* name : {"MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LEPTON_DIST_TIMEOUT"}) unsetenv(name);
}

TEST_CASE("options reject a rank outside the world", "[distributed]") {
  DistributedOptions options;
  options.with_world(2, 2);
  CHECK_THROWS_WITH(options.validate(), Catch::Contains("rank is 2") && Catch::Contains("[0, 1]"));
  options.with_world(2, 0).with_timeout(0);
  CHECK_THROWS_WITH(options.validate(), Catch::Contains("timeout_seconds"));
  options.with_timeout(1).with_master("127.0.0.1", 70000);
  CHECK_THROWS_WITH(options.validate(), Catch::Contains("master_port is 70000"));
}

TEST_CASE("single rank all-reduce is identity", "[distributed]") {
  DistributedOptions options;
  options.with_master("127.0.0.1", lepton::find_free_port()).with_world(1, 0).with_timeout(5).with_bucket_bytes(16);
  ProcessGroup group = ProcessGroup::join(options);
  std::vector<float> values{1, 2, 3, 4, 5, 6, 7, 8, 9};
  group.all_reduce_mean(values.data(), values.size());
  CHECK(values[8] == 9.0f);
  CHECK(group.stats().all_reduce_calls == 3);  // 9 floats in buckets of 16 bytes = 4 floats.
  CHECK(group.stats().payload_bytes == 36);
}

TEST_CASE("port in use is reported", "[distributed]") {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  socklen_t length = sizeof address;
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);

  DistributedOptions options;
  options.with_master("127.0.0.1", ntohs(address.sin_port)).with_world(2, 0).with_timeout(2);
  CHECK_THROWS_WITH(ProcessGroup::join(options), Catch::Contains("in use") && Catch::Contains("--master-port"));
  ::close(listener);
}

TEST_CASE("missing rank times out", "[distributed]") {
  DistributedOptions options;
  options.with_master("127.0.0.1", lepton::find_free_port()).with_world(2, 0).with_timeout(1);
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(ProcessGroup::join(options), Catch::Contains("only 1 of 2 ranks"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("wrong world size is reported", "[distributed]") {
  const int port = lepton::find_free_port();
  DistributedOptions host;
  host.with_master("127.0.0.1", port).with_world(2, 0).with_timeout(5);
  DistributedOptions other = host;
  other.with_world(3, 1);

  // Rendezvous only: the group fails before Gloo starts, so two ranks can share this process.
  auto first = std::async(std::launch::async, [&] { return ProcessGroup::join(host); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK_THROWS_WITH(ProcessGroup::join(other), Catch::Contains("world size 3") && Catch::Contains("uses 2"));
  CHECK_THROWS_WITH(first.get(), Catch::Contains("world size"));
}

TEST_CASE("two ranks equal one large batch", "[distributed]") {
  const fs::path folder = fresh_folder("lepton-dp-equivalence");
  run_workers(2, "train", folder, {"LEPTON_TEST_EPOCHS=2"});

  // The reference: one process, global batch 2 x 8 rows, the global rows in shard order, visiting the
  // same global batches (data_parallel_order with group size 2).
  lepton::TrainerOptions reference;
  reference.with_config(small_config(2 * kPerRankBatch, 2));
  reference.restore_best = false;
  reference.row_order = [](std::size_t epoch, std::size_t rows) {
    return lepton::data_parallel_order(11, epoch, rows / 2, 2);
  };
  const std::vector<float> expected = flat_weights(
      lepton::Trainer(reference).fit(synthetic_rows(all_rows(kGlobalRows)), synthetic_rows(all_rows(32))).network);

  const std::vector<float> rank0 = read_floats((folder / "weights.rank0").string());
  const std::vector<float> rank1 = read_floats((folder / "weights.rank1").string());
  REQUIRE(rank0.size() == expected.size());
  REQUIRE(rank1.size() == expected.size());
  double max_difference = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    max_difference = std::max(max_difference, static_cast<double>(std::abs(rank0[i] - expected[i])));
    CHECK(rank0[i] == rank1[i]);  // Gloo hands every rank the same sum, so ranks stay bit-identical.
  }
  // 1e-5: the two runs add the same gradients in a different order (two half-batch means, then their mean),
  // so float32 rounding differs by a few ulp per step; 12 AdamW steps keep that far below 1e-5.
  CHECK(max_difference <= 1e-5);
  CHECK(read_text((folder / "steps.rank0").string()) == "12");  // 2 epochs x 48 rows / 8 rows per step.
  fs::remove_all(folder);
}

TEST_CASE("data-parallel checkpoint resumes", "[distributed]") {
  const fs::path straight = fresh_folder("lepton-dp-straight");
  run_workers(2, "train", straight, {"LEPTON_TEST_EPOCHS=3"});

  // Interrupted after epoch 1, then resumed. Only rank 0 writes the checkpoint; rank 1 gets it from rank 0.
  const fs::path interrupted = fresh_folder("lepton-dp-resumed");
  const std::string checkpoint = "LEPTON_TEST_CHECKPOINT=" + (interrupted / "checkpoint.pt").string();
  run_workers(2, "train", interrupted, {"LEPTON_TEST_EPOCHS=3", "LEPTON_TEST_STOP_AFTER=1", checkpoint});
  CHECK(read_text((interrupted / "stop.rank0").string()) == "stop_requested");
  CHECK(fs::exists(interrupted / "checkpoint.pt"));
  run_workers(2, "train", interrupted, {"LEPTON_TEST_EPOCHS=3", checkpoint, "LEPTON_TEST_RESUME=1"});

  const std::vector<float> expected = read_floats((straight / "weights.rank0").string());
  for (const char* rank : {"weights.rank0", "weights.rank1"}) {
    INFO(rank);
    CHECK(read_floats((interrupted / rank).string()) == expected);
  }
  CHECK(read_text((interrupted / "stop.rank1").string()) == "max_epochs");
  fs::remove_all(straight);
  fs::remove_all(interrupted);
}

TEST_CASE("dead rank fails its peer", "[distributed]") {
  const fs::path folder = fresh_folder("lepton-dp-dead");
  run_workers(2, "die", folder);
  const std::string message = read_text((folder / "error.txt").string());
  CHECK_THAT(message, Catch::Contains("rank 0 of 2") && Catch::Contains("all-reduce failed"));
  CHECK(std::stod(read_text((folder / "seconds.txt").string())) < kWorkerTimeoutSeconds + 2);
  fs::remove_all(folder);
}

TEST_CASE("hung rank times out its peer", "[distributed]") {
  const fs::path folder = fresh_folder("lepton-dp-hung");
  const int port = lepton::find_free_port();
  const pid_t rank0 = spawn_worker(0, 2, port, "hang", folder, {});
  const pid_t rank1 = spawn_worker(1, 2, port, "hang", folder, {});
  CHECK(wait_rank(rank0, 30) == 0);
  kill(rank1, SIGKILL);
  wait_rank(rank1, 5);

  const std::string message = read_text((folder / "error.txt").string());
  CHECK_THAT(message, Catch::Contains("rank 0 of 2") && Catch::Contains("timeout of 3 s"));
  const double seconds = std::stod(read_text((folder / "seconds.txt").string()));
  CHECK(seconds >= kWorkerTimeoutSeconds - 0.5);
  CHECK(seconds < kWorkerTimeoutSeconds + 3);
  fs::remove_all(folder);
}

TEST_CASE("rank 0 time budget stops every rank", "[distributed]") {
  const fs::path folder = fresh_folder("lepton-dp-budget");
  // Only rank 0 has a budget, and it passes during epoch 1: rank 1 must stop after the same epoch.
  run_workers(2, "train", folder, {"LEPTON_TEST_EPOCHS=5", "LEPTON_TEST_BUDGET_RANKS=0"});
  CHECK(read_text((folder / "stop.rank0").string()) == "time_budget");
  CHECK(read_text((folder / "stop.rank1").string()) == "time_budget");
  CHECK(read_text((folder / "steps.rank0").string()) == "6");  // 1 epoch x 48 rows / 8 rows per step.
  CHECK(read_text((folder / "steps.rank1").string()) == "6");
  CHECK(read_floats((folder / "weights.rank0").string()) == read_floats((folder / "weights.rank1").string()));
  fs::remove_all(folder);
}

TEST_CASE("time budget of other ranks is ignored", "[distributed]") {
  const fs::path folder = fresh_folder("lepton-dp-budget-rank1");
  // Rank 0 alone reads the clock, so a budget set only on rank 1 stops nobody.
  run_workers(2, "train", folder, {"LEPTON_TEST_EPOCHS=2", "LEPTON_TEST_BUDGET_RANKS=1"});
  CHECK(read_text((folder / "stop.rank0").string()) == "max_epochs");
  CHECK(read_text((folder / "stop.rank1").string()) == "max_epochs");
  CHECK(read_text((folder / "steps.rank1").string()) == "12");
  fs::remove_all(folder);
}

TEST_CASE("stop request on one rank stops all", "[distributed]") {
  const fs::path folder = fresh_folder("lepton-dp-stop-one");
  // Rank 1 alone requests a stop after epoch 1; the group reads every rank's flag at the epoch's end.
  run_workers(2, "train", folder, {"LEPTON_TEST_EPOCHS=3", "LEPTON_TEST_STOP_RANK=1", "LEPTON_TEST_STOP_AFTER=1"});
  CHECK(read_text((folder / "stop.rank0").string()) == "stop_requested");
  CHECK(read_text((folder / "stop.rank1").string()) == "stop_requested");
  CHECK(read_text((folder / "steps.rank0").string()) == "6");
  fs::remove_all(folder);
}
