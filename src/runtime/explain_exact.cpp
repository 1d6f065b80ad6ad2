// Exact interventional Shapley values by enumerating every coalition of groups.

#include <numeric>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/explain_detail.hpp"

namespace lepton {

namespace {

// Above this many groups the 2^G coalition values of one row no longer fit comfortably in memory
// (2^24 x 8 bytes = 128 MiB per output and thread).
constexpr std::size_t kExactGroupLimit = 24;

// Coalitions evaluated per call, so that memory for hybrid rows stays bounded.
constexpr std::uint64_t kMaskBlock = 1 << 12;

// Shapley weight |S|! (G - |S| - 1)! / G! = 1 / (G * C(G - 1, |S|)), for |S| = 0 .. G - 1.
std::vector<double> shapley_weights(std::size_t groups) {
  std::vector<double> weights(groups);
  double binomial = 1.0;  // C(G - 1, s), exact in double for G <= 24.
  for (std::size_t s = 0; s < groups; ++s) {
    weights[s] = 1.0 / (static_cast<double>(groups) * binomial);
    binomial = binomial * static_cast<double>(groups - 1 - s) / static_cast<double>(s + 1);
  }
  return weights;
}

}  // namespace

ExactExplainer::ExactExplainer(ExplainModel model, Background background, FeatureGroups groups, ExactOptions options)
    : model_(std::move(model)), background_(std::move(background)), groups_(std::move(groups)), options_(options) {
  detail::check_setup(model_, background_, groups_, "ExactExplainer");
  if (options_.max_groups_ == 0 || options_.max_groups_ > kExactGroupLimit) {
    throw InvalidArgument(fmt::format("ExactExplainer: max_groups = {}; allowed range is 1 to {}",
                                      options_.max_groups_, kExactGroupLimit));
  }
  if (groups_.size() > options_.max_groups_) {
    throw InvalidArgument(fmt::format(
        "ExactExplainer: {} feature groups need 2^{} coalitions per row, above max_groups = {}; use KernelExplainer "
        "or PermutationExplainer, or merge columns into fewer groups",
        groups_.size(), groups_.size(), options_.max_groups_));
  }
}

Explanation ExactExplainer::explain(const Matrix& rows) const { return explain(DoubleMatrix::from(rows)); }

Explanation ExactExplainer::explain(const DoubleMatrix& rows) const {
  detail::check_rows(rows, model_.inputs(), "ExactExplainer");
  const std::size_t group_count = groups_.size();
  const std::size_t k_count = model_.outputs();
  const std::uint64_t coalitions = std::uint64_t{1} << group_count;
  const std::vector<double> weights = shapley_weights(group_count);
  Explanation explanation = detail::make_explanation("exact", rows.rows, groups_, k_count);
  if (rows.rows == 0) return explanation;

  const std::size_t threads = detail::resolve_threads(options_.threads_);
  std::vector<std::vector<double>> base_per_worker(threads);

  detail::for_each_row(rows.rows, threads, [&](std::size_t r, std::size_t worker) {
    detail::CoalitionValues coalition(model_, background_, groups_, options_.path_);
    coalition.set_row(rows.row(r));

    std::vector<double> value(coalitions * k_count);
    std::vector<std::uint64_t> masks(kMaskBlock);
    for (std::uint64_t start = 0; start < coalitions; start += kMaskBlock) {
      const std::uint64_t block = std::min(kMaskBlock, coalitions - start);
      std::iota(masks.begin(), masks.begin() + static_cast<std::ptrdiff_t>(block), start);
      coalition.evaluate(masks.data(), block, value.data() + start * k_count);
    }

    for (std::uint64_t mask = 0; mask < coalitions; ++mask) {
      const double weight = weights[static_cast<std::size_t>(__builtin_popcountll(mask))];
      for (std::size_t g = 0; g < group_count; ++g) {
        if ((mask >> g) & 1U) continue;
        const std::uint64_t with = mask | (std::uint64_t{1} << g);
        for (std::size_t k = 0; k < k_count; ++k) {
          explanation.values[(r * group_count + g) * k_count + k] +=
              weight * (value[with * k_count + k] - value[mask * k_count + k]);
        }
      }
    }

    // v(empty) does not depend on the row; every worker stores the one it computed.
    base_per_worker[worker].assign(value.begin(), value.begin() + static_cast<std::ptrdiff_t>(k_count));
  });

  for (const std::vector<double>& base : base_per_worker) {
    if (!base.empty()) explanation.base_values = base;
  }
  detail::finish_explanation(model_, rows, explanation);
  return explanation;
}

}  // namespace lepton
