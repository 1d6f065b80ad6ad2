// The derived-input screens, both starting from a cross-validated binned additive logistic model: forward
// selection of pairwise differences, or boosted single splits over raw features and pairwise differences and
// products. Also binding, appending and folding the kept inputs.
#include "lepton/derived.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "lepton/dataset.hpp"
#include "lepton/error.hpp"

namespace lepton {
namespace {

// One input of the screening model, cut into quantile bins: each row activates exactly one bin weight.
struct BinnedInput {
  std::vector<std::uint16_t> bin_of_row;
  std::size_t bins = 0;
};

BinnedInput bin_by_quantiles(const std::vector<double>& values, std::size_t bins) {
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> edges;
  for (std::size_t k = 1; k < bins; ++k) {
    const double edge = sorted[k * (sorted.size() - 1) / bins];
    if (edges.empty() || edge > edges.back()) edges.push_back(edge);
  }

  BinnedInput input;
  input.bins = edges.size() + 1;
  input.bin_of_row.reserve(values.size());
  for (double value : values) {
    const auto bin = std::upper_bound(edges.begin(), edges.end(), value) - edges.begin();
    input.bin_of_row.push_back(static_cast<std::uint16_t>(bin));
  }
  return input;
}

// The additive model's design: per row, one active parameter per input (parameter 0 is the intercept).
struct Design {
  std::vector<std::vector<std::uint32_t>> active;  // per row
  std::size_t parameters = 1;
};

Design make_design(const std::vector<BinnedInput>& inputs, std::size_t rows) {
  Design design;
  design.active.assign(rows, std::vector<std::uint32_t>{0});
  for (const BinnedInput& input : inputs) {
    for (std::size_t r = 0; r < rows; ++r) {
      design.active[r].push_back(static_cast<std::uint32_t>(design.parameters + input.bin_of_row[r]));
    }
    design.parameters += input.bins;
  }
  return design;
}

double log_loss_term(double logit, std::int64_t label) {
  // log(1 + exp(-s)) for the signed logit s, computed without overflow.
  const double signed_logit = label == 1 ? logit : -logit;
  return signed_logit > 0 ? std::log1p(std::exp(-signed_logit)) : -signed_logit + std::log1p(std::exp(signed_logit));
}

// Fits a ridge logistic regression by Newton's method on the rows with fold != held_out and returns its
// weights. The intercept is not penalized.
Eigen::VectorXd fit_additive(const Design& design, const std::vector<std::int64_t>& labels,
                             const std::vector<std::size_t>& fold_of_row, std::size_t held_out, double l2) {
  const auto p = static_cast<Eigen::Index>(design.parameters);
  Eigen::VectorXd weights = Eigen::VectorXd::Zero(p);
  double previous = std::numeric_limits<double>::infinity();

  for (int iteration = 0; iteration < 50; ++iteration) {
    Eigen::MatrixXd hessian = Eigen::MatrixXd::Zero(p, p);
    Eigen::VectorXd gradient = Eigen::VectorXd::Zero(p);
    double loss = 0;
    for (std::size_t r = 0; r < labels.size(); ++r) {
      if (fold_of_row[r] == held_out) continue;
      const std::vector<std::uint32_t>& active = design.active[r];
      double logit = 0;
      for (std::uint32_t j : active) logit += weights[j];
      const double probability = 1.0 / (1.0 + std::exp(-logit));
      const double residual = probability - static_cast<double>(labels[r]);
      const double curvature = std::max(probability * (1.0 - probability), 1e-12);
      loss += log_loss_term(logit, labels[r]);
      for (std::uint32_t j : active) {
        gradient[j] += residual;
        for (std::uint32_t k : active) hessian(j, k) += curvature;
      }
    }
    for (Eigen::Index j = 1; j < p; ++j) {
      loss += 0.5 * l2 * weights[j] * weights[j];
      gradient[j] += l2 * weights[j];
      hessian(j, j) += l2;
    }
    hessian(0, 0) += 1e-9;  // keeps the intercept's pivot positive when a training fold has one class

    weights -= hessian.ldlt().solve(gradient);
    if (previous - loss < 1e-10 * (1.0 + loss)) break;
    previous = loss;
  }
  return weights;
}

// Each row's logit from the additive model fitted without the row's fold.
std::vector<double> cross_validated_logits(const std::vector<BinnedInput>& inputs,
                                           const std::vector<std::int64_t>& labels,
                                           const std::vector<std::size_t>& fold_of_row,
                                           const DerivedSearchOptions& options) {
  const Design design = make_design(inputs, labels.size());
  std::vector<double> logits(labels.size(), 0.0);
  for (std::size_t fold = 0; fold < options.folds; ++fold) {
    const Eigen::VectorXd weights = fit_additive(design, labels, fold_of_row, fold, options.l2);
    for (std::size_t r = 0; r < labels.size(); ++r) {
      if (fold_of_row[r] != fold) continue;
      for (std::uint32_t j : design.active[r]) logits[r] += weights[j];
    }
  }
  return logits;
}

// Cross-validated log-loss per row of the additive model on `inputs`.
double cross_validated_loss(const std::vector<BinnedInput>& inputs, const std::vector<std::int64_t>& labels,
                            const std::vector<std::size_t>& fold_of_row, const DerivedSearchOptions& options) {
  const std::vector<double> logits = cross_validated_logits(inputs, labels, fold_of_row, options);
  double total = 0;
  for (std::size_t r = 0; r < labels.size(); ++r) total += log_loss_term(logits[r], labels[r]);
  return total / static_cast<double>(labels.size());
}

double total_log_loss(const std::vector<double>& logits, const std::vector<std::int64_t>& labels) {
  double total = 0;
  for (std::size_t r = 0; r < labels.size(); ++r) total += log_loss_term(logits[r], labels[r]);
  return total;
}

// A derived input is chosen over a raw feature only when its split gains this factor more, and a product, which
// the network computes before its first layer, over a difference only when it gains this factor more again.
// Otherwise a near copy of one feature, such as air temperature minus tool wear, takes the credit for that
// feature's own threshold.
constexpr double kDerivedHandicap = 1.05;

// One input of the boosting: its values over the screened rows and their ascending order.
struct SplitInput {
  std::vector<double> values;
  std::vector<std::uint32_t> order;
};

SplitInput make_split_input(std::vector<double> values) {
  SplitInput input;
  input.order.resize(values.size());
  for (std::size_t r = 0; r < values.size(); ++r) input.order[r] = static_cast<std::uint32_t>(r);
  std::stable_sort(input.order.begin(), input.order.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return values[a] < values[b]; });
  input.values = std::move(values);
  return input;
}

// A split of one input, value <= threshold versus above, with the Newton step of each side.
struct Stump {
  double gain = 0;  // approximate log-loss decrease, second-order
  double threshold = 0;
  double edge = 0;  // Midway between threshold and the next larger value: where a step input places its edge.
  double left_step = 0, right_step = 0;
};

// A leaf's Newton step for gradient sum g and curvature sum h, clipped to +-kMaxLeafStep, and the second-order
// log-loss decrease that the step gives. Without the clip, a leaf of rows that the model gets confidently
// wrong (curvature near 0) would take a huge step and overshoot.
constexpr double kMaxLeafStep = 4.0;

std::pair<double, double> leaf_step(double g, double h, double l2) {
  const double step = std::clamp(-g / (h + l2), -kMaxLeafStep, kMaxLeafStep);
  return {step, -(g * step + 0.5 * (h + l2) * step * step)};
}

// The best split of `input` for gradients g and curvatures h, with at least min_leaf rows on each side.
Stump best_stump(const SplitInput& input, const std::vector<double>& g, const std::vector<double>& h, double l2,
                 std::size_t min_leaf) {
  double total_g = 0, total_h = 0;
  for (std::size_t r = 0; r < g.size(); ++r) {
    total_g += g[r];
    total_h += h[r];
  }
  const double parent = leaf_step(total_g, total_h, l2).second;

  Stump best;
  double left_g = 0, left_h = 0;
  const std::size_t rows = input.order.size();
  for (std::size_t i = 0; i + 1 < rows; ++i) {
    const std::uint32_t r = input.order[i];
    left_g += g[r];
    left_h += h[r];
    const double value = input.values[r];
    const double next = input.values[input.order[i + 1]];
    if (i + 1 < min_leaf || rows - i - 1 < min_leaf || !(next > value)) continue;

    const auto [left_step, left_gain] = leaf_step(left_g, left_h, l2);
    const auto [right_step, right_gain] = leaf_step(total_g - left_g, total_h - left_h, l2);
    const double gain = left_gain + right_gain - parent;
    if (gain > best.gain) {
      best.gain = gain;
      best.threshold = value;
      best.edge = value + (next - value) / 2.0;
      best.left_step = left_step;
      best.right_step = right_step;
    }
  }
  return best;
}

// Raw values of a numeric feature over `rows`, undoing the preprocessor's standardization.
std::vector<double> raw_values(const FeatureTransform& feature, const Matrix& encoded,
                               const std::vector<std::size_t>& rows) {
  std::vector<double> values;
  values.reserve(rows.size());
  for (std::size_t row : rows) values.push_back(feature.mean + feature.scale * encoded(row, feature.offset));
  return values;
}

// A candidate's unstandardized values over the screened rows, from the two features' raw values.
std::vector<double> candidate_values(DerivedKind kind, const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> values(a.size());
  for (std::size_t r = 0; r < a.size(); ++r) values[r] = kind == DerivedKind::Difference ? a[r] - b[r] : a[r] * b[r];
  return values;
}

const FeatureTransform* find_numeric(const Preprocessor& preprocessor, const std::string& column) {
  for (const FeatureTransform& feature : preprocessor.features()) {
    if (feature.column == column && feature.type == FeatureType::Numeric) return &feature;
  }
  return nullptr;
}

// Sets the encoded columns, coefficients and standardization of one derived input, as bind_derived does.
void bind_input(DerivedInput& d, const Preprocessor& preprocessor, const Matrix& encoded) {
  const FeatureTransform* left = find_numeric(preprocessor, d.left);
  const FeatureTransform* right = find_numeric(preprocessor, d.right);
  for (const auto& [feature, column] : {std::pair{left, &d.left}, std::pair{right, &d.right}}) {
    if (feature == nullptr) {
      throw InvalidArgument(fmt::format("bind_derived: '{}' reads '{}', which is not a numeric feature of the "
                                        "preprocessor; fit it with that feature",
                                        d.name(), *column));
    }
  }

  // Undo each column's standardization, so that the two factors are the raw values. A linear difference drops
  // the means, which cancel up to a constant that its own standardization removes. A step compares the raw
  // value itself with its threshold, so it keeps them.
  const bool difference = d.kind == DerivedKind::Difference;
  d.left_input = left->offset;
  d.right_input = right->offset;
  d.left_coefficient = left->scale;
  d.right_coefficient = difference ? -right->scale : right->scale;
  d.left_shift = d.is_linear() ? 0.0 : left->mean;
  d.right_shift = d.is_linear() ? 0.0 : (difference ? -right->mean : right->mean);

  // With mean 0 and scale 1, value() is the raw difference or product.
  d.mean = 0;
  d.scale = 1;
  std::vector<double> raw(encoded.rows);
  double sum = 0;
  for (std::size_t r = 0; r < encoded.rows; ++r) {
    raw[r] = d.value(encoded.row(r));
    sum += raw[r];
  }
  const double mean = encoded.rows == 0 ? 0.0 : sum / static_cast<double>(encoded.rows);
  double squares = 0;
  for (double value : raw) squares += (value - mean) * (value - mean);
  d.mean = mean;
  const double deviation = encoded.rows == 0 ? 0.0 : std::sqrt(squares / static_cast<double>(encoded.rows));
  d.scale = deviation > 0 ? deviation : 1.0;
}

// The screening model's inputs, one per feature so that each row activates one weight per feature: a
// numeric feature's quantile bins, or a categorical feature's category (with one more bin for an unseen one).
// NOTE: text features are left out of the screening model, so their signal does not count in its log-loss.
std::vector<BinnedInput> base_inputs(const Preprocessor& preprocessor, const Matrix& encoded,
                                     const std::vector<std::size_t>& rows, std::size_t bins) {
  std::vector<BinnedInput> inputs;
  for (const FeatureTransform& feature : preprocessor.features()) {
    if (feature.type == FeatureType::Numeric) {
      std::vector<double> values;
      for (std::size_t row : rows) values.push_back(encoded(row, feature.offset));
      inputs.push_back(bin_by_quantiles(values, bins));
    } else if (feature.type == FeatureType::Categorical) {
      BinnedInput input;
      input.bins = feature.width + 1;
      for (std::size_t row : rows) {
        std::size_t category = feature.width;
        for (std::size_t c = 0; c < feature.width; ++c) {
          if (encoded(row, feature.offset + c) > 0.5f) category = c;
        }
        input.bin_of_row.push_back(static_cast<std::uint16_t>(category));
      }
      inputs.push_back(std::move(input));
    }
  }
  return inputs;
}

void check_search_inputs(const Preprocessor& preprocessor, const Matrix& encoded,
                         const std::vector<std::int64_t>& labels, const DerivedSearchOptions& options) {
  if (encoded.cols != preprocessor.encoded_width()) {
    throw InvalidArgument(fmt::format("screen_derived_inputs: encoded has {} columns, the preprocessor "
                                      "writes {}; pass rows encoded by that preprocessor",
                                      encoded.cols, preprocessor.encoded_width()));
  }
  if (labels.size() != encoded.rows) {
    throw InvalidArgument(fmt::format("screen_derived_inputs: {} labels for {} rows; pass one label per row",
                                      labels.size(), encoded.rows));
  }
  for (std::size_t r = 0; r < labels.size(); ++r) {
    if (labels[r] != 0 && labels[r] != 1) {
      throw InvalidArgument(fmt::format("screen_derived_inputs: labels[{}] is {}; the screen needs binary "
                                        "labels 0 or 1",
                                        r, labels[r]));
    }
  }
  if (options.folds < 2 || options.bins < 2) {
    throw InvalidArgument(fmt::format("screen_derived_inputs: folds {} and bins {}; both must be at least 2",
                                      options.folds, options.bins));
  }
  if (options.max_rows < options.folds) {
    throw InvalidArgument(fmt::format("screen_derived_inputs: max_rows {} is below folds {}; allow at least "
                                      "as many rows as folds",
                                      options.max_rows, options.folds));
  }
}

}  // namespace

