// DP-SGD epoch time against the non-private epoch on the AI4I model (the configurator's 128-64 MLP, batch
// 256, 6,000 training rows). Run: build/tests/bench_dp_epoch [EPOCHS] [DATA]. Prints the median epoch time
// of each mode, their ratio, and the extra memory that per-sample clipping needs.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "lepton/dataset.hpp"
#include "lepton/preprocess.hpp"
#include "lepton/table.hpp"
#include "lepton/trainer.hpp"

namespace {

struct Ai4iData {
  lepton::TrainingData train, validation;
};

Ai4iData load(const std::string& path) {
  const lepton::Table table = lepton::read_csv(path);
  const std::vector<lepton::FeatureSpec> features{{"Type", lepton::FeatureType::Categorical},
                                                  {"Air temperature [K]", lepton::FeatureType::Numeric},
                                                  {"Process temperature [K]", lepton::FeatureType::Numeric},
                                                  {"Rotational speed [rpm]", lepton::FeatureType::Numeric},
                                                  {"Torque [Nm]", lepton::FeatureType::Numeric},
                                                  {"Tool wear [min]", lepton::FeatureType::Numeric}};
  std::vector<std::size_t> all_rows(table.rows());
  for (std::size_t i = 0; i < all_rows.size(); ++i) all_rows[i] = i;

  const auto target =
      lepton::TargetEncoding::fit(table, "Machine failure", lepton::Task::BinaryClassification, all_rows);
  const lepton::Split split = lepton::stratified_split(target.encode_labels(table, all_rows), {}, 42);
  const auto preprocessor = lepton::Preprocessor::fit(table, features, split.train);

  Ai4iData data;
  data.train.features = preprocessor.transform(table, split.train);
  data.train.labels = target.encode_labels(table, split.train);
  data.validation.features = preprocessor.transform(table, split.validation);
  data.validation.labels = target.encode_labels(table, split.validation);
  return data;
}

// Median seconds per epoch, from the elapsed time that each epoch record carries.
double median_epoch_seconds(const lepton::ModelConfig& config, const Ai4iData& data) {
  std::vector<double> durations;
  double previous = 0;
  lepton::TrainerOptions options;
  options.with_config(config).with_progress([&](const lepton::EpochRecord& record) {
    durations.push_back(record.elapsed_seconds - previous);
    previous = record.elapsed_seconds;
  });
  lepton::Trainer(options).fit(data.train, data.validation);

  std::sort(durations.begin(), durations.end());
  return durations[durations.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t epochs = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 15;
  const std::string path = argc > 2 ? argv[2] : LEPTON_SHARED_DIR "/data/ai4i2020.csv";
  const Ai4iData data = load(path);

  lepton::ModelConfig config;
  config.hidden_units = {128, 64};
  config.batch_size = 256;
  config.max_epochs = epochs;
  config.patience = 0;
  config.positive_class_weight = 5.3;
  const double plain = median_epoch_seconds(config, data);

  config.privacy = lepton::PrivacyBudget{8.0, 1e-5, 1.0};
  config.noise_multiplier = 1.0;
  const double private_seconds = median_epoch_seconds(config, data);

  std::size_t parameters = 0, widths = 0;
  std::size_t inputs = data.train.features.cols;
  for (std::size_t width : {std::size_t{128}, std::size_t{64}, std::size_t{1}}) {
    parameters += inputs * width + width;
    widths += width;
    inputs = width;
  }
  const double deltas_kib = 256.0 * static_cast<double>(widths) * 4 / 1024;
  const double materialized_kib = 256.0 * static_cast<double>(parameters) * 4 / 1024;

  std::printf("rows %zu, parameters %zu, expected batch 256, %zu epochs, 1 thread\n", data.train.features.rows,
              parameters, epochs);
  std::printf("non-private epoch  %.4f s (median)\n", plain);
  std::printf("DP-SGD epoch       %.4f s (median)\n", private_seconds);
  std::printf("ratio              %.2fx (target: at most 3x)\n", private_seconds / plain);
  std::printf("per-sample state   %.0f KiB of deltas per expected batch (a [B x P] per-sample gradient would be "
              "%.0f KiB), plus one %zu-float noise buffer\n",
              deltas_kib, materialized_kib, parameters);
  return private_seconds <= 3.0 * plain ? 0 : 1;
}
