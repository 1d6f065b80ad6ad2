// Federated averaging (FedAvg, optionally FedProx) over a ProcessGroup, with optional pairwise-masked
// secure aggregation. Rank 0 is the server and has no data. Every other rank is a client.
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "lepton/distributed.hpp"
#include "lepton/log.hpp"

namespace lepton {

namespace {

using Clock = std::chrono::steady_clock;

// Fixed-point scale of secure aggregation: row-weighted weights n_k * w are sent as round(n_k * w * 2^24).
// The rounding error of the global weights is at most clients / (2 * 2^24 * rows), far below float32
// resolution for any realistic row count.
constexpr double kFixedPointScale = 16777216.0;

// Settings that every rank publishes at the start, so that a misconfigured client is found before round 1.
struct Handshake {
  std::size_t inputs = 0;
  std::size_t outputs = 0;
  std::uint64_t rows = 0;
  std::string config;
  std::string public_key;  // Hex X25519 key of a client when secure aggregation is on.
};

std::size_t federated_outputs(const ModelConfig& config) {
  if (config.task != Task::MulticlassClassification) {
    return 1;
  }
  if (config.class_weights.size() < 2) {
    throw InvalidArgument("federated training: a multiclass config needs class_weights with one entry per class, "
                          "because clients may not see every class and must agree on the output width");
  }
  return config.class_weights.size();
}

}  // namespace

std::vector<float> initial_parameters(const ModelConfig& config, std::size_t inputs, std::size_t outputs) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(config.seed);

  std::vector<std::size_t> widths{inputs};
  widths.insert(widths.end(), config.hidden_units.begin(), config.hidden_units.end());
  widths.push_back(outputs);

  std::vector<float> flat;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    torch::nn::Linear linear(static_cast<std::int64_t>(widths[i]), static_cast<std::int64_t>(widths[i + 1]));
    for (const torch::Tensor& tensor : {linear->weight.detach().contiguous(), linear->bias.detach().contiguous()}) {
      flat.insert(flat.end(), tensor.data_ptr<float>(), tensor.data_ptr<float>() + tensor.numel());
    }
  }
  return flat;
}

namespace {

std::size_t parameter_count(const ModelConfig& config, std::size_t inputs, std::size_t outputs) {
  std::size_t count = 0;
  std::size_t previous = inputs;
  for (const std::size_t width : config.hidden_units) {
    count += previous * width + width;
    previous = width;
  }
  return count + previous * outputs + outputs;
}

Mlp to_mlp(const std::vector<float>& flat, const ModelConfig& config, std::size_t inputs, std::size_t outputs) {
  std::vector<std::size_t> widths{inputs};
  widths.insert(widths.end(), config.hidden_units.begin(), config.hidden_units.end());
  widths.push_back(outputs);

  Mlp mlp;
  std::size_t offset = 0;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    DenseLayer layer;
    layer.inputs = widths[i];
    layer.outputs = widths[i + 1];
    layer.weight.assign(flat.begin() + static_cast<std::ptrdiff_t>(offset),
                        flat.begin() + static_cast<std::ptrdiff_t>(offset + layer.inputs * layer.outputs));
    offset += layer.inputs * layer.outputs;
    layer.bias.assign(flat.begin() + static_cast<std::ptrdiff_t>(offset),
                      flat.begin() + static_cast<std::ptrdiff_t>(offset + layer.outputs));
    offset += layer.outputs;
    layer.activation = i + 2 < widths.size() ? config.activation : Activation::Identity;
    mlp.layers.push_back(std::move(layer));
  }
  return mlp;
}

std::vector<float> flatten(const Mlp& network) {
  std::vector<float> flat;
  for (const DenseLayer& layer : network.layers) {
    flat.insert(flat.end(), layer.weight.begin(), layer.weight.end());
    flat.insert(flat.end(), layer.bias.begin(), layer.bias.end());
  }
  return flat;
}

