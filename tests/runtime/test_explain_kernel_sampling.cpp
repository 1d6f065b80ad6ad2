// Kernel SHAP's coalition samplers: the structure of a sample (unique masks, complements, budget, kernel weight
// per size) for both samplers, and the stratified sampler's lower error against exact SHAP.

#include <catch2/catch.hpp>

#include <cmath>
#include <unordered_set>

#include "lepton/explain.hpp"
#include "runtime/explain_detail.hpp"
#include "support/random_mlp.hpp"

using namespace lepton;
using test_support::random_mlp;
using test_support::random_rows;

namespace {

constexpr KernelSampler kSamplers[] = {KernelSampler::Stratified, KernelSampler::Shap};

std::uint64_t all_groups(std::size_t groups) {
  return groups == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << groups) - 1;
}

// Total Shapley kernel weight of the coalitions of each size, relative to size 1: (G-1) / (s (G-s)) over 1.
std::vector<double> weight_per_size(const detail::CoalitionSample& sample, std::size_t groups) {
  std::vector<double> totals(groups + 1, 0.0);
  for (std::size_t i = 0; i < sample.masks.size(); ++i) {
    totals[static_cast<std::size_t>(__builtin_popcountll(sample.masks[i]))] += sample.weights[i];
  }
  const double unit = totals[1];
  for (double& total : totals) total /= unit;
  return totals;
}

double mean_abs_error(const Explanation& estimate, const Explanation& exact) {
  double total = 0.0;
  for (std::size_t i = 0; i < exact.values.size(); ++i) total += std::abs(estimate.values[i] - exact.values[i]);
  return total / static_cast<double>(exact.values.size());
}

}  // namespace

TEST_CASE("kernel samplers have names", "[explain][kernel]") {
  CHECK(to_string(KernelSampler::Shap) == "shap");
  CHECK(to_string(KernelSampler::Stratified) == "stratified");
  CHECK(KernelOptions().sampler_ == KernelSampler::Stratified);
}

TEST_CASE("kernel sample has unique masks within budget", "[explain][kernel]") {
  for (KernelSampler sampler : kSamplers) {
    for (std::size_t groups : {3, 5, 12, 30, 64}) {
      for (std::size_t budget : {6, 31, 100, 2048}) {
        INFO("sampler " << to_string(sampler) << " groups " << groups << " budget " << budget);
        const std::size_t capped = groups < 63 ? std::min<std::size_t>(budget, (std::size_t{1} << groups) - 2) : budget;
        detail::RowRandom random(7, 0);
        const detail::CoalitionSample sample = detail::sample_coalitions(sampler, groups, capped, random);

        CHECK(sample.masks.size() <= capped);
        CHECK(sample.masks.size() == sample.weights.size());
        CHECK(sample.fixed <= sample.masks.size());
        std::unordered_set<std::uint64_t> seen(sample.masks.begin(), sample.masks.end());
        CHECK(seen.size() == sample.masks.size());
        CHECK(seen.count(0) == 0);
        CHECK(seen.count(all_groups(groups)) == 0);
        for (double weight : sample.weights) CHECK(weight >= 0.0);
      }
    }
  }
}

TEST_CASE("stratified sample uses the whole even budget in pairs", "[explain][kernel]") {
  for (std::size_t groups : {4, 7, 12, 30, 64}) {
    for (std::size_t budget : {10, 31, 100, 2048}) {
      const std::size_t capped = groups < 63 ? std::min<std::size_t>(budget, (std::size_t{1} << groups) - 2) : budget;
      INFO("groups " << groups << " budget " << capped);
      detail::RowRandom random(3, 1);
      const detail::CoalitionSample sample =
          detail::sample_coalitions(KernelSampler::Stratified, groups, capped, random);

      CHECK(sample.masks.size() == capped / 2 * 2);
      // Masks come in complementary pairs: 2i and 2i + 1.
      bool paired = true;
      for (std::size_t i = 0; i + 1 < sample.masks.size(); i += 2) {
        paired = paired && sample.masks[i + 1] == (~sample.masks[i] & all_groups(groups));
      }
      CHECK(paired);
    }
  }
}

