// Inference benchmark: Lepton's f32 and int8 predictor against LibTorch 1.13 with the same weights, one
// thread, in one process. Prints single-row latency, rows/s at batch 1024, the ratio to each anchor and to
// the FLOP floor, and the int8 accuracy on the test split.
//
// Usage: bench_inference [MODEL] [DATA] [ORT_LIBRARY ONNX_DIR]
//   MODEL defaults to tests/golden/ai4i_mlp.lepton, DATA to the shared AI4I CSV.
//   ORT_LIBRARY (or LEPTON_ORT_LIBRARY) is a libonnxruntime.so.1; with it, ONNX Runtime runs side by side
//   on ONNX_DIR/model_f32.onnx and ONNX_DIR/model_int8.onnx (or LEPTON_ORT_MODELS), which
//   tests/bench/export_onnx.py writes from MODEL. Without it the bench prints ONNX Runtime's reference
//   figures instead.
// Environment: LEPTON_SIMD=scalar|avx2|avx512 lowers the kernel level; LEPTON_BENCH_GHZ sets the clock
// used for the FLOP floor (default 2.6, an estimate from lscpu's BogoMIPS / 2 on the benchmark machine).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "lepton/dataset.hpp"
#include "lepton/error.hpp"
#include "lepton/evaluator.hpp"
#include "lepton/predictor.hpp"
#include "lepton/quantize.hpp"
#include "lepton/table.hpp"
#include "ort_runner.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kBatch = 1024;

// ONNX Runtime 1.30 reference figures for MLP 8-128-64-2 on the benchmark machine (C API, one thread),
// printed when no ONNX Runtime library is given.
constexpr double kOrtF32SingleUs = 2.7;
constexpr double kOrtInt8SingleUs = 4.4;
constexpr double kOrtF32RowsPerSecond = 4.5e6;
constexpr double kOrtInt8RowsPerSecond = 7.4e6;

// Median seconds per call of `call`, from `blocks` timed blocks of `calls` calls each.
double median_seconds(const std::function<void(std::size_t)>& call, std::size_t blocks, std::size_t calls) {
  std::vector<double> per_call;
  std::size_t counter = 0;
  for (std::size_t b = 0; b < blocks; ++b) {
    const auto start = Clock::now();
    for (std::size_t i = 0; i < calls; ++i) {
      call(counter++);
    }
    per_call.push_back(std::chrono::duration<double>(Clock::now() - start).count() / static_cast<double>(calls));
  }
  std::nth_element(per_call.begin(), per_call.begin() + static_cast<std::ptrdiff_t>(per_call.size() / 2),
                   per_call.end());
  return per_call[per_call.size() / 2];
}

struct Figures {
  double single_us = 0;
  double rows_per_second = 0;
};

Figures measure_lepton(const lepton::Predictor& predictor, const lepton::Matrix& rows) {
  lepton::Workspace workspace;
  lepton::Predictions out;
  const std::size_t available = rows.rows - kBatch;

  Figures figures;
  figures.single_us = 1e6 * median_seconds(
      [&](std::size_t i) { predictor.predict(rows.row(i % available), 1, workspace, out); }, 201, 2000);
  const double batch_seconds = median_seconds(
      [&](std::size_t i) { predictor.predict(rows.row(i % 64), kBatch, workspace, out); }, 101, 20);
  figures.rows_per_second = static_cast<double>(kBatch) / batch_seconds;
  return figures;
}

// The same network as LibTorch tensors, run with torch::linear and relu under NoGradGuard.
struct TorchNetwork {
  std::vector<torch::Tensor> weights, biases;
  std::vector<bool> relu;

  explicit TorchNetwork(const lepton::Mlp& network) {
    for (const lepton::DenseLayer& layer : network.layers) {
      weights.push_back(torch::from_blob(const_cast<float*>(layer.weight.data()),
                                         {static_cast<long>(layer.outputs), static_cast<long>(layer.inputs)})
                            .clone());
      biases.push_back(torch::from_blob(const_cast<float*>(layer.bias.data()), {static_cast<long>(layer.outputs)})
                           .clone());
      relu.push_back(layer.activation == lepton::Activation::Relu);
    }
  }

