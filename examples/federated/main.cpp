// Federated training on AI4I 2020 split into three sites by product quality (Type L, M, H), which makes the
// sites' data non-IID. The program splits the CSV into three files in an output folder and starts a server
// and three clients as child processes of itself on 127.0.0.1. Then it trains two baselines in this
// process: a centralised model on the union of the sites' training rows, and one model per site alone.
// Every model is scored by F1 on the union of the sites' test rows.
//
//   federated_example [ai4i2020.csv] [output folder] [rounds] [local epochs]
//
// The clients fit one shared preprocessor from per-column statistics, train FedAvg rounds with secure
// aggregation, and choose the decision threshold and score F1 from summed confusion counts, so no row
// leaves its site.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lepton/dataset.hpp"
#include "lepton/distributed.hpp"
#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "lepton/preprocess.hpp"
#include "lepton/table.hpp"
#include "lepton/trainer.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace lepton;

const std::vector<std::string> kSites{"L", "M", "H"};
const std::string kTarget = "Machine failure";
constexpr std::uint64_t kSeed = 42;
constexpr std::size_t kThresholds = 99;  // Candidate thresholds 0.01, 0.02, ..., 0.99.

std::vector<FeatureSpec> feature_specs() {
  return {{"Type", FeatureType::Categorical},          {"Air temperature [K]", FeatureType::Numeric},
          {"Process temperature [K]", FeatureType::Numeric}, {"Rotational speed [rpm]", FeatureType::Numeric},
          {"Torque [Nm]", FeatureType::Numeric},       {"Tool wear [min]", FeatureType::Numeric}};
}

ModelConfig model_config(std::size_t epochs) {
  ModelConfig config;
  config.hidden_units = {64, 32};
  config.batch_size = 64;
  config.learning_rate = 3e-3;
  config.lr_schedule = "constant";
  config.max_epochs = epochs;
  config.patience = 0;
  config.positive_class_weight = 5;  // About 3.4% of AI4I rows are failures.
  config.seed = kSeed;
  return config;
}

// One site's table and its stratified split (60/20/20, seed kSeed).
struct Site {
  Table table;
  std::vector<std::int64_t> labels;
  Split split;
};

Site load_site(const std::string& path) {
  Site site;
  site.table = read_csv(path);
  TargetEncoding target;
  target.task = Task::BinaryClassification;
  target.column = kTarget;
  target.classes = {"0", "1"};
  std::vector<std::size_t> rows(site.table.rows());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  site.labels = target.encode_labels(site.table, rows);
  site.split = stratified_split(site.labels, SplitFractions{}, kSeed);
  return site;
}

TrainingData encode(const Site& site, const Preprocessor& preprocessor, const std::vector<std::size_t>& rows) {
  TrainingData data;
  data.features = preprocessor.transform(site.table, rows);
  for (const std::size_t row : rows) data.labels.push_back(site.labels[row]);
  return data;
}

// Writes one CSV per Type value into `folder`, keeping the header and the CRLF line ends of the source.
std::vector<std::string> split_by_type(const std::string& source, const fs::path& folder) {
  std::ifstream in(source, std::ios::binary);
  if (!in) throw FileNotFound(fmt::format("{}: file not found; pass the path of ai4i2020.csv", source));
  std::string header;
  std::getline(in, header);

  std::map<std::string, std::ofstream> outputs;
  std::vector<std::string> paths;
  for (const std::string& type : kSites) {
    paths.push_back((folder / fmt::format("site_{}.csv", type)).string());
    outputs[type].open(paths.back(), std::ios::binary);
    outputs[type] << header << "\n";
  }
  std::string line;
  while (std::getline(in, line)) {
    // Columns: UDI, Product ID, Type, ... so Type is the third field.
    const std::size_t first = line.find(',');
    const std::size_t second = line.find(',', first + 1);
    const std::string type = line.substr(second + 1, line.find(',', second + 1) - second - 1);
    outputs.at(type) << line << "\n";
  }
  return paths;
}

// Sigmoid outputs of a binary MLP for each row of `features`.
std::vector<double> probabilities(const Mlp& network, const Matrix& features) {
  std::vector<double> result;
  for (std::size_t r = 0; r < features.rows; ++r) {
    std::vector<double> h(features.data.begin() + static_cast<std::ptrdiff_t>(r * features.cols),
                          features.data.begin() + static_cast<std::ptrdiff_t>((r + 1) * features.cols));
    for (const DenseLayer& layer : network.layers) {
      std::vector<double> next(layer.outputs);
      for (std::size_t o = 0; o < layer.outputs; ++o) {
        double sum = layer.bias[o];
        for (std::size_t i = 0; i < layer.inputs; ++i) sum += layer.weight[o * layer.inputs + i] * h[i];
        next[o] = layer.activation == Activation::Relu ? std::max(0.0, sum) : sum;
      }
      h = std::move(next);
    }
    result.push_back(1.0 / (1.0 + std::exp(-h[0])));
  }
  return result;
}

