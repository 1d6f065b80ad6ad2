// Tests of cross-fitted training (ensemble.hpp): fold assignment, the merged network equals the mean of its
// members, per-member checkpoints and progress, determinism, and rejected options.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "lepton/dataset.hpp"
#include "lepton/ensemble.hpp"
#include "lepton/error.hpp"
#include "lepton/trainer.hpp"
#include "support/random_mlp.hpp"

namespace fs = std::filesystem;
using namespace lepton;
using Catch::Matchers::Contains;
using lepton::test_support::random_f32_mlp;

namespace {

// Two Gaussian blobs in `width` dimensions; one row in `positive_every` is positive.
TrainingData blobs(std::size_t rows, std::size_t width, std::size_t positive_every, std::uint32_t seed) {
  std::mt19937 engine(seed);
  std::normal_distribution<float> normal;

  TrainingData data;
  data.features = Matrix(rows, width);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::int64_t label = r % positive_every == 0 ? 1 : 0;
    for (std::size_t c = 0; c < width; ++c) {
      data.features(r, c) = normal(engine) + (label == 1 ? 1.5f : -0.5f);
    }
    data.labels.push_back(label);
  }
  return data;
}

// Plain double-precision forward pass, independent of the runtime's kernels.
std::vector<double> forward(const Mlp& net, const std::vector<double>& input) {
  std::vector<double> values = input;
  for (const DenseLayer& layer : net.layers) {
    std::vector<double> next(layer.outputs);
    for (std::size_t o = 0; o < layer.outputs; ++o) {
      double sum = layer.bias[o];
      for (std::size_t i = 0; i < layer.inputs; ++i) sum += layer.weight[o * layer.inputs + i] * values[i];
      if (layer.activation == Activation::Relu) sum = std::max(0.0, sum);
      if (layer.activation == Activation::Tanh) sum = std::tanh(sum);
      next[o] = sum;
    }
    values = std::move(next);
  }
  return values;
}

ModelConfig small_config(std::uint64_t seed) {
  ModelConfig config;
  config.hidden_units = {8};
  config.batch_size = 32;
  config.max_epochs = 6;
  config.patience = 3;
  config.learning_rate = 5e-3;
  config.seed = seed;
  return config;
}

}  // namespace

TEST_CASE("merge_mean_output: output is the members' mean", "[ensemble]") {
  const std::vector<std::vector<std::size_t>> shapes = {{5, 1}, {5, 7, 1}, {5, 7, 4, 3}};
  for (const auto& widths : shapes) {
    INFO("depth " << widths.size() - 1 << ", outputs " << widths.back());
    std::vector<Mlp> members;
    for (std::uint32_t seed = 0; seed < 4; ++seed) members.push_back(random_f32_mlp(widths, seed, Activation::Relu));
    const Mlp merged = merge_mean_output(members);

    CHECK(merged.inputs() == 5);
    CHECK(merged.outputs() == widths.back());
    std::mt19937 engine(11);
    std::normal_distribution<double> normal;
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<double> x(5);
      for (double& v : x) v = normal(engine);
      std::vector<double> expected(widths.back(), 0.0);
      for (const Mlp& member : members) {
        const std::vector<double> y = forward(member, x);
        for (std::size_t o = 0; o < y.size(); ++o) expected[o] += y[o] / members.size();
      }
      const std::vector<double> got = forward(merged, x);
      for (std::size_t o = 0; o < got.size(); ++o) CHECK(got[o] == Approx(expected[o]).margin(1e-5));
    }
  }
}

TEST_CASE("merge_mean_output: hidden widths add up", "[ensemble]") {
  const Mlp merged = merge_mean_output({random_f32_mlp({8, 64, 32, 1}, 1, Activation::Relu),
                                       random_f32_mlp({8, 64, 32, 1}, 2, Activation::Relu),
                                       random_f32_mlp({8, 64, 32, 1}, 3, Activation::Relu)});
  REQUIRE(merged.layers.size() == 3);
  CHECK(merged.layers[0].outputs == 192);
  CHECK(merged.layers[1].outputs == 96);
  CHECK(merged.layers[2].inputs == 96);
}