const char* to_string(DerivedKind kind) {
  switch (kind) {
    case DerivedKind::Difference: return "difference";
    case DerivedKind::Product: return "product";
  }
  return "difference";
}

std::string DerivedInput::name() const {
  const std::string combined = left + (kind == DerivedKind::Product ? " * " : " - ") + right;
  return step ? fmt::format("{} > {:.6g}", combined, *step) : combined;
}

double DerivedInput::value(const float* encoded_row) const {
  // A product or a step goes through the exported network's own computation, so that training gets exactly
  // the values, and the side of each step, that the model computes later.
  if (!is_linear()) return input_product().value(encoded_row);

  const double left_term = left_coefficient * encoded_row[left_input] + left_shift;
  const double right_term = right_coefficient * encoded_row[right_input] + right_shift;
  return (left_term + right_term - mean) / scale;
}

InputProduct DerivedInput::input_product() const {
  if (is_linear()) {
    throw InvalidArgument(fmt::format("DerivedInput::input_product: '{}' is a difference without a step, which "
                                      "folds into the first layer instead",
                                      name()));
  }
  // The network's difference is L - R, so the right term of a + b enters with its sign flipped.
  const double sign = kind == DerivedKind::Difference ? -1.0 : 1.0;
  InputProduct product;
  product.left = left_input;
  product.right = right_input;
  product.left_scale = left_coefficient;
  product.left_shift = left_shift;
  product.right_scale = sign * right_coefficient;
  product.right_shift = sign * right_shift;
  product.difference = kind == DerivedKind::Difference;
  product.step = step;
  product.mean = mean;
  product.scale = scale;
  return product;
}

