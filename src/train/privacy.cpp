// The RDP accountant of DP-SGD. Every formula mirrors Opacus 1.6.0 (opacus/accountants/analysis/rdp.py and
// opacus/accountants/utils.py) in float64, so that epsilons agree with Opacus to rounding.
#include "lepton/privacy.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "lepton/error.hpp"

namespace lepton {

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Opacus stops the fractional-order series once both new log-terms fall below this.
constexpr double kSeriesLogCutoff = -30.0;
// The series terms shrink like exp(-i^2 / (2 sigma^2)); this bounds the loop for pathological inputs.
constexpr int kMaxSeriesTerms = 1000000;
// Largest multiplier the solver tries; Opacus's get_noise_multiplier gives up at 2000, a weaker limit.
constexpr double kMaxNoiseMultiplier = 1e6;

double log_add(double log_x, double log_y) {
  const double low = std::min(log_x, log_y);
  const double high = std::max(log_x, log_y);
  if (low == -kInfinity) {
    return high;
  }
  return std::log1p(std::exp(low - high)) + high;
}

double log_subtract(double log_x, double log_y) {
  if (log_y == -kInfinity) {
    return log_x;
  }
  if (log_x <= log_y) {
    // Opacus raises here for x < y; the alternating series never reaches that for the orders it uses.
    return -kInfinity;
  }
  const double difference = std::expm1(log_x - log_y);
  if (std::isinf(difference)) {
    return log_x;
  }
  return std::log(difference) + log_y;
}

// log(erfc(x)). glibc's erfc keeps full relative precision down to its underflow near x = 26.5, and the
// asymptotic series takes over well before that, where its truncation error is below 1e-15.
double log_erfc(double x) {
  if (x < 20.0) {
    return std::log(std::erfc(x));
  }
  const double inverse_square = 1.0 / (x * x);
  const double series =
      1.0 + inverse_square * (-0.5 + inverse_square * (0.75 + inverse_square * (-1.875 + inverse_square * 6.5625)));
  return -x * x - std::log(x) - 0.5 * std::log(M_PI) + std::log(series);
}

double log_binomial(double n, double k) {
  return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0);
}

double log_a_integer_order(double q, double sigma, int alpha) {
  double log_a = -kInfinity;
  for (int i = 0; i <= alpha; ++i) {
    const double log_coefficient =
        log_binomial(alpha, i) + i * std::log(q) + (alpha - i) * std::log1p(-q);
    const double term = log_coefficient + (static_cast<double>(i) * i - i) / (2.0 * sigma * sigma);
    log_a = log_add(log_a, term);
  }
  return log_a;
}

double log_a_fractional_order(double q, double sigma, double alpha) {
  double log_a0 = -kInfinity;
  double log_a1 = -kInfinity;
  const double z0 = sigma * sigma * std::log(1.0 / q - 1.0) + 0.5;

  // The generalized binomial coefficient C(alpha, i), built by its recurrence; its sign alternates once
  // i exceeds alpha.
  double coefficient = 1.0;
  for (int i = 0; i < kMaxSeriesTerms; ++i) {
    const double j = alpha - i;
    const double log_coefficient = std::log(std::abs(coefficient));
    const double log_t0 = log_coefficient + i * std::log(q) + j * std::log1p(-q);
    const double log_t1 = log_coefficient + j * std::log(q) + i * std::log1p(-q);
    const double log_e0 = std::log(0.5) + log_erfc((i - z0) / (M_SQRT2 * sigma));
    const double log_e1 = std::log(0.5) + log_erfc((z0 - j) / (M_SQRT2 * sigma));
    const double log_s0 = log_t0 + (static_cast<double>(i) * i - i) / (2.0 * sigma * sigma) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2.0 * sigma * sigma) + log_e1;

    if (coefficient > 0) {
      log_a0 = log_add(log_a0, log_s0);
      log_a1 = log_add(log_a1, log_s1);
    } else {
      log_a0 = log_subtract(log_a0, log_s0);
      log_a1 = log_subtract(log_a1, log_s1);
    }

    if (std::max(log_s0, log_s1) < kSeriesLogCutoff) {
      break;
    }
    coefficient *= (alpha - i) / static_cast<double>(i + 1);
  }
  return log_add(log_a0, log_a1);
}

