// DP-SGD in the trainer: per-sample clipping against a brute-force reference, equivalence with plain
// training without noise and clipping, noise scale, Poisson sampling, the budget stop and encrypted
// checkpoints.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "lepton/crypto.hpp"
#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "lepton/privacy.hpp"
#include "lepton/trainer.hpp"
#include "train/privacy_random.hpp"

namespace fs = std::filesystem;
using namespace lepton;

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Two Gaussian blobs; a few rows are scaled up so that their gradients are far above the others'.
TrainingData blobs(std::size_t rows, std::size_t width, std::uint32_t seed, float outlier_scale = 1.0f) {
  std::mt19937 engine(seed);
  std::normal_distribution<float> normal;

  TrainingData data;
  data.features = Matrix(rows, width);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::int64_t label = r % 2 == 0 ? 1 : 0;
    const float scale = r % 5 == 0 ? outlier_scale : 1.0f;
    for (std::size_t c = 0; c < width; ++c) {
      data.features(r, c) = scale * (normal(engine) + (label == 1 ? 1.0f : -1.0f));
    }
    data.labels.push_back(label);
    data.values.push_back(0.7 * data.features(r, 0) - 0.3 * data.features(r, width - 1));
  }
  return data;
}

TrainingData only_row(const TrainingData& data, std::size_t row) {
  TrainingData one;
  one.features = Matrix(1, data.features.cols);
  for (std::size_t c = 0; c < data.features.cols; ++c) one.features(0, c) = data.features(row, c);
  if (!data.labels.empty()) one.labels.push_back(data.labels[row]);
  if (!data.values.empty()) one.values.push_back(data.values[row]);
  return one;
}

ModelConfig private_config(std::size_t batch_size, double max_grad_norm, double noise_multiplier,
                           double epsilon = kInfinity) {
  ModelConfig config;
  config.hidden_units = {6, 5};
  config.batch_size = batch_size;
  config.learning_rate = 1e-2;
  config.lr_schedule = "constant";
  config.max_epochs = 1;
  config.patience = 0;
  config.seed = 3;
  config.privacy = PrivacyBudget{epsilon, 1e-5, max_grad_norm};
  config.noise_multiplier = noise_multiplier;
  return config;
}

// The gradient that the trainer hands to the optimizer at its first step.
std::vector<float> first_step_gradient(const ModelConfig& config, const TrainingData& data,
                                       std::optional<std::uint64_t> noise_seed = std::nullopt) {
  std::vector<float> gradient;
  TrainerOptions options;
  options.with_config(config).with_gradient_hook([&gradient](float* values, std::size_t count) {
    if (gradient.empty()) gradient.assign(values, values + count);
  });
  options.insecure_privacy_seed = noise_seed;
  Trainer(options).fit(data, data);
  return gradient;
}

double norm(const std::vector<float>& values) {
  double sum = 0;
  for (float v : values) sum += static_cast<double>(v) * v;
  return std::sqrt(sum);
}

