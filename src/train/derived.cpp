// The derived-input screen: a binned additive logistic model, cross-validated, with forward selection over
// pairwise differences of numeric features. Also appending the kept inputs and folding them into a network.
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

// Ridge logistic regression by Newton's method on the rows with fold != held_out; returns the summed
// log-loss on the held-out rows. The intercept is not penalized.
double held_out_loss(const Design& design, const std::vector<std::int64_t>& labels,
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

  double held_out_total = 0;
  for (std::size_t r = 0; r < labels.size(); ++r) {
    if (fold_of_row[r] != held_out) continue;
    double logit = 0;
    for (std::uint32_t j : design.active[r]) logit += weights[j];
    held_out_total += log_loss_term(logit, labels[r]);
  }
  return held_out_total;
}

// Cross-validated log-loss per row of the additive model on `inputs`.
double cross_validated_loss(const std::vector<BinnedInput>& inputs, const std::vector<std::int64_t>& labels,
                            const std::vector<std::size_t>& fold_of_row, const DerivedSearchOptions& options) {
  const Design design = make_design(inputs, labels.size());
  double total = 0;
  for (std::size_t fold = 0; fold < options.folds; ++fold) {
    total += held_out_loss(design, labels, fold_of_row, fold, options.l2);
  }
  return total / static_cast<double>(labels.size());
}

// A candidate difference with its raw-unit values over the rows, before standardization.
DerivedDifference make_candidate(const FeatureTransform& minuend, const FeatureTransform& subtrahend,
                                 const Matrix& encoded, std::vector<double>& values) {
  DerivedDifference derived;
  derived.minuend = minuend.column;
  derived.subtrahend = subtrahend.column;
  derived.minuend_input = minuend.offset;
  derived.subtrahend_input = subtrahend.offset;
  derived.minuend_scale = minuend.scale;
  derived.subtrahend_scale = subtrahend.scale;

  values.resize(encoded.rows);
  double sum = 0;
  for (std::size_t r = 0; r < encoded.rows; ++r) {
    values[r] = derived.minuend_scale * encoded(r, derived.minuend_input) -
                derived.subtrahend_scale * encoded(r, derived.subtrahend_input);
    sum += values[r];
  }
  derived.mean = encoded.rows == 0 ? 0.0 : sum / static_cast<double>(encoded.rows);
  double squares = 0;
  for (double value : values) squares += (value - derived.mean) * (value - derived.mean);
  const double deviation = encoded.rows == 0 ? 0.0 : std::sqrt(squares / static_cast<double>(encoded.rows));
  derived.scale = deviation > 0 ? deviation : 1.0;
  return derived;
}

// All rows, or a stratified sample of about max_rows of them: one fold of a ceil(rows / max_rows)-fold split.
std::vector<std::size_t> screened_rows(const std::vector<std::int64_t>& labels, const DerivedSearchOptions& options) {
  std::vector<std::size_t> rows;
  if (labels.size() <= options.max_rows) {
    for (std::size_t r = 0; r < labels.size(); ++r) rows.push_back(r);
    return rows;
  }
  const std::size_t parts = (labels.size() + options.max_rows - 1) / options.max_rows;
  const std::vector<std::size_t> part_of_row = stratified_folds(labels, parts, options.seed + 1);
  for (std::size_t r = 0; r < labels.size(); ++r) {
    if (part_of_row[r] == 0) rows.push_back(r);
  }
  return rows;
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
    throw InvalidArgument(fmt::format("search_derived_differences: encoded has {} columns, the preprocessor "
                                      "writes {}; pass rows encoded by that preprocessor",
                                      encoded.cols, preprocessor.encoded_width()));
  }
  if (labels.size() != encoded.rows) {
    throw InvalidArgument(fmt::format("search_derived_differences: {} labels for {} rows; pass one label per row",
                                      labels.size(), encoded.rows));
  }
  for (std::size_t r = 0; r < labels.size(); ++r) {
    if (labels[r] != 0 && labels[r] != 1) {
      throw InvalidArgument(fmt::format("search_derived_differences: labels[{}] is {}; the screen needs binary "
                                        "labels 0 or 1",
                                        r, labels[r]));
    }
  }
  if (options.folds < 2 || options.bins < 2) {
    throw InvalidArgument(fmt::format("search_derived_differences: folds {} and bins {}; both must be at least 2",
                                      options.folds, options.bins));
  }
  if (options.max_rows < options.folds) {
    throw InvalidArgument(fmt::format("search_derived_differences: max_rows {} is below folds {}; allow at least "
                                      "as many rows as folds",
                                      options.max_rows, options.folds));
  }
}

}  // namespace

std::string DerivedDifference::name() const { return minuend + " - " + subtrahend; }

double DerivedDifference::value(const float* encoded_row) const {
  const double raw = minuend_scale * encoded_row[minuend_input] - subtrahend_scale * encoded_row[subtrahend_input];
  return (raw - mean) / scale;
}

nlohmann::json DerivedDifference::to_json() const {
  return {{"name", name()},
          {"minuend", minuend},
          {"subtrahend", subtrahend},
          {"minuend_input", minuend_input},
          {"subtrahend_input", subtrahend_input},
          {"minuend_scale", minuend_scale},
          {"subtrahend_scale", subtrahend_scale},
          {"mean", mean},
          {"scale", scale},
          {"loss_reduction", loss_reduction}};
}