std::string to_hex(const unsigned char* bytes, std::size_t size) {
  std::string hex(size * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), bytes, size);
  hex.pop_back();
  return hex;
}

// Exchanges each rank's handshake and checks that the clients agree with the server. Every rank runs the
// same checks on the same list, so all of them fail together.
std::vector<Handshake> exchange_handshakes(ProcessGroup& group, const Handshake& mine) {
  const nlohmann::json message = {{"inputs", mine.inputs},     {"outputs", mine.outputs},
                                  {"rows", mine.rows},         {"config", mine.config},
                                  {"public_key", mine.public_key}};
  std::vector<Handshake> all;
  for (const std::string& text : group.all_gather_bytes(message.dump())) {
    const nlohmann::json j = nlohmann::json::parse(text);
    all.push_back({j.at("inputs").get<std::size_t>(), j.at("outputs").get<std::size_t>(),
                   j.at("rows").get<std::uint64_t>(), j.at("config").get<std::string>(),
                   j.at("public_key").get<std::string>()});
  }

  for (std::size_t client = 1; client < all.size(); ++client) {
    if (all[client].config != all[0].config) {
      throw InvalidArgument(fmt::format("federated training: client rank {} uses a different model configuration "
                                        "from the server; give every rank the same config",
                                        client));
    }
    if (all[client].inputs != all[1].inputs) {
      throw InvalidArgument(fmt::format("federated training: client rank {} encodes {} feature columns but client "
                                        "rank 1 encodes {}; fit one shared preprocessor, for example with "
                                        "federated_preprocessor",
                                        client, all[client].inputs, all[1].inputs));
    }
    if (all[client].rows == 0) {
      throw InvalidArgument(fmt::format("federated training: client rank {} has no training rows", client));
    }
  }
  return all;
}

// Per-client secrets of secure aggregation: this client's X25519 key pair and the other clients' public keys.
struct MaskKeys {
  unsigned char public_key[crypto_box_PUBLICKEYBYTES];
  unsigned char secret_key[crypto_box_SECRETKEYBYTES];

  MaskKeys() {
    if (sodium_init() < 0) {
      throw InternalError("federated training: libsodium failed to initialize");
    }
    crypto_box_keypair(public_key, secret_key);
  }
  ~MaskKeys() { sodium_memzero(secret_key, sizeof secret_key); }
};

// Adds this client's pairwise masks for `round` to `values`, modulo 2^64. For the pair (i, j) both clients
// derive the same ChaCha20 stream from their X25519 shared secret; the lower rank adds it and the higher
// rank subtracts it, so the masks cancel in the sum over all clients.
void add_pairwise_masks(std::vector<std::uint64_t>& values, const MaskKeys& keys, int rank,
                        const std::vector<Handshake>& all, std::size_t round) {
  std::vector<std::uint64_t> mask(values.size());
  for (std::size_t other = 1; other < all.size(); ++other) {
    if (static_cast<int>(other) == rank) continue;

    unsigned char their_key[crypto_box_PUBLICKEYBYTES];
    if (sodium_hex2bin(their_key, sizeof their_key, all[other].public_key.c_str(), all[other].public_key.size(),
                       nullptr, nullptr, nullptr) != 0) {
      throw DistributedError(fmt::format("federated training: client rank {} sent an invalid public key", other));
    }
    unsigned char shared[crypto_scalarmult_BYTES];
    if (crypto_scalarmult(shared, keys.secret_key, their_key) != 0) {
      throw DistributedError(fmt::format("federated training: key agreement with client rank {} failed", other));
    }

    // Seed = BLAKE2b(shared secret || lower rank's key || higher rank's key || round).
    const bool lower = rank < static_cast<int>(other);
    const unsigned char* first = lower ? keys.public_key : their_key;
    const unsigned char* second = lower ? their_key : keys.public_key;
    unsigned char seed[crypto_stream_chacha20_KEYBYTES];
    crypto_generichash_state state;
    crypto_generichash_init(&state, nullptr, 0, sizeof seed);
    crypto_generichash_update(&state, shared, sizeof shared);
    crypto_generichash_update(&state, first, crypto_box_PUBLICKEYBYTES);
    crypto_generichash_update(&state, second, crypto_box_PUBLICKEYBYTES);
    const std::uint64_t round_number = round;
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(&round_number), sizeof round_number);
    crypto_generichash_final(&state, seed, sizeof seed);
    sodium_memzero(shared, sizeof shared);

    const unsigned char nonce[crypto_stream_chacha20_NONCEBYTES] = {};
    crypto_stream_chacha20(reinterpret_cast<unsigned char*>(mask.data()), mask.size() * sizeof(std::uint64_t),
                           nonce, seed);
    sodium_memzero(seed, sizeof seed);
    for (std::size_t i = 0; i < values.size(); ++i) {
      values[i] = lower ? values[i] + mask[i] : values[i] - mask[i];
    }
  }
}

