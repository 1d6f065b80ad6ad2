#pragma once
/// Data-parallel training and federated averaging over PyTorch's c10d library with its Gloo backend
/// (LibTorch 1.13.1). This header does not include LibTorch or c10d.
///
/// Rendezvous goes through a c10d TCPStore at master_addr:master_port. Every collective has a deadline, so a
/// rank that dies or hangs makes the others throw DistributedError instead of waiting forever.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lepton/error.hpp"
#include "lepton/preprocess.hpp"
#include "lepton/privacy.hpp"
#include "lepton/trainer.hpp"

namespace lepton {

/// A rendezvous, a collective or a peer failed: a rank died, hung past the timeout, or the group was started
/// with inconsistent settings (Python: RuntimeError).
class DistributedError : public Error {
 public:
  using Error::Error;
};

/// Settings with which one process joins its group. Chainable setters return *this.
struct DistributedOptions {
  std::string master_addr = "127.0.0.1";  ///< Host of the TCPStore.
  int master_port = 29500;                ///< Port of the TCPStore, 1..65535.
  int world_size = 1;                     ///< Processes in the group, >= 1.
  int rank = 0;                           ///< This process, in [0, world_size).
  /// Seconds that the rendezvous and every collective may take before the rank gives up with a
  /// DistributedError. Bounds how long survivors wait for a dead or hung peer.
  double timeout_seconds = 60;
  /// true: rank 0 starts the TCPStore server on master_port. false: a launcher already serves it, so every
  /// rank connects as a client.
  bool rank0_hosts_store = true;
  /// All-reduce bucket size in bytes. Gradients travel in buckets of at most this many bytes (1 MiB by
  /// default, in the range of PyTorch DDP's bucket_cap_mb).
  std::size_t bucket_bytes = std::size_t{1} << 20;

  DistributedOptions& with_master(std::string address, int port) { master_addr = std::move(address); master_port = port; return *this; }
  DistributedOptions& with_world(int size, int this_rank) { world_size = size; rank = this_rank; return *this; }
  DistributedOptions& with_timeout(double seconds) { timeout_seconds = seconds; return *this; }
  DistributedOptions& with_bucket_bytes(std::size_t bytes) { bucket_bytes = bytes; return *this; }
  DistributedOptions& with_external_store(bool external) { rank0_hosts_store = !external; return *this; }

  /// Reads the variables that torchrun sets: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, and
  /// LEPTON_DIST_TIMEOUT (seconds). Missing variables keep the defaults above; a malformed one throws
  /// InvalidArgument naming it.
  static DistributedOptions from_environment();

  /// Throws InvalidArgument naming the first field out of range.
  void validate() const;
};

/// Traffic of one process since it joined, counted at the API: what this rank handed to collectives.
struct CommunicationStats {
  std::uint64_t all_reduce_calls = 0;   ///< Buckets all-reduced.
  std::uint64_t gradient_steps = 0;     ///< Gradient hooks run (one per optimizer step).
  std::uint64_t payload_bytes = 0;      ///< Bytes handed to all-reduce and broadcast.
  double seconds = 0;                   ///< Wall time spent inside collectives.
};

/// A joined process group. Move-only; leaving scope closes the connections.
class ProcessGroup {
 public:
  /// Validates `options`, meets the other ranks at the TCPStore and connects Gloo. Throws
  /// DistributedError when the store's port is in use, when ranks disagree on the world size, when a rank
  /// number is taken twice, or when not every rank arrives within options.timeout_seconds.
  static ProcessGroup join(const DistributedOptions& options);

  ProcessGroup(ProcessGroup&&) noexcept;
  ProcessGroup& operator=(ProcessGroup&&) noexcept;
  ~ProcessGroup();

  int rank() const noexcept;
  int world_size() const noexcept;
  const DistributedOptions& options() const noexcept;

  /// Replaces `values` by their element-wise sum over all ranks, in buckets of options().bucket_bytes.
  void all_reduce_sum(float* values, std::size_t count);
  void all_reduce_sum(double* values, std::size_t count);
  /// Sum of 64-bit integers; the federated secure aggregation sums masked fixed-point values with it.
  void all_reduce_sum(std::int64_t* values, std::size_t count);
  /// Replaces `values` by their mean over all ranks.
  void all_reduce_mean(float* values, std::size_t count);
  /// Copies `values` of rank `root` to every rank.
  void broadcast(float* values, std::size_t count, int root);
  /// Copies a byte string of rank `root` to every rank, through the TCPStore. Meant for small payloads such
  /// as a checkpoint or a JSON summary.
  std::string broadcast_bytes(const std::string& bytes, int root);
  /// Returns every rank's byte string, in rank order, through the TCPStore.
  std::vector<std::string> all_gather_bytes(const std::string& bytes);
  /// Returns once every rank has called it, or throws DistributedError at the timeout.
  void barrier();

