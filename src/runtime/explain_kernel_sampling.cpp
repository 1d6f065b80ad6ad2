// Coalition samplers of Kernel SHAP: shap 0.49.1's KernelExplainer scheme and a stratified scheme that draws
// a fixed number of complementary pairs per coalition size without replacement.

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/explain_detail.hpp"

namespace lepton {

std::string to_string(KernelSampler sampler) {
  switch (sampler) {
    case KernelSampler::Shap: return "shap";
    case KernelSampler::Stratified: return "stratified";
  }
  return "unknown";
}

namespace detail {

namespace {

double binomial(std::size_t n, std::size_t k) {
  double result = 1.0;
  for (std::size_t i = 1; i <= k; ++i) result = result * static_cast<double>(n - k + i) / static_cast<double>(i);
  return result;
}

std::uint64_t all_groups(std::size_t groups) {
  return groups == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << groups) - 1;
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

// A uniform random subset of {0..groups-1} with `size` members, by a partial Fisher-Yates shuffle.
std::uint64_t random_subset(std::size_t groups, std::size_t size, RowRandom& random, std::vector<std::size_t>& order) {
  order.resize(groups);
  for (std::size_t g = 0; g < groups; ++g) order[g] = g;
  std::uint64_t mask = 0;
  for (std::size_t i = 0; i < size; ++i) {
    std::swap(order[i], order[i + random.below(groups - i)]);
    mask |= std::uint64_t{1} << order[i];
  }
  return mask;
}

// ---- shap 0.49.1's scheme -------------------------------------------------------------------------------

// Sizes 1 .. ceil((G-1)/2) with their complements; the Shapley kernel puts weight (G-1) / (s (G-s)) on each size.
// Whole sizes are enumerated from the outside in while the budget covers them, then the rest is sampled.
CoalitionSample sample_shap(std::size_t groups, std::size_t budget, RowRandom& random) {
  const std::size_t sizes = (groups - 1 + 1) / 2;     // ceil((G - 1) / 2)
  const std::size_t paired_sizes = (groups - 1) / 2;  // floor((G - 1) / 2)
  const std::uint64_t full = all_groups(groups);

  std::vector<double> size_weight(sizes);
  for (std::size_t s = 1; s <= sizes; ++s) {
    size_weight[s - 1] = static_cast<double>(groups - 1) / static_cast<double>(s * (groups - s));
    if (s <= paired_sizes) size_weight[s - 1] *= 2.0;
  }
  double total = 0.0;
  for (double w : size_weight) total += w;
  for (double& w : size_weight) w /= total;

  CoalitionSample sample;
  sample.sampler = KernelSampler::Shap;
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
  std::vector<std::size_t> order;
  std::size_t left = static_cast<std::size_t>(std::max(samples_left, 0.0));
  const std::size_t max_draws = 4 * left;
  for (std::size_t attempt = 0; attempt < max_draws && left > 0; ++attempt) {
    double target = random.unit() * draw_total;
    std::size_t index = 0;
    while (index + 1 < draw_weight.size() && target >= draw_weight[index]) target -= draw_weight[index++];
    const std::size_t size = index + full_sizes + 1;
    const std::uint64_t mask = random_subset(groups, size, random, order);

    CoalitionSample::Draw draw{kNoSample, kNoSample, 0};
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
void weigh_shap_draws(CoalitionSample& sample, const std::vector<std::size_t>& draw_indices) {
  double hits = 0.0;
  for (std::size_t d : draw_indices) {
    const CoalitionSample::Draw& draw = sample.draws[d];
    sample.weights[draw.sample] += 1.0;
    hits += 1.0;
    if (draw.complement != kNoSample) {
      sample.weights[draw.complement] += 1.0;
      hits += 1.0;
    }
  }
  if (hits == 0.0) return;
  for (std::size_t i = sample.fixed; i < sample.weights.size(); ++i) sample.weights[i] *= sample.random_weight / hits;
}

// ---- Stratified scheme ----------------------------------------------------------------------------------

// Stratum s (1 <= s <= G/2) contains the complementary pairs {S, ~S} with |S| = s. Each pair is two samples of
// the budget. Below G/2 a pair has one member of size s and one of size G - s. At s = G/2 both members have
// size G/2, and the pair is counted once.
struct Stratum {
  std::size_t size = 0;
  double pairs = 0.0;          // Pairs in the stratum, a double as binomial() returns it.
  double kernel_weight = 0.0;  // Total Shapley kernel weight of the size-s coalitions, (G-1) / (s (G-s)).
  std::size_t chosen = 0;      // Pairs to draw; equal to `pairs` when the stratum is enumerated.
  bool enumerated = false;
};

// Splits `pairs_budget` pairs over the strata in proportion to their kernel weight, the allocation that
// shap's scheme has in expectation. A stratum whose share covers all its pairs is enumerated and its surplus
// goes back to the others, so the outermost sizes are enumerated first, as in shap's scheme.
void allocate_pairs(std::vector<Stratum>& strata, std::size_t pairs_budget) {
  double left = static_cast<double>(pairs_budget);
  bool changed = true;
  while (changed) {
    changed = false;
    double share_total = 0.0;
    for (const Stratum& stratum : strata) {
      if (!stratum.enumerated) share_total += stratum.kernel_weight;
    }
    for (Stratum& stratum : strata) {
      if (stratum.enumerated) continue;
      const double share = left * stratum.kernel_weight / share_total;
      if (share >= stratum.pairs) {
        stratum.enumerated = true;
        stratum.chosen = static_cast<std::size_t>(stratum.pairs);
        left -= stratum.pairs;
        changed = true;
        break;
      }
    }
  }

  // Largest remainder rounding of the sampled strata's shares.
  double share_total = 0.0;
  for (const Stratum& stratum : strata) {
    if (!stratum.enumerated) share_total += stratum.kernel_weight;
  }
  std::vector<std::pair<double, std::size_t>> remainders;
  std::size_t assigned = 0;
  for (std::size_t i = 0; i < strata.size(); ++i) {
    Stratum& stratum = strata[i];
    if (stratum.enumerated) continue;
    const double share = left * stratum.kernel_weight / share_total;
    stratum.chosen = static_cast<std::size_t>(std::floor(share));
    assigned += stratum.chosen;
    remainders.emplace_back(share - std::floor(share), i);
  }
  // A stratum without draws would drop its kernel weight from the regression, so every sampled stratum gets
  // one pair first when the budget allows.
  const std::size_t total_left = static_cast<std::size_t>(std::max(left, 0.0));
  for (auto& [remainder, index] : remainders) {
    if (strata[index].chosen == 0 && assigned < total_left) {
      strata[index].chosen = 1;
      ++assigned;
      remainder = -1.0;
    }
  }
  std::sort(remainders.begin(), remainders.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (std::size_t i = 0; i < remainders.size() && assigned < total_left; ++i) {
    Stratum& stratum = strata[remainders[i].second];
    if (static_cast<double>(stratum.chosen) + 1.0 <= stratum.pairs) {
      ++stratum.chosen;
      ++assigned;
    }
  }
}

// The member of a middle-stratum pair that leaves out the last group, so that both members map to one key.
std::uint64_t pair_key(std::uint64_t mask, std::size_t groups, std::size_t size) {
  if (2 * size != groups) return mask;
  const std::uint64_t last = std::uint64_t{1} << (groups - 1);
  return (mask & last) != 0 ? ~mask & all_groups(groups) : mask;
}

// Draws `stratum.chosen` distinct pairs of the stratum uniformly and returns their keys (the member of size s).
std::vector<std::uint64_t> draw_pairs(const Stratum& stratum, std::size_t groups, RowRandom& random) {
  std::vector<std::uint64_t> keys;
  keys.reserve(stratum.chosen);
  const bool middle = 2 * stratum.size == groups;

  // Dense strata are listed and shuffled; sparse ones are drawn with rejection of repeats, which then
  // rejects fewer than one draw in four.
  if (static_cast<double>(stratum.chosen) * 4.0 >= stratum.pairs) {
    std::vector<std::uint64_t> all;
    all.reserve(static_cast<std::size_t>(stratum.pairs));
    const std::size_t universe = middle ? groups - 1 : groups;
    for_each_subset(universe, stratum.size, [&](std::uint64_t mask) { all.push_back(mask); });
    for (std::size_t i = 0; i < stratum.chosen; ++i) {
      std::swap(all[i], all[i + random.below(all.size() - i)]);
      keys.push_back(all[i]);
    }
    return keys;
  }

  std::unordered_set<std::uint64_t> seen;
  std::vector<std::size_t> order;
  while (keys.size() < stratum.chosen) {
    const std::uint64_t key = pair_key(random_subset(groups, stratum.size, random, order), groups, stratum.size);
    if (seen.insert(key).second) keys.push_back(key);
  }
  return keys;
}

CoalitionSample sample_stratified(std::size_t groups, std::size_t budget, RowRandom& random) {
  const std::uint64_t full = all_groups(groups);
  std::vector<Stratum> strata(groups / 2);
  for (std::size_t s = 1; s <= groups / 2; ++s) {
    Stratum& stratum = strata[s - 1];
    stratum.size = s;
    stratum.pairs = 2 * s == groups ? binomial(groups, s) / 2.0 : binomial(groups, s);
    stratum.kernel_weight = static_cast<double>(groups - 1) / static_cast<double>(s * (groups - s));
  }
  allocate_pairs(strata, budget / 2);

  CoalitionSample sample;
  sample.sampler = KernelSampler::Stratified;
  for (const Stratum& stratum : strata) {
    if (!stratum.enumerated) continue;
    const double weight = stratum.kernel_weight / binomial(groups, stratum.size);
    const bool middle = 2 * stratum.size == groups;
    for_each_subset(middle ? groups - 1 : groups, stratum.size, [&](std::uint64_t mask) {
      sample.masks.push_back(mask);
      sample.weights.push_back(weight);
      sample.masks.push_back(~mask & full);
      sample.weights.push_back(weight);
    });
  }
  sample.fixed = sample.masks.size();

  for (const Stratum& stratum : strata) {
    if (stratum.enumerated || stratum.chosen == 0) continue;
    // The stratum's kernel_weight is shared by the chosen coalitions of size s. A middle-stratum pair
    // puts both members at size s, so there are twice as many coalitions of that size to share it.
    const double coalitions_of_size = static_cast<double>(stratum.chosen) * (2 * stratum.size == groups ? 2.0 : 1.0);
    const std::size_t index = sample.stratum_hit_weight.size();
    sample.stratum_hit_weight.push_back(stratum.kernel_weight / coalitions_of_size);
    sample.stratum_start.push_back(sample.draws.size());
    for (std::uint64_t key : draw_pairs(stratum, groups, random)) {
      sample.draws.push_back({sample.masks.size(), sample.masks.size() + 1, index});
      sample.masks.push_back(key);
      sample.masks.push_back(~key & full);
      sample.weights.push_back(0.0);
      sample.weights.push_back(0.0);
    }
  }
  sample.stratum_start.push_back(sample.draws.size());
  return sample;
}

// Horvitz-Thompson weights: each draw of a stratum adds kernel weight / chosen pairs to both its coalitions,
// so that the stratum's total weight is exact for the original draws and unbiased for a resample.
void weigh_stratified_draws(CoalitionSample& sample, const std::vector<std::size_t>& draw_indices) {
  for (std::size_t d : draw_indices) {
    const CoalitionSample::Draw& draw = sample.draws[d];
    const double weight = sample.stratum_hit_weight[draw.stratum];
    sample.weights[draw.sample] += weight;
    sample.weights[draw.complement] += weight;
  }
}

}  // namespace

CoalitionSample sample_coalitions(KernelSampler sampler, std::size_t groups, std::size_t budget, RowRandom& random) {
  if (groups < 2 || groups > kMaxMaskGroups) {
    throw InternalError(fmt::format("sample_coalitions: {} groups, expected 2 to {}", groups, kMaxMaskGroups));
  }
  CoalitionSample sample =
      sampler == KernelSampler::Shap ? sample_shap(groups, budget, random) : sample_stratified(groups, budget, random);

  std::vector<std::size_t> all_draws(sample.draws.size());
  for (std::size_t d = 0; d < all_draws.size(); ++d) all_draws[d] = d;
  weigh_draws(sample, all_draws);
  return sample;
}

void weigh_draws(CoalitionSample& sample, const std::vector<std::size_t>& draw_indices) {
  std::fill(sample.weights.begin() + static_cast<std::ptrdiff_t>(sample.fixed), sample.weights.end(), 0.0);
  if (sample.sampler == KernelSampler::Shap) {
    weigh_shap_draws(sample, draw_indices);
  } else {
    weigh_stratified_draws(sample, draw_indices);
  }
}

void resample_draws(const CoalitionSample& sample, RowRandom& random, std::vector<std::size_t>& draw_indices) {
  draw_indices.resize(sample.draws.size());
  if (sample.sampler == KernelSampler::Shap) {
    for (std::size_t& d : draw_indices) d = random.below(sample.draws.size());
    return;
  }
  // NOTE: the draws were made without replacement, and this resampling applies no finite-population
  // correction, so a stratum drawn almost whole overstates its spread. A stratum with one draw adds none.
  for (std::size_t stratum = 0; stratum + 1 < sample.stratum_start.size(); ++stratum) {
    const std::size_t start = sample.stratum_start[stratum];
    const std::size_t count = sample.stratum_start[stratum + 1] - start;
    for (std::size_t i = 0; i < count; ++i) draw_indices[start + i] = start + random.below(count);
  }
}

}  // namespace detail

}  // namespace lepton