double rdp_one_order(double q, double sigma, double alpha) {
  if (q == 0.0) {
    return 0.0;
  }
  if (sigma == 0.0) {
    return kInfinity;
  }
  if (q == 1.0) {
    return alpha / (2.0 * sigma * sigma);
  }
  if (std::isinf(alpha)) {
    return kInfinity;
  }

  const bool integer_order = alpha == std::floor(alpha) && alpha < 1e6;
  const double log_a = integer_order ? log_a_integer_order(q, sigma, static_cast<int>(alpha))
                                     : log_a_fractional_order(q, sigma, alpha);
  return log_a / (alpha - 1.0);
}

void check_rate_and_multiplier(const char* where, double sample_rate, double noise_multiplier) {
  if (!(sample_rate >= 0.0 && sample_rate <= 1.0)) {
    throw InvalidArgument(fmt::format("{}: sample_rate is {}, expected a probability in [0, 1] (expected batch "
                                      "size / training rows)",
                                      where, sample_rate));
  }
  if (!(noise_multiplier >= 0.0) || std::isinf(noise_multiplier)) {
    throw InvalidArgument(fmt::format("{}: noise_multiplier is {}, expected a finite value >= 0", where,
                                      noise_multiplier));
  }
}

void check_delta(const char* where, double delta) {
  if (!(delta > 0.0 && delta < 1.0)) {
    throw InvalidArgument(fmt::format("{}: delta is {}, expected a value in (0, 1), typically below 1 / rows",
                                      where, delta));
  }
}

std::vector<double> build_default_orders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) {
    orders.push_back(1.0 + x / 10.0);
  }
  for (int order = 12; order < 64; ++order) {
    orders.push_back(order);
  }
  return orders;
}

}  // namespace

const std::vector<double>& default_rdp_orders() {
  static const std::vector<double> orders = build_default_orders();
  return orders;
}

std::vector<double> rdp_per_step(double sample_rate, double noise_multiplier, const std::vector<double>& orders) {
  check_rate_and_multiplier("rdp_per_step", sample_rate, noise_multiplier);

  std::vector<double> rdp;
  rdp.reserve(orders.size());
  for (std::size_t k = 0; k < orders.size(); ++k) {
    if (!(orders[k] > 1.0)) {
      throw InvalidArgument(fmt::format("rdp_per_step: orders[{}] is {}, expected an RDP order > 1", k, orders[k]));
    }
    rdp.push_back(rdp_one_order(sample_rate, noise_multiplier, orders[k]));
  }
  return rdp;
}

EpsilonAtOrder rdp_to_epsilon(const std::vector<double>& orders, const std::vector<double>& rdp, double delta) {
  check_delta("rdp_to_epsilon", delta);
  if (orders.size() != rdp.size() || orders.empty()) {
    throw InvalidArgument(fmt::format("rdp_to_epsilon: {} orders and {} RDP values, expected the same non-zero "
                                      "count",
                                      orders.size(), rdp.size()));
  }

  EpsilonAtOrder best{kInfinity, orders.front()};
  bool found = false;
  for (std::size_t k = 0; k < orders.size(); ++k) {
    const double alpha = orders[k];
    const double epsilon = rdp[k] - (std::log(delta) + std::log(alpha)) / (alpha - 1.0) +
                           std::log((alpha - 1.0) / alpha);
    // Like numpy's nanargmin: NaN (from inf - inf) is skipped and the first minimum wins.
    if (std::isnan(epsilon)) {
      continue;
    }
    if (!found || epsilon < best.epsilon) {
      best = {epsilon, alpha};
      found = true;
    }
  }
  return best;
}

RdpAccountant::RdpAccountant(double sample_rate, double noise_multiplier, std::vector<double> orders)
    : sample_rate_(sample_rate), noise_multiplier_(noise_multiplier), orders_(std::move(orders)) {
  per_step_ = rdp_per_step(sample_rate_, noise_multiplier_, orders_);
}

