// Tests of lepton::Trainer: learning, determinism, bit-exact resume, early stopping, the three tasks, stop
// reasons, and input errors. The AI4I test reads the real data file in place.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "lepton/dataset.hpp"
#include "lepton/error.hpp"
#include "lepton/log.hpp"
#include "lepton/metrics.hpp"
#include "lepton/preprocess.hpp"
#include "lepton/table.hpp"
#include "lepton/trainer.hpp"

namespace fs = std::filesystem;
using namespace lepton;

namespace {

// Two Gaussian blobs in `width` dimensions whose means differ by `separation` along every axis.
TrainingData binary_blobs(std::size_t rows, std::size_t width, float separation, std::uint32_t seed) {
  std::mt19937 engine(seed);
  std::normal_distribution<float> normal;

  TrainingData data;
  data.features = Matrix(rows, width);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::int64_t label = r % 2 == 0 ? 1 : 0;
    for (std::size_t c = 0; c < width; ++c) {
      data.features(r, c) = normal(engine) + (label == 1 ? separation / 2 : -separation / 2);
    }
    data.labels.push_back(label);
  }
  return data;
}

// Class k is a blob centred at 3 * e_k (one axis per class).
TrainingData multiclass_blobs(std::size_t rows, std::size_t classes, std::uint32_t seed) {
  std::mt19937 engine(seed);
  std::normal_distribution<float> normal;

  TrainingData data;
  data.features = Matrix(rows, classes);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t label = r % classes;
    for (std::size_t c = 0; c < classes; ++c) {
      data.features(r, c) = normal(engine) + (c == label ? 3.0f : 0.0f);
    }
    data.labels.push_back(static_cast<std::int64_t>(label));
  }
  return data;
}

// y = 0.5 x0 - x1 + 0.25 x2 + small noise.
TrainingData linear_regression(std::size_t rows, std::uint32_t seed) {
  std::mt19937 engine(seed);
  std::normal_distribution<float> normal;

  TrainingData data;
  data.features = Matrix(rows, 3);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < 3; ++c) {
      data.features(r, c) = normal(engine);
    }
    data.values.push_back(0.5 * data.features(r, 0) - data.features(r, 1) + 0.25 * data.features(r, 2) +
                          0.05 * normal(engine));
  }
  return data;
}

ModelConfig small_config() {
  ModelConfig config;
  config.hidden_units = {16, 8};
  config.batch_size = 32;
  config.learning_rate = 1e-2;
  config.lr_schedule = "constant";
  config.max_epochs = 10;
  config.patience = 0;
  config.seed = 7;
  return config;
}

TrainingResult fit(const ModelConfig& config, const TrainingData& train, const TrainingData& validation) {
  TrainerOptions options;
  options.with_config(config);
  return Trainer(options).fit(train, validation);
}

// Outputs of `network` for every row, computed with plain loops in double: the reference that the
// trainer's LibTorch forward pass must agree with.
std::vector<double> plain_forward(const Mlp& network, const Matrix& features) {
  std::vector<double> outputs;
  for (std::size_t r = 0; r < features.rows; ++r) {
    std::vector<double> h(features.row(r), features.row(r) + features.cols);
    for (const DenseLayer& layer : network.layers) {
      std::vector<double> next(layer.outputs);
      for (std::size_t o = 0; o < layer.outputs; ++o) {
        double sum = layer.bias[o];
        for (std::size_t i = 0; i < layer.inputs; ++i) {
          sum += static_cast<double>(layer.weight[o * layer.inputs + i]) * h[i];
        }
        next[o] = layer.activation == Activation::Relu ? std::max(0.0, sum) : sum;
      }
      h = std::move(next);
    }
    outputs.insert(outputs.end(), h.begin(), h.end());
  }
  return outputs;
}

std::vector<double> sigmoid(std::vector<double> logits) {
  for (double& z : logits) {
    z = 1.0 / (1.0 + std::exp(-z));
  }
  return logits;
}