  torch::Tensor forward(torch::Tensor x) const {
    for (std::size_t l = 0; l < weights.size(); ++l) {
      x = torch::linear(x, weights[l], biases[l]);
      if (relu[l]) x = torch::relu(x);
    }
    return torch::sigmoid(x);
  }
};

Figures measure_torch(const TorchNetwork& network, const lepton::Matrix& rows) {
  torch::NoGradGuard no_grad;
  const torch::Tensor all = torch::from_blob(const_cast<float*>(rows.data.data()),
                                             {static_cast<long>(rows.rows), static_cast<long>(rows.cols)});
  const std::size_t available = rows.rows - kBatch;
  std::vector<torch::Tensor> singles;
  for (std::size_t i = 0; i < 256; ++i) singles.push_back(all.slice(0, i % available, i % available + 1));
  const torch::Tensor batch = all.slice(0, 0, kBatch);

  Figures figures;
  figures.single_us = 1e6 * median_seconds([&](std::size_t i) { network.forward(singles[i % 256]); }, 51, 200);
  const double batch_seconds = median_seconds([&](std::size_t) { network.forward(batch); }, 31, 10);
  figures.rows_per_second = static_cast<double>(kBatch) / batch_seconds;
  return figures;
}

// Two FLOP per nonzero weight. The zeros between the members of a merged cross-fitted network do not count,
// because the f32 predictor skips them. NOTE: int8 layers still multiply those zeros, so on a merged network
// the int8 kernels cannot reach the int8 floor.
double flops_per_row(const lepton::Mlp& network) {
  double flops = 0;
  for (const lepton::DenseLayer& layer : network.layers) {
    const auto nonzero = std::count_if(layer.weight.begin(), layer.weight.end(), [](float w) { return w != 0.0f; });
    flops += 2.0 * static_cast<double>(nonzero);
  }
  return flops;
}

std::vector<std::int64_t> pick(const std::vector<std::int64_t>& labels, const std::vector<std::size_t>& rows) {
  std::vector<std::int64_t> picked;
  for (const std::size_t row : rows) picked.push_back(labels[row]);
  return picked;
}

// Rows of the consistency check, and the batch sizes each row is also predicted in: a full batch and an
// odd size, so that rows sit at different positions and next to different neighbours.
constexpr std::size_t kConsistencyRows = 4096;
constexpr std::size_t kConsistencyBatches[] = {kBatch, 37};

// A runtime's prediction of `rows` rows at `data`, as probabilities [rows, outputs].
using PredictRows = std::function<std::vector<double>(const float* data, std::size_t rows)>;

// Predicts the first `count` rows, `batch` rows per call, and concatenates the probabilities.
std::vector<double> predict_in_batches(const PredictRows& predict_rows, const lepton::Matrix& rows,
                                       std::size_t count, std::size_t batch) {
  std::vector<double> probability;
  for (std::size_t first = 0; first < count; first += batch) {
    const std::vector<double> part = predict_rows(rows.row(first), std::min(batch, count - first));
    probability.insert(probability.end(), part.begin(), part.end());
  }
  return probability;
}

double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double largest = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) largest = std::max(largest, std::abs(a[i] - b[i]));
  return largest;
}

// Max |probability alone - probability inside a batch| over the first kConsistencyRows rows and every
// size in kConsistencyBatches.
double batch_consistency(const PredictRows& predict_rows, const lepton::Matrix& rows) {
  const std::vector<double> alone = predict_in_batches(predict_rows, rows, kConsistencyRows, 1);
  double largest = 0;
  for (const std::size_t batch : kConsistencyBatches) {
    largest = std::max(largest, max_abs_difference(alone, predict_in_batches(predict_rows, rows, kConsistencyRows,
                                                                              batch)));
  }
  return largest;
}

PredictRows lepton_rows(const lepton::Predictor& predictor) {
  return [&predictor](const float* data, std::size_t count) {
    lepton::Workspace workspace;
    lepton::Predictions out;
    predictor.predict(data, count, workspace, out);
    return out.probability;
  };
}