nlohmann::json DerivedInput::to_json() const {
  nlohmann::json out = {{"name", name()},
                        {"kind", to_string(kind)},
                        {"left", left},
                        {"right", right},
                        {"left_input", left_input},
                        {"right_input", right_input},
                        {"left_coefficient", left_coefficient},
                        {"right_coefficient", right_coefficient},
                        {"left_shift", left_shift},
                        {"right_shift", right_shift},
                        {"mean", mean},
                        {"scale", scale},
                        {"loss_reduction", loss_reduction}};
  if (step) out["step"] = *step;
  return out;
}

DerivedInput DerivedInput::from_json(const nlohmann::json& j, const std::string& json_path) {
  if (!j.is_object()) {
    throw ParseError(fmt::format("{}: expected an object with kind, left, right, inputs, coefficients, mean and "
                                 "scale",
                                 json_path));
  }

  auto field = [&](const char* key, nlohmann::json::value_t kind) -> const nlohmann::json& {
    const auto found = j.find(key);
    const bool number_ok = kind == nlohmann::json::value_t::number_float && found != j.end() && found->is_number();
    const bool count_ok =
        kind == nlohmann::json::value_t::number_unsigned && found != j.end() && found->is_number_unsigned();
    const bool string_ok = kind == nlohmann::json::value_t::string && found != j.end() && found->is_string();
    if (!number_ok && !count_ok && !string_ok) {
      throw ParseError(fmt::format("{}.{}: missing or of the wrong type; expected {}", json_path, key,
                                   kind == nlohmann::json::value_t::string ? "a string"
                                   : kind == nlohmann::json::value_t::number_unsigned ? "a non-negative integer"
                                                                                     : "a number"));
    }
    return *found;
  };

  DerivedInput derived;
  const std::string kind = field("kind", nlohmann::json::value_t::string).get<std::string>();
  if (kind == "difference") {
    derived.kind = DerivedKind::Difference;
  } else if (kind == "product") {
    derived.kind = DerivedKind::Product;
  } else {
    throw ParseError(fmt::format("{}.kind: \"{}\" is not a derived kind; expected \"difference\" or \"product\"",
                                 json_path, kind));
  }
  derived.left = field("left", nlohmann::json::value_t::string).get<std::string>();
  derived.right = field("right", nlohmann::json::value_t::string).get<std::string>();
  derived.left_input = field("left_input", nlohmann::json::value_t::number_unsigned).get<std::size_t>();
  derived.right_input = field("right_input", nlohmann::json::value_t::number_unsigned).get<std::size_t>();
  derived.left_coefficient = field("left_coefficient", nlohmann::json::value_t::number_float).get<double>();
  derived.right_coefficient = field("right_coefficient", nlohmann::json::value_t::number_float).get<double>();
  if (j.contains("step")) {
    const double step = field("step", nlohmann::json::value_t::number_float).get<double>();
    if (!std::isfinite(step)) {
      throw ParseError(fmt::format("{}.step: {} is not a finite number", json_path, step));
    }
    derived.step = step;
  }
  // A linear difference needs no shifts, so files written before products were exact may lack them.
  for (auto [key, shift] : {std::pair{"left_shift", &derived.left_shift}, std::pair{"right_shift", &derived.right_shift}}) {
    if (j.contains(key) || !derived.is_linear()) {
      *shift = field(key, nlohmann::json::value_t::number_float).get<double>();
    }
  }
  derived.mean = field("mean", nlohmann::json::value_t::number_float).get<double>();
  derived.scale = field("scale", nlohmann::json::value_t::number_float).get<double>();

  if (!(derived.scale > 0)) {
    throw ParseError(fmt::format("{}.scale: {} is not positive; a standardization scale must be > 0", json_path,
                                 derived.scale));
  }

  if (const auto gain = j.find("loss_reduction"); gain != j.end() && gain->is_number()) {
    derived.loss_reduction = gain->get<double>();
  }
  return derived;
}

