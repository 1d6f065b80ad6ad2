// Explainer benchmark: Kernel SHAP on a 30-128-64-1 sigmoid MLP and exact SHAP on an AI4I-shaped model,
// compared with shap 0.49.1 figures measured on the same machine (reference BLAS and OpenBLAS, 2 threads).
//
// It also measures Kernel SHAP's error against a converged antithetic permutation estimate. That reference is not
// exact enumeration, which needs 2^30 coalitions. It reports the budget that reaches 1e-3 of the output range,
// and times exact SHAP on the trained AI4I model (tests/golden/ai4i_mlp.lepton) against its FLOP floor.
//
// Build: cmake --build BUILD --target bench_explain
// Run: BUILD/tests/bench_explain [explained rows, default 8] [AI4I artifact, default tests/golden/ai4i_mlp.lepton];
// BUILD/tests/bench_explain accuracy [reference pairs, default 72000], or ai4i [artifact], runs only that section.
// LEPTON_SIMD selects the kernel level.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <cstdlib>
#include <random>
#include <thread>

#include <Eigen/Core>

#include "lepton/explain.hpp"
#include "lepton/model.hpp"
#include "lepton/table.hpp"
#include "support/random_mlp.hpp"

using namespace lepton;
using test_support::random_mlp;
using test_support::random_rows;

