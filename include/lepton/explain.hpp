#pragma once
/// SHAP-style explanations of a model's predictions, computed without LibTorch:
/// exact interventional Shapley values, Kernel SHAP, antithetic permutation SHAP and
/// integrated gradients. docs/explanations.md describes the methods, their limits and costs.
///
/// Shapes: every matrix here is row-major. An explained row and a background row are encoded rows
/// (the Preprocessor's output), so their width is the model's input count `d`.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/matrix.hpp"
#include "lepton/model.hpp"
#include "lepton/preprocess.hpp"

namespace lepton {

namespace detail {
struct MlpPlan;
struct ModelAccess;
}  // namespace detail

/// A dense row-major double matrix. Element (r, c) is data[r * cols + c].
/// Explanations use double so that results can match reference values to 1e-9.
struct DoubleMatrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<double> data;

  DoubleMatrix() = default;
  DoubleMatrix(std::size_t r, std::size_t c, double fill = 0.0) : rows(r), cols(c), data(r * c, fill) {}

  /// Converts every float exactly to double.
  static DoubleMatrix from(const Matrix& matrix);
  /// Builds a matrix from equally long rows. Throws InvalidArgument naming the first row of another length.
  static DoubleMatrix from_rows(const std::vector<std::vector<double>>& rows);

  double& operator()(std::size_t r, std::size_t c) { return data[r * cols + c]; }
  double operator()(std::size_t r, std::size_t c) const { return data[r * cols + c]; }
  const double* row(std::size_t r) const { return data.data() + r * cols; }
  double* row(std::size_t r) { return data.data() + r * cols; }
};

/// A fully connected layer in double precision: y = act(W x + b), W row-major [outputs][inputs].
struct DoubleDenseLayer {
  std::size_t inputs = 0;
  std::size_t outputs = 0;
  std::vector<double> weight;  ///< outputs x inputs.
  std::vector<double> bias;    ///< outputs.
  Activation activation = Activation::Relu;
};

/// A multilayer perceptron with double weights. It exists so that reference weights given in double
/// (not representable in float) can be explained exactly; `from` converts a trained Mlp losslessly.
struct DoubleMlp {
  std::vector<DoubleDenseLayer> layers;
  /// Computed after the inputs, before the first layer, as in Mlp.
  std::vector<InputProduct> products;

  static DoubleMlp from(const Mlp& mlp);
  std::size_t inputs() const { return layers.empty() ? 0 : layers.front().inputs - products.size(); }
  std::size_t outputs() const { return layers.empty() ? 0 : layers.back().outputs; }
};

/// Mapping from an MLP's final logits to the explained outputs.
enum class OutputLink {
  Identity,  ///< The raw logits (or the standardized regression value), one output per logit.
  Logistic,  ///< The probability 1 / (1 + exp(-logit)) of a single-logit binary classifier.
  Softmax,   ///< One probability per class, softmax over the logits.
};

std::string to_string(OutputLink link);

/// The model as an explainer sees it: a batched function from encoded rows [n x d] to outputs [n x k].
/// Copies share the same function and network. Explainers call it from several threads at once,
/// so a user function must be safe to call concurrently.
class ExplainModel {
 public:
  /// Writes outputs[i * k + j] for rows[i * d ...], i < count.
  using BatchFunction = std::function<void(const double* rows, std::size_t count, double* outputs)>;
  /// Same, for models that take float rows. The adapter rounds each double row to float first.
  using FloatBatchFunction = std::function<void(const float* rows, std::size_t count, double* outputs)>;

  /// Wraps any batched model. Throws InvalidArgument for zero inputs or outputs or an empty function.
  static ExplainModel from_function(std::size_t inputs, std::size_t outputs, BatchFunction function);
  static ExplainModel from_float_function(std::size_t inputs, std::size_t outputs, FloatBatchFunction function);

  /// Wraps an MLP with a double-precision forward pass: per unit, acc = bias, then acc += W[j][i] * x[i]
  /// for i ascending, without fused multiply-add, so results match a plain scalar reference bit for bit.
  /// Logistic needs one logit. Throws InvalidArgument naming the layer whose shapes do not chain.
  static ExplainModel from_mlp(const Mlp& mlp, OutputLink link);
  static ExplainModel from_mlp(DoubleMlp mlp, OutputLink link);

  std::size_t inputs() const noexcept { return inputs_; }
  std::size_t outputs() const noexcept { return outputs_; }

  /// Evaluates `count` rows of width inputs() into outputs [count x outputs()].
  void evaluate(const double* rows, std::size_t count, double* outputs) const;
  /// Evaluates every row of `rows` and returns [rows x outputs()]. Throws InvalidArgument on a width mismatch.
  DoubleMatrix evaluate(const DoubleMatrix& rows) const;

