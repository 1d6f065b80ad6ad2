#pragma once
/// Derived inputs: the difference or product of two numeric features, found by a screen on the learning rows.
///
/// A quantity such as process minus air temperature, or torque times rotational speed (the power), is one that
/// an MLP could compute from its inputs. In practice, with a few hundred positive rows, it learns a sharp
/// threshold on such a quantity far better when the quantity is an input of its own. The trainer therefore
/// receives the kept quantities as extra columns, and fold_derived() then moves them into the network.
/// A difference is linear in the two standardized columns, so it folds into the first layer's weights. A
/// product is not; the network computes it before its first layer (InputProduct). Either way the exported
/// model takes the preprocessor's encoded columns alone, and each encoded column belongs to one raw feature,
/// so explanations stay on the user's raw features.
///
/// Even with the quantity as an input, a network of ReLU units draws a soft edge where the data has a hard
/// one, such as a power limit. A step input, 1 above a threshold that the screen found and 0 below, gives the
/// network that edge. It is computed before the first layer as well.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/matrix.hpp"
#include "lepton/model.hpp"
#include "lepton/preprocess.hpp"

namespace lepton {

/// The operation that combines a derived input's two features.
enum class DerivedKind {
  Difference,  ///< left - right, in raw units
  Product,     ///< left * right, in raw units
};

/// "difference" or "product".
const char* to_string(DerivedKind kind);

/// One derived input over the encoded row x. With a = left_coefficient * x[left_input] + left_shift and
/// b = right_coefficient * x[right_input] + right_shift, it is a + b for a difference and a * b for a product,
/// standardized over the learning rows. The coefficients and shifts undo the preprocessor's standardization,
/// so a + b is the raw difference up to a constant, and a * b the raw product. With `step` set, the input is
/// 1 where that raw value is above *step and 0 elsewhere, standardized. A stepped difference keeps the
/// features' means in its shifts, so that a + b is the raw difference itself.
struct DerivedInput {
  DerivedKind kind = DerivedKind::Difference;
  std::string left, right;          ///< Raw column names.
  std::size_t left_input = 0;       ///< Encoded columns read: the two features' standardized columns.
  std::size_t right_input = 0;
  double left_coefficient = 1, right_coefficient = -1;
  double left_shift = 0, right_shift = 0;  ///< The features' means, except 0 for a difference without a step.
  std::optional<double> step;       ///< Threshold of a step input, in the raw units of the difference or product.
  double mean = 0, scale = 1;       ///< Standardization over the learning rows.
  /// Fraction of the screen's log-loss that this input's splits removed when it was kept.
  double loss_reduction = 0;

  /// "left - right" or "left * right", followed by " > threshold" for a step.
  std::string name() const;
  /// The standardized derived input of one encoded row.
  double value(const float* encoded_row) const;
  /// True for a difference without a step: it is linear in the encoded columns and folds into the first layer.
  bool is_linear() const { return kind == DerivedKind::Difference && !step; }
  /// The input as the network computes it before its first layer. Throws InvalidArgument when is_linear().
  InputProduct input_product() const;

  nlohmann::json to_json() const;
  /// Throws ParseError naming the JSON path of a bad field.
  static DerivedInput from_json(const nlohmann::json& j, const std::string& json_path);
};

/// Sets the encoded columns, coefficients, shifts and standardization of `derived` for `preprocessor`, whose
/// numeric features must include both of each input's columns. `encoded` contains the learning rows encoded by
/// `preprocessor`. Throws InvalidArgument naming a missing column.
void bind_derived(std::vector<DerivedInput>& derived, const Preprocessor& preprocessor, const Matrix& encoded);

/// Settings of the screen.
struct DerivedSearchOptions {
  /// false: screen differences alone, by forward selection with the additive model. true: screen differences
  /// and products with boosted splits (see screen_derived_inputs).
  bool products = false;
  std::size_t bins = 16;              ///< Quantile bins per input of the additive model.
  std::size_t folds = 5;              ///< Cross-validation folds (stratified) of the additive model.
  /// Differences screen: keep a difference only if it cuts the cross-validated log-loss by this fraction.
  double min_loss_reduction = 0.015;
  std::size_t rounds = 8;             ///< Products screen: boosting rounds, one split each.
  /// Products screen: keep a candidate only if its splits remove this fraction of the starting log-loss.
  double min_split_reduction = 0.04;
  std::size_t max_features = 3;       ///< At most this many derived inputs are kept, steps not counted.
  /// Products screen: with each kept candidate, also keep a step input at the threshold of its best split.
  bool steps = true;
  double l2 = 1.0;                    ///< Ridge penalty on the bin weights and on each split's two values.
  /// Larger learning sets are screened on a stratified sample of about this many rows, because the cost
  /// grows with rows x candidates.
  std::size_t max_rows = 20000;
  std::uint64_t seed = 0;             ///< Seeds the folds.