// Sums `contribution` (row-weighted weights, then rows, then the row-weighted loss) over all ranks.
// NOTE: secure aggregation relies on Gloo's int64 sum wrapping modulo 2^64, as two's-complement addition
// does on every platform that LibTorch supports; the federated test checks that the masks cancel exactly.
// `keys` is null on the server and when secure aggregation is off.
std::vector<double> aggregate(ProcessGroup& group, const std::vector<double>& contribution, bool secure,
                              const MaskKeys* keys, const std::vector<Handshake>& all, std::size_t round) {
  if (!secure) {
    std::vector<double> sum = contribution;
    group.all_reduce_sum(sum.data(), sum.size());
    return sum;
  }

  std::vector<std::uint64_t> fixed(contribution.size(), 0);
  for (std::size_t i = 0; i < contribution.size(); ++i) {
    const double scaled = std::round(contribution[i] * kFixedPointScale);
    if (!(std::abs(scaled) < 9.0e18)) {
      throw InvalidArgument(fmt::format("secure aggregation: value {} at index {} is too large for the fixed-point "
                                        "encoding; check the client's weights for divergence",
                                        contribution[i], i));
    }
    fixed[i] = static_cast<std::uint64_t>(static_cast<std::int64_t>(scaled));
  }
  if (keys != nullptr) {
    add_pairwise_masks(fixed, *keys, group.rank(), all, round);
  }

  std::vector<std::int64_t> wire(fixed.size());
  std::memcpy(wire.data(), fixed.data(), fixed.size() * sizeof(std::int64_t));
  group.all_reduce_sum(wire.data(), wire.size());

  std::vector<double> sum(wire.size());
  for (std::size_t i = 0; i < wire.size(); ++i) {
    sum[i] = static_cast<double>(wire[i]) / kFixedPointScale;
  }
  return sum;
}

// Client-side DP-SGD accounting over all rounds. The trainer accounts one round at a time, so the client
// fixes one noise multiplier for every round and composes the rounds' RDP here.
class ClientBudget {
 public:
  ClientBudget(const ModelConfig& config, std::size_t rows, const FederatedOptions& options)
      : budget_(*config.privacy) {
    // The trainer's DP-SGD geometry: Poisson rate batch / rows and ceil(rows / batch) steps per epoch,
    // where the batch is capped at the row count.
    expected_batch_ = std::min(config.batch_size, rows);
    sample_rate_ = static_cast<double>(expected_batch_) / static_cast<double>(rows);
    steps_per_round_ = static_cast<std::uint64_t>(options.local_epochs) *
                       static_cast<std::uint64_t>((rows + expected_batch_ - 1) / expected_batch_);

    noise_multiplier_ = config.noise_multiplier;
    if (noise_multiplier_ == 0.0 && std::isfinite(budget_.epsilon)) {
      const std::uint64_t scheduled = steps_per_round_ * static_cast<std::uint64_t>(options.rounds);
      noise_multiplier_ = solve_noise_multiplier(budget_.epsilon, budget_.delta, sample_rate_, scheduled);
      log(LogLevel::Info, fmt::format("federated DP-SGD: noise multiplier {:.4f} keeps {} rounds x {} steps at "
                                      "sampling rate {:.5f} within epsilon {:g}, delta {:g}",
                                      noise_multiplier_, options.rounds, steps_per_round_, sample_rate_,
                                      budget_.epsilon, budget_.delta));
    }
  }

