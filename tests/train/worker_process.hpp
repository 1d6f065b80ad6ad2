#pragma once
// Test helpers that run this test executable again as a rank of a process group on 127.0.0.1.

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

extern char** environ;

namespace lepton::test {

/// Starts this executable running only the hidden test case `test_name`, as rank `rank` of `world_size`
/// with the rendezvous at 127.0.0.1:`port`. `extra` adds environment entries ("NAME=value"), and Catch's
/// output goes to `log_file`.
inline pid_t spawn_rank(const std::string& test_name, int rank, int world_size, int port,
                        const std::vector<std::string>& extra, const std::filesystem::path& log_file) {
  std::vector<std::string> entries;
  for (char** variable = environ; *variable != nullptr; ++variable) entries.emplace_back(*variable);
  entries.push_back("RANK=" + std::to_string(rank));
  entries.push_back("WORLD_SIZE=" + std::to_string(world_size));
  entries.push_back("MASTER_ADDR=127.0.0.1");
  entries.push_back("MASTER_PORT=" + std::to_string(port));
  entries.insert(entries.end(), extra.begin(), extra.end());

  std::vector<char*> envp;
  for (std::string& entry : entries) envp.push_back(entry.data());
  envp.push_back(nullptr);

  std::string executable = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string name = test_name;
  std::string log_option = "--out=" + log_file.string();
  std::vector<char*> argv{executable.data(), name.data(), log_option.data(), nullptr};

  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, executable.c_str(), nullptr, nullptr, argv.data(), envp.data()) == 0);
  return pid;
}

/// Waits up to `seconds` for `pid` and kills it past that. Returns the exit status, or -1 when it was killed.
inline int wait_rank(pid_t pid, double seconds) {
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

}  // namespace lepton::test