bool same_weights(const Mlp& a, const Mlp& b) {
  if (a.layers.size() != b.layers.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    if (a.layers[i].weight != b.layers[i].weight || a.layers[i].bias != b.layers[i].bias) {
      return false;
    }
  }
  return true;
}

// A checkpoint file in the build folder, removed before and after each test.
struct TemporaryCheckpoint {
  std::string path;

  explicit TemporaryCheckpoint(const std::string& name) : path(std::string(LEPTON_BINARY_DIR) + "/" + name) {
    fs::remove(path);
  }
  ~TemporaryCheckpoint() {
    fs::remove(path);
    fs::remove(path + ".tmp");
  }
};

}  // namespace

TEST_CASE("trainer learns separable binary problem", "[trainer]") {
  const TrainingData train = binary_blobs(800, 4, 3.0f, 1);
  const TrainingData validation = binary_blobs(400, 4, 3.0f, 2);

  ModelConfig config = small_config();
  config.objective = Metric::Accuracy;
  const TrainingResult result = fit(config, train, validation);

  const std::vector<double> probability = sigmoid(plain_forward(result.network, validation.features));
  const BinaryMetrics metrics = binary_metrics(validation.labels, probability, 0.5);
  CHECK(metrics.accuracy > 0.95);
  CHECK(result.network.inputs() == 4);
  CHECK(result.network.outputs() == 1);
  CHECK(result.network.layers.back().activation == Activation::Identity);
  CHECK(result.history.size() == 10);
  CHECK(result.stop_reason == "max_epochs");
  CHECK(result.history.back().train_loss < result.history.front().train_loss);
}

TEST_CASE("trainer is deterministic for a seed", "[trainer]") {
  const TrainingData train = binary_blobs(500, 5, 1.0f, 3);
  const TrainingData validation = binary_blobs(200, 5, 1.0f, 4);
  ModelConfig config = small_config();
  config.dropout = 0.2;  // Dropout masks must come from the seeded generator too.

  const TrainingResult first = fit(config, train, validation);
  const TrainingResult second = fit(config, train, validation);

  CHECK(same_weights(first.network, second.network));
  REQUIRE(first.history.size() == second.history.size());
  for (std::size_t i = 0; i < first.history.size(); ++i) {
    CHECK(first.history[i].train_loss == second.history[i].train_loss);
    CHECK(first.history[i].validation_loss == second.history[i].validation_loss);
    CHECK(first.history[i].validation_metric == second.history[i].validation_metric);
  }

  config.seed = 8;
  const TrainingResult other_seed = fit(config, train, validation);
  CHECK_FALSE(same_weights(first.network, other_seed.network));
}

TEST_CASE("trainer resume equals uninterrupted run", "[trainer][checkpoint]") {
  const TrainingData train = binary_blobs(300, 4, 1.0f, 5);
  const TrainingData validation = binary_blobs(100, 4, 1.0f, 6);
  ModelConfig config = small_config();
  config.max_epochs = 6;
  config.dropout = 0.1;
  config.lr_schedule = "cosine";
  config.warmup_epochs = 1;
  config.objective = Metric::LogLoss;

  const TrainingResult uninterrupted = fit(config, train, validation);

  TemporaryCheckpoint checkpoint("test_trainer_resume.ckpt");
  std::atomic<bool> stop{false};
  TrainerOptions interrupted_options;
  interrupted_options.with_config(config).with_checkpoint(checkpoint.path, true);
  interrupted_options.stop_requested = &stop;
  interrupted_options.with_progress([&stop](const EpochRecord& record) {
    if (record.epoch == 3) {
      stop = true;
    }
  });
  const TrainingResult interrupted = Trainer(interrupted_options).fit(train, validation);
  REQUIRE(interrupted.stop_reason == "stop_requested");
  REQUIRE(interrupted.history.size() == 3);
  REQUIRE(fs::exists(checkpoint.path));
  CHECK_FALSE(fs::exists(checkpoint.path + ".tmp"));

  TrainerOptions resumed_options;
  resumed_options.with_config(config).with_checkpoint(checkpoint.path, true);
  const TrainingResult resumed = Trainer(resumed_options).fit(train, validation);

  CHECK(resumed.resumed);
  CHECK(resumed.stop_reason == "max_epochs");
  CHECK(resumed.best_epoch == uninterrupted.best_epoch);
  CHECK(same_weights(resumed.network, uninterrupted.network));
  REQUIRE(resumed.history.size() == uninterrupted.history.size());
  for (std::size_t i = 0; i < resumed.history.size(); ++i) {
    CHECK(resumed.history[i].train_loss == uninterrupted.history[i].train_loss);
    CHECK(resumed.history[i].validation_metric == uninterrupted.history[i].validation_metric);
    CHECK(resumed.history[i].learning_rate == uninterrupted.history[i].learning_rate);
  }
}