  /// A TrainerOptions::gradient_hook that averages the gradient over all ranks.
  std::function<void(float*, std::size_t)> gradient_hook();

  CommunicationStats stats() const;

  struct Impl;

 private:
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Returns a TCP port that was free on `address` when this call bound and released it, for choosing
/// master_port at run time. Another process may take it before the caller does. Throws DistributedError
/// when no socket can be bound on `address`.
int find_free_port(const std::string& address = "127.0.0.1");

/// Rows of a global training set of `rows` rows that rank `rank` of `world_size` trains on: rows rank,
/// rank + world_size, rank + 2 * world_size, ... Every rank gets rows / world_size rows, so the last
/// rows % world_size rows of the set are left out, as torch's DistributedSampler(drop_last=True) does.
std::vector<std::size_t> shard_rows(std::size_t rows, int rank, int world_size);

/// The visiting order of epoch `epoch` for data-parallel sampling: a permutation of `groups` group ids drawn
/// from (seed, epoch), each expanded to its `group_size` consecutive rows. A rank's shard uses group_size 1.
/// One process with group_size = world_size and the global rows in shard order (global row g belongs to
/// rank g % world_size at local index g / world_size) visits the same global batches as the ranks do
/// together, which is what makes one process with batch B equal to world_size processes with batch
/// B / world_size.
std::vector<std::int64_t> data_parallel_order(std::uint64_t seed, std::size_t epoch, std::size_t groups,
                                              std::size_t group_size);

/// Trains one rank's shard as part of a data-parallel group and returns the same result on every rank.
///
/// `shard` contains this rank's rows (see shard_rows). Each step, every rank computes the mean gradient of its
/// part of the global batch (config.batch_size rows per rank) and the group averages the gradients, so a
/// global batch has batch_size * world_size rows. `validation` must be the same rows on every rank, so that
/// early stopping decides alike everywhere. Only rank 0 writes options.checkpoint_path. When options.resume
/// is set, rank 0 reads that checkpoint and sends it to the other ranks, so the ranks need no shared disk.
///
/// Stopping is decided together after each epoch, so that no rank waits for a peer that has left: rank 0
/// alone measures options.max_seconds, and options.stop_requested is read on every rank at the end of the
/// epoch rather than between batches. When rank 0's budget has passed, or any rank's stop flag is set, every
/// rank stops after the same epoch with stop_reason "time_budget" or "stop_requested".
/// Throws InvalidArgument when the ranks' shards differ in size and DistributedError when a peer fails.
TrainingResult fit_data_parallel(ProcessGroup& group, TrainerOptions options, const TrainingData& shard,
                                 const TrainingData& validation);

/// Joins the group of `distributed`, keeps this rank's shard of `train` (shard_rows) and trains it with
/// fit_data_parallel. Every rank passes the same `train` and `validation`.
TrainingResult fit_data_parallel(const DistributedOptions& distributed, TrainerOptions options,
                                 const TrainingData& train, const TrainingData& validation);

// ---------------------------------------------------------------------------------------------------
// Federated averaging

/// Options of federated training. Chainable setters return *this.
struct FederatedOptions {
  std::size_t rounds = 20;        ///< Aggregation rounds, >= 1.
  std::size_t local_epochs = 1;   ///< Epochs each client trains per round, >= 1.
  /// FedProx (Li et al. 2020, arXiv:1812.06127): each client adds mu / 2 * ||w - w_global||^2 to its loss.
  /// 0 is plain FedAvg.
  double proximal_mu = 0;
  /// Pairwise masking (Bonawitz et al. 2017, without dropout recovery): each pair of clients derives a mask
  /// from an X25519 key agreement, one adds it and the other subtracts it, so every vector on the wire
  /// looks random and only the sum is meaningful.
  bool secure_aggregation = false;

  FederatedOptions& with_rounds(std::size_t n) { rounds = n; return *this; }
  FederatedOptions& with_local_epochs(std::size_t n) { local_epochs = n; return *this; }
  FederatedOptions& with_proximal_mu(double mu) { proximal_mu = mu; return *this; }
  FederatedOptions& with_secure_aggregation(bool on) { secure_aggregation = on; return *this; }