  double noise_multiplier() const { return noise_multiplier_; }

  // Whether one more full round keeps the composed epsilon within the target.
  bool affords_next_round() const {
    std::vector<PrivateSteps> planned = rounds_;
    planned.push_back({sample_rate_, noise_multiplier_, steps_per_round_});
    return compose_private_steps(planned, budget_.delta).epsilon <= budget_.epsilon;
  }

  void record_round(std::uint64_t steps) { rounds_.push_back({sample_rate_, noise_multiplier_, steps}); }

  PrivacySpent spent(bool budget_exhausted) const {
    const EpsilonAtOrder composed = compose_private_steps(rounds_, budget_.delta);
    PrivacySpent result;
    result.epsilon = composed.epsilon;
    result.optimal_order = composed.order;
    result.target_epsilon = budget_.epsilon;
    result.delta = budget_.delta;
    result.noise_multiplier = noise_multiplier_;
    result.max_grad_norm = budget_.max_grad_norm;
    result.sample_rate = sample_rate_;
    result.expected_batch_size = expected_batch_;
    for (const PrivateSteps& round : rounds_) {
      result.steps += round.steps;
    }
    result.budget_exhausted = budget_exhausted;
    return result;
  }

 private:
  PrivacyBudget budget_;
  std::size_t expected_batch_ = 0;
  double sample_rate_ = 0;
  double noise_multiplier_ = 0;
  std::uint64_t steps_per_round_ = 0;
  std::vector<PrivateSteps> rounds_;
};

// Whether every client can pay for one more round; every rank must call it, and all get the same answer.
// Rounds after the first end the training with "privacy_budget". When not even round 1 fits, every rank
// throws, naming the clients at fault.
bool group_affords_round(ProcessGroup& group, const ClientBudget* budget, const ModelConfig& config,
                         std::size_t round) {
  std::vector<double> short_of_budget(static_cast<std::size_t>(group.world_size()), 0.0);
  if (budget != nullptr && !budget->affords_next_round()) {
    short_of_budget[static_cast<std::size_t>(group.rank())] = 1.0;
  }
  group.all_reduce_sum(short_of_budget.data(), short_of_budget.size());

  std::vector<std::size_t> clients;
  for (std::size_t rank = 1; rank < short_of_budget.size(); ++rank) {
    if (short_of_budget[rank] > 0) clients.push_back(rank);
  }
  if (clients.empty()) {
    return true;
  }
  if (round == 1) {
    throw InvalidArgument(fmt::format("federated training: one round of DP-SGD on client rank(s) {} spends more "
                                      "than config.privacy.epsilon = {:g}; leave config.noise_multiplier at 0 so "
                                      "that each client solves it for all rounds, or raise it",
                                      fmt::join(clients, ", "), config.privacy->epsilon));
  }
  log(LogLevel::Info, fmt::format("federated training stops before round {}: client rank(s) {} would exceed "
                                  "epsilon {:g}",
                                  round, fmt::join(clients, ", "), config.privacy->epsilon));
  return false;
}