TEST_CASE("trainer resumes a finished checkpoint without training", "[trainer][checkpoint]") {
  const TrainingData train = binary_blobs(200, 3, 2.0f, 7);
  const TrainingData validation = binary_blobs(100, 3, 2.0f, 8);
  ModelConfig config = small_config();
  config.max_epochs = 2;

  TemporaryCheckpoint checkpoint("test_trainer_finished.ckpt");
  TrainerOptions options;
  options.with_config(config).with_checkpoint(checkpoint.path, true);
  const TrainingResult first = Trainer(options).fit(train, validation);

  std::size_t epochs_reported = 0;
  options.with_progress([&epochs_reported](const EpochRecord&) { ++epochs_reported; });
  const TrainingResult again = Trainer(options).fit(train, validation);

  CHECK(again.resumed);
  CHECK(epochs_reported == 0);
  CHECK(again.stop_reason == "max_epochs");
  CHECK(same_weights(first.network, again.network));
}

TEST_CASE("trainer warns when resume finds no checkpoint", "[trainer][checkpoint]") {
  const TemporaryCheckpoint checkpoint("missing_checkpoint.pt");
  std::vector<std::string> warnings;
  lepton::set_log_sink([&warnings](LogLevel level, std::string_view message) {
    if (level == LogLevel::Warning) warnings.emplace_back(message);
  });
  lepton::set_log_level(LogLevel::Warning);

  TrainerOptions options;
  options.with_config(small_config()).with_checkpoint(checkpoint.path, true);
  const TrainingResult result = Trainer(options).fit(binary_blobs(64, 3, 3.0f, 5), binary_blobs(32, 3, 3.0f, 6));
  lepton::set_log_sink({});
  lepton::set_log_level(LogLevel::Off);

  CHECK_FALSE(result.resumed);
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("no checkpoint exists at \"" + checkpoint.path + "\""));
  CHECK_THAT(warnings[0], Catch::Contains("training from the first epoch"));
}

TEST_CASE("trainer rejects checkpoint of other config", "[trainer][checkpoint]") {
  const TrainingData train = binary_blobs(200, 3, 2.0f, 9);
  const TrainingData validation = binary_blobs(100, 3, 2.0f, 10);
  ModelConfig config = small_config();
  config.max_epochs = 1;

  TemporaryCheckpoint checkpoint("test_trainer_other_config.ckpt");
  TrainerOptions options;
  options.with_config(config).with_checkpoint(checkpoint.path, true);
  Trainer(options).fit(train, validation);

  config.learning_rate = 5e-3;
  options.with_config(config);
  CHECK_THROWS_AS(Trainer(options).fit(train, validation), InvalidArgument);
  CHECK_THROWS_WITH(Trainer(options).fit(train, validation),
                    Catch::Contains("different model configuration") && Catch::Contains("resume = false"));

  // Without resume the old checkpoint is overwritten, not read.
  options.with_checkpoint(checkpoint.path, false);
  CHECK_NOTHROW(Trainer(options).fit(train, validation));
}

