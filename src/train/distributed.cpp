// Process groups over c10d's TCPStore and ProcessGroupGloo (LibTorch 1.13.1), and data-parallel training.
// Besides trainer.cpp, the distributed*.cpp files are the only ones that include c10d headers.
#include "lepton/distributed.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <optional>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include "lepton/io.hpp"
#include "lepton/log.hpp"

namespace lepton {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kPollInterval = std::chrono::milliseconds(20);
const std::string kWorldSizeKey = "lepton/world_size";
const std::string kArrivedKey = "lepton/arrived";
const std::string kErrorKey = "lepton/error";

std::chrono::milliseconds to_milliseconds(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

std::vector<std::uint8_t> to_bytes(const std::string& text) { return {text.begin(), text.end()}; }

std::string from_bytes(const std::vector<std::uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

int read_int_variable(const char* name, int fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    return fallback;
  }

  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 0 || value > 1'000'000) {
    throw InvalidArgument(fmt::format("environment variable {} is \"{}\", expected a whole number >= 0", name, text));
  }
  return static_cast<int>(value);
}

double read_seconds_variable(const char* name, double fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    return fallback;
  }

  char* end = nullptr;
  const double value = std::strtod(text, &end);
  if (*end != '\0' || !(value > 0) || !std::isfinite(value)) {
    throw InvalidArgument(fmt::format("environment variable {} is \"{}\", expected seconds > 0", name, text));
  }
  return value;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Options

DistributedOptions DistributedOptions::from_environment() {
  DistributedOptions options;
  if (const char* address = std::getenv("MASTER_ADDR"); address != nullptr && *address != '\0') {
    options.master_addr = address;
  }
  options.master_port = read_int_variable("MASTER_PORT", options.master_port);
  options.world_size = read_int_variable("WORLD_SIZE", options.world_size);
  options.rank = read_int_variable("RANK", options.rank);
  options.timeout_seconds = read_seconds_variable("LEPTON_DIST_TIMEOUT", options.timeout_seconds);
  return options;
}

void DistributedOptions::validate() const {
  if (master_addr.empty()) {
    throw InvalidArgument("DistributedOptions: master_addr is empty; set --master-addr or MASTER_ADDR to the host "
                          "of rank 0, such as 127.0.0.1");
  }
  if (master_port < 1 || master_port > 65535) {
    throw InvalidArgument(fmt::format("DistributedOptions: master_port is {}, expected a TCP port in [1, 65535]",
                                      master_port));
  }
  if (world_size < 1) {
    throw InvalidArgument(fmt::format("DistributedOptions: world_size is {}, expected at least 1", world_size));
  }
  if (rank < 0 || rank >= world_size) {
    throw InvalidArgument(fmt::format("DistributedOptions: rank is {} but world_size is {}; a rank must be in "
                                      "[0, {}]",
                                      rank, world_size, world_size - 1));
  }
  if (!(timeout_seconds > 0) || !std::isfinite(timeout_seconds)) {
    throw InvalidArgument(fmt::format("DistributedOptions: timeout_seconds is {}, expected a finite value > 0",
                                      timeout_seconds));
  }
  if (bucket_bytes < sizeof(double)) {
    throw InvalidArgument(fmt::format("DistributedOptions: bucket_bytes is {}, expected at least {}", bucket_bytes,
                                      sizeof(double)));
  }
}

// ---------------------------------------------------------------------------------------------------
// Process group

struct ProcessGroup::Impl {
  DistributedOptions options;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  CommunicationStats stats;
  std::uint64_t store_sequence = 0;  // Same on every rank: each store collective is called by all ranks in order.

  std::string where() const { return fmt::format("rank {} of {}", options.rank, options.world_size); }

  [[noreturn]] void fail_collective(const char* operation, const std::exception& error) const {
    throw DistributedError(fmt::format("{}: {} failed: {}. A peer rank died, hung longer than the timeout of {} s, "
                                       "or was started with other settings; check the other ranks' errors, or "
                                       "raise the timeout with DistributedOptions::timeout_seconds "
                                       "(LEPTON_DIST_TIMEOUT)",
                                       where(), operation, error.what(), options.timeout_seconds));
  }