void bind_derived(std::vector<DerivedInput>& derived, const Preprocessor& preprocessor, const Matrix& encoded) {
  if (encoded.cols != preprocessor.encoded_width()) {
    throw InvalidArgument(fmt::format("bind_derived: encoded has {} columns, the preprocessor writes {}; pass rows "
                                      "encoded by that preprocessor",
                                      encoded.cols, preprocessor.encoded_width()));
  }
  for (DerivedInput& d : derived) bind_input(d, preprocessor, encoded);
}

namespace {

// Rows that a screen scores: a stratified sample of at most max_rows rows, because the cost grows with rows x
// candidates, with their labels and folds. Kept inputs are still standardized over every row.
struct ScreenedRows {
  std::vector<std::size_t> rows;
  std::vector<std::int64_t> labels;
  std::vector<std::size_t> fold_of_row;
};

// All rows, or a stratified sample of about max_rows of them: one fold of a ceil(rows / max_rows)-fold split.
ScreenedRows screen_rows(const std::vector<std::int64_t>& labels, const DerivedSearchOptions& options) {
  ScreenedRows screened;
  if (labels.size() <= options.max_rows) {
    for (std::size_t r = 0; r < labels.size(); ++r) screened.rows.push_back(r);
  } else {
    const std::size_t parts = (labels.size() + options.max_rows - 1) / options.max_rows;
    const std::vector<std::size_t> part_of_row = stratified_folds(labels, parts, options.seed + 1);
    for (std::size_t r = 0; r < labels.size(); ++r) {
      if (part_of_row[r] == 0) screened.rows.push_back(r);
    }
  }
  for (std::size_t row : screened.rows) screened.labels.push_back(labels[row]);
  screened.fold_of_row = stratified_folds(screened.labels, options.folds, options.seed);
  return screened;
}

// The differences screen: forward selection of differences by the additive model's cross-validated log-loss.
DerivedSearchResult screen_differences(const Preprocessor& preprocessor, const Matrix& encoded,
                                       const ScreenedRows& sample, const DerivedSearchOptions& options) {
  const std::vector<std::size_t>& screened = sample.rows;
  const std::vector<std::int64_t>& screened_labels = sample.labels;
  const std::vector<std::size_t>& fold_of_row = sample.fold_of_row;
  std::vector<BinnedInput> inputs = base_inputs(preprocessor, encoded, screened, options.bins);

  std::vector<const FeatureTransform*> numeric;
  for (const FeatureTransform& feature : preprocessor.features()) {
    if (feature.type == FeatureType::Numeric) numeric.push_back(&feature);
  }
  struct Candidate {
    DerivedInput derived;
    BinnedInput binned;
  };
  std::vector<Candidate> candidates;
  for (std::size_t a = 0; a < numeric.size(); ++a) {
    for (std::size_t b = a + 1; b < numeric.size(); ++b) {
      DerivedInput difference;
      difference.left = numeric[a]->column;
      difference.right = numeric[b]->column;
      bind_input(difference, preprocessor, encoded);

      // The raw difference up to a constant; quantile bins do not depend on its standardization.
      std::vector<double> sampled;
      for (std::size_t row : screened) {
        sampled.push_back(difference.left_coefficient * encoded(row, difference.left_input) +
                          difference.right_coefficient * encoded(row, difference.right_input));
      }
      candidates.push_back({difference, bin_by_quantiles(sampled, options.bins)});
    }
  }

  DerivedSearchResult result;
  result.screened_rows = screened.size();
  result.candidates = candidates.size();
  result.base_loss = cross_validated_loss(inputs, screened_labels, fold_of_row, options);
  result.final_loss = result.base_loss;

  // Forward selection: each step scores every remaining candidate against the current inputs.
  std::vector<bool> taken(candidates.size(), false);
  while (result.kept.size() < options.max_features) {
    std::vector<std::pair<double, std::size_t>> scored;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (taken[i]) continue;
      inputs.push_back(candidates[i].binned);
      const double loss = cross_validated_loss(inputs, screened_labels, fold_of_row, options);
      inputs.pop_back();
      scored.emplace_back((result.final_loss - loss) / result.final_loss, i);
    }
    if (scored.empty()) break;
    std::stable_sort(scored.begin(), scored.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    if (result.kept.empty()) {
      for (const auto& [reduction, i] : scored) result.first_step.emplace_back(candidates[i].derived.name(), reduction);
    }

    const auto [best_reduction, best] = scored.front();
    if (best_reduction < options.min_loss_reduction) {
      result.best_rejected = candidates[best].derived.name();
      result.best_rejected_reduction = best_reduction;
      break;
    }
    taken[best] = true;
    candidates[best].derived.loss_reduction = best_reduction;
    result.kept.push_back(candidates[best].derived);
    inputs.push_back(candidates[best].binned);
    result.final_loss *= 1.0 - best_reduction;
  }
  return result;
}

// The products screen: boosted splits over raw features and every difference and product.
DerivedSearchResult screen_with_splits(const Preprocessor& preprocessor, const Matrix& encoded,
                                       const ScreenedRows& sample, const DerivedSearchOptions& options) {
  const std::vector<std::size_t>& screened = sample.rows;
  const std::vector<std::int64_t>& screened_labels = sample.labels;
  const std::vector<std::size_t>& fold_of_row = sample.fold_of_row;

  // The starting point: cross-validated logits of the additive model on every feature's bins.
  std::vector<double> logits =
      cross_validated_logits(base_inputs(preprocessor, encoded, screened, options.bins), screened_labels,
                             fold_of_row, options);
  const double base_total = total_log_loss(logits, screened_labels);

  // The boosting's inputs: every numeric feature, then every candidate. A product needs values of at least 0
  // on all learning rows, so that it grows with each factor, as a physical quantity such as power does.
  std::vector<const FeatureTransform*> numeric;
  for (const FeatureTransform& feature : preprocessor.features()) {
    if (feature.type == FeatureType::Numeric) numeric.push_back(&feature);
  }
  std::vector<std::vector<double>> raw;
  std::vector<bool> non_negative;
  for (const FeatureTransform* feature : numeric) {
    raw.push_back(raw_values(*feature, encoded, screened));
    double smallest = std::numeric_limits<double>::infinity();
    for (std::size_t r = 0; r < encoded.rows; ++r) {
      smallest = std::min(smallest, feature->mean + feature->scale * encoded(r, feature->offset));
    }
    // Float encoding can turn a raw 0 into a tiny negative value.
    non_negative.push_back(smallest >= -1e-4 * feature->scale);
  }

  std::vector<SplitInput> inputs;
  for (const std::vector<double>& values : raw) inputs.push_back(make_split_input(values));
  std::vector<DerivedInput> candidates;
  for (std::size_t a = 0; a < numeric.size(); ++a) {
    for (std::size_t b = a + 1; b < numeric.size(); ++b) {
      for (DerivedKind kind : {DerivedKind::Difference, DerivedKind::Product}) {
        if (kind != DerivedKind::Difference && !(non_negative[a] && non_negative[b])) continue;
        DerivedInput candidate;
        candidate.kind = kind;
        candidate.left = numeric[a]->column;
        candidate.right = numeric[b]->column;
        inputs.push_back(make_split_input(candidate_values(kind, raw[a], raw[b])));
        candidates.push_back(std::move(candidate));
      }
    }
  }
  const std::size_t first_candidate = numeric.size();

  DerivedSearchResult result;
  result.screened_rows = screened.size();
  result.candidates = candidates.size();
  result.base_loss = base_total / static_cast<double>(screened.size());

  // Boosting: each round adds the one split, on any input, that cuts the log-loss most. A candidate's score is
  // the log-loss that its own splits removed, as a fraction of the starting log-loss.
  const std::size_t min_leaf = std::max<std::size_t>(10, screened.size() / 500);
  std::vector<double> removed(candidates.size(), 0.0), first_gain(candidates.size(), 0.0);
  // Each candidate's split that removed most log-loss: where its step input places its edge.
  std::vector<double> best_removed(candidates.size(), 0.0), best_edge(candidates.size(), 0.0);
  std::vector<double> g(screened.size()), h(screened.size());
  double current = base_total;
  for (std::size_t round = 0; round < options.rounds; ++round) {
    for (std::size_t r = 0; r < screened.size(); ++r) {
      const double probability = 1.0 / (1.0 + std::exp(-logits[r]));
      g[r] = probability - static_cast<double>(screened_labels[r]);
      h[r] = std::max(probability * (1.0 - probability), 1e-12);
    }

    std::size_t best_input = inputs.size();
    Stump best;
    double best_score = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Stump split = best_stump(inputs[i], g, h, options.l2, min_leaf);
      double score = split.gain;
      if (i >= first_candidate) {
        const DerivedInput& candidate = candidates[i - first_candidate];
        if (round == 0) {
          first_gain[i - first_candidate] = split.gain / base_total;
          result.first_step.emplace_back(candidate.name(), first_gain[i - first_candidate]);
        }
        score /= candidate.kind == DerivedKind::Product ? kDerivedHandicap * kDerivedHandicap : kDerivedHandicap;
      }
      if (score > best_score) {
        best_score = score;
        best = split;
        best_input = i;
      }
    }
    if (best_input == inputs.size()) break;

    const SplitInput& chosen = inputs[best_input];
    for (std::size_t r = 0; r < screened.size(); ++r) {
      logits[r] += chosen.values[r] <= best.threshold ? best.left_step : best.right_step;
    }
    const double after = total_log_loss(logits, screened_labels);
    if (best_input >= first_candidate) {
      const std::size_t c = best_input - first_candidate;
      const double reduction = (current - after) / base_total;
      removed[c] += reduction;
      if (reduction > best_removed[c]) {
        best_removed[c] = reduction;
        best_edge[c] = best.edge;
      }
    }
    current = after;
  }
  std::stable_sort(result.first_step.begin(), result.first_step.end(),
                   [](const auto& x, const auto& y) { return x.second > y.second; });