TEST_CASE("trainer rejects unreadable checkpoint", "[trainer][checkpoint]") {
  const TrainingData train = binary_blobs(100, 3, 2.0f, 11);
  TemporaryCheckpoint checkpoint("test_trainer_garbage.ckpt");
  {
    std::FILE* file = std::fopen(checkpoint.path.c_str(), "wb");
    REQUIRE(file != nullptr);
    std::fputs("not a checkpoint", file);
    std::fclose(file);
  }

  TrainerOptions options;
  options.with_config(small_config()).with_checkpoint(checkpoint.path, true);
  CHECK_THROWS_AS(Trainer(options).fit(train, train), ParseError);
  CHECK_THROWS_WITH(Trainer(options).fit(train, train), Catch::Contains(checkpoint.path));
}

TEST_CASE("early stopping restores best weights", "[trainer]") {
  // Overlapping classes and a large rate, so that validation F1 peaks early and then wanders.
  const TrainingData train = binary_blobs(400, 6, 0.8f, 12);
  const TrainingData validation = binary_blobs(300, 6, 0.8f, 13);
  ModelConfig config = small_config();
  config.hidden_units = {64, 64};
  config.learning_rate = 3e-2;
  config.max_epochs = 200;
  config.patience = 4;
  config.objective = Metric::F1;

  const TrainingResult result = fit(config, train, validation);

  REQUIRE(result.stop_reason == "early_stopping");
  REQUIRE(result.best_epoch >= 1);
  // Patience counts from the last epoch that beat the best objective. A later tie won on loss does not reset it.
  std::size_t last_better = 0;
  double best = -1;
  for (const EpochRecord& record : result.history) {
    if (record.validation_metric > best + 1e-4) {
      best = record.validation_metric;
      last_better = record.epoch;
    }
  }
  CHECK(result.history.size() == last_better + config.patience);
  CHECK(result.best_epoch >= last_better);
  CHECK(result.history[result.best_epoch - 1].improved);
  CHECK_FALSE(result.history.back().improved);

  const std::vector<double> probability = sigmoid(plain_forward(result.network, validation.features));
  const double threshold = choose_threshold(validation.labels, probability, Metric::F1);
  const double recomputed = binary_metrics(validation.labels, probability, threshold).f1;
  // F1 is a ratio of counts, so it matches exactly unless a float rounding moves a row across the threshold.
  CHECK(recomputed == Approx(result.history[result.best_epoch - 1].validation_metric).margin(1e-12));
}

TEST_CASE("early stopping breaks objective ties by validation loss", "[trainer]") {
  // Well separated classes: validation F1 reaches 1.0 within the first epochs and stays there, while the
  // validation loss keeps falling. The first epoch at F1 1.0 is then not the best trained one.
  const TrainingData train = binary_blobs(400, 4, 6.0f, 21);
  const TrainingData validation = binary_blobs(200, 4, 6.0f, 22);
  ModelConfig config = small_config();
  config.learning_rate = 1e-3;
  config.max_epochs = 40;
  config.patience = 8;
  config.objective = Metric::F1;

  const TrainingResult result = fit(config, train, validation);

  REQUIRE(result.best_epoch >= 1);
  const double best_f1 = result.history[result.best_epoch - 1].validation_metric;
  REQUIRE(best_f1 == Approx(1.0));
  std::size_t first_at_best = 0;
  double lowest_loss_at_best = std::numeric_limits<double>::infinity();
  for (const EpochRecord& record : result.history) {
    if (std::abs(record.validation_metric - best_f1) > 1e-4) continue;
    if (first_at_best == 0) first_at_best = record.epoch;
    lowest_loss_at_best = std::min(lowest_loss_at_best, record.validation_loss);
  }
  CHECK(result.best_epoch > first_at_best);
  // Losses closer than 1e-4 count as equal, as for the objective.
  CHECK(result.history[result.best_epoch - 1].validation_loss <= lowest_loss_at_best + 1e-4);
  CHECK(result.history[result.best_epoch - 1].improved);
}