// Every rank's composed privacy spent, client rank k at index k - 1. The server sends null.
std::vector<PrivacySpent> gather_client_privacy(ProcessGroup& group, const std::optional<PrivacySpent>& mine) {
  std::vector<PrivacySpent> all;
  const std::vector<std::string> gathered = group.all_gather_bytes(mine ? mine->to_json().dump() : "null");
  for (std::size_t rank = 1; rank < gathered.size(); ++rank) {
    const nlohmann::json j = nlohmann::json::parse(gathered[rank]);
    PrivacySpent spent;
    spent.epsilon = j.at("epsilon").get<double>();
    spent.target_epsilon = j.at("target_epsilon").get<double>();
    spent.delta = j.at("delta").get<double>();
    spent.optimal_order = j.at("optimal_order").get<double>();
    spent.noise_multiplier = j.at("noise_multiplier").get<double>();
    spent.max_grad_norm = j.at("max_grad_norm").get<double>();
    spent.sample_rate = j.at("sample_rate").get<double>();
    spent.expected_batch_size = j.at("expected_batch_size").get<std::size_t>();
    spent.steps = j.at("steps").get<std::uint64_t>();
    spent.budget_exhausted = j.at("budget_exhausted").get<bool>();
    all.push_back(spent);
  }
  return all;
}

// What one client's round produced: n * w, then n, then n * last-epoch loss; and its DP-SGD steps.
struct RoundContribution {
  std::vector<double> values;
  std::uint64_t private_steps = 0;
};

// Trains one round on a client and returns its contribution.
RoundContribution train_round(const TrainerOptions& base, const FederatedOptions& options,
                              const std::vector<float>& global, std::size_t round, const TrainingData& train,
                              const TrainingData& validation, const ClientBudget* budget) {
  TrainerOptions trainer = base;
  trainer.config.max_epochs = options.local_epochs;
  trainer.config.lr_schedule = "constant";
  trainer.config.warmup_epochs = 0;
  trainer.config.patience = 0;
  trainer.config.seed = base.config.seed + round;  // A new batch order each round.
  trainer.initial_parameters = global;
  trainer.proximal_mu = options.proximal_mu;
  trainer.restore_best = false;
  trainer.checkpoint_path.clear();
  trainer.row_order = nullptr;
  trainer.gradient_hook = nullptr;
  if (budget != nullptr) {
    trainer.config.noise_multiplier = budget->noise_multiplier();
  }
  if (trainer.insecure_privacy_seed) {
    // A new stream each round; repeating one round's noise in the next would correlate the rounds.
    *trainer.insecure_privacy_seed += round;
  }

  const TrainingResult result = Trainer(std::move(trainer)).fit(train, validation);
  const std::vector<float> local = flatten(result.network);
  const auto rows = static_cast<double>(train.features.rows);

  RoundContribution contribution;
  contribution.values.resize(local.size() + 2);
  for (std::size_t i = 0; i < local.size(); ++i) {
    contribution.values[i] = rows * static_cast<double>(local[i]);
  }
  contribution.values[local.size()] = rows;
  contribution.values[local.size() + 1] = result.history.empty() ? 0.0 : rows * result.history.back().train_loss;
  contribution.private_steps = result.privacy ? result.privacy->steps : 0;
  return contribution;
}