TEST_CASE("merge_mean_output: rejects mismatched members", "[ensemble][errors]") {
  CHECK_THROWS_AS(merge_mean_output({}), InvalidArgument);
  CHECK_THROWS_WITH(merge_mean_output({random_f32_mlp({4, 8, 1}, 1, Activation::Relu),
                                       random_f32_mlp({4, 8, 8, 1}, 2, Activation::Relu)}),
                    Contains("member 1 has 3 layers"));
  CHECK_THROWS_WITH(merge_mean_output({random_f32_mlp({4, 8, 1}, 1, Activation::Relu),
                                       random_f32_mlp({5, 8, 1}, 2, Activation::Relu)}),
                    Contains("same depth, inputs and outputs"));
  CHECK_THROWS_WITH(merge_mean_output({random_f32_mlp({4, 8, 1}, 1, Activation::Relu),
                                       random_f32_mlp({4, 8, 1}, 2, Activation::Tanh)}),
                    Contains("same activations"));
}

TEST_CASE("stratified_folds: every class is spread evenly", "[ensemble][folds]") {
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 1000; ++i) labels.push_back(i % 25 == 0 ? 1 : 0);  // 40 positives
  const std::vector<std::size_t> folds = stratified_folds(labels, 10, 7);
  REQUIRE(folds.size() == labels.size());

  std::vector<std::size_t> rows(10, 0), positives(10, 0);
  for (std::size_t r = 0; r < folds.size(); ++r) {
    REQUIRE(folds[r] < 10);
    ++rows[folds[r]];
    positives[folds[r]] += labels[r] == 1 ? 1 : 0;
  }
  for (std::size_t k = 0; k < 10; ++k) {
    INFO("fold " << k);
    CHECK(rows[k] == 100);
    CHECK(positives[k] == 4);
  }
  CHECK(stratified_folds(labels, 10, 7) == folds);
  CHECK(stratified_folds(labels, 10, 8) != folds);
}

TEST_CASE("random_folds: sizes differ by at most one", "[ensemble][folds]") {
  const std::vector<std::size_t> folds = random_folds(103, 5, 1);
  std::vector<std::size_t> rows(5, 0);
  for (std::size_t fold : folds) ++rows[fold];
  for (std::size_t k = 0; k < 5; ++k) {
    INFO("fold " << k);
    CHECK(rows[k] >= 20);
    CHECK(rows[k] <= 21);
  }
}

TEST_CASE("folds: invalid counts are rejected", "[ensemble][folds][errors]") {
  const std::vector<std::int64_t> labels = {0, 0, 0, 0, 1, 1};
  CHECK_THROWS_WITH(stratified_folds(labels, 1, 0), Contains("at least 2 folds"));
  CHECK_THROWS_WITH(stratified_folds(labels, 3, 0), Contains("class 1 has 2 row(s), fewer than the 3 folds"));
  CHECK_THROWS_WITH(random_folds(2, 3, 0), Contains("fewer than the 3 folds"));
}

TEST_CASE("fit_cross_fitted: members, folds and merged network", "[ensemble]") {
  const TrainingData data = blobs(400, 4, 5, 3);
  TrainerOptions options;
  options.config = small_config(5);
  std::vector<EpochRecord> progress;
  options.on_epoch = [&progress](const EpochRecord& record) { progress.push_back(record); };

  const CrossFitResult result = fit_cross_fitted(options, data, 4);
  REQUIRE(result.members.size() == 4);
  CHECK(result.stop_reason == "completed");
  CHECK(result.fold_of_row.size() == 400);
  CHECK(result.network.layers[0].outputs == 4 * 8);

  std::set<std::size_t> seen_members;
  for (const EpochRecord& record : progress) {
    CHECK(record.members == 4);
    seen_members.insert(record.member);
  }
  CHECK(seen_members == std::set<std::size_t>{0, 1, 2, 3});
  for (std::size_t k = 0; k < result.members.size(); ++k) {
    INFO("member " << k);
    REQUIRE_FALSE(result.members[k].history.empty());
    CHECK(result.members[k].history.front().member == k);
    CHECK(result.members[k].history.back().member == k);
    CHECK(result.members[k].history.back().members == 4);
  }

  std::vector<Mlp> networks;
  for (const TrainingResult& member : result.members) networks.push_back(member.network);
  const Mlp expected = merge_mean_output(networks);
  for (std::size_t l = 0; l < expected.layers.size(); ++l) {
    INFO("layer " << l);
    CHECK(result.network.layers[l].weight == expected.layers[l].weight);
  }

  // Member seeds differ from each other and repeat for the same base seed.
  CHECK(member_seed(5, 0) != member_seed(5, 1));
  CHECK(member_seed(5, 0) == member_seed(5, 0));
}

