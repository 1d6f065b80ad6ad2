// Measures the seconds per training epoch of the seed configuration: MLP 8-128-64-1, ReLU, batch 32,
// 6,000 training rows, 2,000 validation rows, 1 thread. Prints the mean over the timed epochs and the
// ratio to 0.072 s, the epoch time of the same loop in PyTorch 1.13 from Python on the development machine.
//
// Usage: bench_train_epoch [epochs]   (default 30; the first epoch is a warm-up and is not timed)
#include <cstdio>
#include <cstdlib>
#include <random>

#include "lepton/trainer.hpp"

namespace {

constexpr double kPythonSecondsPerEpoch = 0.072;

// Random rows with a linear rule as the label, at the failure rate of AI4I (about 3.4 % positives).
lepton::TrainingData synthetic(std::size_t rows, std::uint32_t seed) {
  std::mt19937 engine(seed);
  std::normal_distribution<float> normal;

  lepton::TrainingData data;
  data.features = lepton::Matrix(rows, 8);
  for (std::size_t r = 0; r < rows; ++r) {
    float score = 0;
    for (std::size_t c = 0; c < 8; ++c) {
      data.features(r, c) = normal(engine);
      score += data.features(r, c) * static_cast<float>(c % 3);
    }
    data.labels.push_back(score > 5.0f ? 1 : 0);
  }
  return data;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t epochs = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 30;
  if (epochs < 2) {
    std::fprintf(stderr, "bench_train_epoch: epochs is %zu, expected at least 2\n", epochs);
    return 2;
  }

  lepton::ModelConfig config;
  config.hidden_units = {128, 64};
  config.batch_size = 32;
  config.learning_rate = 1e-3;
  config.lr_schedule = "constant";
  config.max_epochs = epochs;
  config.patience = 0;

  const lepton::TrainingData train = synthetic(6000, 1);
  const lepton::TrainingData validation = synthetic(2000, 2);

  lepton::TrainerOptions options;
  options.with_config(config).with_threads(1);
  const lepton::TrainingResult result = lepton::Trainer(options).fit(train, validation);

  // elapsed_seconds is cumulative, so the difference skips the first epoch's one-time costs.
  const double timed = result.history.back().elapsed_seconds - result.history.front().elapsed_seconds;
  const double per_epoch = timed / static_cast<double>(result.history.size() - 1);
  std::printf("seconds per epoch (train + validation): %.4f over %zu epochs\n", per_epoch,
              result.history.size() - 1);
  std::printf("ratio to PyTorch from Python (%.3f s): %.2f\n", kPythonSecondsPerEpoch,
              per_epoch / kPythonSecondsPerEpoch);
  return 0;
}
