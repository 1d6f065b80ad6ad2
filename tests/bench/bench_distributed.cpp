// Throughput of data-parallel training with 1 and 2 ranks on this machine, and the bytes each rank hands
// to all-reduce per step. Both runs use the same global batch (128 rows): 1 rank x 128 or 2 ranks x 64.
//
//   bench_distributed [epochs]
//
// The ranks are child processes of this program on 127.0.0.1, one intra-op thread each.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "lepton/distributed.hpp"
#include "lepton/io.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
constexpr std::size_t kRows = 8192;
constexpr std::size_t kColumns = 16;
constexpr std::size_t kGlobalBatch = 128;

lepton::TrainingData synthetic(const std::vector<std::size_t>& rows) {
  lepton::TrainingData data;
  data.features.rows = rows.size();
  data.features.cols = kColumns;
  for (const std::size_t i : rows) {
    double score = 0;
    for (std::size_t j = 0; j < kColumns; ++j) {
      const double x = std::sin(0.011 * static_cast<double>(i * (j + 3)) + static_cast<double>(j));
      data.features.data.push_back(static_cast<float>(x));
      score += (j % 3 == 0 ? 1.0 : -0.5) * x;
    }
    data.labels.push_back(score > 0 ? 1 : 0);
  }
  return data;
}

// One rank: trains its shard and, on rank 0, writes "seconds steps payload_bytes parameters" to `out`.
int run_rank(const std::string& out, std::size_t epochs) {
  lepton::ProcessGroup group = lepton::ProcessGroup::join(lepton::DistributedOptions::from_environment());
  std::vector<std::size_t> all(kRows);
  for (std::size_t i = 0; i < kRows; ++i) all[i] = i;
  const lepton::TrainingData shard = synthetic(lepton::shard_rows(kRows, group.rank(), group.world_size()));
  const lepton::TrainingData validation = synthetic(std::vector<std::size_t>(all.begin(), all.begin() + 512));

  lepton::ModelConfig config;
  config.hidden_units = {128, 64};
  config.batch_size = kGlobalBatch / static_cast<std::size_t>(group.world_size());
  config.max_epochs = epochs;
  config.patience = 0;
  lepton::TrainerOptions options;
  options.with_config(config);

  group.barrier();
  const auto start = std::chrono::steady_clock::now();
  const lepton::TrainingResult result = lepton::fit_data_parallel(group, options, shard, validation);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (group.rank() == 0) {
    const lepton::CommunicationStats stats = group.stats();
    lepton::write_file_atomically(out, fmt::format("{} {} {} {} {}\n", seconds, stats.gradient_steps,
                                                   stats.payload_bytes, result.network.parameter_count(),
                                                   stats.seconds));
  }
  return 0;
}

std::vector<double> run_world(int world_size, std::size_t epochs, const fs::path& out) {
  const int port = lepton::find_free_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < world_size; ++rank) {
    std::vector<std::string> entries;
    for (char** variable = environ; *variable != nullptr; ++variable) entries.emplace_back(*variable);
    entries.push_back(fmt::format("RANK={}", rank));
    entries.push_back(fmt::format("WORLD_SIZE={}", world_size));
    entries.push_back("MASTER_ADDR=127.0.0.1");
    entries.push_back(fmt::format("MASTER_PORT={}", port));
    std::vector<char*> envp;
    for (std::string& entry : entries) envp.push_back(entry.data());
    envp.push_back(nullptr);
    std::string executable = fs::read_symlink("/proc/self/exe").string();
    std::string mode = "--rank";
    std::string path = out.string();
    std::string epoch_text = std::to_string(epochs);
    std::vector<char*> argv{executable.data(), mode.data(), path.data(), epoch_text.data(), nullptr};
    pid_t pid = 0;
    posix_spawn(&pid, executable.c_str(), nullptr, nullptr, argv.data(), envp.data());
    pids.push_back(pid);
  }
  for (const pid_t pid : pids) waitpid(pid, nullptr, 0);

  std::vector<double> values(5);
  std::istringstream in(lepton::read_file(out.string()));
  for (double& value : values) in >> value;
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--rank") return run_rank(argv[2], std::stoul(argv[3]));

  const std::size_t epochs = argc > 1 ? std::stoul(argv[1]) : 5;
  const fs::path folder = fs::temp_directory_path() / fmt::format("lepton-bench-distributed-{}", getpid());
  fs::create_directories(folder);

  const std::vector<double> one = run_world(1, epochs, folder / "world1.txt");
  const std::vector<double> two = run_world(2, epochs, folder / "world2.txt");
  fs::remove_all(folder);

  const double rows = static_cast<double>(kRows) * static_cast<double>(epochs);
  std::cout << fmt::format("MLP {}-128-64-1 ({} parameters), {} rows x {} epochs, global batch {}\n", kColumns,
                           static_cast<std::size_t>(one[3]), kRows, epochs, kGlobalBatch);
  std::cout << fmt::format("1 rank : {:8.0f} rows/s  ({:.2f} s, {} steps)\n", rows / one[0], one[0],
                           static_cast<std::size_t>(one[1]));
  std::cout << fmt::format("2 ranks: {:8.0f} rows/s  ({:.2f} s, {} steps, {:.2f} s in all-reduce on rank 0)\n",
                           rows / two[0], two[0], static_cast<std::size_t>(two[1]), two[4]);
  std::cout << fmt::format("speed-up 2 vs 1: {:.2f}x\n", one[0] / two[0]);
  std::cout << fmt::format("all-reduce payload per step and rank: {:.0f} bytes (a ring all-reduce sends about "
                           "2 x (N-1)/N of it per rank)\n",
                           two[2] / std::max(1.0, two[1]));
  return 0;
}