  /// Throws InvalidArgument naming the first field out of range.
  void validate() const;
};

/// One aggregation round; every rank records the same values.
struct FederatedRound {
  std::size_t round = 0;          ///< 1-based.
  std::uint64_t samples = 0;      ///< Training rows summed over the clients.
  double mean_train_loss = 0;     ///< Client training losses of the round's last epoch, weighted by rows.
  double seconds = 0;
};

/// Result of federated training. Every rank returns the same network.
struct FederatedResult {
  Mlp network;
  std::vector<FederatedRound> rounds;
  /// "rounds" when every round ran, or "privacy_budget" when a client's DP-SGD budget could not pay for
  /// another round, so the group stopped before it.
  std::string stop_reason;
  /// Client-side DP-SGD: what this client spent over all its rounds, composed with the RDP accountant
  /// (compose_private_steps). std::nullopt on the server and without DP-SGD.
  std::optional<PrivacySpent> privacy;
  /// Client-side DP-SGD: every client's total, client rank k at index k - 1, the same on every rank. Only
  /// these accounting numbers travel, no data. Empty without DP-SGD.
  std::vector<PrivacySpent> client_privacy;
  CommunicationStats communication;  ///< This rank's traffic.
};

/// DP-SGD steps taken at one sampling rate and noise multiplier, for example one federated round.
struct PrivateSteps {
  double sample_rate = 0;       ///< Poisson sampling probability q, in [0, 1].
  double noise_multiplier = 0;  ///< Noise standard deviation in units of the clipping norm, >= 0.
  std::uint64_t steps = 0;
};

/// Composes DP-SGD runs on the same data: sums their RDP curves over default_rdp_orders(), then converts
/// the sum to (epsilon, delta) once, which is tighter than adding the runs' epsilons. R runs of S steps with
/// the same q and sigma give RdpAccountant(q, sigma).epsilon(R * S, delta). With no steps at all, nothing
/// was spent, so it returns epsilon 0 at order 0 (RdpAccountant returns the conversion's small positive floor).
/// Throws InvalidArgument for delta outside (0, 1) or a run with a rate or multiplier out of range.
EpsilonAtOrder compose_private_steps(const std::vector<PrivateSteps>& runs, double delta);

/// Runs the server of a federated group: rank 0, which has no data. Clients are ranks 1 .. world_size - 1.
/// Only weights, row counts and losses travel; with secure aggregation only masked weights do. `config`
/// must be the clients' configuration. Throws InvalidArgument when the clients' feature widths or
/// configurations differ, and DistributedError when a client fails.
FederatedResult run_federated_server(ProcessGroup& group, const FederatedOptions& options, const ModelConfig& config);

/// Runs one client: each round it starts from the global weights, trains options.local_epochs epochs on
/// `train` with `trainer`, and sends its weights, weighted by its row count. The round's learning rate is
/// constant, because a schedule would restart every round.
///
/// Client-side DP-SGD applies when trainer.config.privacy is set. The budget covers all rounds together:
/// when config.noise_multiplier is 0, the client solves one multiplier for rounds x steps per round, and
/// the privacy spent is composed over the rounds. Before each round, every client checks that one more
/// round stays within its epsilon; when one cannot, the whole group stops with stop_reason
/// "privacy_budget". Throws InvalidArgument on every rank when not even the first round fits.
FederatedResult run_federated_client(ProcessGroup& group, const FederatedOptions& options, TrainerOptions trainer,
                                     const TrainingData& train, const TrainingData& validation);

/// PyTorch's initialization of the trainer's network for config.seed (torch::nn::Linear after
/// torch::manual_seed), in the flat layout of TrainerOptions::initial_parameters. `outputs` is 1 for binary
/// classification and regression, and the class count for multiclass.
std::vector<float> initial_parameters(const ModelConfig& config, std::size_t inputs, std::size_t outputs);

/// Builds one preprocessor for all clients from their locally fitted ones: numeric means and scales are
/// pooled exactly from per-client (rows, mean, scale), imputation fills are the row-weighted mean of the
/// client medians, and category lists are the sorted union. Only these statistics travel. The server
/// passes local = nullptr and rows = 0.
Preprocessor federated_preprocessor(ProcessGroup& group, const Preprocessor* local, std::size_t rows);

}  // namespace lepton