// Confusion counts (TP, FP, FN) at each candidate threshold, laid out [t * 3 + k].
std::vector<double> confusion_counts(const std::vector<double>& probability, const std::vector<std::int64_t>& truth) {
  std::vector<double> counts(kThresholds * 3, 0.0);
  for (std::size_t t = 0; t < kThresholds; ++t) {
    const double threshold = static_cast<double>(t + 1) / (kThresholds + 1);
    for (std::size_t i = 0; i < truth.size(); ++i) {
      const bool predicted = probability[i] >= threshold;
      counts[t * 3 + 0] += predicted && truth[i] == 1;
      counts[t * 3 + 1] += predicted && truth[i] == 0;
      counts[t * 3 + 2] += !predicted && truth[i] == 1;
    }
  }
  return counts;
}

double f1_at(const std::vector<double>& counts, std::size_t t) {
  const double denominator = 2 * counts[t * 3] + counts[t * 3 + 1] + counts[t * 3 + 2];
  return denominator > 0 ? 2 * counts[t * 3] / denominator : 0.0;
}

std::size_t best_threshold(const std::vector<double>& validation_counts) {
  std::size_t best = 0;
  for (std::size_t t = 1; t < kThresholds; ++t) {
    if (f1_at(validation_counts, t) > f1_at(validation_counts, best)) best = t;
  }
  return best;
}

// ------------------------------------------------------------------------------------------------
// Federated ranks

int run_rank(const fs::path& folder, std::size_t rounds, std::size_t local_epochs) {
  ProcessGroup group = ProcessGroup::join(DistributedOptions::from_environment());
  const FederatedOptions options = FederatedOptions().with_rounds(rounds).with_local_epochs(local_epochs).with_secure_aggregation(true);
  const ModelConfig config = model_config(1);

  std::vector<double> validation_counts(kThresholds * 3, 0.0);
  std::vector<double> test_counts(kThresholds * 3, 0.0);
  FederatedResult result;
  if (group.rank() == 0) {
    federated_preprocessor(group, nullptr, 0);
    result = run_federated_server(group, options, config);
  } else {
    const Site site = load_site(std::getenv("LEPTON_EXAMPLE_SITE"));
    const Preprocessor local = Preprocessor::fit(site.table, feature_specs(), site.split.train);
    const Preprocessor shared = federated_preprocessor(group, &local, site.split.train.size());
    const TrainingData train = encode(site, shared, site.split.train);
    const TrainingData validation = encode(site, shared, site.split.validation);
    const TrainingData test = encode(site, shared, site.split.test);

    TrainerOptions trainer;
    trainer.with_config(config);
    result = run_federated_client(group, options, trainer, train, validation);
    validation_counts = confusion_counts(probabilities(result.network, validation.features), validation.labels);
    test_counts = confusion_counts(probabilities(result.network, test.features), test.labels);
  }

  // Only summed confusion counts leave the sites.
  group.all_reduce_sum(validation_counts.data(), validation_counts.size());
  group.all_reduce_sum(test_counts.data(), test_counts.size());
  const std::size_t threshold = best_threshold(validation_counts);
  if (group.rank() == 0) {
    const nlohmann::json summary = {{"f1", f1_at(test_counts, threshold)},
                                    {"local_epochs", local_epochs},
                                    {"threshold", static_cast<double>(threshold + 1) / (kThresholds + 1)},
                                    {"rounds", rounds},
                                    {"payload_bytes", result.communication.payload_bytes},
                                    {"seconds", result.communication.seconds}};
    write_file_atomically((folder / "federated.json").string(), summary.dump(2) + "\n");
  }
  return 0;
}

std::vector<pid_t> start_ranks(const std::vector<std::string>& sites, const fs::path& folder, std::size_t rounds,
                               std::size_t local_epochs) {
  const int port = find_free_port();
  std::vector<pid_t> pids;
  for (std::size_t rank = 0; rank <= sites.size(); ++rank) {
    std::vector<std::string> entries;
    for (char** variable = environ; *variable != nullptr; ++variable) entries.emplace_back(*variable);
    entries.push_back(fmt::format("RANK={}", rank));
    entries.push_back(fmt::format("WORLD_SIZE={}", sites.size() + 1));
    entries.push_back("MASTER_ADDR=127.0.0.1");
    entries.push_back(fmt::format("MASTER_PORT={}", port));
    entries.push_back("LEPTON_DIST_TIMEOUT=60");
    if (rank > 0) entries.push_back("LEPTON_EXAMPLE_SITE=" + sites[rank - 1]);
    std::vector<char*> envp;
    for (std::string& entry : entries) envp.push_back(entry.data());
    envp.push_back(nullptr);

    std::string executable = fs::read_symlink("/proc/self/exe").string();
    std::string mode = "--rank-of";
    std::string output = folder.string();
    std::string round_text = std::to_string(rounds);
    std::string epoch_text = std::to_string(local_epochs);
    std::vector<char*> argv{executable.data(), mode.data(), output.data(), round_text.data(), epoch_text.data(),
                            nullptr};
    pid_t pid = 0;
    if (posix_spawn(&pid, executable.c_str(), nullptr, nullptr, argv.data(), envp.data()) != 0) {
      throw IoError(fmt::format("cannot start rank {} from {}", rank, executable));
    }
    pids.push_back(pid);
  }
  return pids;
}