TEST_CASE("trainer multiclass smoke test", "[trainer]") {
  const TrainingData train = multiclass_blobs(600, 3, 14);
  const TrainingData validation = multiclass_blobs(300, 3, 15);
  ModelConfig config = small_config();
  config.task = Task::MulticlassClassification;
  config.objective = Metric::MacroF1;
  config.class_weights = {1.0, 2.0, 1.0};

  const TrainingResult result = fit(config, train, validation);

  CHECK(result.network.outputs() == 3);
  CHECK(result.history.back().validation_metric > 0.9);
  CHECK(result.history.back().validation_loss < result.history.front().validation_loss);
}

TEST_CASE("trainer regression smoke test", "[trainer]") {
  const TrainingData train = linear_regression(600, 16);
  const TrainingData validation = linear_regression(300, 17);
  ModelConfig config = small_config();
  config.task = Task::Regression;
  config.objective = Metric::R2;
  config.lr_schedule = "plateau";
  config.patience = 6;

  const TrainingResult result = fit(config, train, validation);

  const std::vector<double> prediction = plain_forward(result.network, validation.features);
  CHECK(result.network.outputs() == 1);
  CHECK(regression_metrics(validation.values, prediction).r2 > 0.95);
  CHECK(result.history[result.best_epoch - 1].validation_metric > 0.95);
}

TEST_CASE("trainer reports each epoch", "[trainer]") {
  const TrainingData train = binary_blobs(200, 3, 2.0f, 18);
  ModelConfig config = small_config();
  config.max_epochs = 4;
  config.lr_schedule = "cosine";

  std::vector<EpochRecord> records;
  TrainerOptions options;
  options.with_config(config).with_progress([&records](const EpochRecord& r) { records.push_back(r); });
  const TrainingResult result = Trainer(options).fit(train, train);

  REQUIRE(records.size() == 4);
  for (std::size_t i = 0; i < records.size(); ++i) {
    CHECK(records[i].epoch == i + 1);
    CHECK(records[i].max_epochs == 4);
    CHECK(records[i].elapsed_seconds > 0);
  }
  CHECK(records.back().eta_seconds == 0);
  CHECK(records.front().learning_rate > records.back().learning_rate);
  CHECK(result.to_json().at("history").size() == 4);
}

TEST_CASE("trainer stops on time budget and request", "[trainer]") {
  const TrainingData train = binary_blobs(200, 3, 2.0f, 19);
  ModelConfig config = small_config();
  config.max_epochs = 50;

  TrainerOptions budget;
  budget.with_config(config).with_time_budget(1e-9);
  const TrainingResult timed = Trainer(budget).fit(train, train);
  CHECK(timed.stop_reason == "time_budget");
  CHECK(timed.history.size() == 1);

  std::atomic<bool> stop{true};
  TrainerOptions requested;
  requested.with_config(config);
  requested.stop_requested = &stop;
  const TrainingResult stopped = Trainer(requested).fit(train, train);
  CHECK(stopped.stop_reason == "stop_requested");
  CHECK(stopped.history.empty());
  CHECK(stopped.network.inputs() == 3);
}