  template <typename T>
  void all_reduce(T* values, std::size_t count, at::ScalarType type, c10d::ReduceOp op);
};

template <typename T>
void ProcessGroup::Impl::all_reduce(T* values, std::size_t count, at::ScalarType type, c10d::ReduceOp op) {
  const Clock::time_point start = Clock::now();
  const std::size_t per_bucket = std::max<std::size_t>(1, options.bucket_bytes / sizeof(T));

  // Every bucket is queued before the first wait, so Gloo overlaps their transfers.
  std::vector<c10::intrusive_ptr<c10d::Work>> pending;
  try {
    for (std::size_t begin = 0; begin < count; begin += per_bucket) {
      const std::size_t length = std::min(per_bucket, count - begin);
      std::vector<at::Tensor> bucket{
          torch::from_blob(values + begin, {static_cast<std::int64_t>(length)}, torch::TensorOptions().dtype(type))};
      c10d::AllreduceOptions reduce;
      reduce.reduceOp = op;
      reduce.timeout = to_milliseconds(options.timeout_seconds);
      pending.push_back(gloo->allreduce(bucket, reduce));
      ++stats.all_reduce_calls;
    }
    for (auto& work : pending) {
      work->wait(to_milliseconds(options.timeout_seconds));
    }
  } catch (const std::exception& error) {
    fail_collective("all-reduce", error);
  }

  stats.payload_bytes += count * sizeof(T);
  stats.seconds += std::chrono::duration<double>(Clock::now() - start).count();
}

namespace {

// Connects to the store, or serves it on rank 0 when rank0_hosts_store is set.
c10::intrusive_ptr<c10d::TCPStore> connect_store(const DistributedOptions& options) {
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(options.master_port);
  store_options.isServer = options.rank0_hosts_store && options.rank == 0;
  store_options.waitWorkers = false;
  store_options.timeout = to_milliseconds(options.timeout_seconds);

  try {
    return c10::make_intrusive<c10d::TCPStore>(options.master_addr, store_options);
  } catch (const std::exception& error) {
    if (store_options.isServer) {
      throw DistributedError(fmt::format("rank 0 cannot serve the TCPStore on {}:{}: {}. The port is probably in "
                                         "use; choose a free one with --master-port or MASTER_PORT",
                                         options.master_addr, options.master_port, error.what()));
    }
    throw DistributedError(fmt::format("rank {} cannot reach the TCPStore at {}:{} within {} s: {}. Start rank 0 "
                                       "(or `lepton launch`) first and check MASTER_ADDR and MASTER_PORT",
                                       options.rank, options.master_addr, options.master_port,
                                       options.timeout_seconds, error.what()));
  }
}

// Records this rank, checks that all ranks agree on the world size and that no rank number is taken twice,
// and waits until every rank has arrived. A rank that finds a conflict posts it, so the others stop too.
void rendezvous(c10d::Store& store, const DistributedOptions& options) {
  auto post_error = [&](const std::string& message) {
    store.set(kErrorKey, to_bytes(message));
    throw DistributedError(message);
  };

  const std::string mine = std::to_string(options.world_size);
  const std::string agreed = from_bytes(store.compareSet(kWorldSizeKey, {}, to_bytes(mine)));
  if (agreed != mine) {
    post_error(fmt::format("rank {} was started with world size {}, but another rank uses {}; start every rank "
                           "with the same --world-size (WORLD_SIZE)",
                           options.rank, mine, agreed));
  }
  if (store.add(fmt::format("lepton/rank/{}", options.rank), 1) > 1) {
    post_error(fmt::format("rank {} joined twice; give every process its own --rank (RANK) in [0, {}]",
                           options.rank, options.world_size - 1));
  }

  store.add(kArrivedKey, 1);
  const Clock::time_point deadline = Clock::now() + to_milliseconds(options.timeout_seconds);
  while (true) {
    if (store.check({kErrorKey})) {
      throw DistributedError(fmt::format("rank {}: the group failed to form: {}", options.rank,
                                         from_bytes(store.get(kErrorKey))));
    }
    const std::int64_t arrived = store.add(kArrivedKey, 0);
    if (arrived == options.world_size) {
      return;
    }
    if (arrived > options.world_size) {
      post_error(fmt::format("{} ranks joined a group of world size {}; start exactly {} ranks", arrived,
                             options.world_size, options.world_size));
    }
    if (Clock::now() > deadline) {
      throw DistributedError(fmt::format("rank {}: only {} of {} ranks arrived at {}:{} within {} s; start the "
                                         "missing ranks, check --world-size (WORLD_SIZE), or raise the timeout",
                                         options.rank, arrived, options.world_size, options.master_addr,
                                         options.master_port, options.timeout_seconds));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace

ProcessGroup ProcessGroup::join(const DistributedOptions& options) {
  options.validate();
  auto impl = std::make_unique<Impl>();
  impl->options = options;

  const c10::intrusive_ptr<c10d::TCPStore> store = connect_store(options);
  try {
    rendezvous(*store, options);
  } catch (const c10::Error& error) {
    throw DistributedError(fmt::format("rank {}: rendezvous at {}:{} failed: {}", options.rank, options.master_addr,
                                       options.master_port, error.what_without_backtrace()));
  }
  impl->store = store;

  try {
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(to_milliseconds(options.timeout_seconds));
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
        options.master_addr == "localhost" ? "127.0.0.1" : options.master_addr));
    gloo_options->threads = 1;
    impl->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", store),
                                                              options.rank, options.world_size, gloo_options);
  } catch (const std::exception& error) {
    throw DistributedError(fmt::format("rank {}: connecting Gloo failed: {}; check that every rank can reach the "
                                       "others' addresses",
                                       options.rank, error.what()));
  }

  log(LogLevel::Info, fmt::format("joined the process group as {} at {}:{}", impl->where(), options.master_addr,
                                  options.master_port));
  return ProcessGroup(std::move(impl));
}

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::ProcessGroup(ProcessGroup&&) noexcept = default;
ProcessGroup& ProcessGroup::operator=(ProcessGroup&&) noexcept = default;
ProcessGroup::~ProcessGroup() = default;

int ProcessGroup::rank() const noexcept { return impl_->options.rank; }
int ProcessGroup::world_size() const noexcept { return impl_->options.world_size; }
const DistributedOptions& ProcessGroup::options() const noexcept { return impl_->options; }
CommunicationStats ProcessGroup::stats() const { return impl_->stats; }

void ProcessGroup::all_reduce_sum(float* values, std::size_t count) {
  impl_->all_reduce(values, count, torch::kFloat32, c10d::ReduceOp::SUM);
}

void ProcessGroup::all_reduce_sum(double* values, std::size_t count) {
  impl_->all_reduce(values, count, torch::kFloat64, c10d::ReduceOp::SUM);
}

void ProcessGroup::all_reduce_sum(std::int64_t* values, std::size_t count) {
  impl_->all_reduce(values, count, torch::kInt64, c10d::ReduceOp::SUM);
}

void ProcessGroup::all_reduce_mean(float* values, std::size_t count) {
  all_reduce_sum(values, count);
  const float scale = 1.0f / static_cast<float>(world_size());
  for (std::size_t i = 0; i < count; ++i) {
    values[i] *= scale;
  }
}

void ProcessGroup::broadcast(float* values, std::size_t count, int root) {
  const Clock::time_point start = Clock::now();
  std::vector<at::Tensor> tensors{torch::from_blob(values, {static_cast<std::int64_t>(count)}, torch::kFloat32)};
  c10d::BroadcastOptions broadcast_options;
  broadcast_options.rootRank = root;
  broadcast_options.timeout = to_milliseconds(impl_->options.timeout_seconds);
  try {
    impl_->gloo->broadcast(tensors, broadcast_options)->wait(to_milliseconds(impl_->options.timeout_seconds));
  } catch (const std::exception& error) {
    impl_->fail_collective("broadcast", error);
  }
  impl_->stats.payload_bytes += count * sizeof(float);
  impl_->stats.seconds += std::chrono::duration<double>(Clock::now() - start).count();
}

std::string ProcessGroup::broadcast_bytes(const std::string& bytes, int root) {
  const std::string key = fmt::format("lepton/bytes/{}", impl_->store_sequence++);
  try {
    if (rank() == root) {
      impl_->store->set(key, to_bytes(bytes));
      return bytes;
    }
    return from_bytes(impl_->store->get(key));
  } catch (const std::exception& error) {
    impl_->fail_collective("broadcast of bytes through the TCPStore", error);
  }
}

std::vector<std::string> ProcessGroup::all_gather_bytes(const std::string& bytes) {
  const std::uint64_t sequence = impl_->store_sequence++;
  std::vector<std::string> result;
  try {
    impl_->store->set(fmt::format("lepton/gather/{}/{}", sequence, rank()), to_bytes(bytes));
    for (int r = 0; r < world_size(); ++r) {
      result.push_back(from_bytes(impl_->store->get(fmt::format("lepton/gather/{}/{}", sequence, r))));
    }
  } catch (const std::exception& error) {
    impl_->fail_collective("all-gather through the TCPStore", error);
  }
  return result;
}

void ProcessGroup::barrier() {
  float token = 0;
  all_reduce_sum(&token, 1);
}

std::function<void(float*, std::size_t)> ProcessGroup::gradient_hook() {
  return [this](float* gradient, std::size_t count) {
    all_reduce_mean(gradient, count);
    ++impl_->stats.gradient_steps;
  };
}

int find_free_port(const std::string& address) {
  const int socket_fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (socket_fd < 0) {
    throw DistributedError(fmt::format("find_free_port: socket() failed: {}", std::strerror(errno)));
  }

  sockaddr_in socket_address{};
  socket_address.sin_family = AF_INET;
  socket_address.sin_port = 0;  // The kernel picks a free port.
  if (::inet_pton(AF_INET, address.c_str(), &socket_address.sin_addr) != 1) {
    ::close(socket_fd);
    throw DistributedError(fmt::format("find_free_port: \"{}\" is not an IPv4 address; pass one such as "
                                       "127.0.0.1",
                                       address));
  }
  socklen_t length = sizeof socket_address;
  const bool bound = ::bind(socket_fd, reinterpret_cast<sockaddr*>(&socket_address), sizeof socket_address) == 0 &&
                     ::getsockname(socket_fd, reinterpret_cast<sockaddr*>(&socket_address), &length) == 0;
  const int error = errno;
  ::close(socket_fd);
  if (!bound) {
    throw DistributedError(fmt::format("find_free_port: cannot bind a socket on {}: {}", address,
                                       std::strerror(error)));
  }
  return ntohs(socket_address.sin_port);
}

// ---------------------------------------------------------------------------------------------------
// Sampling

std::vector<std::size_t> shard_rows(std::size_t rows, int rank, int world_size) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    throw InvalidArgument(fmt::format("shard_rows: rank {} of world size {} is invalid; expected 0 <= rank < "
                                      "world_size",
                                      rank, world_size));
  }