PredictRows ort_rows(lepton_bench::OrtSession& session) {
  return [&session](const float* data, std::size_t count) {
    const std::vector<float> probability = session.predict(data, count);
    return std::vector<double>(probability.begin(), probability.end());
  };
}

// Same schedule as measure_torch: 256 single rows taken in turn, then one batch, all bound before timing.
Figures measure_ort(lepton_bench::OrtSession& session, const lepton::Matrix& rows) {
  const std::size_t available = rows.rows - kBatch;
  std::vector<std::size_t> singles;
  for (std::size_t i = 0; i < 256; ++i) singles.push_back(session.bind(rows.row(i % available), 1));
  const std::size_t batch = session.bind(rows.row(0), kBatch);

  Figures figures;
  figures.single_us = 1e6 * median_seconds([&](std::size_t i) { session.run(singles[i % 256]); }, 101, 1000);
  const double batch_seconds = median_seconds([&](std::size_t) { session.run(batch); }, 51, 10);
  figures.rows_per_second = static_cast<double>(kBatch) / batch_seconds;
  return figures;
}

// ONNX Runtime's side of the run: measured figures, or the reference figures when it did not run.
struct OrtResults {
  bool measured = false;
  std::string version;
  Figures f32{kOrtF32SingleUs, kOrtF32RowsPerSecond};
  Figures int8{kOrtInt8SingleUs, kOrtInt8RowsPerSecond};
  double f32_consistency = 0;
  double int8_consistency = 0;
  double f32_vs_lepton = 0;   // max |ONNX Runtime f32 - Lepton f32| in probability, rows predicted alone
  double int8_vs_lepton = 0;  // max |ONNX Runtime int8 - Lepton f32|
};

std::string getenv_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

OrtResults run_ort(const std::string& library, const std::string& onnx_dir, const lepton::Predictor& f32,
                   const lepton::Mlp& network, const lepton::Matrix& rows) {
  OrtResults results;
  if (library.empty()) return results;
  if (onnx_dir.empty()) {
    throw lepton::InvalidArgument(fmt::format(
        "ONNX Runtime library {} given without an ONNX folder; pass ONNX_DIR as the 4th argument or set "
        "LEPTON_ORT_MODELS to the folder that tests/bench/export_onnx.py wrote",
        library));
  }

  const lepton_bench::OrtRuntime runtime(library);
  lepton_bench::OrtSession ort_f32(runtime, onnx_dir + "/model_f32.onnx", network.inputs(), network.outputs());
  lepton_bench::OrtSession ort_int8(runtime, onnx_dir + "/model_int8.onnx", network.inputs(), network.outputs());
  results.measured = true;
  results.version = runtime.version();

  const std::vector<double> lepton_alone = predict_in_batches(lepton_rows(f32), rows, kConsistencyRows, 1);
  results.f32_vs_lepton =
      max_abs_difference(lepton_alone, predict_in_batches(ort_rows(ort_f32), rows, kConsistencyRows, 1));
  results.int8_vs_lepton =
      max_abs_difference(lepton_alone, predict_in_batches(ort_rows(ort_int8), rows, kConsistencyRows, 1));
  results.f32_consistency = batch_consistency(ort_rows(ort_f32), rows);
  results.int8_consistency = batch_consistency(ort_rows(ort_int8), rows);

  results.f32 = measure_ort(ort_f32, rows);
  results.int8 = measure_ort(ort_int8, rows);
  return results;
}

}  // namespace

// Prints max |probability alone - probability inside a batch| per runtime, and how far ONNX Runtime's
// outputs are from Lepton f32's, which shows that both run the same weights.
static void print_consistency(const lepton::Predictor& f32, const lepton::Predictor& int8, const OrtResults& ort,
                       const lepton::Matrix& rows) {
  fmt::print("\nconsistency over the first {} rows, each predicted alone and in batches of {} and {} "
             "(max |difference| in probability):\n",
             kConsistencyRows, kConsistencyBatches[0], kConsistencyBatches[1]);
  fmt::print("  Lepton f32 {:.3g}, Lepton int8 {:.3g}\n", batch_consistency(lepton_rows(f32), rows),
             batch_consistency(lepton_rows(int8), rows));
  if (!ort.measured) return;
  fmt::print("  ONNX Runtime f32 {:.3g}, ONNX Runtime int8 {:.3g}\n", ort.f32_consistency, ort.int8_consistency);
  fmt::print("  same weights: max |ONNX Runtime f32 - Lepton f32| {:.3g}, max |ONNX Runtime int8 - Lepton f32| "
             "{:.3g} (rows alone)\n",
             ort.f32_vs_lepton, ort.int8_vs_lepton);
}

