#pragma once
// Private helpers shared by the explainers in src/runtime/explain_*.cpp. Not installed.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "lepton/explain.hpp"
#include "runtime/block_diagonal.hpp"
#include "runtime/gemm.hpp"
#include "runtime/kernels.hpp"

namespace lepton::detail {

/// Everything the MLP adapter needs: the double network for the reference forward pass and the
/// gradient, and float copies of the weights for the fast coalition path.
struct MlpPlan {
  DoubleMlp network;
  OutputLink link = OutputLink::Identity;
  std::vector<std::vector<float>> float_weights;  ///< Per layer, outputs x inputs, row-major.
  std::vector<std::vector<float>> float_biases;   ///< Per layer.
  /// Layers 1.. (the first layer is reused through group deltas) packed for the predictor's f32 kernels,
  /// split into their diagonal blocks when block-diagonal, as the predictor packs them.
  std::vector<BlockedF32Layer> packed_layers;
  std::size_t widest = 0;  ///< Largest layer width or output stride, for scratch buffers.
};

/// Gives the explainers access to an ExplainModel's MLP plan without widening the public API.
struct ModelAccess {
  static const MlpPlan* plan(const ExplainModel& model) { return model.plan_.get(); }
};

double apply_activation(Activation activation, double value);
double activation_derivative(Activation activation, double value);

/// The error message for a gradient of a network with step inputs, after "caller: ".
std::string step_gradient_message(const char* caller);

/// Applies `link` to the logits [count] in place.
void apply_link(OutputLink link, double* logits, std::size_t count);

/// Writes `row` [network.inputs()] followed by its input products into `expanded`, the first layer's input
/// [network.layers.front().inputs].
void expand_row(const DoubleMlp& network, const double* row, double* expanded);

/// Reference forward pass of one row in double, without link. `scratch` grows as needed.
/// Writes the logits [network.outputs()].
void forward_logits(const DoubleMlp& network, const double* row, double* logits, std::vector<double>& scratch);

/// Throws InvalidArgument when the network's shapes do not chain or a buffer has the wrong size.
void check_network(const DoubleMlp& network, OutputLink link);

/// A 64-bit generator whose stream for a row depends only on (seed, row index), so results do not
/// depend on the thread count. Uniform draws are implemented here, not by <random>'s distributions,
/// whose algorithms differ between standard libraries.
class RowRandom {
 public:
  RowRandom(std::uint64_t seed, std::uint64_t row);

  std::uint64_t next() { return engine_(); }
  /// Uniform integer in [0, bound), bound > 0, by rejection (no modulo bias).
  std::uint64_t below(std::uint64_t bound);
  /// Uniform double in [0, 1) with 53 random bits.
  double unit();
  /// Fisher-Yates shuffle of `values`.
  void shuffle(std::vector<std::size_t>& values);

 private:
  std::mt19937_64 engine_;
};

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream);

/// Checks the shared constructor arguments of every explainer; `caller` names it in messages.
void check_setup(const ExplainModel& model, const Background& background, const FeatureGroups& groups,
                 const std::string& caller);

/// Resolves 0 to std::thread::hardware_concurrency() (at least 1).
std::size_t resolve_threads(std::size_t threads);

/// Calls `work(row, worker)` for every row in [0, rows) on up to `threads` threads. `worker` is the
/// index of the calling thread, for per-thread scratch. The first exception thrown by any call is
/// rethrown in the caller after all threads have stopped.
void for_each_row(std::size_t rows, std::size_t threads, const std::function<void(std::size_t, std::size_t)>& work);

/// Allocates an explanation of the given shape with zero values and errors.
Explanation make_explanation(const std::string& method, std::size_t rows, const FeatureGroups& groups,
                             std::size_t outputs);

/// Fills predictions [R x K] and completeness_gaps [R x K] from values and base_values.
void finish_explanation(const ExplainModel& model, const DoubleMatrix& rows, Explanation& explanation);

/// Throws InvalidArgument when `rows` does not have the model's width; `caller` names the explainer.
void check_rows(const DoubleMatrix& rows, std::size_t width, const std::string& caller);

/// Coalition values v(S) = sum_b w_b f(x_S, bg_b) / sum_b w_b for one explained row x at a time.
/// A coalition is a bit mask over groups (bit g set: group g takes x's values). One instance per thread.
class CoalitionValues {
 public:
  CoalitionValues(const ExplainModel& model, const Background& background, const FeatureGroups& groups,
                  CoalitionPath path);

  /// Sets the explained row [d]; the pointer must stay valid until the next call.
  void set_row(const double* row);
  /// Writes v(masks[i]) into values[i * K + k] for i < count.
  void evaluate(const std::uint64_t* masks, std::size_t count, double* values);
  /// Model rows evaluated so far (hybrid rows), for cost reports.
  std::uint64_t model_rows() const noexcept { return model_rows_; }