EpsilonAtOrder RdpAccountant::epsilon_at_order(std::uint64_t steps, double delta) const {
  std::vector<double> total(per_step_.size());
  for (std::size_t k = 0; k < per_step_.size(); ++k) {
    // 0 steps of an infinite-RDP mechanism spend nothing; IEEE would give NaN.
    total[k] = steps == 0 ? 0.0 : per_step_[k] * static_cast<double>(steps);
  }
  return rdp_to_epsilon(orders_, total, delta);
}

double RdpAccountant::epsilon(std::uint64_t steps, double delta) const {
  return epsilon_at_order(steps, delta).epsilon;
}

std::uint64_t RdpAccountant::max_steps_within(double target_epsilon, double delta, std::uint64_t max_steps) const {
  if (epsilon(max_steps, delta) <= target_epsilon) {
    return max_steps;
  }

  // Epsilon grows with the step count, so bisect for the last count inside the budget.
  std::uint64_t inside = 0;
  std::uint64_t outside = max_steps;
  while (outside - inside > 1) {
    const std::uint64_t middle = inside + (outside - inside) / 2;
    if (epsilon(middle, delta) <= target_epsilon) {
      inside = middle;
    } else {
      outside = middle;
    }
  }
  return inside;
}

double solve_noise_multiplier(double target_epsilon, double delta, double sample_rate, std::uint64_t steps,
                              double relative_tolerance) {
  if (!(target_epsilon > 0.0) || std::isinf(target_epsilon)) {
    throw InvalidArgument(fmt::format("solve_noise_multiplier: target_epsilon is {}, expected a finite value > 0",
                                      target_epsilon));
  }
  check_delta("solve_noise_multiplier", delta);
  check_rate_and_multiplier("solve_noise_multiplier", sample_rate, 0.0);
  if (!(relative_tolerance > 0.0 && relative_tolerance < 1.0)) {
    throw InvalidArgument(fmt::format("solve_noise_multiplier: relative_tolerance is {}, expected a value in (0, 1)",
                                      relative_tolerance));
  }

  const auto epsilon_at = [&](double sigma) { return RdpAccountant(sample_rate, sigma).epsilon(steps, delta); };

  // Double the upper bracket until it is inside the budget, as Opacus's get_noise_multiplier does.
  double sigma_low = 0.0;
  double sigma_high = 1.0;
  double epsilon_high = epsilon_at(sigma_high);
  while (epsilon_high > target_epsilon) {
    sigma_low = sigma_high;
    sigma_high *= 2.0;
    if (sigma_high > kMaxNoiseMultiplier) {
      throw InvalidArgument(fmt::format(
          "solve_noise_multiplier: no noise multiplier up to {:g} reaches epsilon {:g} at delta {:g} after {} "
          "steps at sampling rate {:g}; raise epsilon or delta, or train fewer steps",
          kMaxNoiseMultiplier, target_epsilon, delta, steps, sample_rate));
    }
    epsilon_high = epsilon_at(sigma_high);
  }

  // Bisect, keeping sigma_high inside the budget, until its epsilon is within the tolerance of the target.
  while (epsilon_high < target_epsilon * (1.0 - relative_tolerance) && sigma_high - sigma_low > 1e-12) {
    const double sigma = 0.5 * (sigma_low + sigma_high);
    const double epsilon = epsilon_at(sigma);
    if (epsilon <= target_epsilon) {
      sigma_high = sigma;
      epsilon_high = epsilon;
    } else {
      sigma_low = sigma;
    }
  }
  return sigma_high;
}

nlohmann::json PrivacySpent::to_json() const {
  return {{"mechanism", "DP-SGD, Poisson-subsampled Gaussian"},
          {"accountant", "rdp"},
          {"conversion", "Balle et al. 2020, Theorem 21"},
          {"epsilon", epsilon},
          {"target_epsilon", target_epsilon},
          {"delta", delta},
          {"optimal_order", optimal_order},
          {"noise_multiplier", noise_multiplier},
          {"max_grad_norm", max_grad_norm},
          {"sample_rate", sample_rate},
          {"expected_batch_size", expected_batch_size},
          {"steps", steps},
          {"budget_exhausted", budget_exhausted}};
}

}  // namespace lepton