int main(int argc, char** argv) {
  const std::string model_path = argc > 1 ? argv[1] : LEPTON_SOURCE_DIR "/tests/golden/ai4i_mlp.lepton";
  const std::string data_path = argc > 2 ? argv[2] : LEPTON_SHARED_DIR "/data/ai4i2020.csv";
  const std::string ort_library = argc > 3 ? argv[3] : getenv_or("LEPTON_ORT_LIBRARY", "");
  const std::string onnx_dir = argc > 4 ? argv[4] : getenv_or("LEPTON_ORT_MODELS", "");
  const char* ghz_text = std::getenv("LEPTON_BENCH_GHZ");
  const double ghz = ghz_text != nullptr ? std::atof(ghz_text) : 2.6;
  torch::set_num_threads(1);

  // Data, split and the int8 model, gated on the validation split as an export would be.
  const lepton::ModelArtifact f32_artifact = lepton::load_artifact(model_path);
  const lepton::Table table = lepton::read_csv(data_path);
  std::vector<std::size_t> all(table.rows());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  const std::vector<std::int64_t> labels = f32_artifact.target.encode_labels(table, all);
  const lepton::Split split = lepton::stratified_split(labels, lepton::SplitFractions{}, f32_artifact.provenance.seed);
  const lepton::Matrix validation = f32_artifact.preprocessor.transform(table, split.validation);
  const lepton::Matrix test = f32_artifact.preprocessor.transform(table, split.test);
  const lepton::Matrix rows = f32_artifact.preprocessor.transform(table);
  const lepton::QuantizationResult quantized =
      lepton::quantize(f32_artifact, lepton::Matrix(), validation, pick(labels, split.validation));

  const lepton::Predictor f32(f32_artifact);
  const lepton::Predictor int8(quantized.artifact);
  std::string shape = std::to_string(f32_artifact.network.inputs());
  for (const lepton::DenseLayer& layer : f32_artifact.network.layers) shape += "-" + std::to_string(layer.outputs);
  fmt::print("model {} (MLP {}), SIMD level {}, one thread, batch {}\n", model_path, shape,
             lepton::to_string(f32.simd_level()), kBatch);

  // Accuracy of int8 against f32 on the test split.
  const lepton::Predictions f32_test = f32.predict(test);
  const lepton::Predictions int8_test = int8.predict(test);
  std::size_t same = 0;
  for (std::size_t r = 0; r < test.rows; ++r) same += f32_test.label_index[r] == int8_test.label_index[r] ? 1 : 0;
  const std::vector<std::int64_t> test_labels = pick(labels, split.test);
  const double f32_f1 = lepton::evaluate(f32_test, test_labels).binary.f1;
  const double int8_f1 = lepton::evaluate(int8_test, test_labels).binary.f1;
  fmt::print("int8 vs f32 on the test split ({} rows): label agreement {:.2f} % (target >= 99.5), F1 {:.4f} -> "
             "{:.4f}, drop {:.2f} points (target <= 0.5)\n",
             test.rows, 100.0 * same / test.rows, f32_f1, int8_f1, 100.0 * (f32_f1 - int8_f1));

  const Figures lepton_f32 = measure_lepton(f32, rows);
  const Figures lepton_int8 = measure_lepton(int8, rows);
  const Figures torch_f32 = measure_torch(TorchNetwork(f32_artifact.network), rows);
  OrtResults ort;
  try {
    ort = run_ort(ort_library, onnx_dir, f32, f32_artifact.network, rows);
  } catch (const lepton::Error& error) {
    fmt::print(stderr, "bench_inference: {}\n", error.what());
    return 1;
  }

  const double flops = flops_per_row(f32_artifact.network);
  // Peak per core: two AVX-512 FMA units (2 x 16 lanes x 2 FLOP) in f32; VNNI does 4 multiply-adds per
  // 32-bit lane, so 4x that in int8 operations. Both are estimates at the assumed clock.
  const double f32_floor = ghz * 1e9 * 64.0 / flops;
  const double int8_floor = ghz * 1e9 * 256.0 / flops;

  fmt::print("\n| runtime | single row (median) | rows/s at batch {} |\n|---|---|---|\n", kBatch);
  fmt::print("| Lepton f32 | {:.3f} us | {:.2f} M |\n", lepton_f32.single_us, lepton_f32.rows_per_second / 1e6);
  fmt::print("| Lepton int8 | {:.3f} us | {:.2f} M |\n", lepton_int8.single_us, lepton_int8.rows_per_second / 1e6);
  fmt::print("| LibTorch 1.13 f32 (torch::linear, measured here) | {:.3f} us | {:.2f} M |\n", torch_f32.single_us,
             torch_f32.rows_per_second / 1e6);
  if (ort.measured) {
    fmt::print("| ONNX Runtime {} f32 (C API, same weights, measured here) | {:.3f} us | {:.2f} M |\n", ort.version,
               ort.f32.single_us, ort.f32.rows_per_second / 1e6);
    fmt::print("| ONNX Runtime {} dynamic int8 (measured here) | {:.3f} us | {:.2f} M |\n", ort.version,
               ort.int8.single_us, ort.int8.rows_per_second / 1e6);
  } else {
    fmt::print("| ONNX Runtime 1.30 f32 (reference figure, MLP 8-128-64-2, not run) | {:.1f} us | {:.1f} M |\n",
               ort.f32.single_us, ort.f32.rows_per_second / 1e6);
    fmt::print("| ONNX Runtime 1.30 int8 (reference figure, not run) | {:.1f} us | {:.1f} M |\n",
               ort.int8.single_us, ort.int8.rows_per_second / 1e6);
  }

  fmt::print("\nratios (higher is better for Lepton):\n");
  const char* ort_kind = ort.measured ? "ONNX Runtime (measured)" : "ONNX Runtime's reference figure";
  fmt::print("  f32 single row: {:.1f}x faster than LibTorch, {:.1f}x than {}; target <= 0.3 us: {}\n",
             torch_f32.single_us / lepton_f32.single_us, ort.f32.single_us / lepton_f32.single_us, ort_kind,
             lepton_f32.single_us <= 0.3 ? "met" : "NOT met");
  fmt::print("  int8 single row: {:.1f}x faster than LibTorch f32, {:.1f}x than {} int8; target <= 0.3 us: {}\n",
             torch_f32.single_us / lepton_int8.single_us, ort.int8.single_us / lepton_int8.single_us, ort_kind,
             lepton_int8.single_us <= 0.3 ? "met" : "NOT met");
  fmt::print("  f32 batch: {:.1f}x LibTorch, {:.2f}x {}; target >= 4.5 M rows/s: {}\n",
             lepton_f32.rows_per_second / torch_f32.rows_per_second, lepton_f32.rows_per_second / ort.f32.rows_per_second,
             ort_kind,
             lepton_f32.rows_per_second >= 4.5e6 ? "met" : "NOT met");
  fmt::print("  int8 batch: {:.2f}x {} int8; target >= 10.5 M rows/s: {}\n",
             lepton_int8.rows_per_second / ort.int8.rows_per_second, ort_kind,
             lepton_int8.rows_per_second >= 10.5e6 ? "met" : "NOT met");
  fmt::print("  FLOP floor at {:.1f} GHz ({:.0f} FLOP/row, 2 per nonzero weight): f32 {:.1f} M rows/s (Lepton "
             "reaches {:.0f} %), int8 {:.1f} M rows/s (Lepton reaches {:.0f} %)\n",
             ghz, flops, f32_floor / 1e6, 100.0 * lepton_f32.rows_per_second / f32_floor, int8_floor / 1e6,
             100.0 * lepton_int8.rows_per_second / int8_floor);

  print_consistency(f32, int8, ort, rows);
  return 0;
}
