// `lepton launch -n N -- run ...` starts N ranks of this binary on one machine, the way torchrun does:
// each child gets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT. On a cluster, run `lepton run` once per
// machine with those variables or the matching flags instead.
//
// `lepton federated --role server|client ...` runs one rank of federated averaging: the server (rank 0)
// has no data and writes the model; each client trains on its own CSV.
#include "cli/distributed_commands.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <optional>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli/input_files.hpp"
#include "lepton/configurator.hpp"
#include "lepton/crypto.hpp"
#include "lepton/dataset.hpp"
#include "lepton/error.hpp"
#include "lepton/evaluator.hpp"
#include "lepton/io.hpp"
#include "lepton/predictor.hpp"
#include "lepton/requirements.hpp"
#include "lepton/version.hpp"
#include "train/checkpoint_files.hpp"
#include "train/privacy_pii.hpp"

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

struct FederatedArguments {
  std::string role;
  RunFlags group;
  std::string requirements_path;
  std::string data_path;   // Clients only.
  std::string output_dir;  // Server only.
  std::size_t rounds = 20;
  std::size_t local_epochs = 1;
  double proximal_mu = 0;
  bool secure_aggregation = false;
  int threads = 1;
};

RunFlags g_run_flags;
LaunchArguments g_launch;
FederatedArguments g_federated;
CLI::App* g_launch_command = nullptr;
CLI::App* g_federated_command = nullptr;

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

// The group settings of `lepton run` and `lepton federated`: the flags over MASTER_ADDR, MASTER_PORT,
// WORLD_SIZE, RANK and LEPTON_DIST_TIMEOUT.
DistributedOptions group_options(const RunFlags& flags) {
  DistributedOptions options = DistributedOptions::from_environment();
  if (flags.rank >= 0) options.rank = flags.rank;
  if (flags.world_size > 0) options.world_size = flags.world_size;
  if (!flags.master_addr.empty()) options.master_addr = flags.master_addr;
  if (flags.master_port > 0) options.master_port = flags.master_port;
  if (flags.timeout_seconds > 0) options.timeout_seconds = flags.timeout_seconds;
  options.validate();
  return options;
}

// ---------------------------------------------------------------------------------------------------
// lepton federated

void add_group_flags(CLI::App& command, RunFlags& flags) {
  command.add_option("--rank", flags.rank, "Rank of this process: 0 is the server, 1..N-1 the clients (default: RANK)")
      ->check(CLI::NonNegativeNumber);
  command.add_option("--world-size", flags.world_size, "Processes in the group: the server and its clients "
                                                        "(default: WORLD_SIZE)")
      ->check(CLI::Range(2, 1 << 16));
  command.add_option("--master-addr", flags.master_addr, "Host of the server's TCPStore (default: MASTER_ADDR or "
                                                         "127.0.0.1)");
  command.add_option("--master-port", flags.master_port, "Port of the server's TCPStore (default: MASTER_PORT or "
                                                         "29500)")
      ->check(CLI::Range(1, 65535));
  command.add_option("--dist-timeout", flags.timeout_seconds,
                     "Seconds a rank waits for its peers before failing (default: LEPTON_DIST_TIMEOUT or 60)")
      ->check(CLI::PositiveNumber);
}

void add_federated_command(CLI::App& app) {
  FederatedArguments& a = g_federated;
  g_federated_command = app.add_subcommand("federated", "Run one rank of federated averaging: the server (rank 0, "
                                                        "no data) or a client with its own CSV");
  g_federated_command->add_option("--role", a.role, "server or client")
      ->required()
      ->check(CLI::IsMember({"server", "client"}));
  add_group_flags(*g_federated_command, a.group);
  g_federated_command->add_option("-r,--requirements", a.requirements_path, "Requirements JSON; the same on every rank")
      ->required();
  g_federated_command->add_option("-d,--data", a.data_path, "This client's CSV file (clients only)");
  g_federated_command->add_option("-o,--out", a.output_dir, "Folder for model.lepton and federated.json (server only)");
  g_federated_command->add_option("--rounds", a.rounds, "Aggregation rounds")->check(CLI::Range(1, 1000000));
  g_federated_command->add_option("--local-epochs", a.local_epochs, "Epochs each client trains per round")
      ->check(CLI::Range(1, 1000000));
  g_federated_command->add_option("--fedprox-mu", a.proximal_mu, "FedProx proximal weight mu; 0 is plain FedAvg")
      ->check(CLI::NonNegativeNumber);
  g_federated_command->add_flag("--secure-aggregation", a.secure_aggregation,
                                "Mask the clients' weights pairwise, so only their sum is readable");
  g_federated_command->add_option("--threads", a.threads, "Intra-op threads for training")->check(CLI::Range(1, 256));
}