 private:
  void evaluate_reference(const std::uint64_t* masks, std::size_t count, double* values);
  void evaluate_fast(const std::uint64_t* masks, std::size_t count, double* values);
  void prepare_fast_row();
  /// Writes the first layer's pre-activations of the block's hybrid rows into activations_, stride H.
  void first_layer_block(const std::uint64_t* masks, std::size_t block);
  /// Adds or removes the input products' pair terms of one hybrid row's first-layer pre-activation.
  void add_pair_terms(std::uint64_t mask, bool from_row, std::size_t background_row, float* out);
  /// Links the block's logits (rows of activations_ with `stride` floats) and averages them into values.
  void average_block(std::size_t stride, std::size_t block, double* values);

  const ExplainModel& model_;
  const Background& background_;
  const FeatureGroups& groups_;
  const MlpPlan* plan_ = nullptr;  // Non-null only on the fast path.
  const double* row_ = nullptr;
  std::vector<std::size_t> column_group_;  // Group of each encoded column.
  double weight_sum_ = 0;
  std::uint64_t model_rows_ = 0;

  // Reference path scratch.
  std::vector<double> hybrid_rows_;
  std::vector<double> hybrid_outputs_;

  // Fast path kernels: the predictor's dense f32 kernels at default_simd_level(), so LEPTON_SIMD applies.
  const KernelTable* kernels_ = nullptr;
  const DeltaKernelTable* delta_kernels_ = nullptr;

  // Fast path state, float: base_[b][h] = b1 + W1 bg_b, delta_[(b * G + g) * H + h] = W1[:, g] (x_g - bg_b,g),
  // full_[b][h] = base_ + sum_g delta_ (the explained row's pre-activation, rounded per background row).
  std::vector<float> base_;
  std::vector<float> delta_;
  std::vector<float> full_;
  // Input products: the groups of each product's two columns. pair_[(b * P + k) * H + h] is the term that
  // product k adds when both of its groups take x's values (see prepare_fast_row).
  std::vector<std::pair<std::size_t, std::size_t>> product_groups_;
  std::vector<float> pair_;
  std::vector<float> activations_;
  std::vector<float> next_activations_;
  std::vector<double> logits_;
  std::vector<char> from_row_;               // Per mask of a block: start from full_ instead of base_.
  std::vector<std::size_t> toggled_;         // Groups whose delta each mask adds or subtracts, concatenated.
  std::vector<std::size_t> toggled_start_;   // Start of each mask's groups in toggled_, plus the end.
};

/// The coalitions of one explained row and their Shapley kernel weights, for Kernel SHAP's regression.
/// Samples [0, fixed) come from enumerating whole coalition sizes and carry exact kernel weights. The rest were
/// drawn at random, and `draws` records each draw so that the bootstrap can resample them and recompute
/// `weights` with weigh_draws.
struct CoalitionSample {
  struct Draw {
    std::size_t sample = 0;      ///< Index of the drawn coalition in `masks`.
    std::size_t complement = 0;  ///< Index of its complement, or kNoSample when the draw added none.
    std::size_t stratum = 0;     ///< Stratified only: index into stratum_hit_weight.
  };

  KernelSampler sampler = KernelSampler::Stratified;
  std::vector<std::uint64_t> masks;
  std::vector<double> weights;
  std::size_t fixed = 0;
  std::vector<Draw> draws;

  /// Shap only: the total kernel weight of the sampled sizes, shared out in proportion to draw counts.
  double random_weight = 0.0;
  /// Stratified only: per stratum, the weight that one draw adds to each of its two coalitions, and the
  /// range [start, end) of its draws in `draws`.
  std::vector<double> stratum_hit_weight;
  std::vector<std::size_t> stratum_start;
};

inline constexpr std::size_t kNoSample = static_cast<std::size_t>(-1);

/// Draws the coalitions of one row: at most `budget` masks over `groups` (2 <= groups <= 64) groups,
/// with the empty and the full coalition left out, and their weights for every draw.
CoalitionSample sample_coalitions(KernelSampler sampler, std::size_t groups, std::size_t budget, RowRandom& random);

/// Recomputes the weights of the random part as if only the draws listed in `draw_indices` had been made
/// (repeats allowed). The enumerated part keeps its weights.
void weigh_draws(CoalitionSample& sample, const std::vector<std::size_t>& draw_indices);

/// Resamples the draws with replacement for one bootstrap replicate: across all draws for Shap, within
/// each stratum for Stratified, so that a replicate has the same design as the original sample.
void resample_draws(const CoalitionSample& sample, RowRandom& random, std::vector<std::size_t>& draw_indices);

/// Number of hybrid rows per model call on the reference path.
inline constexpr std::size_t kHybridBlockRows = 4096;

/// Groups supported by the coalition bit masks.
inline constexpr std::size_t kMaxMaskGroups = 64;

}  // namespace lepton::detail