  /// True for MLP models without step inputs (InputProduct::step): those have an analytic gradient. Every MLP
  /// model has the fast coalition path.
  bool has_gradient() const noexcept;
  /// Writes d outputs[output] / d row[i] for i < inputs() into `gradient`, by backpropagation in double.
  /// Throws InvalidArgument when the model has no gradient or `output` is out of range.
  void gradient(const double* row, std::size_t output, double* gradient) const;

 private:
  friend struct detail::ModelAccess;

  std::size_t inputs_ = 0;
  std::size_t outputs_ = 0;
  BatchFunction function_;
  std::shared_ptr<const detail::MlpPlan> plan_;
};

/// One explained unit: a set of encoded columns that are switched on or off together.
struct FeatureGroup {
  std::string name;                  ///< The raw column's name, e.g. "Type" for Type=L, Type=M, Type=H.
  std::vector<std::size_t> columns;  ///< Encoded columns, ascending.
  bool one_hot = false;              ///< True for the one-hot block of a categorical column.
};

/// A partition of the encoded columns into groups. Attributions are reported per group.
class FeatureGroups {
 public:
  FeatureGroups() = default;

  /// One group per raw input column, as the preprocessor encodes it; a categorical column's one-hot block
  /// is one group. This is the default grouping.
  static FeatureGroups from_preprocessor(const Preprocessor& preprocessor);
  /// Same as from_preprocessor, from the fitted feature transforms.
  static FeatureGroups from_features(const std::vector<FeatureTransform>& features);
  /// One group per encoded column, named by `names` (or "x0", "x1", ... when `names` is empty).
  static FeatureGroups per_column(std::size_t width, const std::vector<std::string>& names = {});
  /// User-named groups. Throws InvalidArgument unless every column below `width` is in exactly one group
  /// and every group has a name and at least one column.
  static FeatureGroups custom(std::size_t width, std::vector<FeatureGroup> groups);

  std::size_t width() const noexcept { return width_; }
  std::size_t size() const noexcept { return groups_.size(); }
  const std::vector<FeatureGroup>& groups() const noexcept { return groups_; }
  std::vector<std::string> names() const;

 private:
  std::size_t width_ = 0;
  std::vector<FeatureGroup> groups_;
};

/// Settings of the weighted k-means background summary.
struct KMeansOptions {
  std::size_t clusters_ = 10;
  std::size_t iterations_ = 100;  ///< Maximum Lloyd iterations; stops earlier when no assignment changes.
  std::uint64_t seed_ = 0;        ///< Seeds the k-means++ initialisation.

  KMeansOptions& clusters(std::size_t v) { clusters_ = v; return *this; }
  KMeansOptions& iterations(std::size_t v) { iterations_ = v; return *this; }
  KMeansOptions& seed(std::uint64_t v) { seed_ = v; return *this; }
};

/// The reference distribution that "absent" groups are drawn from: encoded rows with weights.
/// Weights are non-negative with a positive sum; the value of a coalition is the weighted mean
/// over these rows, so the weights need not sum to one.
struct Background {
  DoubleMatrix rows;            ///< [count x d] encoded rows.
  std::vector<double> weights;  ///< [count].

  /// Uniform weights 1 / count. Throws InvalidArgument for an empty matrix.
  static Background uniform(DoubleMatrix rows);
  /// Explicit weights. Throws InvalidArgument for a length mismatch, a negative or non-finite weight,
  /// or a zero sum.
  static Background weighted(DoubleMatrix rows, std::vector<double> weights);
  /// A uniform sample of min(count, data.rows) distinct rows, chosen by a generator seeded with `seed`.
  static Background sample(const Matrix& data, std::size_t count, std::uint64_t seed);
  static Background sample(const DoubleMatrix& data, std::size_t count, std::uint64_t seed);
  /// A weighted k-means summary: k-means++ initialisation, Lloyd iterations, weight = cluster size / n.
  /// Each one-hot group of a centre is set to the one-hot of its members' most frequent category, so that
  /// every centre is a valid encoded row. Empty clusters are dropped.
  static Background kmeans(const DoubleMatrix& data, const FeatureGroups& groups, const KMeansOptions& options = {});
  static Background kmeans(const Matrix& data, const FeatureGroups& groups, const KMeansOptions& options = {});

  std::size_t size() const noexcept { return rows.rows; }
  /// Throws InvalidArgument naming the first fault (shape, weight) and the fix.
  void validate() const;

  /// {"format": "lepton-explanation-background/1", "columns": d, "rows": [[...]], "weights": [...]};
  /// suitable for ModelArtifact::extensions["explanation_background"].
  nlohmann::json to_json() const;
  /// Throws ParseError naming the JSON path of a missing or bad field.
  static Background from_json(const nlohmann::json& json, const std::string& json_path = "$");
};

