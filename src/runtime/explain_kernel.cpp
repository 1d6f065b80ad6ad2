// Kernel SHAP (Lundberg and Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017):
// the weighted least-squares solve and the bootstrap. explain_kernel_sampling.cpp chooses the coalitions.

#include <cmath>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/explain_detail.hpp"

namespace lepton {

namespace {

/// Weighted least squares with sum(phi) = fx - base enforced by eliminating the last group:
/// phi_last = (fx - base) - sum_{j < last} phi_j. Returns phi [G x K].
Eigen::MatrixXd solve_kernel(const detail::CoalitionSample& sample, const double* values, const std::vector<double>& base,
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

    detail::CoalitionSample sample = detail::sample_coalitions(options_.sampler_, group_count, budget, random);

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
    std::vector<std::size_t> resampled;
    for (std::size_t rep = 0; rep < options_.bootstrap_; ++rep) {
      detail::resample_draws(sample, random, resampled);
      detail::weigh_draws(sample, resampled);
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
