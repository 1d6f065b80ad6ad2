// Composition of DP-SGD runs for federated clients, whose privacy spent adds up over the rounds.
#include <map>
#include <utility>

#include "lepton/distributed.hpp"

namespace lepton {

EpsilonAtOrder compose_private_steps(const std::vector<PrivateSteps>& runs, double delta) {
  // Runs with the same rate and multiplier are merged first, so that R runs of S steps produce the same
  // RDP values as one accountant that counts R * S steps, to the last bit.
  std::map<std::pair<double, double>, std::uint64_t> steps_by_mechanism;
  for (const PrivateSteps& run : runs) {
    if (run.steps > 0) {
      steps_by_mechanism[{run.sample_rate, run.noise_multiplier}] += run.steps;
    }
  }

  const std::vector<double>& orders = default_rdp_orders();
  std::vector<double> total(orders.size(), 0.0);
  for (const auto& [mechanism, steps] : steps_by_mechanism) {
    const std::vector<double> per_step = rdp_per_step(mechanism.first, mechanism.second, orders);
    for (std::size_t k = 0; k < orders.size(); ++k) {
      total[k] += per_step[k] * static_cast<double>(steps);
    }
  }

  // rdp_to_epsilon validates delta even when no step ran.
  const EpsilonAtOrder converted = rdp_to_epsilon(orders, total, delta);
  return steps_by_mechanism.empty() ? EpsilonAtOrder{} : converted;
}

}  // namespace lepton