/// Result of an explainer. Shapes use R explained rows, G groups and K outputs.
struct Explanation {
  std::string method;                    ///< "exact", "kernel", "permutation" or "integrated_gradients".
  std::size_t rows = 0, groups = 0, outputs = 0;
  std::vector<std::string> group_names;  ///< [G].
  std::vector<double> base_values;       ///< [K] expected output over the background (or at the baseline).
  std::vector<double> predictions;       ///< [R x K] model output at each explained row.
  std::vector<double> values;            ///< [R x G x K] attribution of group g to output k of row r.
  /// [R x G x K] standard error of each value: 0 for exact, the sampling error estimate for kernel
  /// and permutation, the trapezoid error estimate (half-steps versus full steps) for integrated gradients.
  std::vector<double> standard_errors;
  /// [R x K] |sum_g values - (prediction - base value)|. Round-off only for the Shapley methods; the
  /// integration error for integrated gradients.
  std::vector<double> completeness_gaps;

  double value(std::size_t row, std::size_t group, std::size_t output = 0) const {
    return values[(row * groups + group) * outputs + output];
  }
  double standard_error(std::size_t row, std::size_t group, std::size_t output = 0) const {
    return standard_errors[(row * groups + group) * outputs + output];
  }

  nlohmann::json to_json() const;
};

/// Mean |value| per group over the explained rows, with its standard deviation. Shapes [G x K].
struct GlobalImportance {
  std::size_t groups = 0, outputs = 0;
  std::vector<std::string> group_names;
  std::vector<double> mean_abs;  ///< [G x K].
  std::vector<double> std_abs;   ///< [G x K] population standard deviation of |value| over rows.
};

/// Throws InvalidArgument for an explanation with no rows.
GlobalImportance global_importance(const Explanation& explanation);

/// Method that computes coalition values.
enum class CoalitionPath {
  Reference,  ///< Build every hybrid row and run the model in double. Reproducible to the last bit.
  Fast,       ///< MLP only: reuse the first layer's linearity, later layers in float with GEMM.
};

/// Options of the exact explainer.
struct ExactOptions {
  std::size_t threads_ = 0;  ///< Rows explained in parallel; 0 means std::thread::hardware_concurrency().
  CoalitionPath path_ = CoalitionPath::Reference;
  std::size_t max_groups_ = 20;  ///< 2^groups coalitions are enumerated; at most 24.

  ExactOptions& threads(std::size_t v) { threads_ = v; return *this; }
  ExactOptions& path(CoalitionPath v) { path_ = v; return *this; }
  ExactOptions& max_groups(std::size_t v) { max_groups_ = v; return *this; }
};

/// Coalition sampling scheme of Kernel SHAP: which coalitions enter the regression, with which weights.
enum class KernelSampler {
  /// shap 0.49.1's KernelExplainer scheme: whole coalition sizes enumerated from the outside in while the
  /// budget covers them, the rest drawn with replacement (complements paired) and weighted by draw counts.
  Shap,
  /// Whole sizes enumerated the same way, then for every other size a fixed number of complementary pairs
  /// drawn without replacement, weighted by the size's Shapley kernel weight over that number (stratified,
  /// Horvitz-Thompson weights). It removes the noise of the draw counts, and docs/explanations.md records
  /// its lower error than Shap at the same budget.
  Stratified,
};

std::string to_string(KernelSampler sampler);

/// Options of Kernel SHAP.
struct KernelOptions {
  std::size_t samples_ = 0;     ///< Coalition budget; 0 means 2 * groups + 2048, as shap's KernelExplainer.
  std::uint64_t seed_ = 0;      ///< Each row's generator is derived from (seed, row index).
  std::size_t threads_ = 0;     ///< 0 means std::thread::hardware_concurrency().
  std::size_t bootstrap_ = 32;  ///< Bootstrap resamples for the standard error; 0 turns the estimate off.
  CoalitionPath path_ = CoalitionPath::Reference;
  KernelSampler sampler_ = KernelSampler::Stratified;

  KernelOptions& samples(std::size_t v) { samples_ = v; return *this; }
  KernelOptions& seed(std::uint64_t v) { seed_ = v; return *this; }
  KernelOptions& threads(std::size_t v) { threads_ = v; return *this; }
  KernelOptions& bootstrap(std::size_t v) { bootstrap_ = v; return *this; }
  KernelOptions& path(CoalitionPath v) { path_ = v; return *this; }
  KernelOptions& sampler(KernelSampler v) { sampler_ = v; return *this; }
};