double max_difference(const Mlp& a, const Mlp& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    for (std::size_t k = 0; k < a.layers[i].weight.size(); ++k) {
      worst = std::max(worst, static_cast<double>(std::abs(a.layers[i].weight[k] - b.layers[i].weight[k])));
    }
    for (std::size_t k = 0; k < a.layers[i].bias.size(); ++k) {
      worst = std::max(worst, static_cast<double>(std::abs(a.layers[i].bias[k] - b.layers[i].bias[k])));
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("dp-sgd clips each row's gradient", "[dp_sgd]") {
  // Per-row gradients come from one-row runs with the same seed, hence the same initial weights, and no
  // clipping. The full-batch step with sampling rate 1 must equal the mean of those gradients, each scaled to
  // norm at most C: a batch-level clip would scale every row alike. C is the median row norm, so that half
  // of the rows are clipped.
  for (Activation activation : {Activation::Relu, Activation::Tanh, Activation::Gelu}) {
    for (Task task : {Task::BinaryClassification, Task::Regression}) {
      INFO("activation " << to_string(activation) << ", task " << to_string(task));
      const TrainingData data = blobs(12, 3, 11, 20.0f);

      ModelConfig unclipped = private_config(1, kInfinity, 0.0);
      unclipped.activation = activation;
      unclipped.task = task;
      unclipped.objective = task == Task::Regression ? Metric::Rmse : Metric::F1;
      std::vector<std::vector<float>> row_gradients;
      std::vector<double> row_norms;
      for (std::size_t r = 0; r < 12; ++r) {
        row_gradients.push_back(first_step_gradient(unclipped, only_row(data, r)));
        row_norms.push_back(norm(row_gradients.back()));
      }
      std::vector<double> sorted_norms = row_norms;
      std::sort(sorted_norms.begin(), sorted_norms.end());
      const double clip = 0.5 * (sorted_norms[5] + sorted_norms[6]);

      std::vector<double> expected(row_gradients[0].size(), 0.0);
      std::size_t clipped_rows = 0;
      for (std::size_t r = 0; r < 12; ++r) {
        const double factor = std::min(1.0, clip / (row_norms[r] + 1e-6));
        clipped_rows += factor < 1.0 ? 1 : 0;
        for (std::size_t k = 0; k < expected.size(); ++k) expected[k] += factor * row_gradients[r][k] / 12.0;
      }

      ModelConfig clipped = unclipped;
      clipped.batch_size = 12;
      clipped.privacy->max_grad_norm = clip;
      const std::vector<float> actual = first_step_gradient(clipped, data);

      CHECK(clipped_rows == 6);
      CHECK(sorted_norms[11] > 1.1 * clip);
      REQUIRE(actual.size() == expected.size());
      double worst = 0;
      for (std::size_t k = 0; k < actual.size(); ++k) worst = std::max(worst, std::abs(actual[k] - expected[k]));
      // float32 sums of 12 rows against a double reference: errors stay near 1e-7 of the norm C.
      CHECK(worst < 1e-5);
    }
  }
}

TEST_CASE("dp-sgd clipped mean norm is at most C", "[dp_sgd]") {
  const TrainingData data = blobs(40, 4, 5, 50.0f);
  const std::vector<float> gradient = first_step_gradient(private_config(40, 0.1, 0.0), data);
  CHECK(norm(gradient) <= 0.1 * (1 + 1e-5));
}

TEST_CASE("dp-sgd without noise or clipping equals plain training", "[dp_sgd]") {
  // Sampling rate 1 puts every row in every batch, so each step sees the same batch as full-batch training.
  for (Task task : {Task::BinaryClassification, Task::MulticlassClassification, Task::Regression}) {
    INFO("task " << to_string(task));
    TrainingData data = blobs(64, 4, 9);
    if (task == Task::MulticlassClassification) {
      for (std::size_t r = 0; r < data.labels.size(); ++r) data.labels[r] = static_cast<std::int64_t>(r % 3);
    }

    ModelConfig plain = private_config(64, kInfinity, 0.0);
    plain.task = task;
    plain.objective = task == Task::Regression ? Metric::Rmse : Metric::Accuracy;
    plain.max_epochs = 5;
    plain.privacy.reset();
    ModelConfig dp = plain;
    dp.privacy = PrivacyBudget{kInfinity, 1e-5, kInfinity};

    TrainerOptions plain_options, dp_options;
    const TrainingResult plain_result = Trainer(plain_options.with_config(plain)).fit(data, data);
    const TrainingResult dp_result = Trainer(dp_options.with_config(dp)).fit(data, data);

    REQUIRE(dp_result.privacy.has_value());
    CHECK(dp_result.privacy->steps == 5);
    // Only the summation order differs (plain training shuffles the rows), so float32 rounding is all.
    CHECK(max_difference(plain_result.network, dp_result.network) < 1e-4);
  }
}

TEST_CASE("dp-sgd noise has standard deviation sigma C", "[dp_sgd]") {
  const TrainingData data = blobs(50, 8, 2);
  ModelConfig config = private_config(50, 1.0, 0.0);
  config.hidden_units = {64, 32};
  const std::vector<float> clean = first_step_gradient(config, data);

  config.noise_multiplier = 2.0;
  const std::vector<float> noisy = first_step_gradient(config, data, 99);

  // The trainer divides the noisy sum by the expected batch size, 50.
  std::vector<double> noise(clean.size());
  for (std::size_t k = 0; k < clean.size(); ++k) noise[k] = (noisy[k] - clean[k]) * 50.0;
  const double mean = std::accumulate(noise.begin(), noise.end(), 0.0) / noise.size();
  double variance = 0;
  for (double v : noise) variance += (v - mean) * (v - mean);
  const double stddev = std::sqrt(variance / (noise.size() - 1));

  // About 2,800 draws: the standard error of the standard deviation is 1.3 %, of the mean 0.04.
  REQUIRE(noise.size() > 2500);
  CHECK(stddev == Approx(2.0).epsilon(0.06));
  CHECK(std::abs(mean) < 0.2);
}

TEST_CASE("seeded dp-sgd repeats and the CSPRNG does not", "[dp_sgd]") {
  const TrainingData data = blobs(50, 3, 4);
  ModelConfig config = private_config(10, 1.0, 1.0, 50.0);
  config.max_epochs = 2;

  const std::vector<float> first = first_step_gradient(config, data, 5);
  const std::vector<float> second = first_step_gradient(config, data, 5);
  CHECK(first == second);

  const std::vector<float> secure_a = first_step_gradient(config, data);
  const std::vector<float> secure_b = first_step_gradient(config, data);
  CHECK(secure_a != secure_b);
}

TEST_CASE("poisson sampling varies the batch size", "[dp_sgd][sampling]") {
  detail::PrivacyRandom random(17);
  std::vector<std::size_t> sizes;
  for (int draw = 0; draw < 2000; ++draw) sizes.push_back(random.poisson_sample(1000, 0.05).size());

  const double mean = std::accumulate(sizes.begin(), sizes.end(), 0.0) / sizes.size();
  double variance = 0;
  for (std::size_t s : sizes) variance += (s - mean) * (s - mean);
  variance /= sizes.size() - 1;

  // Binomial(1000, 0.05): mean 50, variance 47.5; 2000 draws give standard errors of 0.15 and 1.5.
  CHECK(mean == Approx(50.0).margin(0.75));
  CHECK(variance == Approx(47.5).margin(7.5));
  CHECK(*std::min_element(sizes.begin(), sizes.end()) < 40);
  CHECK(*std::max_element(sizes.begin(), sizes.end()) > 60);
}

TEST_CASE("poisson sampling allows empty batches", "[dp_sgd][sampling]") {
  detail::PrivacyRandom random(23);
  std::size_t empty = 0;
  for (int draw = 0; draw < 200; ++draw) empty += random.poisson_sample(10, 0.05).empty() ? 1 : 0;
  // P(empty) = 0.95^10 = 0.60, so about 120 of 200.
  CHECK(empty > 90);
  CHECK(empty < 150);
}

TEST_CASE("poisson sampling returns sorted unique rows", "[dp_sgd][sampling]") {
  detail::PrivacyRandom random;
  const std::vector<std::int64_t> rows = random.poisson_sample(500, 0.3);
  CHECK(std::is_sorted(rows.begin(), rows.end()));
  CHECK(std::adjacent_find(rows.begin(), rows.end()) == rows.end());
  CHECK(rows.front() >= 0);
  CHECK(rows.back() < 500);
}

TEST_CASE("secure gaussian noise has the requested moments", "[dp_sgd][sampling]") {
  detail::PrivacyRandom random;
  std::vector<float> values(100001);
  random.fill_gaussian(values.data(), values.size(), 3.0);

  double sum = 0, squares = 0, fourth = 0;
  for (float v : values) {
    sum += v;
    squares += static_cast<double>(v) * v;
    fourth += std::pow(static_cast<double>(v), 4);
  }
  const double n = static_cast<double>(values.size());
  // Standard errors: mean 0.0095, variance 0.04 (of 9), fourth moment 243 x 0.03.
  CHECK(std::abs(sum / n) < 0.05);
  CHECK(squares / n == Approx(9.0).margin(0.25));
  CHECK(fourth / n == Approx(243.0).margin(25.0));
}

TEST_CASE("dp-sgd stops before exceeding the budget", "[dp_sgd][budget]") {
  const TrainingData data = blobs(200, 3, 8);
  ModelConfig config = private_config(20, 1.0, 1.5, 2.0);
  config.max_epochs = 200;

  TrainerOptions options;
  const TrainingResult result = Trainer(options.with_config(config)).fit(data, data);

  REQUIRE(result.privacy.has_value());
  CHECK(result.stop_reason == "privacy_budget");
  CHECK(result.privacy->budget_exhausted);
  CHECK(result.privacy->epsilon <= 2.0);
  CHECK(result.privacy->steps < 200u * 10u);
  const RdpAccountant accountant(0.1, 1.5);
  CHECK(accountant.epsilon(result.privacy->steps + 1, 1e-5) > 2.0);
  CHECK(result.privacy->epsilon == Approx(accountant.epsilon(result.privacy->steps, 1e-5)));
}

TEST_CASE("dp-sgd solves sigma when the config leaves it at 0", "[dp_sgd][budget]") {
  const TrainingData data = blobs(200, 3, 8);
  ModelConfig config = private_config(20, 1.0, 0.0, 3.0);
  config.max_epochs = 4;

  TrainerOptions options;
  const TrainingResult result = Trainer(options.with_config(config)).fit(data, data);

  REQUIRE(result.privacy.has_value());
  CHECK(result.stop_reason == "max_epochs");
  CHECK(result.privacy->steps == 40);
  CHECK(result.privacy->noise_multiplier > 0.0);
  CHECK(result.privacy->epsilon <= 3.0);
  CHECK(result.privacy->epsilon >= 3.0 * (1 - 1e-3));
  CHECK(result.to_json()["privacy"]["epsilon"].get<double>() == result.privacy->epsilon);
}

TEST_CASE("dp-sgd rejects invalid privacy settings", "[dp_sgd][errors]") {
  ModelConfig negative = private_config(10, 1.0, -1.0, 1.0);
  CHECK_THROWS_AS(Trainer(TrainerOptions().with_config(negative)), InvalidArgument);

  ModelConfig infinite_noise = private_config(10, kInfinity, 1.0, 1.0);
  CHECK_THROWS_WITH(Trainer(TrainerOptions().with_config(infinite_noise)), Catch::Contains("max_grad_norm"));

  ModelConfig bad_delta = private_config(10, 1.0, 1.0, 1.0);
  bad_delta.privacy->delta = 1.0;
  CHECK_THROWS_AS(Trainer(TrainerOptions().with_config(bad_delta)), InvalidArgument);

  // Sigma 0.01 spends more than epsilon 0.1 in one step, so no step fits the budget.
  const TrainingData data = blobs(20, 3, 1);
  ModelConfig unaffordable = private_config(10, 1.0, 0.01, 0.1);
  TrainerOptions options;
  CHECK_THROWS_WITH(Trainer(options.with_config(unaffordable)).fit(data, data), Catch::Contains("even one DP-SGD step"));
}

TEST_CASE("encrypted checkpoint resumes only with its key", "[dp_sgd][checkpoint]") {
  const fs::path folder = fs::path(LEPTON_BINARY_DIR) / "test_dp_sgd";
  fs::remove_all(folder);
  fs::create_directories(folder);
  const std::string path = (folder / "checkpoint.pt").string();

  const TrainingData data = blobs(60, 3, 6);
  ModelConfig config = private_config(20, 1.0, 1.0, 20.0);
  config.max_epochs = 2;
  const EncryptionKey key = EncryptionKey::generate();

  TrainerOptions options;
  options.with_config(config).with_checkpoint(path, false);
  options.checkpoint_key = key;
  Trainer(options).fit(data, data);
  CHECK(is_encrypted(read_file(path)));

  TrainerOptions resume_options;
  resume_options.with_config(config).with_checkpoint(path, true);
  resume_options.checkpoint_key = key;
  const TrainingResult resumed = Trainer(resume_options).fit(data, data);
  CHECK(resumed.resumed);
  CHECK(resumed.privacy->steps == 6);

  resume_options.checkpoint_key.reset();
  CHECK_THROWS_WITH(Trainer(resume_options).fit(data, data), Catch::Contains("encrypted"));

  resume_options.checkpoint_key = EncryptionKey::generate();
  CHECK_THROWS_WITH(Trainer(resume_options).fit(data, data), Catch::Contains("decryption failed"));
}