  DerivedSearchOptions& with_products(bool value) { products = value; return *this; }
  DerivedSearchOptions& with_seed(std::uint64_t value) { seed = value; return *this; }
  DerivedSearchOptions& with_min_loss_reduction(double value) { min_loss_reduction = value; return *this; }
  DerivedSearchOptions& with_min_split_reduction(double value) { min_split_reduction = value; return *this; }
  DerivedSearchOptions& with_max_features(std::size_t value) { max_features = value; return *this; }
  DerivedSearchOptions& with_max_rows(std::size_t value) { max_rows = value; return *this; }
  DerivedSearchOptions& with_steps(bool value) { steps = value; return *this; }
};

/// Screen result: what was kept, and how every candidate scored.
struct DerivedSearchResult {
  /// Kept inputs: in the order kept (differences screen) or best first (products screen), bound to the
  /// screened preprocessor's columns and standardized over all rows of `encoded`.
  std::vector<DerivedInput> kept;
  double base_loss = 0;                 ///< Cross-validated log-loss per row of the additive model.
  /// Differences screen: the cross-validated log-loss with the kept inputs. Products screen: base_loss less
  /// what the kept inputs' splits removed.
  double final_loss = 0;
  std::size_t candidates = 0;           ///< Derived inputs screened.
  std::size_t screened_rows = 0;        ///< Rows the screen was fitted on.
  /// Every candidate with its loss reduction in the first step (differences screen) or the reduction of its
  /// best split in the first round (products screen), best first.
  std::vector<std::pair<std::string, double>> first_step;
  /// The best candidate that was not kept, with its loss reduction. It is empty when the differences screen
  /// stopped at max_features or ran out of candidates, or when the products screen kept every candidate.
  std::string best_rejected;
  double best_rejected_reduction = 0;
};

/// Screens derived inputs of the numeric features in `preprocessor` on the encoded learning rows `encoded`
/// with binary labels `labels` (0 or 1). Both screens start from a ridge logistic regression on quantile bins
/// of every numeric feature and on the categories of every categorical one. That additive model fits each
/// feature's own shape, so a derived input helps it only where two features interact through it.
///
/// - Differences screen (options.products false): the difference of every pair of numeric features. Forward
///   selection keeps the best difference while it cuts the model's cross-validated log-loss by at least
///   options.min_loss_reduction.
/// - Products screen (options.products true): also the product of every pair whose learning values are all
///   at least 0. From the model's cross-validated logits, each boosting round adds the one split
///   (a threshold on one input, raw feature or candidate) that cuts the log-loss most, with each leaf's step
///   clipped to 4 in logit units. A derived input must gain 5 % more than a raw feature to be chosen, and a
///   product 5 % more again. A candidate is kept when its splits together remove at least
///   options.min_split_reduction of the starting log-loss. With options.steps, each kept candidate also
///   brings a step input whose edge lies midway between the two learning values around its best split, the
///   one round of the boosting that removed most log-loss through it.
///   NOTE: the split gains are measured on the rows that chose the split, so they overstate what a candidate
///   adds, most on a small learning set; on AI4I's 8,000 learning rows the best rejected candidate reached
///   1.6 % to 3.9 %. A step's edge is fitted on those rows too. Cross-validating the splits would tighten both.
///
/// Deterministic for a given seed. Throws InvalidArgument for labels that are not 0/1, a size mismatch,
/// max_rows < folds, or fewer rows of a class than folds.
DerivedSearchResult screen_derived_inputs(const Preprocessor& preprocessor, const Matrix& encoded,
                                          const std::vector<std::int64_t>& labels,
                                          const DerivedSearchOptions& options = {});

/// The training columns for `derived`: `encoded`, then one column per derived input, in order. Throws
/// InvalidArgument for an input that bind_derived() has not bound.
Matrix append_derived(const Matrix& encoded, const std::vector<DerivedInput>& derived);

/// Moves the derived inputs of a network trained on append_derived() columns into the network: differences
/// into the first layer's weights and bias, products and steps into Mlp::products, whose columns keep their
/// trained weights. The result takes the encoded columns alone and computes the same function. Throws
/// InvalidArgument when the network's input width does not fit, a derived input reads a column outside it,
/// the network already has products, or the first layer is int8.
Mlp fold_derived(const Mlp& network, const std::vector<DerivedInput>& derived);

}  // namespace lepton
