#pragma once
// `lepton launch`, `lepton federated` and the data-parallel flags of `lepton run`.

#include <optional>

#include <CLI/CLI.hpp>

#include "lepton/distributed.hpp"

namespace lepton::cli {

/// Adds --rank, --world-size, --master-addr, --master-port and --dist-timeout to `lepton run`.
void add_distributed_run_flags(CLI::App& run);

/// The data-parallel settings of `lepton run`: the flags over MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and
/// LEPTON_DIST_TIMEOUT. std::nullopt when neither a flag nor WORLD_SIZE is set, so the run is not distributed.
std::optional<DistributedOptions> run_distribution();

/// Adds `lepton launch` and `lepton federated`.
void add_distributed_commands(CLI::App& app);

/// Runs `lepton launch` or `lepton federated` when it was selected and returns its exit code; std::nullopt otherwise.
std::optional<int> run_distributed_command();

}  // namespace lepton::cli
