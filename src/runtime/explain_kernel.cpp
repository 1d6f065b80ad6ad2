// Kernel SHAP (Lundberg and Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017),
// with the coalition sampling scheme of shap 0.49.1's KernelExplainer.

#include <cmath>
#include <unordered_map>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/explain_detail.hpp"

namespace lepton {

namespace {

/// The coalitions of one row and their Shapley kernel weights. Samples [0, fixed) come from enumerating
/// whole coalition sizes, and the rest were drawn at random. For the bootstrap, `draws` lists per random
/// draw the sample it hit and its complement's sample (or `npos`).
struct CoalitionSample {
  std::vector<std::uint64_t> masks;
  std::vector<double> weights;
  std::size_t fixed = 0;
  double random_weight = 0.0;  ///< Total kernel weight given to the random part.
  struct Draw {
    std::size_t sample;
    std::size_t complement;
  };
  std::vector<Draw> draws;
};

constexpr std::size_t npos = static_cast<std::size_t>(-1);

double binomial(std::size_t n, std::size_t k) {
  double result = 1.0;
  for (std::size_t i = 1; i <= k; ++i) result = result * static_cast<double>(n - k + i) / static_cast<double>(i);
  return result;
}

// Calls visit(mask) for every subset of {0..groups-1} of the given size, in lexicographic order.
template <typename Visit>
void for_each_subset(std::size_t groups, std::size_t size, Visit visit) {
  std::vector<std::size_t> chosen(size);
  for (std::size_t i = 0; i < size; ++i) chosen[i] = i;
  while (true) {
    std::uint64_t mask = 0;
    for (std::size_t index : chosen) mask |= std::uint64_t{1} << index;
    visit(mask);

    std::size_t i = size;
    while (i > 0 && chosen[i - 1] == groups - size + i - 1) --i;
    if (i == 0) return;
    ++chosen[i - 1];
    for (std::size_t j = i; j < size; ++j) chosen[j] = chosen[j - 1] + 1;
  }
}

// Sizes 1 .. ceil((G-1)/2) with their complements; the Shapley kernel puts weight (G-1) / (s (G-s)) on each size.
// Whole sizes are enumerated from the outside in while the budget covers them, then the rest is sampled.
CoalitionSample sample_coalitions(std::size_t groups, std::size_t budget, detail::RowRandom& random) {
  const std::size_t sizes = (groups - 1 + 1) / 2;       // ceil((G - 1) / 2)
  const std::size_t paired_sizes = (groups - 1) / 2;    // floor((G - 1) / 2)
  const std::uint64_t full = groups == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << groups) - 1;

  std::vector<double> size_weight(sizes);
  for (std::size_t s = 1; s <= sizes; ++s) {
    size_weight[s - 1] = static_cast<double>(groups - 1) / static_cast<double>(s * (groups - s));
    if (s <= paired_sizes) size_weight[s - 1] *= 2.0;
  }
  double total = 0.0;
  for (double w : size_weight) total += w;
  for (double& w : size_weight) w /= total;

  CoalitionSample sample;
  std::vector<double> remaining = size_weight;
  double samples_left = static_cast<double>(budget);
  std::size_t full_sizes = 0;
  for (std::size_t s = 1; s <= sizes; ++s) {
    double subsets = binomial(groups, s);
    const bool paired = s <= paired_sizes;
    if (paired) subsets *= 2.0;
    if (samples_left * remaining[s - 1] / subsets < 1.0 - 1e-8) break;

    ++full_sizes;
    samples_left -= subsets;
    if (remaining[s - 1] < 1.0) {
      const double scale = 1.0 - remaining[s - 1];
      for (double& w : remaining) w /= scale;
    }
    const double weight = size_weight[s - 1] / binomial(groups, s) / (paired ? 2.0 : 1.0);
    for_each_subset(groups, s, [&](std::uint64_t mask) {
      sample.masks.push_back(mask);
      sample.weights.push_back(weight);
      if (paired) {
        sample.masks.push_back(~mask & full);
        sample.weights.push_back(weight);
      }
    });
  }
  sample.fixed = sample.masks.size();
  if (full_sizes == sizes) return sample;

  // Random part: draw a size from the remaining kernel weight, then a uniform subset of that size,
  // and add its complement too for paired sizes. Repeats add weight to the existing sample.
  std::vector<double> draw_weight(size_weight.begin() + static_cast<std::ptrdiff_t>(full_sizes), size_weight.end());
  for (std::size_t i = 0; i < draw_weight.size(); ++i) {
    if (full_sizes + i < paired_sizes) draw_weight[i] /= 2.0;  // Each draw of a paired size yields two samples.
  }
  double draw_total = 0.0;
  for (double w : draw_weight) draw_total += w;
  for (std::size_t s = full_sizes; s < sizes; ++s) sample.random_weight += size_weight[s];

