// Explainer benchmark: Kernel SHAP on a 30-128-64-1 sigmoid MLP and exact SHAP on an AI4I-shaped model,
// compared with shap 0.49.1 figures measured on the same machine (reference BLAS and OpenBLAS, 2 threads).
//
// Build: cmake --build BUILD --target bench_explain
// Run: BUILD/tests/bench_explain [explained rows, default 8]. LEPTON_SIMD selects the kernel level.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include <Eigen/Core>

#include "lepton/explain.hpp"

using namespace lepton;

namespace {

// shap 0.49.1 KernelExplainer and ExactExplainer, ms per explained row, as measured on this machine.
constexpr double kShapKernelReferenceBlasMs = 1086.0;
constexpr double kShapKernelOpenBlasMs = 276.0;
constexpr double kShapExactReferenceBlasMs = 22.0;
constexpr double kShapExactOpenBlasMs = 5.3;

DoubleMlp random_mlp(const std::vector<std::size_t>& widths, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  DoubleMlp network;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    DoubleDenseLayer layer;
    layer.inputs = widths[l];
    layer.outputs = widths[l + 1];
    const double scale = std::sqrt(2.0 / static_cast<double>(layer.inputs));
    for (std::size_t i = 0; i < layer.inputs * layer.outputs; ++i) layer.weight.push_back(scale * normal(engine));
    for (std::size_t i = 0; i < layer.outputs; ++i) layer.bias.push_back(0.1 * normal(engine));
    layer.activation = l + 2 == widths.size() ? Activation::Identity : Activation::Relu;
    network.layers.push_back(std::move(layer));
  }
  return network;
}

DoubleMatrix random_rows(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  DoubleMatrix matrix(rows, cols);
  for (double& value : matrix.data) value = normal(engine);
  return matrix;
}

template <typename Work>
double seconds(Work work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Achieved float GEMM rate of this build's Eigen on one core, shaped like the second layer (64 x 128 times
// 128 x 1024): the practical peak for the fast path, which cannot beat its own GEMM.
double measure_gemm_gflops() {
  Eigen::MatrixXf weight = Eigen::MatrixXf::Random(64, 128);
  Eigen::MatrixXf input = Eigen::MatrixXf::Random(128, 1024);
  Eigen::MatrixXf output(64, 1024);
  const int repeats = 400;
  const double elapsed = seconds([&] {
    for (int i = 0; i < repeats; ++i) output.noalias() = weight * input;
  });
  std::printf("(checksum %g)\n", static_cast<double>(output.sum()));
  return 2.0 * 64 * 128 * 1024 * repeats / elapsed / 1e9;
}

void bench_kernel(std::size_t rows_to_explain) {
  const std::size_t width = 30;
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({width, 128, 64, 1}, 2024), OutputLink::Logistic);
  const Background background = Background::uniform(random_rows(100, width, 1));
  const FeatureGroups groups = FeatureGroups::per_column(width);
  const DoubleMatrix rows = random_rows(rows_to_explain, width, 2);
  const std::size_t coalitions = 2048;
  // Each explained row evaluates v(empty), v(full) and the sampled coalitions, each over 100 background rows.
  const double model_rows = static_cast<double>((coalitions + 2) * background.size());
  // Floor with first-layer reuse: layers 2 and 3 per hybrid row, 2 FLOP per multiply-add.
  const double flop_per_row = model_rows * 2.0 * (128.0 * 64.0 + 64.0);

  std::printf("\nKernel SHAP, 30-128-64-1 sigmoid MLP, background 100, %zu coalitions, %zu rows\n", coalitions,
              rows_to_explain);
  std::printf("model rows per explained row: %.0f; FLOP floor %.2f GFLOP per row (first layer reused)\n", model_rows,
              flop_per_row / 1e9);
  for (CoalitionPath path : {CoalitionPath::Fast, CoalitionPath::Reference}) {
    for (std::size_t threads : {1, 2}) {
      for (std::size_t bootstrap : {0, 32}) {
        // The reference path is slow: one row is enough to time it.
        DoubleMatrix subset = rows;
        if (path == CoalitionPath::Reference) {
          if (bootstrap != 0) continue;
          subset = random_rows(threads, width, 2);
        }
        const KernelExplainer explainer(
            model, background, groups,
            KernelOptions().samples(coalitions).seed(3).threads(threads).bootstrap(bootstrap).path(path));
        const double elapsed = seconds([&] { explainer.explain(subset); });
        const double ms = 1e3 * elapsed / static_cast<double>(subset.rows);
        std::printf("  %-9s threads %zu bootstrap %2zu: %8.1f ms/row  shap ref BLAS x%.1f  shap OpenBLAS x%.1f  "
                    "%.1f GFLOP/s effective\n",
                    path == CoalitionPath::Fast ? "fast" : "reference", threads, bootstrap, ms,
                    kShapKernelReferenceBlasMs / ms, kShapKernelOpenBlasMs / ms, flop_per_row / (ms * 1e-3) / 1e9);
      }
    }
  }
}

void bench_exact(std::size_t rows_to_explain) {
  // AI4I shape: Type one-hot (3 columns) plus 5 numeric columns = 8 encoded inputs in 6 groups.
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({8, 16, 8, 1}, 7), OutputLink::Logistic);
  DoubleMatrix background_rows = random_rows(100, 8, 8);
  for (std::size_t b = 0; b < 100; ++b) {
    for (std::size_t c = 0; c < 3; ++c) background_rows(b, c) = c == b % 3 ? 1.0 : 0.0;
  }
  const Background background = Background::uniform(background_rows);
  const FeatureGroups groups = FeatureGroups::custom(
      8, {{"Type", {0, 1, 2}, true}, {"a", {3}, false}, {"b", {4}, false}, {"c", {5}, false}, {"d", {6}, false},
          {"e", {7}, false}});
  const DoubleMatrix rows = random_rows(rows_to_explain * 16, 8, 9);

  std::printf("\nExact SHAP, 8-16-8-1 sigmoid MLP, 6 groups (64 coalitions), background 100, 2 threads\n");
  for (CoalitionPath path : {CoalitionPath::Reference, CoalitionPath::Fast}) {
    const ExactExplainer explainer(model, background, groups, ExactOptions().threads(2).path(path));
    const double elapsed = seconds([&] { explainer.explain(rows); });
    const double ms = 1e3 * elapsed / static_cast<double>(rows.rows);
    std::printf("  %-9s: %8.3f ms/row (%.0f rows/s)  shap ref BLAS x%.1f  shap OpenBLAS x%.1f\n",
                path == CoalitionPath::Fast ? "fast" : "reference", ms, 1e3 / ms, kShapExactReferenceBlasMs / ms,
                kShapExactOpenBlasMs / ms);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t rows = argc > 1 ? static_cast<std::size_t>(std::strtoul(argv[1], nullptr, 10)) : 8;
  std::printf("hardware threads: %u\n", std::thread::hardware_concurrency());
  std::printf("Eigen float GEMM on one core (64x128 by 128x1024): %.1f GFLOP/s\n", measure_gemm_gflops());
  bench_kernel(rows);
  bench_exact(rows);
  return 0;
}