  const auto world = static_cast<std::size_t>(world_size);
  std::vector<std::size_t> shard;
  shard.reserve(rows / world);
  for (std::size_t row = static_cast<std::size_t>(rank); row < rows / world * world; row += world) {
    shard.push_back(row);
  }
  return shard;
}

std::vector<std::int64_t> data_parallel_order(std::uint64_t seed, std::size_t epoch, std::size_t groups,
                                              std::size_t group_size) {
  // std::mt19937_64 and a hand-written Fisher-Yates shuffle give the same sequence with every standard
  // library, which std::shuffle does not promise.
  std::mt19937_64 generator(seed ^ (0x9E3779B97F4A7C15ULL * (epoch + 1)));
  std::vector<std::int64_t> group_order(groups);
  std::iota(group_order.begin(), group_order.end(), 0);
  for (std::size_t i = groups; i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(generator() % i);
    std::swap(group_order[i - 1], group_order[j]);
  }

  std::vector<std::int64_t> order;
  order.reserve(groups * group_size);
  for (const std::int64_t group : group_order) {
    for (std::size_t member = 0; member < group_size; ++member) {
      order.push_back(group * static_cast<std::int64_t>(group_size) + static_cast<std::int64_t>(member));
    }
  }
  return order;
}

// ---------------------------------------------------------------------------------------------------
// Data-parallel training