  // Keep the best-scoring candidates above the threshold. Among candidates that no round chose, the best
  // first-round split ranks first.
  std::vector<std::size_t> ranked(candidates.size());
  for (std::size_t i = 0; i < ranked.size(); ++i) ranked[i] = i;
  std::stable_sort(ranked.begin(), ranked.end(), [&](std::size_t x, std::size_t y) {
    return removed[x] != removed[y] ? removed[x] > removed[y] : first_gain[x] > first_gain[y];
  });
  double kept_total = 0;
  std::vector<DerivedInput> steps;
  for (std::size_t i : ranked) {
    if (removed[i] >= options.min_split_reduction && result.kept.size() < options.max_features) {
      candidates[i].loss_reduction = removed[i];
      result.kept.push_back(candidates[i]);
      kept_total += removed[i];
      if (options.steps) {
        DerivedInput step = candidates[i];
        step.step = best_edge[i];
        step.loss_reduction = best_removed[i];
        steps.push_back(std::move(step));
      }
    } else if (result.best_rejected.empty()) {
      result.best_rejected = candidates[i].name();
      result.best_rejected_reduction = removed[i];
    }
  }
  result.final_loss = result.base_loss * (1.0 - kept_total);
  // The steps follow the quantities, in the same order. Their splits are already counted in kept_total.
  result.kept.insert(result.kept.end(), steps.begin(), steps.end());

