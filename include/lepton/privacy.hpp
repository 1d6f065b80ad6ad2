#pragma once
/// Privacy accounting for DP-SGD: the Rényi differential privacy (RDP) of the Poisson-subsampled Gaussian
/// mechanism, its conversion to (epsilon, delta), and the noise multiplier that meets a target budget.
///
/// The numbers follow Opacus 1.6.0's RDP accountant (opacus/accountants/analysis/rdp.py): the same default
/// order grid, the same series for fractional orders (Mironov, Talwar and Zhang 2019, arXiv:1908.10530,
/// section 3.3) and the conversion of Balle, Barthe, Gaboardi, Hsu and Sato 2020 (arXiv:1905.09982,
/// Theorem 21). The tests check the results against values that Opacus computed.

#include <cstddef>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace lepton {

/// Opacus's RDPAccountant.DEFAULT_ALPHAS: 1.1, 1.2, ..., 10.9 and then 12, 13, ..., 63 (151 orders).
const std::vector<double>& default_rdp_orders();

/// RDP of one step of the Poisson-subsampled Gaussian mechanism at each order, for sampling rate
/// `sample_rate` in [0, 1] and noise multiplier `noise_multiplier` >= 0 (noise standard deviation divided
/// by the L2 sensitivity). Returns 0 for rate 0 and +infinity for multiplier 0. Throws InvalidArgument for
/// values out of range or an order <= 1.
std::vector<double> rdp_per_step(double sample_rate, double noise_multiplier,
                                 const std::vector<double>& orders = default_rdp_orders());

/// Epsilon and the order that attains it, from RDP values over `orders`.
struct EpsilonAtOrder {
  double epsilon = 0;
  double order = 0;
};

/// Converts RDP to (epsilon, delta) with Balle et al. 2020, Theorem 21:
/// epsilon = min over alpha of rdp(alpha) - (ln delta + ln alpha) / (alpha - 1) + ln((alpha - 1) / alpha).
/// Orders whose value is not a number are skipped. Throws InvalidArgument for delta outside (0, 1) or
/// vectors of different length.
EpsilonAtOrder rdp_to_epsilon(const std::vector<double>& orders, const std::vector<double>& rdp, double delta);

/// Counts DP-SGD steps and converts them to (epsilon, delta). One accountant covers one training run with a
/// fixed sampling rate and noise multiplier, which is what the trainer runs.
class RdpAccountant {
 public:
  /// Throws InvalidArgument for a rate outside [0, 1] or a negative multiplier.
  RdpAccountant(double sample_rate, double noise_multiplier,
                std::vector<double> orders = default_rdp_orders());

  /// Epsilon after `steps` steps at `delta`; +infinity when the multiplier is 0 and steps > 0.
  double epsilon(std::uint64_t steps, double delta) const;
  EpsilonAtOrder epsilon_at_order(std::uint64_t steps, double delta) const;

  /// The largest step count whose epsilon stays at or below `target_epsilon`, capped at `max_steps`.
  std::uint64_t max_steps_within(double target_epsilon, double delta, std::uint64_t max_steps) const;

  double sample_rate() const noexcept { return sample_rate_; }
  double noise_multiplier() const noexcept { return noise_multiplier_; }

 private:
  double sample_rate_;
  double noise_multiplier_;
  std::vector<double> orders_;
  std::vector<double> per_step_;
};

/// The smallest noise multiplier (to within `relative_tolerance` of the budget) whose epsilon after
/// `steps` steps at `sample_rate` is at most `target_epsilon`. The returned multiplier always stays within
/// the budget, and its epsilon is at least target_epsilon * (1 - relative_tolerance). Throws
/// InvalidArgument for a target that no multiplier up to 10^6 reaches, or arguments out of range.
double solve_noise_multiplier(double target_epsilon, double delta, double sample_rate, std::uint64_t steps,
                              double relative_tolerance = 1e-4);

/// Privacy budget spent by a DP-SGD run, as stored in the report and in the artifact's extensions["privacy"].
struct PrivacySpent {
  double epsilon = 0;           ///< Spent after `steps` steps; at most target_epsilon.
  double target_epsilon = 0;
  double delta = 0;
  double optimal_order = 0;     ///< RDP order that gave `epsilon`.
  double noise_multiplier = 0;  ///< Noise standard deviation in units of max_grad_norm.
  double max_grad_norm = 0;     ///< Per-sample clipping norm C.
  double sample_rate = 0;       ///< Poisson sampling probability q = expected batch size / training rows.
  std::size_t expected_batch_size = 0;
  std::uint64_t steps = 0;      ///< Noisy gradient steps taken, including steps on empty batches.
  bool budget_exhausted = false;  ///< Training stopped because one more step would exceed target_epsilon.

  nlohmann::json to_json() const;
};

}  // namespace lepton