// Checks that the role, the rank and the per-role flags fit together, before any connection is made.
void check_federated_arguments(const FederatedArguments& arguments, const DistributedOptions& options) {
  const bool server = arguments.role == "server";
  if (server && options.rank != 0) {
    throw InvalidArgument(fmt::format("lepton federated: --role server needs rank 0, but the rank is {}; give the "
                                      "server --rank 0 and the clients 1 to N-1",
                                      options.rank));
  }
  if (!server && options.rank == 0) {
    throw InvalidArgument("lepton federated: --role client needs a rank of at least 1, but the rank is 0; rank 0 is "
                          "the server");
  }
  if (options.world_size < 2) {
    throw InvalidArgument(fmt::format("lepton federated: the world size is {}; pass --world-size with the server "
                                      "and at least one client, e.g. 3 for two clients",
                                      options.world_size));
  }
  if (server && !arguments.data_path.empty()) {
    throw InvalidArgument(fmt::format("lepton federated: --data {} was given to the server, which has no data; pass "
                                      "each CSV to its client",
                                      arguments.data_path));
  }
  if (server && arguments.output_dir.empty()) {
    throw InvalidArgument("lepton federated: the server needs --out, the folder for model.lepton and federated.json");
  }
  if (!server && arguments.data_path.empty()) {
    throw InvalidArgument(fmt::format("lepton federated: client rank {} needs --data with its own CSV file",
                                      options.rank));
  }
}

// Settings that the group agrees on before training: one configuration, one target encoding, one preprocessor.
struct FederatedSetup {
  ModelConfig config;
  TargetEncoding target;
  Preprocessor preprocessor;
};

// One client's data after the shared setup.
struct ClientData {
  Table table;
  Split split;
  std::vector<std::int64_t> labels;  // Classification: class id of every row.
  TrainingData train, validation;
};

bool is_classification(Task task) { return task != Task::Regression; }

std::string quoted_csv_field(const std::string& text) {
  std::string quoted = "\"";
  for (const char c : text) {
    quoted += c;
    if (c == '"') quoted += '"';
  }
  return quoted + "\"";
}

// The class labels of every client, merged in the order TargetEncoding::fit sorts them (numerically when
// all are numbers). Only the label set leaves a client, never a row.
TargetEncoding merged_classes(ProcessGroup& group, const Requirements& requirements, const Table* table) {
  nlohmann::json mine = nlohmann::json::array();
  if (table != nullptr) {
    // A client may see a single class, so its labels are read here without TargetEncoding's class-count
    // check. Missing labels are left to encode_labels, which reports their row.
    const std::size_t column = table->column_index(requirements.target);
    std::set<std::string> labels;
    for (std::size_t row = 0; row < table->rows(); ++row) {
      const std::string label(table->cell(row, column));
      if (!label.empty()) labels.insert(label);
    }
    mine = labels;
  }

  std::set<std::string> all;
  for (const std::string& text : group.all_gather_bytes(mine.dump())) {
    for (const auto& label : nlohmann::json::parse(text)) all.insert(label.get<std::string>());
  }

  std::string csv = quoted_csv_field(requirements.target) + "\n";
  for (const std::string& label : all) csv += quoted_csv_field(label) + "\n";
  const Table union_table = parse_csv(csv, "the clients' class labels");
  std::vector<std::size_t> rows(union_table.rows());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  return TargetEncoding::fit(union_table, requirements.target, requirements.task, rows);
}

// The regression target's mean and population scale over every client's training rows, pooled exactly
// from per-client (rows, mean, scale) as federated_preprocessor pools the features.
TargetEncoding pooled_regression_target(ProcessGroup& group, const Requirements& requirements,
                                        const TargetEncoding* local, std::size_t rows) {
  const nlohmann::json mine = local == nullptr ? nlohmann::json{0.0, 0.0, 0.0}
                                               : nlohmann::json{static_cast<double>(rows), local->mean, local->scale};
  double count = 0, sum = 0, squares = 0;
  for (const std::string& text : group.all_gather_bytes(mine.dump())) {
    const nlohmann::json j = nlohmann::json::parse(text);
    const double n = j[0].get<double>(), mean = j[1].get<double>(), scale = j[2].get<double>();
    count += n;
    sum += n * mean;
    squares += n * (scale * scale + mean * mean);
  }

  TargetEncoding target;
  target.task = Task::Regression;
  target.column = requirements.target;
  target.mean = sum / count;
  const double variance = squares / count - target.mean * target.mean;
  target.scale = variance > 0 && std::isfinite(variance) ? std::sqrt(variance) : 1.0;
  return target;
}