TEST_CASE("fit_cross_fitted: same seed gives the same members", "[ensemble][determinism]") {
  const TrainingData data = blobs(300, 3, 4, 9);
  TrainerOptions options;
  options.config = small_config(12);
  const CrossFitResult first = fit_cross_fitted(options, data, 3);
  const CrossFitResult second = fit_cross_fitted(options, data, 3);
  CHECK(first.fold_of_row == second.fold_of_row);
  for (std::size_t l = 0; l < first.network.layers.size(); ++l) {
    INFO("layer " << l);
    CHECK(first.network.layers[l].weight == second.network.layers[l].weight);
    CHECK(first.network.layers[l].bias == second.network.layers[l].bias);
  }
}

TEST_CASE("fit_cross_fitted: one checkpoint per member", "[ensemble]") {
  const fs::path folder = fs::temp_directory_path() / ("lepton_cross_fit_" + std::to_string(::getpid()));
  fs::remove_all(folder);
  fs::create_directories(folder);
  TrainerOptions options;
  options.config = small_config(3);
  options.checkpoint_path = (folder / "checkpoint.pt").string();

  const TrainingData data = blobs(200, 3, 4, 1);
  const CrossFitResult first = fit_cross_fitted(options, data, 3);
  // Files count members from 1, as progress lines do: fold 0 trains member 1.
  for (int k = 1; k <= 3; ++k) {
    INFO("member " << k);
    CHECK(fs::is_regular_file(folder / ("checkpoint.member" + std::to_string(k) + ".pt")));
  }
  CHECK_FALSE(fs::exists(folder / "checkpoint.member0.pt"));
  CHECK_FALSE(fs::exists(folder / "checkpoint.member4.pt"));
  CHECK_FALSE(fs::exists(folder / "checkpoint.fold0.pt"));
  CHECK_FALSE(fs::exists(folder / "checkpoint.pt"));
  // Every checkpoint was written under a temporary name and renamed, so none is left behind.
  for (const fs::directory_entry& entry : fs::directory_iterator(folder)) {
    INFO(entry.path());
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
  }

  // Resuming finished members returns their results without training again.
  options.resume = true;
  const CrossFitResult resumed = fit_cross_fitted(options, data, 3);
  for (std::size_t k = 0; k < 3; ++k) {
    INFO("member " << k);
    CHECK(resumed.members[k].resumed);
    CHECK(resumed.members[k].network.layers[0].weight == first.members[k].network.layers[0].weight);
  }
  fs::remove_all(folder);
}

TEST_CASE("fit_cross_fitted: stop request ends the run", "[ensemble]") {
  std::atomic<bool> stop{true};
  TrainerOptions options;
  options.config = small_config(1);
  options.stop_requested = &stop;
  const CrossFitResult result = fit_cross_fitted(options, blobs(200, 3, 4, 2), 4);
  CHECK(result.stop_reason == "stop_requested");
  CHECK(result.members.size() == 1);
}

TEST_CASE("fit_cross_fitted: unsupported options are rejected", "[ensemble][errors]") {
  const TrainingData data = blobs(100, 3, 4, 2);
  TrainerOptions options;
  options.config = small_config(1);
  CHECK_THROWS_WITH(fit_cross_fitted(options, data, 1), Contains("at least 2 folds"));

  TrainerOptions with_start = options;
  with_start.initial_parameters = std::vector<float>(10, 0.0f);
  CHECK_THROWS_WITH(fit_cross_fitted(with_start, data, 3), Contains("initial_parameters"));

  TrainerOptions with_privacy = options;
  with_privacy.config.privacy = PrivacyBudget{1.0, 1e-5, 1.0};
  CHECK_THROWS_WITH(fit_cross_fitted(with_privacy, data, 3), Contains("privacy budget"));

  TrainingData unlabelled = data;
  unlabelled.labels.pop_back();
  CHECK_THROWS_WITH(fit_cross_fitted(options, unlabelled, 3), Contains("99 labels for 100 rows"));
}
