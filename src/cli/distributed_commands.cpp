// `lepton launch -n N -- run ...` starts N ranks of this binary on one machine, the way torchrun does:
// each child gets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT. On a cluster, run `lepton run` once per
// machine with those variables or the matching flags instead.
#include "cli/distributed_commands.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "lepton/error.hpp"

extern char** environ;

namespace lepton::cli {

namespace {

struct RunFlags {
  int rank = -1;
  int world_size = 0;
  std::string master_addr;
  int master_port = 0;
  double timeout_seconds = 0;
};

struct LaunchArguments {
  int ranks = 2;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: a free port chosen at launch.
  double timeout_seconds = 60;
  std::vector<std::string> command;
};

RunFlags g_run_flags;
LaunchArguments g_launch;
CLI::App* g_launch_command = nullptr;

std::vector<pid_t> g_children;

extern "C" void forward_signal(int signal_number) {
  for (const pid_t child : g_children) kill(child, signal_number);
}

pid_t spawn_rank(const LaunchArguments& launch, int rank, int port) {
  std::vector<std::string> entries;
  for (char** variable = environ; *variable != nullptr; ++variable) {
    const std::string entry = *variable;
    const bool replaced = entry.rfind("RANK=", 0) == 0 || entry.rfind("WORLD_SIZE=", 0) == 0 ||
                          entry.rfind("MASTER_ADDR=", 0) == 0 || entry.rfind("MASTER_PORT=", 0) == 0 ||
                          entry.rfind("LEPTON_DIST_TIMEOUT=", 0) == 0;
    if (!replaced) entries.push_back(entry);
  }
  entries.push_back(fmt::format("RANK={}", rank));
  entries.push_back(fmt::format("WORLD_SIZE={}", launch.ranks));
  entries.push_back("MASTER_ADDR=" + launch.master_addr);
  entries.push_back(fmt::format("MASTER_PORT={}", port));
  entries.push_back(fmt::format("LEPTON_DIST_TIMEOUT={}", launch.timeout_seconds));
  std::vector<char*> envp;
  for (std::string& entry : entries) envp.push_back(entry.data());
  envp.push_back(nullptr);

  std::string executable = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<std::string> arguments{executable};
  arguments.insert(arguments.end(), launch.command.begin(), launch.command.end());
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);

  pid_t pid = 0;
  const int error = posix_spawn(&pid, executable.c_str(), nullptr, nullptr, argv.data(), envp.data());
  if (error != 0) {
    throw IoError(fmt::format("lepton launch: cannot start rank {} from {}: {}", rank, executable,
                              std::strerror(error)));
  }
  return pid;
}

// Waits for every rank. After the first failure the others get the collective timeout plus 5 s to fail on
// their own with a clear error, and are then killed, so a failed launch does not hang.
int wait_for_ranks(const LaunchArguments& launch) {
  int exit_code = 0;
  std::size_t running = g_children.size();
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::vector<bool> done(g_children.size(), false);

  while (running > 0) {
    for (std::size_t rank = 0; rank < g_children.size(); ++rank) {
      int status = 0;
      if (done[rank] || waitpid(g_children[rank], &status, WNOHANG) != g_children[rank]) continue;
      done[rank] = true;
      --running;

      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (code != 0 && exit_code == 0) {
        std::cerr << fmt::format("lepton launch: rank {} exited with status {}\n", rank, code);
        exit_code = code;
        deadline = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int>((launch.timeout_seconds + 5) * 1000));
      }
    }

    if (deadline && std::chrono::steady_clock::now() > *deadline) {
      for (std::size_t rank = 0; rank < g_children.size(); ++rank) {
        if (done[rank]) continue;
        std::cerr << fmt::format("lepton launch: rank {} still runs after the timeout; killing it\n", rank);
        kill(g_children[rank], SIGKILL);
      }
      deadline.reset();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return exit_code;
}

int launch_command(LaunchArguments launch) {
  if (launch.command.empty()) {
    throw InvalidArgument("lepton launch: no command to run; pass it after --, e.g. `lepton launch -n 2 -- run "
                          "-r requirements.json -d data.csv -o out`");
  }
  const int port = launch.master_port > 0 ? launch.master_port : find_free_port(launch.master_addr);

  std::signal(SIGINT, forward_signal);
  std::signal(SIGTERM, forward_signal);
  for (int rank = 0; rank < launch.ranks; ++rank) {
    g_children.push_back(spawn_rank(launch, rank, port));
  }
  std::cerr << fmt::format("lepton launch: started {} ranks with the store at {}:{}\n", launch.ranks,
                           launch.master_addr, port);
  return wait_for_ranks(launch);
}

}  // namespace

void add_distributed_run_flags(CLI::App& run) {
  run.add_option("--rank", g_run_flags.rank, "Rank of this process in a data-parallel group (default: RANK)")
      ->check(CLI::NonNegativeNumber);
  run.add_option("--world-size", g_run_flags.world_size,
                 "Processes in the data-parallel group (default: WORLD_SIZE; unset trains alone)")
      ->check(CLI::PositiveNumber);
  run.add_option("--master-addr", g_run_flags.master_addr, "Host of rank 0's TCPStore (default: MASTER_ADDR or "
                                                           "127.0.0.1)");
  run.add_option("--master-port", g_run_flags.master_port, "Port of rank 0's TCPStore (default: MASTER_PORT or 29500)")
      ->check(CLI::Range(1, 65535));
  run.add_option("--dist-timeout", g_run_flags.timeout_seconds,
                 "Seconds a rank waits for its peers before failing (default: LEPTON_DIST_TIMEOUT or 60)")
      ->check(CLI::PositiveNumber);
}

std::optional<DistributedOptions> run_distribution() {
  const char* world_variable = std::getenv("WORLD_SIZE");
  const bool from_environment = world_variable != nullptr && *world_variable != '\0';
  if (!from_environment && g_run_flags.world_size == 0 && g_run_flags.rank < 0) {
    return std::nullopt;
  }

  DistributedOptions options = DistributedOptions::from_environment();
  if (g_run_flags.rank >= 0) options.rank = g_run_flags.rank;
  if (g_run_flags.world_size > 0) options.world_size = g_run_flags.world_size;
  if (!g_run_flags.master_addr.empty()) options.master_addr = g_run_flags.master_addr;
  if (g_run_flags.master_port > 0) options.master_port = g_run_flags.master_port;
  if (g_run_flags.timeout_seconds > 0) options.timeout_seconds = g_run_flags.timeout_seconds;
  options.validate();
  return options;
}

void add_distributed_commands(CLI::App& app) {
  g_launch_command = app.add_subcommand("launch", "Start N ranks of a data-parallel `lepton run` on this machine");
  g_launch_command->add_option("-n,--ranks", g_launch.ranks, "Ranks to start")->check(CLI::Range(1, 256));
  g_launch_command->add_option("--master-addr", g_launch.master_addr, "Address of the TCPStore (default 127.0.0.1)");
  g_launch_command->add_option("--master-port", g_launch.master_port, "Port of the TCPStore (default: a free port)")
      ->check(CLI::Range(0, 65535));
  g_launch_command->add_option("--dist-timeout", g_launch.timeout_seconds,
                               "Seconds a rank waits for its peers before failing")
      ->check(CLI::PositiveNumber);
  g_launch_command->add_option("command", g_launch.command, "The lepton command each rank runs, after --")
      ->required();
}

std::optional<int> run_distributed_command() {
  if (g_launch_command != nullptr && g_launch_command->parsed()) {
    return launch_command(g_launch);
  }
  return std::nullopt;
}

}  // namespace lepton::cli