  // Bind to the screened preprocessor's columns and all of its learning rows, as the differences screen does.
  for (DerivedInput& d : result.kept) bind_input(d, preprocessor, encoded);
  return result;
}

}  // namespace

DerivedSearchResult screen_derived_inputs(const Preprocessor& preprocessor, const Matrix& encoded,
                                          const std::vector<std::int64_t>& labels,
                                          const DerivedSearchOptions& options) {
  check_search_inputs(preprocessor, encoded, labels, options);
  const ScreenedRows sample = screen_rows(labels, options);
  return options.products ? screen_with_splits(preprocessor, encoded, sample, options)
                          : screen_differences(preprocessor, encoded, sample, options);
}

namespace {

// Rejects inputs whose standardization is unset (scale 0 or less), which bind_derived sets.
void check_bound(const std::vector<DerivedInput>& derived, const char* caller) {
  for (const DerivedInput& d : derived) {
    if (!(d.scale > 0)) {
      throw InvalidArgument(fmt::format("{}: the {} '{}' has scale {}; bind it to the preprocessor's columns with "
                                        "bind_derived first",
                                        caller, to_string(d.kind), d.name(), d.scale));
    }
  }
}

}  // namespace

Matrix append_derived(const Matrix& encoded, const std::vector<DerivedInput>& derived) {
  check_bound(derived, "append_derived");
  Matrix out(encoded.rows, encoded.cols + derived.size());
  for (std::size_t r = 0; r < encoded.rows; ++r) {
    const float* in = encoded.row(r);
    float* row = out.row(r);
    std::copy(in, in + encoded.cols, row);
    for (std::size_t d = 0; d < derived.size(); ++d) row[encoded.cols + d] = static_cast<float>(derived[d].value(in));
  }
  return out;
}