namespace {

std::uint64_t fingerprint(const TrainingData& data) {
  // FNV-1a over the bytes of features, labels and values.
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  auto mix = [&hash](const void* bytes, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(bytes);
    for (std::size_t i = 0; i < size; ++i) {
      hash = (hash ^ p[i]) * 0x100000001b3ULL;
    }
  };
  mix(data.features.data.data(), data.features.data.size() * sizeof(float));
  mix(data.labels.data(), data.labels.size() * sizeof(std::int64_t));
  mix(data.values.data(), data.values.size() * sizeof(double));
  return hash;
}

void check_same_on_all_ranks(ProcessGroup& group, std::size_t shard_rows, std::uint64_t validation_hash) {
  const std::vector<std::string> all =
      group.all_gather_bytes(fmt::format("{} {}", shard_rows, validation_hash));
  for (int r = 0; r < group.world_size(); ++r) {
    std::size_t other_rows = 0;
    unsigned long long other_hash = 0;
    std::sscanf(all[static_cast<std::size_t>(r)].c_str(), "%zu %llu", &other_rows, &other_hash);
    if (other_rows != shard_rows) {
      throw InvalidArgument(fmt::format("fit_data_parallel: rank {} has {} training rows but rank {} has {}; "
                                        "give every rank an equal shard (see shard_rows)",
                                        group.rank(), shard_rows, r, other_rows));
    }
    if (other_hash != validation_hash) {
      throw InvalidArgument(fmt::format("fit_data_parallel: rank {} and rank {} have different validation rows; "
                                        "pass the same validation data to every rank so that early stopping "
                                        "decides alike",
                                        group.rank(), r));
    }
  }
}

// A rank other than 0 trains with a private checkpoint file, deleted when training ends, because the
// trainer reads and writes the same path.
class ScratchCheckpoint {
 public:
  explicit ScratchCheckpoint(int rank)
      : path_((std::filesystem::temp_directory_path() /
               fmt::format("lepton-rank{}-{}.checkpoint.pt", rank, static_cast<long>(getpid())))
                  .string()) {}
  ~ScratchCheckpoint() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
    std::filesystem::remove(path_ + ".tmp", ignored);
  }
  ScratchCheckpoint(const ScratchCheckpoint&) = delete;
  ScratchCheckpoint& operator=(const ScratchCheckpoint&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The stop decision of a data-parallel group. Each rank measuring its own clock could stop one rank an
// epoch before the others, which would then wait for it until the timeout. So the group decides together
// after every epoch, and the trainer only sees the shared flag.
struct GroupStop {
  std::atomic<bool> requested{false};  // Polled by the trainer; set only at the end of an epoch.
  bool time_budget_passed = false;
  Clock::time_point start = Clock::now();
};

// Replaces the trainer's time budget and stop flag by `stop`. After each epoch every rank all-reduces two
// flags: rank 0's "the budget has passed" and its own "stop was requested". Any nonzero sum stops every rank
// before the next epoch's first step, so all ranks leave after the same epoch.
void install_group_stop(ProcessGroup& group, TrainerOptions& options, GroupStop& stop) {
  const double max_seconds = options.max_seconds;
  const std::atomic<bool>* caller_stop = options.stop_requested;
  std::function<void(const EpochRecord&)> caller_on_epoch = std::move(options.on_epoch);

  options.max_seconds = 0;
  options.stop_requested = &stop.requested;
  options.on_epoch = [&group, &stop, max_seconds, caller_stop, caller_on_epoch](const EpochRecord& record) {
    if (caller_on_epoch) caller_on_epoch(record);

    double flags[2] = {0.0, 0.0};
    if (group.rank() == 0 && max_seconds > 0 &&
        std::chrono::duration<double>(Clock::now() - stop.start).count() >= max_seconds) {
      flags[0] = 1.0;
    }
    if (caller_stop != nullptr && caller_stop->load(std::memory_order_relaxed)) {
      flags[1] = 1.0;
    }
    group.all_reduce_sum(flags, 2);

    if (flags[0] > 0) {
      stop.time_budget_passed = true;
    }
    if (flags[0] > 0 || flags[1] > 0) {
      stop.requested.store(true, std::memory_order_relaxed);
    }
  };
}

}  // namespace

TrainingResult fit_data_parallel(ProcessGroup& group, TrainerOptions options, const TrainingData& shard,
                                 const TrainingData& validation) {
  check_same_on_all_ranks(group, shard.features.rows, fingerprint(validation));

  const std::uint64_t seed = options.config.seed;
  options.row_order = [seed](std::size_t epoch, std::size_t rows) {
    return data_parallel_order(seed, epoch, rows, 1);
  };

  std::function<void(float*, std::size_t)> caller_hook = std::move(options.gradient_hook);
  std::function<void(float*, std::size_t)> average = group.gradient_hook();
  options.gradient_hook = [average, caller_hook](float* gradient, std::size_t count) {
    average(gradient, count);
    if (caller_hook) caller_hook(gradient, count);
  };

  GroupStop stop;
  install_group_stop(group, options, stop);

  // Rank 0 owns the checkpoint. The other ranks resume from a copy that rank 0 sends them.
  std::optional<ScratchCheckpoint> scratch;
  if (!options.checkpoint_path.empty()) {
    std::string checkpoint;
    if (options.resume && group.rank() == 0 && std::filesystem::exists(options.checkpoint_path)) {
      checkpoint = read_file(options.checkpoint_path);
    }
    if (options.resume) {
      checkpoint = group.broadcast_bytes(checkpoint, 0);
    }
    if (group.rank() != 0) {
      scratch.emplace(group.rank());
      if (!checkpoint.empty()) {
        write_file_atomically(scratch->path(), checkpoint);
      }
      options.checkpoint_path = scratch->path();
    }
  }

  stop.start = Clock::now();
  TrainingResult result = Trainer(std::move(options)).fit(shard, validation);
  if (result.stop_reason == "stop_requested" && stop.time_budget_passed) {
    result.stop_reason = "time_budget";
  }
  return result;
}

namespace {

TrainingData select_rows(const TrainingData& data, const std::vector<std::size_t>& rows) {
  TrainingData subset;
  subset.features.rows = rows.size();
  subset.features.cols = data.features.cols;
  subset.features.data.reserve(rows.size() * data.features.cols);
  for (const std::size_t row : rows) {
    const float* begin = data.features.data.data() + row * data.features.cols;
    subset.features.data.insert(subset.features.data.end(), begin, begin + data.features.cols);
    if (!data.labels.empty()) subset.labels.push_back(data.labels[row]);
    if (!data.values.empty()) subset.values.push_back(data.values[row]);
  }
  return subset;
}

}  // namespace

TrainingResult fit_data_parallel(const DistributedOptions& distributed, TrainerOptions options,
                                 const TrainingData& train, const TrainingData& validation) {
  ProcessGroup group = ProcessGroup::join(distributed);
  const TrainingData shard = select_rows(train, shard_rows(train.features.rows, group.rank(), group.world_size()));
  log(LogLevel::Info, fmt::format("rank {} trains on {} of {} training rows", group.rank(), shard.features.rows,
                                  train.features.rows));
  return fit_data_parallel(group, std::move(options), shard, validation);
}

}  // namespace lepton