TEST_CASE("stratified sample keeps the kernel weight of every size", "[explain][kernel]") {
  // The enumerated sizes carry exact weights and every sampled size shares its exact total over its draws,
  // so the weight per size is the Shapley kernel's (G-1) / (s (G-s)), relative to size 1.
  for (std::size_t groups : {5, 12, 30}) {
    for (std::size_t budget : {40, 300, 2048}) {
      INFO("groups " << groups << " budget " << budget);
      detail::RowRandom random(11, 2);
      detail::CoalitionSample sample = detail::sample_coalitions(KernelSampler::Stratified, groups, budget, random);
      const std::vector<double> totals = weight_per_size(sample, groups);
      for (std::size_t s = 1; s < groups; ++s) {
        INFO("size " << s);
        const double expected = static_cast<double>(groups - 1) / static_cast<double>(s * (groups - s));
        CHECK(totals[s] == Approx(expected).epsilon(1e-12));
      }

      // A bootstrap replicate resamples within each stratum, so it keeps the same totals.
      std::vector<std::size_t> resampled;
      detail::resample_draws(sample, random, resampled);
      detail::weigh_draws(sample, resampled);
      const std::vector<double> again = weight_per_size(sample, groups);
      for (std::size_t s = 1; s < groups; ++s) {
        INFO("bootstrap size " << s);
        CHECK(again[s] == Approx(totals[s]).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("kernel sample enumerates everything at full budget", "[explain][kernel]") {
  for (KernelSampler sampler : kSamplers) {
    for (std::size_t groups : {2, 3, 6, 9}) {
      INFO("sampler " << to_string(sampler) << " groups " << groups);
      const std::size_t all = (std::size_t{1} << groups) - 2;
      detail::RowRandom random(5, 0);
      const detail::CoalitionSample sample = detail::sample_coalitions(sampler, groups, all, random);
      CHECK(sample.masks.size() == all);
      CHECK(sample.fixed == all);
      CHECK(sample.draws.empty());
    }
  }
}

TEST_CASE("stratified sampler beats shap scheme on average", "[explain][kernel]") {
  // 12 groups, so that exact SHAP (4094 coalitions) is affordable. Mean |error| against exact over 20 seeds x
  // 8 rows x 12 groups, measured with this setting on the fast path: budget 256: stratified 1.55e-3, shap 2.16e-3
  // (ratio 0.72); budget 1024: stratified 5.16e-4, shap 7.93e-4 (ratio 0.65). The margin 0.85 leaves room for
  // other seeds, yet fails if the stratified weights lose their advantage.
  const std::size_t width = 12;
  const ExplainModel model =
      ExplainModel::from_mlp(random_mlp({width, 64, 32, 1}, Activation::Relu, 7), OutputLink::Logistic);
  const Background background = Background::uniform(random_rows(50, width, 1));
  const FeatureGroups groups = FeatureGroups::per_column(width);
  const DoubleMatrix rows = random_rows(8, width, 2);
  const Explanation exact =
      ExactExplainer(model, background, groups, ExactOptions().threads(2).path(CoalitionPath::Fast)).explain(rows);

  for (std::size_t budget : {256, 1024}) {
    double error[2] = {0.0, 0.0};
    for (KernelSampler sampler : kSamplers) {
      for (std::uint64_t seed = 0; seed < 20; ++seed) {
        const KernelOptions options =
            KernelOptions().samples(budget).seed(seed).threads(2).bootstrap(0).path(CoalitionPath::Fast).sampler(sampler);
        error[sampler == KernelSampler::Shap ? 1 : 0] +=
            mean_abs_error(KernelExplainer(model, background, groups, options).explain(rows), exact) / 20.0;
      }
    }
    INFO("budget " << budget << ": stratified " << error[0] << ", shap " << error[1]);
    CHECK(error[0] < 0.85 * error[1]);
  }
}