  std::unordered_map<std::uint64_t, std::size_t> seen;
  std::vector<std::size_t> order(groups);
  std::size_t left = static_cast<std::size_t>(std::max(samples_left, 0.0));
  const std::size_t max_draws = 4 * left;
  for (std::size_t attempt = 0; attempt < max_draws && left > 0; ++attempt) {
    double target = random.unit() * draw_total;
    std::size_t index = 0;
    while (index + 1 < draw_weight.size() && target >= draw_weight[index]) target -= draw_weight[index++];
    const std::size_t size = index + full_sizes + 1;

    for (std::size_t g = 0; g < groups; ++g) order[g] = g;
    for (std::size_t i = 0; i < size; ++i) std::swap(order[i], order[i + random.below(groups - i)]);
    std::uint64_t mask = 0;
    for (std::size_t i = 0; i < size; ++i) mask |= std::uint64_t{1} << order[i];

    CoalitionSample::Draw draw{npos, npos};
    const auto found = seen.find(mask);
    const bool is_new = found == seen.end();
    if (is_new) {
      draw.sample = sample.masks.size();
      seen.emplace(mask, draw.sample);
      sample.masks.push_back(mask);
      sample.weights.push_back(0.0);
      --left;
    } else {
      draw.sample = found->second;
    }
    if (left > 0 && size <= paired_sizes) {
      if (is_new) {
        draw.complement = sample.masks.size();
        sample.masks.push_back(~mask & full);
        sample.weights.push_back(0.0);
        --left;
      } else if (draw.sample + 1 < sample.masks.size() && sample.masks[draw.sample + 1] == (~mask & full)) {
        draw.complement = draw.sample + 1;
      }
    }
    sample.draws.push_back(draw);
  }
  return sample;
}

// Spreads the random part's kernel weight over its samples in proportion to how often each was drawn.
void weigh_draws(CoalitionSample& sample, const std::vector<std::size_t>& draw_indices) {
  std::fill(sample.weights.begin() + static_cast<std::ptrdiff_t>(sample.fixed), sample.weights.end(), 0.0);
  double hits = 0.0;
  for (std::size_t d : draw_indices) {
    const CoalitionSample::Draw& draw = sample.draws[d];
    sample.weights[draw.sample] += 1.0;
    hits += 1.0;
    if (draw.complement != npos) {
      sample.weights[draw.complement] += 1.0;
      hits += 1.0;
    }
  }
  if (hits == 0.0) return;
  for (std::size_t i = sample.fixed; i < sample.weights.size(); ++i) sample.weights[i] *= sample.random_weight / hits;
}

/// Weighted least squares with sum(phi) = fx - base enforced by eliminating the last group:
/// phi_last = (fx - base) - sum_{j < last} phi_j. Returns phi [G x K].
Eigen::MatrixXd solve_kernel(const CoalitionSample& sample, const double* values, const std::vector<double>& base,
                             const std::vector<double>& prediction, std::size_t groups) {
  const std::size_t k_count = base.size();
  const std::size_t n = sample.masks.size();
  const std::size_t last = groups - 1;
  Eigen::MatrixXd design(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(last));
  Eigen::MatrixXd target(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(k_count));
  Eigen::VectorXd weights(static_cast<Eigen::Index>(n));

  for (std::size_t i = 0; i < n; ++i) {
    const double last_in = static_cast<double>((sample.masks[i] >> last) & 1U);
    for (std::size_t j = 0; j < last; ++j) {
      design(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) =
          static_cast<double>((sample.masks[i] >> j) & 1U) - last_in;
    }
    for (std::size_t k = 0; k < k_count; ++k) {
      target(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) =
          values[i * k_count + k] - base[k] - last_in * (prediction[k] - base[k]);
    }
    weights(static_cast<Eigen::Index>(i)) = sample.weights[i];
  }

  const Eigen::MatrixXd weighted = design.array().colwise() * weights.array();
  const Eigen::MatrixXd gram = weighted.transpose() * design;
  const Eigen::MatrixXd rhs = weighted.transpose() * target;
  // The complete orthogonal decomposition returns the minimum-norm solution when a small budget leaves
  // the system rank deficient, where a Cholesky factorisation would return garbage.
  const Eigen::MatrixXd solved = gram.completeOrthogonalDecomposition().solve(rhs);

  Eigen::MatrixXd phi(static_cast<Eigen::Index>(groups), static_cast<Eigen::Index>(k_count));
  phi.topRows(static_cast<Eigen::Index>(last)) = solved;
  for (std::size_t k = 0; k < k_count; ++k) {
    const auto column = static_cast<Eigen::Index>(k);
    phi(static_cast<Eigen::Index>(last), column) = prediction[k] - base[k] - solved.col(column).sum();
  }
  return phi;
}

}  // namespace

