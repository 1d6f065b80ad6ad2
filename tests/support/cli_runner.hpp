#pragma once
// Runs the `lepton` binary of this build for the CLI tests and captures what it printed. Not installed.

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include <catch2/catch.hpp>

namespace lepton::test_support {

/// The `lepton` binary that CMake builds before the CLI tests.
inline const std::string kLeptonBinary = LEPTON_BINARY_DIR "/lepton";

/// The exit code and the output of one `lepton` command.
struct CommandResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together.
};

/// Runs `lepton ARGUMENTS` through the shell, so that ARGUMENTS may quote paths, and waits for it. The exit code
/// is -1 when the process did not exit normally.
inline CommandResult run_lepton(const std::string& arguments) {
  CommandResult result;
  FILE* pipe = popen((kLeptonBinary + " " + arguments + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) result.output += buffer.data();
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace lepton::test_support