// Prefixes a key file's load error with the variable that named the file, because the path alone does not
// tell the user where it came from.
std::string key_file_error_message(const char* variable, const std::string& path, const Error& error) {
  return fmt::format("{} (also set by --pii-key-file) names the key file '{}', which failed to load: {}", variable,
                     path, error.what());
}

// Reads the PII hashing key from LEPTON_PII_KEY or from the file that LEPTON_PII_KEY_FILE names. An error
// about that file names the variable. Errors about LEPTON_PII_KEY itself name it already.
std::optional<EncryptionKey> client_pii_key() {
  const char* hex = std::getenv(detail::kPiiKeyVariable);
  const char* file = std::getenv(detail::kPiiKeyFileVariable);
  const bool from_file = (hex == nullptr || *hex == '\0') && file != nullptr && *file != '\0';
  try {
    return detail::pii_key_from_environment();
  } catch (const FileNotFound& error) {
    if (!from_file) throw;
    throw FileNotFound(key_file_error_message(detail::kPiiKeyFileVariable, file, error));
  } catch (const IoError& error) {
    if (!from_file) throw;
    throw IoError(key_file_error_message(detail::kPiiKeyFileVariable, file, error));
  } catch (const InvalidArgument& error) {
    if (!from_file) throw;
    throw InvalidArgument(key_file_error_message(detail::kPiiKeyFileVariable, file, error));
  }
}

Table read_client_table(const Requirements& requirements, const std::string& path) {
  const std::optional<EncryptionKey> pii_key =
      requirements.pii_handling == PiiHandling::Hash ? client_pii_key() : std::nullopt;
  Table table = detail::mask_pii(parse_csv(read_file(path), path), requirements, pii_key);
  if (table.rows() == 0) {
    throw ParseError(fmt::format("{}: the file has a header but no data rows; every client needs rows to train on",
                                 path));
  }
  table.column_index(requirements.target);  // Throws "column not found; did you mean" for a wrong target.
  return table;
}

TrainingData encode_rows(const Table& table, const FederatedSetup& setup, const ClientData& client,
                         const std::vector<std::size_t>& rows) {
  TrainingData data;
  data.features = setup.preprocessor.transform(table, rows);
  if (is_classification(setup.target.task)) {
    for (const std::size_t row : rows) data.labels.push_back(client.labels[row]);
  } else {
    for (const double value : setup.target.encode_values(table, rows)) {
      data.values.push_back((value - setup.target.mean) / setup.target.scale);
    }
  }
  return data;
}

// One configuration for the group: client rank 1's, with the union of the features that any client
// selected. A column that is constant at one site, such as AI4I's Type when a site makes one product type,
// is dropped by that site's configurator but may matter across sites.
ModelConfig agree_on_config(ProcessGroup& group, const Requirements& requirements, const ClientData* client) {
  std::string mine = "null";
  if (client != nullptr) {
    ModelConfig config = configure(requirements, profile_table(client->table, requirements.target, requirements.task));
    // The configurator solves the multiplier for a single run; each client solves it for all rounds instead.
    config.noise_multiplier = 0;
    mine = config.to_json().dump();
  }

  const std::vector<std::string> all = group.all_gather_bytes(mine);
  nlohmann::json config = nlohmann::json::parse(all.at(1));
  nlohmann::json& features = config.at("features");
  for (std::size_t rank = 2; rank < all.size(); ++rank) {
    const nlohmann::json other = nlohmann::json::parse(all[rank]);
    for (const nlohmann::json& feature : other.at("features")) {
      const auto same_column = [&feature](const nlohmann::json& known) {
        return known.at("column") == feature.at("column");
      };
      const auto known = std::find_if(features.begin(), features.end(), same_column);
      if (known == features.end()) {
        features.push_back(feature);
      } else if (*known != feature) {
        throw InvalidArgument(fmt::format("lepton federated: client rank {} configures feature {} but client rank 1 "
                                          "configures {}; list the feature with its type in the requirements' "
                                          "\"features\"",
                                          rank, feature.dump(), known->dump()));
      }
    }
  }
  return ModelConfig::from_json(config, "$client_config");
}