// The loop shared by server and clients. `train` is null on the server.
FederatedResult run_rounds(ProcessGroup& group, const FederatedOptions& options, const TrainerOptions& trainer,
                           const TrainingData* train, const TrainingData* validation) {
  options.validate();
  if (group.world_size() < 2) {
    throw InvalidArgument(fmt::format("federated training needs a server and at least one client, but the world "
                                      "size is {}; start at least 2 ranks",
                                      group.world_size()));
  }
  const ModelConfig& config = trainer.config;
  const std::size_t outputs = federated_outputs(config);

  std::optional<MaskKeys> keys;
  if (options.secure_aggregation && group.rank() != 0) keys.emplace();

  Handshake mine;
  mine.config = config.to_json().dump();
  if (train != nullptr) {
    mine.inputs = train->features.cols;
    mine.outputs = outputs;
    mine.rows = train->features.rows;
  }
  if (keys) mine.public_key = to_hex(keys->public_key, sizeof keys->public_key);
  const std::vector<Handshake> all = exchange_handshakes(group, mine);
  const std::size_t inputs = all[1].inputs;
  const std::size_t count = parameter_count(config, inputs, outputs);

  // Every rank derives the same starting point from config.seed; the server's copy is sent anyway, so that
  // a client built against another LibTorch version still starts from the server's weights.
  std::vector<float> global = initial_parameters(config, inputs, outputs);
  group.broadcast(global.data(), global.size(), 0);

  std::optional<ClientBudget> budget;
  if (config.privacy && train != nullptr) budget.emplace(config, train->features.rows, options);

  FederatedResult result;
  result.stop_reason = "rounds";
  for (std::size_t round = 1; round <= options.rounds; ++round) {
    // The configs are equal on every rank, so either all ranks take part in this check or none does.
    if (config.privacy && !group_affords_round(group, budget ? &*budget : nullptr, config, round)) {
      result.stop_reason = "privacy_budget";
      break;
    }

    const Clock::time_point start = Clock::now();
    RoundContribution contribution;
    if (train != nullptr) {
      contribution = train_round(trainer, options, global, round, *train, *validation, budget ? &*budget : nullptr);
    } else {
      contribution.values.assign(count + 2, 0.0);
    }
    if (budget) budget->record_round(contribution.private_steps);
    const std::vector<double> sum =
        aggregate(group, contribution.values, options.secure_aggregation, keys ? &*keys : nullptr, all, round);

    const double rows = sum[count];
    for (std::size_t i = 0; i < count; ++i) {
      global[i] = static_cast<float>(sum[i] / rows);
    }

    FederatedRound record;
    record.round = round;
    record.samples = static_cast<std::uint64_t>(std::llround(rows));
    record.mean_train_loss = sum[count + 1] / rows;
    record.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    result.rounds.push_back(record);
    log(LogLevel::Info, fmt::format("federated round {}/{}: {} rows, mean training loss {:.4f}", round,
                                    options.rounds, record.samples, record.mean_train_loss));
  }

  result.network = to_mlp(global, config, inputs, outputs);
  if (budget) result.privacy = budget->spent(result.stop_reason == "privacy_budget");
  if (config.privacy) result.client_privacy = gather_client_privacy(group, result.privacy);
  result.communication = group.stats();
  return result;
}

}  // namespace

void FederatedOptions::validate() const {
  if (rounds < 1) {
    throw InvalidArgument("FederatedOptions: rounds is 0, expected at least 1");
  }
  if (local_epochs < 1) {
    throw InvalidArgument("FederatedOptions: local_epochs is 0, expected at least 1");
  }
  if (!(proximal_mu >= 0) || !std::isfinite(proximal_mu)) {
    throw InvalidArgument(fmt::format("FederatedOptions: proximal_mu is {}, expected a finite value >= 0",
                                      proximal_mu));
  }
}

FederatedResult run_federated_server(ProcessGroup& group, const FederatedOptions& options, const ModelConfig& config) {
  if (group.rank() != 0) {
    throw InvalidArgument(fmt::format("run_federated_server: this process is rank {}, but the server must be "
                                      "rank 0; call run_federated_client on the other ranks",
                                      group.rank()));
  }
  TrainerOptions trainer;
  trainer.config = config;
  return run_rounds(group, options, trainer, nullptr, nullptr);
}

FederatedResult run_federated_client(ProcessGroup& group, const FederatedOptions& options, TrainerOptions trainer,
                                     const TrainingData& train, const TrainingData& validation) {
  if (group.rank() == 0) {
    throw InvalidArgument("run_federated_client: rank 0 is the server; clients are ranks 1 and up");
  }
  return run_rounds(group, options, trainer, &train, &validation);
}

}  // namespace lepton
