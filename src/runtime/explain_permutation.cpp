// Permutation SHAP with antithetic permutations: each random order is walked forward and reversed.

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/explain_detail.hpp"

namespace lepton {

PermutationExplainer::PermutationExplainer(ExplainModel model, Background background, FeatureGroups groups,
                                           PermutationOptions options)
    : model_(std::move(model)), background_(std::move(background)), groups_(std::move(groups)), options_(options) {
  detail::check_setup(model_, background_, groups_, "PermutationExplainer");
  if (options_.permutations_ == 0) {
    throw InvalidArgument("PermutationExplainer: permutations = 0; use at least 1 antithetic pair (2 for an error)");
  }
}

Explanation PermutationExplainer::explain(const Matrix& rows) const { return explain(DoubleMatrix::from(rows)); }

Explanation PermutationExplainer::explain(const DoubleMatrix& rows) const {
  detail::check_rows(rows, model_.inputs(), "PermutationExplainer");
  const std::size_t group_count = groups_.size();
  const std::size_t k_count = model_.outputs();
  const std::size_t pairs = options_.permutations_;
  Explanation explanation = detail::make_explanation("permutation", rows.rows, groups_, k_count);
  if (rows.rows == 0) return explanation;

  const std::size_t threads = detail::resolve_threads(options_.threads_);
  std::vector<std::vector<double>> base_per_worker(threads);

  detail::for_each_row(rows.rows, threads, [&](std::size_t r, std::size_t worker) {
    detail::RowRandom random(options_.seed_, r);
    detail::CoalitionValues coalition(model_, background_, groups_, options_.path_);
    coalition.set_row(rows.row(r));

    // Walk w visits the prefixes of its order. Prefix 0 (empty) and prefix G (full) are the same for every
    // walk, so they sit once at the front of the mask list.
    std::vector<std::vector<std::size_t>> orders(2 * pairs);
    for (std::size_t p = 0; p < pairs; ++p) {
      std::vector<std::size_t>& forward = orders[2 * p];
      forward.resize(group_count);
      for (std::size_t g = 0; g < group_count; ++g) forward[g] = g;
      random.shuffle(forward);
      orders[2 * p + 1].assign(forward.rbegin(), forward.rend());
    }
    std::vector<std::uint64_t> masks = {0};
    masks.push_back(group_count == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << group_count) - 1);
    for (const std::vector<std::size_t>& order : orders) {
      std::uint64_t mask = 0;
      for (std::size_t step = 0; step + 1 < group_count; ++step) {
        mask |= std::uint64_t{1} << order[step];
        masks.push_back(mask);
      }
    }
    std::vector<double> values(masks.size() * k_count);
    coalition.evaluate(masks.data(), masks.size(), values.data());
    base_per_worker[worker].assign(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k_count));

    // Marginal contributions: pair_mean[p][g][k] averages the forward and the reversed walk.
    const std::size_t walk_stride = group_count - 1;
    std::vector<double> pair_mean(pairs * group_count * k_count, 0.0);
    auto value_at = [&](std::size_t walk, std::size_t prefix, std::size_t k) {
      if (prefix == 0) return values[k];
      if (prefix == group_count) return values[k_count + k];
      return values[(2 + walk * walk_stride + prefix - 1) * k_count + k];
    };
    for (std::size_t walk = 0; walk < orders.size(); ++walk) {
      for (std::size_t step = 0; step < group_count; ++step) {
        const std::size_t g = orders[walk][step];
        for (std::size_t k = 0; k < k_count; ++k) {
          const double contribution = value_at(walk, step + 1, k) - value_at(walk, step, k);
          pair_mean[((walk / 2) * group_count + g) * k_count + k] += 0.5 * contribution;
        }
      }
    }

    // phi is the mean over pairs; its standard error is the spread of pair means over sqrt(pairs).
    // One pair gives no spread, so the error is NaN then.
    double* phi_out = explanation.values.data() + r * group_count * k_count;
    double* error_out = explanation.standard_errors.data() + r * group_count * k_count;
    for (std::size_t i = 0; i < group_count * k_count; ++i) {
      double mean = 0.0;
      for (std::size_t p = 0; p < pairs; ++p) mean += pair_mean[p * group_count * k_count + i];
      mean /= static_cast<double>(pairs);
      double variance = 0.0;
      for (std::size_t p = 0; p < pairs; ++p) {
        const double deviation = pair_mean[p * group_count * k_count + i] - mean;
        variance += deviation * deviation;
      }
      phi_out[i] = mean;
      error_out[i] = pairs < 2 ? std::numeric_limits<double>::quiet_NaN()
                               : std::sqrt(variance / static_cast<double>(pairs - 1) / static_cast<double>(pairs));
    }
  });

  for (const std::vector<double>& base : base_per_worker) {
    if (!base.empty()) explanation.base_values = base;
  }
  detail::finish_explanation(model_, rows, explanation);
  return explanation;
}

}  // namespace lepton