namespace {

// shap 0.49.1 KernelExplainer and ExactExplainer, ms per explained row, as measured on this machine.
constexpr double kShapKernelReferenceBlasMs = 1086.0;
constexpr double kShapKernelOpenBlasMs = 276.0;
constexpr double kShapExactReferenceBlasMs = 22.0;
constexpr double kShapExactOpenBlasMs = 5.3;

// Antithetic permutation pairs of the accuracy reference, chosen so that its largest reported standard error is
// about 1e-4 of the output range (200 pairs gave 1.9e-3; the error falls as 1 / sqrt(pairs)).
constexpr std::size_t kReferencePairs = 72000;
// Estimated fp32 peak of this machine's 2 cores, GFLOP/s: 16 AVX-512 lanes x 2 FMA units x 2 FLOP x 2.5 GHz
// per core. An assumption (lscpu names no model or clock), used only to place the AI4I exact timings.
constexpr double kAssumedPeakGflops = 320.0;

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

// One timed configuration of the Kernel SHAP speed table.
struct KernelTiming {
  CoalitionPath path;
  KernelSampler sampler;
  std::size_t threads;
  std::size_t bootstrap;
};

void bench_kernel(std::size_t rows_to_explain) {
  const std::size_t width = 30;
  const ExplainModel model =
      ExplainModel::from_mlp(random_mlp({width, 128, 64, 1}, Activation::Relu, 2024), OutputLink::Logistic);
  const Background background = Background::uniform(random_rows(100, width, 1));
  const FeatureGroups groups = FeatureGroups::per_column(width);
  const DoubleMatrix rows = random_rows(rows_to_explain, width, 2);
  const std::size_t coalitions = 2048;
  // Each explained row evaluates v(empty), v(full) and the sampled coalitions, each over 100 background rows.
  const double model_rows = static_cast<double>((coalitions + 2) * background.size());
  // Floor with first-layer reuse: layers 2 and 3 per hybrid row, 2 FLOP per multiply-add.
  const double flop_per_row = model_rows * 2.0 * (128.0 * 64.0 + 64.0);
  const double floor_ms = flop_per_row / (kAssumedPeakGflops * 1e9) * 1e3;

  std::printf("\nKernel SHAP, 30-128-64-1 sigmoid MLP, background 100, %zu coalitions, %zu rows\n", coalitions,
              rows_to_explain);
  std::printf("model rows per explained row: %.0f; FLOP floor %.2f GFLOP per row (first layer reused), %.1f ms/row\n"
              "at the assumed fp32 peak of %.0f GFLOP/s on 2 cores (an estimate, see kAssumedPeakGflops)\n",
              model_rows, flop_per_row / 1e9, floor_ms, kAssumedPeakGflops);
  const KernelTiming timings[] = {
      {CoalitionPath::Fast, KernelSampler::Stratified, 1, 0},  {CoalitionPath::Fast, KernelSampler::Stratified, 1, 32},
      {CoalitionPath::Fast, KernelSampler::Stratified, 2, 0},  {CoalitionPath::Fast, KernelSampler::Stratified, 2, 32},
      {CoalitionPath::Fast, KernelSampler::Shap, 1, 0},        {CoalitionPath::Fast, KernelSampler::Shap, 2, 0},
      {CoalitionPath::Reference, KernelSampler::Stratified, 2, 0},
  };
  for (const KernelTiming& timing : timings) {
    // The reference path is slow: one row per thread is enough to time it.
    const DoubleMatrix subset = timing.path == CoalitionPath::Fast ? rows : random_rows(timing.threads, width, 2);
    const KernelExplainer explainer(model, background, groups,
                                    KernelOptions()
                                        .samples(coalitions)
                                        .seed(3)
                                        .threads(timing.threads)
                                        .bootstrap(timing.bootstrap)
                                        .path(timing.path)
                                        .sampler(timing.sampler));
    const double elapsed = seconds([&] { explainer.explain(subset); });
    const double ms = 1e3 * elapsed / static_cast<double>(subset.rows);
    std::printf("  %-9s %-10s threads %zu bootstrap %2zu: %8.1f ms/row  shap ref BLAS x%.1f  shap OpenBLAS x%.1f  "
                "%.1fx the floor  %.1f GFLOP/s effective\n",
                timing.path == CoalitionPath::Fast ? "fast" : "reference", to_string(timing.sampler).c_str(),
                timing.threads, timing.bootstrap, ms, kShapKernelReferenceBlasMs / ms, kShapKernelOpenBlasMs / ms,
                ms / floor_ms, flop_per_row / (ms * 1e-3) / 1e9);
  }
}

void bench_exact(std::size_t rows_to_explain) {
  // AI4I shape: Type one-hot (3 columns) plus 5 numeric columns = 8 encoded inputs in 6 groups.
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({8, 16, 8, 1}, Activation::Relu, 7), OutputLink::Logistic);
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

// The 30-feature Kernel SHAP setting shared by the speed and the accuracy sections.
struct KernelSetting {
  std::size_t width = 30;
  ExplainModel model = ExplainModel::from_mlp(random_mlp({30, 128, 64, 1}, Activation::Relu, 2024), OutputLink::Logistic);
  Background background = Background::uniform(random_rows(100, 30, 1));
  FeatureGroups groups = FeatureGroups::per_column(30);
};

// max - min of the model output over the background and the explained rows: the unit of every error below.
double output_range(const ExplainModel& model, const Background& background, const DoubleMatrix& rows) {
  const DoubleMatrix from_background = model.evaluate(background.rows);
  const DoubleMatrix from_rows = model.evaluate(rows);
  std::vector<double> outputs = from_background.data;
  outputs.insert(outputs.end(), from_rows.data.begin(), from_rows.data.end());
  const auto [low, high] = std::minmax_element(outputs.begin(), outputs.end());
  return *high - *low;
}

double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

// Kernel SHAP budgets of the accuracy section, and the seeds each one is run with.
constexpr std::size_t kAccuracyBudgets[] = {1024, 2048, 4096, 8192, 16384, 32768, 65536};
constexpr std::size_t kAccuracySeeds = 10;
constexpr double kTargetError = 1e-3;  // Of the output range.

// Error of one sampler at one budget over every seed, row and group, as fractions of the output range.
struct BudgetError {
  std::size_t budget = 0;
  double mean = 0.0;
  double max = 0.0;
  // Root mean square error with the reference's own variance (its squared standard errors) subtracted: an
  // estimate of the error against the true values, which the reference's noise does not inflate.
  double corrected_rms = 0.0;
  double ms_per_row = 0.0;
};

struct KernelSettingErrors {
  std::vector<BudgetError> by_sampler[2];  // Indexed by sampler_index.
};

std::size_t sampler_index(KernelSampler sampler) { return sampler == KernelSampler::Shap ? 0 : 1; }

constexpr KernelSampler kBenchSamplers[] = {KernelSampler::Shap, KernelSampler::Stratified};

KernelSettingErrors measure_kernel_errors(const KernelSetting& setting, const DoubleMatrix& rows,
                                          const Explanation& reference, double range) {
  double reference_variance = 0.0;
  for (double error : reference.standard_errors) reference_variance += error * error;
  reference_variance /= static_cast<double>(reference.standard_errors.size());

  KernelSettingErrors errors;
  for (KernelSampler sampler : kBenchSamplers) {
    std::printf("Kernel SHAP, %s sampler, fast path, no bootstrap, 2 threads, seeds 0..%zu, errors as fractions of "
                "the range:\n",
                to_string(sampler).c_str(), kAccuracySeeds - 1);
    std::printf("  %7s %12s %12s %16s %10s\n", "budget", "mean |error|", "max |error|", "corrected rms", "ms/row");
    for (std::size_t budget : kAccuracyBudgets) {
      BudgetError result;
      result.budget = budget;
      double squares = 0.0;
      double elapsed = 0.0;
      std::size_t count = 0;
      for (std::size_t seed = 0; seed < kAccuracySeeds; ++seed) {
        const KernelExplainer kernel(setting.model, setting.background, setting.groups,
                                     KernelOptions()
                                         .samples(budget)
                                         .seed(seed)
                                         .threads(2)
                                         .bootstrap(0)
                                         .path(CoalitionPath::Fast)
                                         .sampler(sampler));
        Explanation estimate;
        elapsed += seconds([&] { estimate = kernel.explain(rows); });
        for (std::size_t i = 0; i < estimate.values.size(); ++i) {
          const double error = std::abs(estimate.values[i] - reference.values[i]) / range;
          result.mean += error;
          result.max = std::max(result.max, error);
          squares += error * error;
          ++count;
        }
      }
      result.mean /= static_cast<double>(count);
      result.corrected_rms =
          std::sqrt(std::max(0.0, squares / static_cast<double>(count) - reference_variance / (range * range)));
      result.ms_per_row = 1e3 * elapsed / static_cast<double>(kAccuracySeeds * rows.rows);
      std::printf("  %7zu %12.3g %12.3g %16.3g %10.1f%s\n", budget, result.mean, result.max, result.corrected_rms,
                  result.ms_per_row, budget == 2048 ? "  (benchmark budget)" : "");
      errors.by_sampler[sampler_index(sampler)].push_back(result);
    }
  }
  return errors;
}

// The first budget whose error (picked by `error_of`) reaches the target, or nullptr.
template <typename ErrorOf>
const BudgetError* first_reaching(const std::vector<BudgetError>& results, ErrorOf error_of) {
  for (const BudgetError& result : results) {
    if (error_of(result) <= kTargetError) return &result;
  }
  return nullptr;
}

void print_first_reaching(const char* criterion, const BudgetError* result) {
  if (result == nullptr) {
    std::printf("    %s <= %.0e of the range: no budget up to 65536\n", criterion, kTargetError);
  } else {
    std::printf("    %s <= %.0e of the range: first at %zu coalitions, %.1f ms/row\n", criterion, kTargetError,
                result->budget, result->ms_per_row);

    // shap was timed at 2048 coalitions only. About 90 % of its time is model evaluation, which grows with
    // the number of coalitions, so scaling its time linearly estimates its cost at the same budget.
    const double scale = static_cast<double>(result->budget) / 2048.0;
    const double shap_reference_ms = kShapKernelReferenceBlasMs * scale;
    const double shap_openblas_ms = kShapKernelOpenBlasMs * scale;
    std::printf("      shap at that budget (scaled from 2048): %.0f ms/row ref BLAS (x%.1f), %.0f ms/row OpenBLAS (x%.1f)\n",
                shap_reference_ms, shap_reference_ms / result->ms_per_row, shap_openblas_ms,
                shap_openblas_ms / result->ms_per_row);
  }
}

void summarize_kernel_errors(const KernelSettingErrors& errors) {
  for (KernelSampler sampler : kBenchSamplers) {
    const std::vector<BudgetError>& results = errors.by_sampler[sampler_index(sampler)];
    std::printf("  %s sampler:\n", to_string(sampler).c_str());
    print_first_reaching("max error", first_reaching(results, [](const BudgetError& r) { return r.max; }));
    print_first_reaching("mean error", first_reaching(results, [](const BudgetError& r) { return r.mean; }));
  }

  // shap itself cannot run here, so its sampling scheme, reimplemented as KernelSampler::Shap, replaces it.
  auto at_2048 = [&](KernelSampler sampler) {
    for (const BudgetError& result : errors.by_sampler[sampler_index(sampler)]) {
      if (result.budget == 2048) return result;
    }
    return BudgetError{};
  };
  const BudgetError stratified = at_2048(KernelSampler::Stratified);
  const BudgetError shap = at_2048(KernelSampler::Shap);
  std::printf("At 2048 coalitions, stratified against the shap scheme (a reimplementation of shap 0.49.1's sampling,\n"
              "standing in for shap, which is not installed): mean %.3g vs %.3g (%s), max %.3g vs %.3g (%s)\n",
              stratified.mean, shap.mean, stratified.mean <= shap.mean ? "no larger" : "LARGER", stratified.max,
              shap.max, stratified.max <= shap.max ? "no larger" : "LARGER");
}

// Kernel SHAP's error against a converged permutation estimate, and the budget that reaches 1e-3 of the range.
void bench_kernel_accuracy(std::size_t pairs) {
  const KernelSetting setting;
  // Two rows, one per thread: the reference took about 85 s per row on this machine.
  const std::size_t explained = 2;
  // The first rows of the speed section's explained rows (same generator and seed).
  const DoubleMatrix rows = random_rows(explained, setting.width, 2);
  const double range = output_range(setting.model, setting.background, rows);

  std::printf("\nKernel SHAP accuracy, 30-128-64-1 sigmoid MLP, background 100, %zu rows, output range %.6f\n",
              explained, range);
  std::printf("reference: PermutationExplainer, %zu antithetic pairs, fast path, 2 threads. It is a converged\n"
              "sampling estimate, not exact enumeration (2^30 coalitions x 100 background rows is out of reach).\n",
              pairs);
  const PermutationExplainer permutation(
      setting.model, setting.background, setting.groups,
      PermutationOptions().permutations(pairs).seed(11).threads(2).path(CoalitionPath::Fast));
  Explanation reference;
  const double reference_seconds = seconds([&] { reference = permutation.explain(rows); });
  const double reference_error =
      *std::max_element(reference.standard_errors.begin(), reference.standard_errors.end());
  double reference_mean_error = 0.0;
  for (double error : reference.standard_errors) reference_mean_error += error;
  reference_mean_error /= static_cast<double>(reference.standard_errors.size());
  std::printf("reference: %.1f s; standard error: largest %.3g = %.3g of the range, mean %.3g of the range\n",
              reference_seconds, reference_error, reference_error / range, reference_mean_error / range);

  // The reference path at this many pairs would take hours, so check that the fast path (float later layers)
  // changes a permutation estimate by far less than the reference's own standard error.
  const std::size_t check_pairs = 20;
  Explanation by_path[2];
  for (CoalitionPath path : {CoalitionPath::Reference, CoalitionPath::Fast}) {
    const PermutationExplainer check(setting.model, setting.background, setting.groups,
                                     PermutationOptions().permutations(check_pairs).seed(11).threads(2).path(path));
    by_path[path == CoalitionPath::Fast ? 1 : 0] = check.explain(rows);
  }
  std::printf("fast against reference path, %zu pairs, same seed: max |difference| %.3g of the range\n", check_pairs,
              max_abs_difference(by_path[0].values, by_path[1].values) / range);

  const KernelSettingErrors errors = measure_kernel_errors(setting, rows, reference, range);
  summarize_kernel_errors(errors);
}

// The artifact's path from this file's path as the compiler saw it, because bench_explain has no
// LEPTON_SOURCE_DIR. A relative __FILE__ is relative to the compile folder, which is the executable's folder.
std::string default_ai4i_artifact() {
  namespace fs = std::filesystem;
  fs::path source = fs::path(__FILE__).parent_path().parent_path().parent_path();
  if (source.is_relative()) source = fs::read_symlink("/proc/self/exe").parent_path() / source;
  return (source / "tests/golden/ai4i_mlp.lepton").lexically_normal().string();
}

// Exact SHAP on the trained AI4I model with a background sampled from the real data file.
void bench_exact_ai4i(std::size_t rows_to_explain, const std::string& artifact_path) {
  const ModelArtifact artifact = load_artifact(artifact_path);
  const ExplainModel model = explain_model(artifact, default_output_link(artifact));
  const FeatureGroups groups = FeatureGroups::from_preprocessor(artifact.preprocessor);
  const Table table = read_csv(LEPTON_SHARED_DIR "/data/ai4i2020.csv");
  const DoubleMatrix encoded = DoubleMatrix::from(artifact.preprocessor.transform(table));
  // NOTE: the artifact does not store its training split, so the background is a uniform sample of the
  // whole file (10,000 rows), not of the training rows alone.
  const Background background = Background::sample(encoded, 100, 5);
  const DoubleMatrix rows = DoubleMatrix::from_rows([&] {
    std::vector<std::vector<double>> picked;
    for (std::size_t r = 0; r < rows_to_explain * 16; ++r) {
      const double* row = encoded.row((r * 613) % encoded.rows);
      picked.emplace_back(row, row + encoded.cols);
    }
    return picked;
  }());

  // Nonzero weights only: the fast path skips the zeros between the members of a merged cross-fitted network.
  double multiply_adds = 0.0;
  std::string shape = std::to_string(artifact.network.inputs());
  for (const DenseLayer& layer : artifact.network.layers) {
    multiply_adds += static_cast<double>(
        std::count_if(layer.weight.begin(), layer.weight.end(), [](float w) { return w != 0.0f; }));
    shape += "-" + std::to_string(layer.outputs);
  }
  const double coalitions = std::ldexp(1.0, static_cast<int>(groups.size()));
  const double flop_per_row = coalitions * static_cast<double>(background.size()) * multiply_adds * 2.0;
  const double floor_ms = flop_per_row / (kAssumedPeakGflops * 1e9) * 1e3;

  std::printf("\nExact SHAP, trained AI4I model %s (%s), %zu encoded inputs, %zu groups (%.0f coalitions),\n"
              "background %zu rows sampled from the whole data file, %zu explained rows, 2 threads\n",
              artifact_path.c_str(), shape.c_str(), artifact.network.inputs(), groups.size(), coalitions,
              background.size(), rows.rows);
  std::printf("FLOP per explained row: %.0f coalitions x %zu background rows x %.0f multiply-adds (nonzero\n"
              "weights) x 2 = %.1f MFLOP;\n"
              "floor %.4f ms/row at an assumed fp32 peak of %.0f GFLOP/s on 2 cores (estimate: 2 x 16 lanes x 2 FMA\n"
              "units x 2 FLOP x 2.5 GHz; clock and FMA units not verified)\n",
              coalitions, background.size(), multiply_adds, flop_per_row / 1e6, floor_ms, kAssumedPeakGflops);
  for (CoalitionPath path : {CoalitionPath::Reference, CoalitionPath::Fast}) {
    const ExactExplainer explainer(model, background, groups, ExactOptions().threads(2).path(path));
    const double elapsed = seconds([&] { explainer.explain(rows); });
    const double ms = 1e3 * elapsed / static_cast<double>(rows.rows);
    std::printf("  %-9s: %8.3f ms/row (%.0f rows/s)  shap ref BLAS x%.1f  shap OpenBLAS x%.1f  %.1fx the floor  "
                "%.1f GFLOP/s\n",
                path == CoalitionPath::Fast ? "fast" : "reference", ms, 1e3 / ms, kShapExactReferenceBlasMs / ms,
                kShapExactOpenBlasMs / ms, ms / floor_ms, flop_per_row / (ms * 1e-3) / 1e9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // "accuracy" or "ai4i" as the first argument runs only that section.
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "accuracy") {
    bench_kernel_accuracy(argc > 2 ? static_cast<std::size_t>(std::strtoul(argv[2], nullptr, 10)) : kReferencePairs);
    return 0;
  }
  if (mode == "ai4i") {
    bench_exact_ai4i(8, argc > 2 ? argv[2] : default_ai4i_artifact());
    return 0;
  }

  const std::size_t rows = argc > 1 ? static_cast<std::size_t>(std::strtoul(argv[1], nullptr, 10)) : 8;
  std::printf("hardware threads: %u\n", std::thread::hardware_concurrency());
  std::printf("Eigen float GEMM on one core (64x128 by 128x1024): %.1f GFLOP/s\n", measure_gemm_gflops());
  bench_kernel(rows);
  bench_exact(rows);
  bench_exact_ai4i(rows, argc > 2 ? argv[2] : default_ai4i_artifact());
  bench_kernel_accuracy(kReferencePairs);
  return 0;
}
