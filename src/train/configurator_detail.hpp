#pragma once
/// Private: the numbers behind the configurator's choices, and the size, latency and training-time
/// estimates that it checks constraints with. Tests include this header to check the rules.

#include <cstddef>
#include <cstdint>
#include <vector>

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
/// int8 export: one byte per weight or bias, plus one fp32 scale per output channel of every layer.
inline constexpr std::size_t kInt8BytesPerWeight = 1;
inline constexpr std::size_t kInt8BytesPerChannel = 4;

/// Latency estimate: 2 FLOP per parameter (a multiply and an add) at this throughput, plus a fixed
/// per-call overhead. NOTE: an estimate for one scalar core, not a measurement of the runtime.
inline constexpr double kFlopPerParameter = 2.0;
inline constexpr double kFp32FlopPerSecond = 2e9;
inline constexpr double kCallOverheadUs = 0.2;
/// int8 kernels are assumed to be this many times faster than fp32. NOTE: assumed, not measured.
inline constexpr double kInt8Speedup = 2.0;

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

inline std::uint64_t int8_bytes(std::size_t parameters, std::size_t channels) {
  return std::uint64_t{parameters} * kInt8BytesPerWeight + std::uint64_t{channels} * kInt8BytesPerChannel;
}

/// Estimated per-row inference latency in microseconds.
inline double estimated_latency_us(std::size_t parameters, bool int8) {
  const double flop_per_second = kFp32FlopPerSecond * (int8 ? kInt8Speedup : 1.0);
  return static_cast<double>(parameters) * kFlopPerParameter / flop_per_second * 1e6 + kCallOverheadUs;
}

/// Estimated seconds of one training epoch.
inline double estimated_epoch_seconds(std::size_t training_rows, std::size_t parameters) {
  return kTrainingUsPerRowPer10kParameters * 1e-6 * static_cast<double>(training_rows) *
         (static_cast<double>(parameters) / 1e4);
}

}  // namespace lepton::detail
