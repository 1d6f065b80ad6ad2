#pragma once
/// Private: the numbers behind the configurator's choices, and the size, latency and training-time
/// estimates that it checks constraints with. Tests include this header to check the rules.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lepton/predictor.hpp"
#include "runtime/kernels.hpp"

namespace lepton::detail {

// ---- Architecture

/// Hidden layers by training rows. Fewer rows support fewer weights before the network overfits, so the
/// widths start from a 128-64 design for mid-sized tabular data and halve for each tenfold fewer rows.
inline constexpr std::size_t kSmallDataRows = 1'000;   ///< Below this: one hidden layer of 32 units.
inline constexpr std::size_t kMediumDataRows = 10'000; ///< Below this: 64-32.
inline constexpr std::size_t kLargeDataRows = 100'000; ///< Below this: 128-64; from here on 256-128-64.

/// A first hidden layer narrower than its input compresses before it can learn interactions, so the first
/// layer grows to the next power of two above the encoded width, up to this many units.
inline constexpr std::size_t kMaxFirstLayerUnits = 512;

/// "transparent" interpretability: one hidden layer of at most this many units, small enough to inspect.
inline constexpr std::size_t kTransparentMaxUnits = 16;

/// The smallest model the configurator builds: one hidden layer of this many units. Constraints that
/// even this model cannot meet raise ConstraintError.
inline constexpr std::size_t kSmallestHiddenUnits = 4;

// ---- Size and latency estimates

inline constexpr std::size_t kFp32BytesPerWeight = 4;
/// int8 export (docs/model-format.md): one byte per weight, and per output channel of every layer an fp32
/// bias and an fp32 scale.
inline constexpr std::size_t kInt8BytesPerWeight = 1;
inline constexpr std::size_t kInt8BytesPerChannel = 8;

/// Single-row latency estimate of the runtime predictor: a fixed cost per call plus the multiply-adds that
/// the kernels run, at one throughput per SIMD level and weight format. Each entry is fitted through two
/// measured points, one 8-64-32-1 member (2,592 multiply-adds) and the merged 8-640-320-1 network of 10
/// members, whose kernels skip the zero blocks and run 25,920 multiply-adds. Where runs disagreed, the
/// slowest figure counts, and the fit is rounded toward slower.
/// Machine: a 2-core KVM guest, `Intel(R) Xeon(R) Processor` with AVX-512 VNNI, GCC 12 Release build, one
/// thread, shared with other builds while measuring (1-minute load average up to 3.9).
/// Sources: docs/benchmarks.md, section "Inference" (2026-12-04) and its subsections "Merged cross-fitted
/// networks: skipping the zero blocks" and "Merged int8 networks in blocks" (2026-12-05), and
/// `LEPTON_SIMD=<level> build-latency/tests/bench_inference MODEL` run twice per level on the same machine
/// on 2026-12-05 (MODEL: tests/golden/ai4i_mlp.lepton, and the merged model that `lepton run` writes for
/// examples/predictive_maintenance).
/// NOTE: an estimate for this machine's kernels, with figures that moved by up to 30 % with the load.
/// report.json records the measured latency.
struct KernelThroughput {
  double multiply_adds_per_us = 0;  ///< Multiply-adds per microsecond on one core, single row.
  double call_overhead_us = 0;      ///< Fixed cost of one predict() call: setup and the output transform.
};

// Each comment gives the measured range and the throughput that the slowest merged figure minus the call
// cost implies, before rounding down. The call cost is set so that the member estimate also stays slower.

/// Scalar f32: member 0.419 to 0.510 us, merged 4.64 to 6.12 us, so 4,270 multiply-adds per us.
inline constexpr KernelThroughput kScalarFp32{4'000, 0.05};
/// Scalar int8: member 1.19 to 1.34 us, merged 18.4 us, so 1,440 per us. The scalar int8 kernel is slow on
/// the merged network's small blocks: it ran the dense merged network at 5,900 per us.
inline constexpr KernelThroughput kScalarInt8{1'350, 0.4};
/// AVX2 f32: member 0.132 to 0.138 us, merged 1.47 to 1.86 us, so 14,360 per us.
inline constexpr KernelThroughput kAvx2Fp32{13'000, 0.05};
/// AVX2 int8: member 0.231 to 0.241 us, merged 1.33 to 1.89 us, so 14,890 per us.
inline constexpr KernelThroughput kAvx2Int8{14'000, 0.15};
/// AVX-512 f32: member 0.137 to 0.146 us, merged 1.53 to 2.0 us, so 13,290 per us.
inline constexpr KernelThroughput kAvx512Fp32{13'000, 0.05};
/// AVX-512 int8: member 0.148 to 0.164 us, merged 0.77 to 0.82 us, so 36,980 per us.
inline constexpr KernelThroughput kAvx512Int8{32'000, 0.12};

inline const KernelThroughput& kernel_throughput(SimdLevel level, bool int8) {
  switch (level) {
    case SimdLevel::Avx512: return int8 ? kAvx512Int8 : kAvx512Fp32;
    case SimdLevel::Avx2: return int8 ? kAvx2Int8 : kAvx2Fp32;
    case SimdLevel::Scalar: break;
  }
  return int8 ? kScalarInt8 : kScalarFp32;
}

/// Training-time estimate: microseconds per training row per 10,000 parameters per epoch.
/// NOTE: ignores the fixed cost of each optimizer step, which dominates for very small models.
inline constexpr double kTrainingUsPerRowPer10kParameters = 1.5;

// ---- Optimization

inline constexpr double kLearningRate = 2e-3;   ///< AdamW with cosine decay; robust for standardized inputs.
inline constexpr std::size_t kWarmupEpochs = 3; ///< Linear warm-up before the cosine decay.
/// Warm-up takes at most one epoch in this many, so that short runs still spend most epochs decaying.
inline constexpr std::size_t kEpochsPerWarmupEpoch = 10;
inline constexpr double kWeightDecay = 1e-4;

/// Dropout when there are fewer than this many training rows per parameter, where the network can memorize.
inline constexpr double kMinRowsPerParameter = 5.0;
inline constexpr double kDropout = 0.1;

/// Batch size by training rows: small batches give more updates per epoch on small data, large batches
/// use the hardware better on large data.
inline constexpr std::size_t kSmallBatchRows = 2'000;   ///< Below this: batch 32.
inline constexpr std::size_t kMediumBatchRows = 20'000; ///< Below this: 64.
inline constexpr std::size_t kLargeBatchRows = 200'000; ///< Below this: 128; from here on 256.
/// DP-SGD adds noise to the summed clipped gradients; a larger batch averages it over more rows.
inline constexpr std::size_t kPrivateBatchSize = 256;

/// Epoch limits by training rows: small data needs many passes, large data converges in fewer.
inline constexpr std::size_t kManyEpochsRows = 20'000;  ///< Below this: 200 epochs, patience 25.
inline constexpr std::size_t kSomeEpochsRows = 200'000; ///< Below this: 100 epochs, patience 15; then 50 / 10.

// ---- Cross-fitting

/// Up to this many training and validation rows, K-fold cross-fitting replaces the single validation split:
/// each member trains on (K - 1) / K of all those rows, and the threshold comes from out-of-fold
/// predictions for every one of them. Above it, one model already trains on enough rows, and K members would cost
/// K times the training time.
inline constexpr std::size_t kCrossFitMaxRows = 20'000;
/// Fold counts tried in order; the first whose merged network meets the size and latency limits wins.
inline constexpr std::size_t kCrossFitFolds[] = {10, 5, 3};
/// With a training-time budget, each member must afford at least this many epochs, or fewer folds are tried.
inline constexpr std::size_t kMinEpochsPerMember = 20;
/// Each fold needs this many rows of the smallest class, or its early stopping has too few to judge by.
inline constexpr std::size_t kMinClassRowsPerFold = 10;

// ---- Estimates

/// Weights and biases of an MLP with these hidden layers.
inline std::size_t parameter_count(std::size_t inputs, const std::vector<std::size_t>& hidden, std::size_t outputs) {
  std::size_t count = 0;
  std::size_t width = inputs;
  for (std::size_t units : hidden) {
    count += width * units + units;
    width = units;
  }
  return count + width * outputs + outputs;
}

/// Output channels of every layer: each gets one fp32 scale in the int8 export.
inline std::size_t output_channels(const std::vector<std::size_t>& hidden, std::size_t outputs) {
  std::size_t channels = outputs;
  for (std::size_t units : hidden) channels += units;
  return channels;
}

inline std::uint64_t fp32_bytes(std::size_t parameters) { return std::uint64_t{parameters} * kFp32BytesPerWeight; }

/// Bytes of an int8 export of `parameters` weights and biases with one bias per output channel.
inline std::uint64_t int8_bytes(std::size_t parameters, std::size_t channels) {
  const std::uint64_t weights = std::uint64_t{parameters} - channels;
  return weights * kInt8BytesPerWeight + std::uint64_t{channels} * kInt8BytesPerChannel;
}

/// Multiply-adds per row of an MLP with these hidden layers: one per weight, none for the biases.
inline std::size_t multiply_add_count(std::size_t inputs, const std::vector<std::size_t>& hidden,
                                      std::size_t outputs) {
  std::size_t count = 0;
  std::size_t width = inputs;
  for (std::size_t units : hidden) {
    count += width * units;
    width = units;
  }
  return count + width * outputs;
}

/// Multiply-adds that the predictor runs per row for `members` members of these hidden layers merged into
/// one network (1: a single model). The merged hidden layers after the first are block-diagonal, and the
/// kernels run them block by block, so they run the members' multiply-adds. An int8 layer runs dense
/// instead when its blocks' inputs are not a multiple of the kernels' 4-byte input group (kInputGroup).
/// NOTE: such a dense int8 layer is priced at the blocked int8 throughput, which overestimates it about 2x.
/// The configurator's widths are powers of two of at least 4, so it never builds one.
inline std::size_t runtime_multiply_adds(std::size_t inputs, const std::vector<std::size_t>& hidden,
                                         std::size_t outputs, std::size_t members, bool int8) {
  if (hidden.empty()) return inputs * outputs;

  // The first layer reads the shared inputs, and the output layer reads every member's last hidden units.
  std::size_t count = members * inputs * hidden.front() + members * hidden.back() * outputs;
  for (std::size_t i = 1; i < hidden.size(); ++i) {
    const std::size_t block = hidden[i - 1] * hidden[i];
    const bool dense = int8 && members > 1 && hidden[i - 1] % kInputGroup != 0;
    count += dense ? members * members * block : members * block;
  }
  return count;
}

/// Estimated single-row latency in microseconds of a network that runs `multiply_adds` per row on the
/// kernels of `level`. Deterministic: it reads the table above and times nothing.
inline double estimated_latency_us(std::size_t multiply_adds, bool int8, SimdLevel level) {
  const KernelThroughput& kernel = kernel_throughput(level, int8);
  return kernel.call_overhead_us + static_cast<double>(multiply_adds) / kernel.multiply_adds_per_us;
}

/// Estimated seconds of one training epoch.
inline double estimated_epoch_seconds(std::size_t training_rows, std::size_t parameters) {
  return kTrainingUsPerRowPer10kParameters * 1e-6 * static_cast<double>(training_rows) *
         (static_cast<double>(parameters) / 1e4);
}

}  // namespace lepton::detail