// Agrees on the configuration, the target encoding and the preprocessor, and encodes this client's rows.
// `client` is null on the server.
FederatedSetup agree_on_setup(ProcessGroup& group, const Requirements& requirements, ClientData* client) {
  FederatedSetup setup;
  setup.config = agree_on_config(group, requirements, client);

  std::optional<Preprocessor> local;
  std::optional<TargetEncoding> local_target;
  if (client != nullptr) {
    std::vector<std::size_t> all_rows(client->table.rows());
    for (std::size_t i = 0; i < all_rows.size(); ++i) all_rows[i] = i;
    if (is_classification(requirements.task)) {
      setup.target = merged_classes(group, requirements, &client->table);
      client->labels = setup.target.encode_labels(client->table, all_rows);
      client->split = stratified_split(client->labels, requirements.split, requirements.seed);
    } else {
      client->split = random_split(client->table.rows(), requirements.split, requirements.seed);
      local_target = TargetEncoding::fit(client->table, requirements.target, requirements.task, client->split.train);
    }
    local = Preprocessor::fit(client->table, setup.config.features, client->split.train);
  } else if (is_classification(requirements.task)) {
    setup.target = merged_classes(group, requirements, nullptr);
  }
  if (!is_classification(requirements.task)) {
    setup.target = pooled_regression_target(group, requirements, local_target ? &*local_target : nullptr,
                                            client != nullptr ? client->split.train.size() : 0);
  }

  // NOTE: a multiclass config needs one class weight per class of the union; client rank 1's config has
  // one per class that client saw.
  if (setup.config.task == Task::MulticlassClassification &&
      setup.config.class_weights.size() != setup.target.classes.size()) {
    throw InvalidArgument(fmt::format("lepton federated: the clients together have {} classes but client rank 1 "
                                      "configured {} class weights; give client rank 1 rows of every class",
                                      setup.target.classes.size(), setup.config.class_weights.size()));
  }

  setup.preprocessor = federated_preprocessor(group, local ? &*local : nullptr,
                                              client != nullptr ? client->split.train.size() : 0);
  if (client != nullptr) {
    client->train = encode_rows(client->table, setup, *client, client->split.train);
    client->validation = encode_rows(client->table, setup, *client, client->split.validation);
  }
  return setup;
}

ModelArtifact federated_artifact(const FederatedSetup& setup, const Requirements& requirements, const Mlp& network) {
  ModelArtifact artifact;
  artifact.task = requirements.task;
  artifact.preprocessor = setup.preprocessor;
  artifact.target = setup.target;
  artifact.network = network;
  // NOTE: the binary threshold stays at 0.5, because choosing it on validation rows would need the clients'
  // confusion counts per candidate threshold.
  artifact.threshold = 0.5;
  artifact.configuration = setup.config.to_json();
  artifact.provenance.lepton_version = LEPTON_VERSION_STRING;
  artifact.provenance.data_file = "federated";
  artifact.provenance.requirements_sha256 = sha256_hex(requirements.to_json().dump());
  artifact.provenance.seed = requirements.seed;
  return artifact;
}

// This client's test metrics with the global model, as JSON. Only these aggregates leave the client.
nlohmann::json client_test_metrics(const ModelArtifact& artifact, const ClientData& client) {
  const Predictor predictor(artifact);
  const Predictions predictions =
      predictor.predict(artifact.preprocessor.transform(client.table, client.split.test));
  if (is_classification(artifact.task)) {
    std::vector<std::int64_t> truth;
    for (const std::size_t row : client.split.test) truth.push_back(client.labels[row]);
    return evaluate(predictions, truth).to_json();
  }
  return evaluate(predictions, artifact.target.encode_values(client.table, client.split.test)).to_json();
}

nlohmann::json federated_summary(const FederatedArguments& arguments, const FederatedResult& result,
                                 const std::vector<std::string>& client_metrics) {
  nlohmann::json rounds = nlohmann::json::array();
  for (const FederatedRound& round : result.rounds) {
    rounds.push_back({{"round", round.round},
                      {"samples", round.samples},
                      {"mean_train_loss", round.mean_train_loss},
                      {"seconds", round.seconds}});
  }
  nlohmann::json clients = nlohmann::json::array();
  for (std::size_t k = 1; k < client_metrics.size(); ++k) {
    nlohmann::json client = {{"rank", k}, {"test", nlohmann::json::parse(client_metrics[k])}};
    if (k - 1 < result.client_privacy.size()) client["privacy"] = result.client_privacy[k - 1].to_json();
    clients.push_back(std::move(client));
  }
  return {{"rounds_requested", arguments.rounds},
          {"local_epochs", arguments.local_epochs},
          {"fedprox_mu", arguments.proximal_mu},
          {"secure_aggregation", arguments.secure_aggregation},
          {"stop_reason", result.stop_reason},
          {"rounds", rounds},
          {"clients", clients},
          {"communication",
           {{"payload_bytes", result.communication.payload_bytes}, {"seconds", result.communication.seconds}}}};
}