/// Options of antithetic permutation SHAP.
struct PermutationOptions {
  std::size_t permutations_ = 10;  ///< Antithetic pairs: each permutation is walked forward and reversed.
  std::uint64_t seed_ = 0;
  std::size_t threads_ = 0;
  CoalitionPath path_ = CoalitionPath::Reference;

  PermutationOptions& permutations(std::size_t v) { permutations_ = v; return *this; }
  PermutationOptions& seed(std::uint64_t v) { seed_ = v; return *this; }
  PermutationOptions& threads(std::size_t v) { threads_ = v; return *this; }
  PermutationOptions& path(CoalitionPath v) { path_ = v; return *this; }
};

/// Starting point of integrated gradients.
enum class GradientBaseline {
  BackgroundMean,  ///< One path from the weighted background mean (integrated gradients).
  EachBackground,  ///< One path per background row, averaged with the weights (expected gradients).
};

/// Options of integrated gradients.
struct GradientOptions {
  std::size_t steps_ = 64;  ///< Trapezoid intervals along each path.
  GradientBaseline baseline_ = GradientBaseline::BackgroundMean;
  std::size_t threads_ = 0;

  GradientOptions& steps(std::size_t v) { steps_ = v; return *this; }
  GradientOptions& baseline(GradientBaseline v) { baseline_ = v; return *this; }
  GradientOptions& threads(std::size_t v) { threads_ = v; return *this; }
};

/// Exact interventional Shapley values over all 2^G coalitions:
/// v(S) = sum_b w_b f(x_S, bg_b) / sum_b w_b, phi_i = sum_{S not containing i} |S|!(G-|S|-1)!/G! (v(S+i) - v(S)).
/// Costs 2^G x background model rows per explained row.
class ExactExplainer {
 public:
  /// Throws InvalidArgument for mismatched widths or more than max_groups groups (use KernelExplainer then).
  ExactExplainer(ExplainModel model, Background background, FeatureGroups groups, ExactOptions options = {});
  /// `rows` is [R x d]. Throws InvalidArgument on a width mismatch; a model's exception reaches the caller.
  Explanation explain(const DoubleMatrix& rows) const;
  Explanation explain(const Matrix& rows) const;

 private:
  ExplainModel model_;
  Background background_;
  FeatureGroups groups_;
  ExactOptions options_;
};

/// Kernel SHAP (Lundberg and Lee, 2017): weighted least squares with the Shapley kernel, efficiency enforced
/// exactly, paired sampling, and complete enumeration of the smallest and largest coalition sizes first
/// while the budget allows. With a budget of at least 2^G - 2 it enumerates everything and equals exact.
class KernelExplainer {
 public:
  KernelExplainer(ExplainModel model, Background background, FeatureGroups groups, KernelOptions options = {});
  Explanation explain(const DoubleMatrix& rows) const;
  Explanation explain(const Matrix& rows) const;

 private:
  ExplainModel model_;
  Background background_;
  FeatureGroups groups_;
  KernelOptions options_;
};

/// Permutation SHAP with antithetic permutations. Each walk telescopes, so efficiency is exact.
class PermutationExplainer {
 public:
  PermutationExplainer(ExplainModel model, Background background, FeatureGroups groups,
                       PermutationOptions options = {});
  Explanation explain(const DoubleMatrix& rows) const;
  Explanation explain(const Matrix& rows) const;

 private:
  ExplainModel model_;
  Background background_;
  FeatureGroups groups_;
  PermutationOptions options_;
};

/// Integrated gradients along straight paths with the trapezoid rule and an analytic MLP gradient.
/// Needs a model from ExplainModel::from_mlp.
class GradientExplainer {
 public:
  GradientExplainer(ExplainModel model, Background background, FeatureGroups groups, GradientOptions options = {});
  Explanation explain(const DoubleMatrix& rows) const;
  Explanation explain(const Matrix& rows) const;

 private:
  ExplainModel model_;
  Background background_;
  FeatureGroups groups_;
  GradientOptions options_;
};

/// Key of the explanation background in ModelArtifact::extensions.
inline constexpr const char* kExplanationBackgroundKey = "explanation_background";

/// The output that explanations of an artifact attribute by default: the positive-class probability for binary
/// classification, one probability per class for multiclass, and the standardized value for regression.
OutputLink default_output_link(const ModelArtifact& artifact);

/// Wraps the artifact's network for explainers with `link`.
ExplainModel explain_model(const ModelArtifact& artifact, OutputLink link);

/// Stores `background` in the artifact, so that explanations in deployment need no training data.
void store_background(ModelArtifact& artifact, const Background& background);

/// Returns the background stored in the artifact. Throws InvalidArgument when the artifact has none.
Background stored_background(const ModelArtifact& artifact);

}  // namespace lepton