TEST_CASE("trainer rejects invalid input", "[trainer][errors]") {
  const TrainingData good = binary_blobs(50, 3, 2.0f, 20);
  const ModelConfig config = small_config();

  SECTION("empty training data") {
    TrainingData empty;
    empty.features = Matrix(0, 3);
    CHECK_THROWS_WITH(fit(config, empty, good), Catch::Contains("training data has no rows"));
  }
  SECTION("width mismatch") {
    const TrainingData wide = binary_blobs(50, 4, 2.0f, 21);
    CHECK_THROWS_AS(fit(config, good, wide), InvalidArgument);
    CHECK_THROWS_WITH(fit(config, good, wide), Catch::Contains("validation features have 4 columns"));
  }
  SECTION("label out of range") {
    TrainingData bad = good;
    bad.labels[7] = 2;
    CHECK_THROWS_WITH(fit(config, bad, good), Catch::Contains("label at row 7 is 2"));
  }
  SECTION("negative label") {
    TrainingData bad = good;
    bad.labels[0] = -1;
    CHECK_THROWS_AS(fit(config, bad, good), InvalidArgument);
  }
  SECTION("label count mismatch") {
    TrainingData bad = good;
    bad.labels.pop_back();
    CHECK_THROWS_WITH(fit(config, bad, good), Catch::Contains("49 labels for 50 feature rows"));
  }
  SECTION("NaN in features") {
    TrainingData bad = good;
    bad.features(4, 2) = std::nanf("");
    CHECK_THROWS_WITH(fit(config, bad, good), Catch::Contains("training features contain NaN at row 4 column 2"));
  }
  SECTION("infinity in validation features") {
    TrainingData bad = good;
    bad.features(1, 0) = INFINITY;
    CHECK_THROWS_WITH(fit(config, good, bad), Catch::Contains("validation features contain inf at row 1 column 0"));
  }
  SECTION("regression without values") {
    ModelConfig regression = config;
    regression.task = Task::Regression;
    regression.objective = Metric::Rmse;
    CHECK_THROWS_WITH(fit(regression, good, good), Catch::Contains("0 regression values for 50 feature rows"));
  }
  SECTION("invalid configuration") {
    ModelConfig bad = config;
    bad.batch_size = 0;
    CHECK_THROWS_WITH(Trainer(TrainerOptions().with_config(bad)), Catch::Contains("config.batch_size is 0"));
    bad = config;
    bad.lr_schedule = "step";
    CHECK_THROWS_WITH(Trainer(TrainerOptions().with_config(bad)), Catch::Contains("config.lr_schedule is \"step\""));
    bad = config;
    bad.objective = Metric::Rmse;
    CHECK_THROWS_AS(Trainer(TrainerOptions().with_config(bad)), InvalidArgument);
    CHECK_THROWS_WITH(Trainer(TrainerOptions().with_config(config).with_threads(0)),
                      Catch::Contains("options.threads is 0"));
  }
}

// The seed design on the real AI4I file for a few epochs: checks that the trainer reads encoded real data
// and ranks failures well above chance.
TEST_CASE("trainer learns AI4I failures", "[trainer][ai4i]") {
  const Table table = read_csv(LEPTON_SHARED_DIR "/data/ai4i2020.csv");
  const std::vector<FeatureSpec> features{{"Type", FeatureType::Categorical},
                                          {"Air temperature [K]", FeatureType::Numeric},
                                          {"Process temperature [K]", FeatureType::Numeric},
                                          {"Rotational speed [rpm]", FeatureType::Numeric},
                                          {"Torque [Nm]", FeatureType::Numeric},
                                          {"Tool wear [min]", FeatureType::Numeric}};
  std::vector<std::size_t> all_rows(table.rows());
  for (std::size_t i = 0; i < all_rows.size(); ++i) {
    all_rows[i] = i;
  }
  const TargetEncoding target =
      TargetEncoding::fit(table, "Machine failure", Task::BinaryClassification, all_rows);
  const Split split = stratified_split(target.encode_labels(table, all_rows), {}, 0);
  const Preprocessor preprocessor = Preprocessor::fit(table, features, split.train);

  TrainingData train, validation;
  train.features = preprocessor.transform(table, split.train);
  train.labels = target.encode_labels(table, split.train);
  validation.features = preprocessor.transform(table, split.validation);
  validation.labels = target.encode_labels(table, split.validation);

  ModelConfig config;
  config.hidden_units = {128, 64};
  config.lr_schedule = "constant";
  config.max_epochs = 15;
  config.patience = 0;
  config.objective = Metric::RocAuc;
  config.seed = 0;
  const TrainingResult result = fit(config, train, validation);

  CHECK(result.network.inputs() == 8);
  CHECK(result.history[result.best_epoch - 1].validation_metric > 0.9);
}