int federated_command(const FederatedArguments& arguments) {
  const DistributedOptions options = group_options(arguments.group);
  check_federated_arguments(arguments, options);
  check_input_file("--requirements", arguments.requirements_path);
  const Requirements requirements = load_requirements(arguments.requirements_path);
  const bool server = arguments.role == "server";
  if (!server) check_input_file("--data", arguments.data_path);

  std::optional<ClientData> client;
  if (!server) {
    client.emplace();
    client->table = read_client_table(requirements, arguments.data_path);
  }
  if (server) {
    std::error_code io_error;
    std::filesystem::create_directories(arguments.output_dir, io_error);
    if (io_error) {
      throw IoError(fmt::format("lepton federated: cannot create output folder '{}': {}", arguments.output_dir,
                                io_error.message()));
    }
  }

  ProcessGroup group = ProcessGroup::join(options);
  const FederatedSetup setup = agree_on_setup(group, requirements, client ? &*client : nullptr);

  const FederatedOptions federated = FederatedOptions()
                                         .with_rounds(arguments.rounds)
                                         .with_local_epochs(arguments.local_epochs)
                                         .with_proximal_mu(arguments.proximal_mu)
                                         .with_secure_aggregation(arguments.secure_aggregation);
  FederatedResult result;
  if (server) {
    result = run_federated_server(group, federated, setup.config);
  } else {
    TrainerOptions trainer;
    trainer.with_config(setup.config).with_threads(arguments.threads);
    result = run_federated_client(group, federated, trainer, client->train, client->validation);
  }

  ModelArtifact artifact = federated_artifact(setup, requirements, result.network);
  const std::string metrics = client ? client_test_metrics(artifact, *client).dump() : "null";
  const std::vector<std::string> all_metrics = group.all_gather_bytes(metrics);

  if (!server) {
    std::cout << fmt::format("client rank {}: {} rounds ({}), test metrics {}\n", group.rank(), result.rounds.size(),
                             result.stop_reason, metrics);
    if (result.privacy) {
      std::cout << fmt::format("client rank {}: DP-SGD spent epsilon {:.4f} of {:g} over {} steps\n", group.rank(),
                               result.privacy->epsilon, result.privacy->target_epsilon, result.privacy->steps);
    }
    return 0;
  }

  const nlohmann::json summary = federated_summary(arguments, result, all_metrics);
  artifact.metrics = {{"federated_clients", summary["clients"]}};
  if (!result.client_privacy.empty()) {
    nlohmann::json spent = nlohmann::json::array();
    for (const PrivacySpent& client_spent : result.client_privacy) spent.push_back(client_spent.to_json());
    artifact.extensions["privacy"] = {{"federated_dp_sgd", spent}};
  }
  const std::filesystem::path out(arguments.output_dir);
  save_artifact(artifact, (out / "model.lepton").string());
  write_file_atomically((out / "federated.json").string(), summary.dump(2) + "\n");
  // An earlier run's checkpoints, reports or int8 export in the folder would read as this model's, so they are
  // removed, as after `lepton run`. Removing them only after the writes keeps the earlier run if this one fails.
  detail::apply_checkpoint_plan(detail::plan_checkpoints((out / "checkpoint.pt").string(), 1, /*resume=*/false));
  detail::remove_outputs_not_written(out, {"model.lepton", "federated.json"});
  std::cout << fmt::format("server: {} rounds with {} clients ({}); wrote {}/model.lepton and federated.json\n",
                           result.rounds.size(), group.world_size() - 1, result.stop_reason, arguments.output_dir);
  return 0;
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

  return group_options(g_run_flags);
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

  add_federated_command(app);
}

std::optional<int> run_distributed_command() {
  if (g_launch_command != nullptr && g_launch_command->parsed()) {
    return launch_command(g_launch);
  }
  if (g_federated_command != nullptr && g_federated_command->parsed()) {
    return federated_command(g_federated);
  }
  return std::nullopt;
}

}  // namespace lepton::cli