// ------------------------------------------------------------------------------------------------
// Baselines in this process

// Global rows of the full table for local rows `rows` of a site.
std::vector<std::size_t> to_global(const std::vector<std::size_t>& site_rows, const std::vector<std::size_t>& rows) {
  std::vector<std::size_t> global;
  for (const std::size_t row : rows) global.push_back(site_rows[row]);
  return global;
}

// Trains on the training rows of `train_sites` (preprocessor fitted on them), chooses the threshold on their
// validation rows and returns F1 on the test rows of every site. `full` is the whole AI4I file, whose rows
// of type kSites[s] in file order are site s's rows, `site_rows[s]`.
double baseline_f1(const Site& full, const std::vector<Site>& sites,
                   const std::vector<std::vector<std::size_t>>& site_rows, const std::vector<std::size_t>& train_sites,
                   std::size_t epochs) {
  std::vector<std::size_t> train_rows, validation_rows, test_rows;
  for (const std::size_t s : train_sites) {
    for (const std::size_t row : to_global(site_rows[s], sites[s].split.train)) train_rows.push_back(row);
    for (const std::size_t row : to_global(site_rows[s], sites[s].split.validation)) validation_rows.push_back(row);
  }
  for (std::size_t s = 0; s < sites.size(); ++s) {
    for (const std::size_t row : to_global(site_rows[s], sites[s].split.test)) test_rows.push_back(row);
  }

  const Preprocessor preprocessor = Preprocessor::fit(full.table, feature_specs(), train_rows);
  const TrainingData train = encode(full, preprocessor, train_rows);
  const TrainingData validation = encode(full, preprocessor, validation_rows);
  const TrainingData test = encode(full, preprocessor, test_rows);

  TrainerOptions trainer;
  trainer.with_config(model_config(epochs));
  trainer.restore_best = false;
  const Mlp network = Trainer(trainer).fit(train, validation).network;

  const std::size_t threshold =
      best_threshold(confusion_counts(probabilities(network, validation.features), validation.labels));
  return f1_at(confusion_counts(probabilities(network, test.features), test.labels), threshold);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 5 && std::string(argv[1]) == "--rank-of") {
      return run_rank(argv[2], std::stoul(argv[3]), std::stoul(argv[4]));
    }

    const std::string data = argc > 1 ? argv[1] : "ai4i2020.csv";
    const fs::path folder = argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path() / "lepton-federated-example";
    const std::size_t rounds = argc > 3 ? std::stoul(argv[3]) : 30;
    const std::size_t local_epochs = argc > 4 ? std::stoul(argv[4]) : 1;
    const std::size_t epochs = rounds * local_epochs;
    fs::create_directories(folder);

    const std::vector<std::string> site_paths = split_by_type(data, folder);
    const auto start = std::chrono::steady_clock::now();
    int failures = 0;
    for (const pid_t pid : start_ranks(site_paths, folder, rounds, local_epochs)) {
      int status = 0;
      waitpid(pid, &status, 0);
      failures += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    if (failures > 0) {
      std::cerr << fmt::format("error: {} federated ranks failed; see their messages above\n", failures);
      return 1;
    }
    const double federated_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const nlohmann::json federated = nlohmann::json::parse(read_file((folder / "federated.json").string()));

    const Site full = load_site(data);
    const std::size_t type_column = full.table.column_index("Type");
    std::vector<std::vector<std::size_t>> site_rows(kSites.size());
    for (std::size_t row = 0; row < full.table.rows(); ++row) {
      for (std::size_t s = 0; s < kSites.size(); ++s) {
        if (full.table.cell(row, type_column) == kSites[s]) site_rows[s].push_back(row);
      }
    }
    std::vector<Site> sites;
    for (const std::string& path : site_paths) sites.push_back(load_site(path));
    std::cout << fmt::format("sites: L {} rows, M {} rows, H {} rows\n", sites[0].table.rows(), sites[1].table.rows(),
                             sites[2].table.rows());
    std::cout << fmt::format("federated ({} rounds x {} local epochs, secure aggregation): F1 {:.4f}  ({:.1f} s, "
                             "{} bytes sent per rank)\n",
                             rounds, local_epochs, federated["f1"].get<double>(), federated_seconds,
                             federated["payload_bytes"].get<std::uint64_t>());
    std::cout << fmt::format("centralised ({} epochs on all sites' training rows): F1 {:.4f}\n", epochs,
                             baseline_f1(full, sites, site_rows, {0, 1, 2}, epochs));
    for (std::size_t s = 0; s < sites.size(); ++s) {
      std::cout << fmt::format("site {} alone ({} epochs): F1 {:.4f}\n", kSites[s], epochs,
                               baseline_f1(full, sites, site_rows, {s}, epochs));
    }
    std::cout << "F1 is measured on the union of the three sites' test rows.\n";
    return 0;
  } catch (const Error& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
}