Mlp fold_derived(const Mlp& network, const std::vector<DerivedInput>& derived) {
  if (derived.empty()) return network;
  if (network.layers.empty() || network.inputs() <= derived.size()) {
    throw InvalidArgument(fmt::format("fold_derived: the network takes {} inputs, no more than the {} derived ones",
                                      network.inputs(), derived.size()));
  }
  if (!network.products.empty()) {
    throw InvalidArgument("fold_derived: the network already computes input products; fold a network trained on "
                          "append_derived() columns");
  }
  const DenseLayer& first = network.layers.front();
  if (first.precision != LayerPrecision::F32) {
    throw InvalidArgument("fold_derived: the first layer is int8; fold the derived inputs before quantizing");
  }
  check_bound(derived, "fold_derived");
  const std::size_t base = first.inputs - derived.size();
  for (const DerivedInput& d : derived) {
    if (d.left_input >= base || d.right_input >= base) {
      throw InvalidArgument(fmt::format("fold_derived: '{}' reads encoded columns {} and {}, but the network has "
                                        "{} encoded inputs besides the derived ones",
                                        d.name(), d.left_input, d.right_input, base));
    }
  }

  // A linear difference d is (cl * x[l] + cr * x[r] - mean) / scale. Its weight column w therefore moves to the
  // two encoded columns, as w * cl / scale and w * cr / scale, and to the bias, as -w * mean / scale. A product
  // or a step is not linear in the encoded columns. It stays a column of the first layer, and the network
  // computes it itself as an InputProduct.
  Mlp folded = network;
  std::vector<std::size_t> product_inputs;  // Trained column of each product, in order.
  for (std::size_t k = 0; k < derived.size(); ++k) {
    if (derived[k].is_linear()) continue;
    folded.products.push_back(derived[k].input_product());
    product_inputs.push_back(base + k);
  }
  const std::size_t width = base + product_inputs.size();

  DenseLayer& layer = folded.layers.front();
  layer.inputs = width;
  layer.weight.assign(first.outputs * width, 0.0f);
  for (std::size_t o = 0; o < first.outputs; ++o) {
    const float* row = first.weight.data() + o * first.inputs;
    double bias = first.bias[o];
    std::vector<double> weights(row, row + base);
    for (std::size_t k = 0; k < derived.size(); ++k) {
      const DerivedInput& d = derived[k];
      if (!d.is_linear()) continue;
      const double w = row[base + k];
      weights[d.left_input] += w * d.left_coefficient / d.scale;
      weights[d.right_input] += w * d.right_coefficient / d.scale;
      bias -= w * d.mean / d.scale;
    }
    for (std::size_t i = 0; i < base; ++i) layer.weight[o * width + i] = static_cast<float>(weights[i]);
    for (std::size_t k = 0; k < product_inputs.size(); ++k) layer.weight[o * width + base + k] = row[product_inputs[k]];
    layer.bias[o] = static_cast<float>(bias);
  }
  folded.validate();
  return folded;
}

}  // namespace lepton