KernelExplainer::KernelExplainer(ExplainModel model, Background background, FeatureGroups groups,
                                 KernelOptions options)
    : model_(std::move(model)), background_(std::move(background)), groups_(std::move(groups)), options_(options) {
  detail::check_setup(model_, background_, groups_, "KernelExplainer");
  if (options_.samples_ == 1) {
    throw InvalidArgument("KernelExplainer: samples = 1; use 0 for the default 2 * groups + 2048, or at least 2");
  }
  if (options_.bootstrap_ == 1) {
    throw InvalidArgument("KernelExplainer: bootstrap = 1 cannot estimate a spread; use 0 to turn it off, or >= 2");
  }
}

Explanation KernelExplainer::explain(const Matrix& rows) const { return explain(DoubleMatrix::from(rows)); }

Explanation KernelExplainer::explain(const DoubleMatrix& rows) const {
  detail::check_rows(rows, model_.inputs(), "KernelExplainer");
  const std::size_t group_count = groups_.size();
  const std::size_t k_count = model_.outputs();
  Explanation explanation = detail::make_explanation("kernel", rows.rows, groups_, k_count);
  if (rows.rows == 0) return explanation;

  std::size_t budget = options_.samples_ == 0 ? 2 * group_count + 2048 : options_.samples_;
  if (group_count < 63) budget = std::min<std::size_t>(budget, (std::size_t{1} << group_count) - 2);
  const std::uint64_t full = group_count == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << group_count) - 1;

  const std::size_t threads = detail::resolve_threads(options_.threads_);
  std::vector<std::vector<double>> base_per_worker(threads);

  detail::for_each_row(rows.rows, threads, [&](std::size_t r, std::size_t worker) {
    detail::RowRandom random(options_.seed_, r);
    detail::CoalitionValues coalition(model_, background_, groups_, options_.path_);
    coalition.set_row(rows.row(r));

    // v(empty) and v(full) come from the same evaluator as the samples, so that efficiency is exact
    // for the values this path computes (the fast path rounds to float).
    std::vector<double> ends(2 * k_count);
    const std::uint64_t end_masks[2] = {0, full};
    coalition.evaluate(end_masks, 2, ends.data());
    const std::vector<double> base(ends.begin(), ends.begin() + static_cast<std::ptrdiff_t>(k_count));
    const std::vector<double> prediction(ends.begin() + static_cast<std::ptrdiff_t>(k_count), ends.end());
    base_per_worker[worker] = base;

    double* phi_out = explanation.values.data() + r * group_count * k_count;
    if (group_count == 1) {
      for (std::size_t k = 0; k < k_count; ++k) phi_out[k] = prediction[k] - base[k];
      return;
    }

    CoalitionSample sample = sample_coalitions(group_count, budget, random);
    std::vector<std::size_t> all_draws(sample.draws.size());
    for (std::size_t d = 0; d < all_draws.size(); ++d) all_draws[d] = d;
    weigh_draws(sample, all_draws);

    std::vector<double> values(sample.masks.size() * k_count);
    coalition.evaluate(sample.masks.data(), sample.masks.size(), values.data());
    const Eigen::MatrixXd phi = solve_kernel(sample, values.data(), base, prediction, group_count);
    for (std::size_t g = 0; g < group_count; ++g) {
      for (std::size_t k = 0; k < k_count; ++k) phi_out[g * k_count + k] = phi(static_cast<Eigen::Index>(g), static_cast<Eigen::Index>(k));
    }

    // Bootstrap over the random draws (the enumerated part has no sampling error): resample the draws with
    // replacement, re-solve, and report the standard deviation of the re-solved values.
    if (sample.draws.empty() || options_.bootstrap_ == 0) return;
    Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(phi.rows(), phi.cols());
    Eigen::MatrixXd sum_squares = Eigen::MatrixXd::Zero(phi.rows(), phi.cols());
    std::vector<std::size_t> resampled(sample.draws.size());
    for (std::size_t rep = 0; rep < options_.bootstrap_; ++rep) {
      for (std::size_t& d : resampled) d = random.below(sample.draws.size());
      weigh_draws(sample, resampled);
      const Eigen::MatrixXd again = solve_kernel(sample, values.data(), base, prediction, group_count);
      sum += again;
      sum_squares += again.cwiseProduct(again);
    }
    const double reps = static_cast<double>(options_.bootstrap_);
    double* error_out = explanation.standard_errors.data() + r * group_count * k_count;
    for (std::size_t g = 0; g < group_count; ++g) {
      for (std::size_t k = 0; k < k_count; ++k) {
        const auto gi = static_cast<Eigen::Index>(g);
        const auto ki = static_cast<Eigen::Index>(k);
        const double mean = sum(gi, ki) / reps;
        const double variance = (sum_squares(gi, ki) - reps * mean * mean) / (reps - 1.0);
        error_out[g * k_count + k] = std::sqrt(std::max(variance, 0.0));
      }
    }
  });

  for (const std::vector<double>& base : base_per_worker) {
    if (!base.empty()) explanation.base_values = base;
  }
  detail::finish_explanation(model_, rows, explanation);
  return explanation;
}

}  // namespace lepton