DerivedDifference DerivedDifference::from_json(const nlohmann::json& j, const std::string& json_path) {
  if (!j.is_object()) {
    throw ParseError(fmt::format("{}: expected an object with minuend, subtrahend, inputs, scales, mean and scale",
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

  DerivedDifference derived;
  derived.minuend = field("minuend", nlohmann::json::value_t::string).get<std::string>();
  derived.subtrahend = field("subtrahend", nlohmann::json::value_t::string).get<std::string>();
  derived.minuend_input = field("minuend_input", nlohmann::json::value_t::number_unsigned).get<std::size_t>();
  derived.subtrahend_input = field("subtrahend_input", nlohmann::json::value_t::number_unsigned).get<std::size_t>();
  derived.minuend_scale = field("minuend_scale", nlohmann::json::value_t::number_float).get<double>();
  derived.subtrahend_scale = field("subtrahend_scale", nlohmann::json::value_t::number_float).get<double>();
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

DerivedSearchResult search_derived_differences(const Preprocessor& preprocessor, const Matrix& encoded,
                                               const std::vector<std::int64_t>& labels,
                                               const DerivedSearchOptions& options) {
  check_search_inputs(preprocessor, encoded, labels, options);

  // The screen's cost grows with rows x candidates, so it scores a stratified sample of at most max_rows
  // rows. The kept differences are still standardized over every row.
  const std::vector<std::size_t> screened = screened_rows(labels, options);
  std::vector<std::int64_t> screened_labels;
  for (std::size_t row : screened) screened_labels.push_back(labels[row]);
  const std::vector<std::size_t> fold_of_row = stratified_folds(screened_labels, options.folds, options.seed);

  std::vector<BinnedInput> inputs = base_inputs(preprocessor, encoded, screened, options.bins);

  std::vector<const FeatureTransform*> numeric;
  for (const FeatureTransform& feature : preprocessor.features()) {
    if (feature.type == FeatureType::Numeric) numeric.push_back(&feature);
  }
  struct Candidate {
    DerivedDifference derived;
    BinnedInput binned;
  };
  std::vector<Candidate> candidates;
  std::vector<double> values;
  for (std::size_t a = 0; a < numeric.size(); ++a) {
    for (std::size_t b = a + 1; b < numeric.size(); ++b) {
      Candidate candidate{make_candidate(*numeric[a], *numeric[b], encoded, values), {}};
      std::vector<double> sampled;
      for (std::size_t row : screened) sampled.push_back(values[row]);
      candidate.binned = bin_by_quantiles(sampled, options.bins);
      candidates.push_back(std::move(candidate));
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

Matrix append_derived(const Matrix& encoded, const std::vector<DerivedDifference>& derived) {
  Matrix out(encoded.rows, encoded.cols + derived.size());
  for (std::size_t r = 0; r < encoded.rows; ++r) {
    std::copy_n(encoded.row(r), encoded.cols, out.row(r));
    for (std::size_t d = 0; d < derived.size(); ++d) {
      out(r, encoded.cols + d) = static_cast<float>(derived[d].value(encoded.row(r)));
    }
  }
  return out;
}

Mlp fold_derived(const Mlp& network, const std::vector<DerivedDifference>& derived) {
  if (derived.empty()) return network;
  if (network.layers.empty() || network.inputs() < derived.size()) {
    throw InvalidArgument(fmt::format("fold_derived: the network takes {} inputs, fewer than the {} derived ones",
                                      network.inputs(), derived.size()));
  }
  const DenseLayer& first = network.layers.front();
  if (first.precision != LayerPrecision::F32) {
    throw InvalidArgument("fold_derived: the first layer is int8; fold the derived inputs before quantizing");
  }
  const std::size_t base = first.inputs - derived.size();
  for (const DerivedDifference& d : derived) {
    if (d.minuend_input >= base || d.subtrahend_input >= base) {
      throw InvalidArgument(fmt::format("fold_derived: '{}' reads encoded columns {} and {}, but the network has "
                                        "{} encoded inputs besides the derived ones",
                                        d.name(), d.minuend_input, d.subtrahend_input, base));
    }
  }

  // Derived input d is (ms * x[m] - ss * x[s] - mean) / scale. Its weight column w therefore moves to the
  // two encoded columns, as w * ms / scale and -w * ss / scale, and to the bias, as -w * mean / scale.
  Mlp folded = network;
  DenseLayer& layer = folded.layers.front();
  layer.inputs = base;
  layer.weight.assign(first.outputs * base, 0.0f);
  for (std::size_t o = 0; o < first.outputs; ++o) {
    const float* row = first.weight.data() + o * first.inputs;
    double bias = first.bias[o];
    std::vector<double> weights(row, row + base);
    for (std::size_t k = 0; k < derived.size(); ++k) {
      const DerivedDifference& d = derived[k];
      const double w = row[base + k];
      weights[d.minuend_input] += w * d.minuend_scale / d.scale;
      weights[d.subtrahend_input] -= w * d.subtrahend_scale / d.scale;
      bias -= w * d.mean / d.scale;
    }
    for (std::size_t i = 0; i < base; ++i) layer.weight[o * base + i] = static_cast<float>(weights[i]);
    layer.bias[o] = static_cast<float>(bias);
  }
  folded.validate();
  return folded;
}

}  // namespace lepton
