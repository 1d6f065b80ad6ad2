// The RDP accountant against Opacus 1.6.0's values, stored with their settings in fixtures/dp/epsilons.json
// (produced with opacus.accountants.RDPAccountant, default alphas, delta 1e-5).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "lepton/error.hpp"
#include "lepton/privacy.hpp"

namespace {

// Opacus and this accountant run the same float64 algorithm; the issue allows 1e-6 relative.
constexpr double kRelativeTolerance = 1e-6;

nlohmann::json load_fixture() {
  std::ifstream in(LEPTON_SHARED_DIR "/fixtures/dp/epsilons.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

double relative_error(double value, double reference) { return std::abs(value - reference) / std::abs(reference); }

}  // namespace

TEST_CASE("default orders match Opacus's grid", "[privacy][accountant]") {
  const nlohmann::json fixture = load_fixture();
  const auto& expected = fixture["alphas"]["values"];
  const std::vector<double>& orders = lepton::default_rdp_orders();

  REQUIRE(orders.size() == expected.size());
  for (std::size_t k = 0; k < orders.size(); ++k) {
    INFO("order index " << k);
    CHECK(orders[k] == Approx(expected[k].get<double>()).epsilon(1e-15));
  }
}

TEST_CASE("epsilon matches Opacus for every setting", "[privacy][accountant]") {
  const nlohmann::json fixture = load_fixture();

  for (const nlohmann::json& setting : fixture["settings"]) {
    const double q = setting["sample_rate_q"].get<double>();
    const double sigma = setting["noise_multiplier_sigma"].get<double>();
    const double delta = setting["delta"].get<double>();
    const auto steps = setting["steps"].get<std::uint64_t>();
    INFO("setting " << setting["id"].get<std::string>());

    const lepton::EpsilonAtOrder result = lepton::RdpAccountant(q, sigma).epsilon_at_order(steps, delta);
    CHECK(relative_error(result.epsilon, setting["epsilon_rdp"].get<double>()) < kRelativeTolerance);
    CHECK(result.order == Approx(setting["rdp_optimal_alpha"].get<double>()));
  }
}

TEST_CASE("epsilon matches Opacus for the step-count variants", "[privacy][accountant]") {
  const nlohmann::json setting = load_fixture()["settings"][0];
  const double sigma = setting["noise_multiplier_sigma"].get<double>();

  // steps_per_epoch = ceil(1 / q), the rule the trainer uses (ceil(rows / expected batch)).
  const nlohmann::json& ceil_rule = setting["alt_if_steps_per_epoch_is_ceil(1/q)"];
  CHECK(ceil_rule["steps"].get<std::uint64_t>() == 60 * static_cast<std::uint64_t>(std::ceil(60000.0 / 256.0)));
  const double ceil_epsilon =
      lepton::RdpAccountant(setting["sample_rate_q"].get<double>(), sigma).epsilon(ceil_rule["steps"], 1e-5);
  CHECK(relative_error(ceil_epsilon, ceil_rule["epsilon_rdp"].get<double>()) < kRelativeTolerance);

  const nlohmann::json& loader_rule = setting["alt_if_run_through_PrivacyEngine.make_private(DataLoader)"];
  const double loader_epsilon =
      lepton::RdpAccountant(loader_rule["q"].get<double>(), sigma).epsilon(loader_rule["steps"], 1e-5);
  CHECK(relative_error(loader_epsilon, loader_rule["epsilon_rdp"].get<double>()) < kRelativeTolerance);
}

TEST_CASE("epsilon matches Opacus's own test anchor", "[privacy][accountant]") {
  const nlohmann::json anchor = load_fixture()["anchors_from_opacus_tests"];
  const double epsilon = lepton::RdpAccountant(0.04, 1.5).epsilon(2250, 1e-5);
  CHECK(relative_error(epsilon, anchor["reproduced"]["rdp_steps_2250"].get<double>()) < kRelativeTolerance);
}

TEST_CASE("rdp per step edge cases", "[privacy][accountant]") {
  const std::vector<double> orders{1.5, 2.0, 32.0};

  const std::vector<double> no_sampling = lepton::rdp_per_step(0.0, 1.0, orders);
  for (double value : no_sampling) CHECK(value == 0.0);

  const std::vector<double> no_noise = lepton::rdp_per_step(0.01, 0.0, orders);
  for (double value : no_noise) CHECK(std::isinf(value));

  // Without subsampling the Gaussian mechanism has RDP alpha / (2 sigma^2) exactly.
  const std::vector<double> full = lepton::rdp_per_step(1.0, 2.0, orders);
  CHECK(full[0] == Approx(1.5 / 8.0).epsilon(1e-15));
  CHECK(full[2] == Approx(32.0 / 8.0).epsilon(1e-15));

  CHECK_THROWS_AS(lepton::rdp_per_step(1.5, 1.0, orders), lepton::InvalidArgument);
  CHECK_THROWS_AS(lepton::rdp_per_step(0.1, -1.0, orders), lepton::InvalidArgument);
  CHECK_THROWS_AS(lepton::rdp_per_step(0.1, 1.0, {1.0}), lepton::InvalidArgument);
}

TEST_CASE("epsilon grows with steps", "[privacy][accountant]") {
  const lepton::RdpAccountant accountant(0.02, 1.0);
  // The conversion's delta term alone is about 0.1 at the largest order, so 0 steps give a small epsilon.
  double previous = accountant.epsilon(0, 1e-5);
  CHECK(previous < 0.11);
  for (std::uint64_t steps : {1u, 10u, 100u, 1000u, 10000u}) {
    const double epsilon = accountant.epsilon(steps, 1e-5);
    CHECK(epsilon > previous);
    previous = epsilon;
  }
}

TEST_CASE("max steps stay within the budget", "[privacy][accountant]") {
  const lepton::RdpAccountant accountant(0.02, 1.0);
  const std::uint64_t steps = accountant.max_steps_within(2.0, 1e-5, 100000);

  CHECK(steps > 0);
  CHECK(steps < 100000);
  CHECK(accountant.epsilon(steps, 1e-5) <= 2.0);
  CHECK(accountant.epsilon(steps + 1, 1e-5) > 2.0);
  CHECK(accountant.max_steps_within(1000.0, 1e-5, 50) == 50);
}

TEST_CASE("solved noise multiplier meets the budget", "[privacy][accountant]") {
  for (double target : {1.0, 3.0, 8.0}) {
    INFO("target epsilon " << target);
    const double sigma = lepton::solve_noise_multiplier(target, 1e-5, 256.0 / 6000.0, 50 * 24);
    const double epsilon = lepton::RdpAccountant(256.0 / 6000.0, sigma).epsilon(50 * 24, 1e-5);

    CHECK(epsilon <= target);
    CHECK(epsilon >= target * (1.0 - 1e-4));
  }
}

TEST_CASE("solver recovers Opacus's sigma", "[privacy][accountant]") {
  // Setting B: sigma 1.0 gives epsilon_rdp 2.1013652716430564, so solving for that epsilon returns ~1.0.
  const double sigma = lepton::solve_noise_multiplier(2.1013652716430564, 1e-5, 0.01, 1000, 1e-9);
  CHECK(sigma == Approx(1.0).epsilon(1e-6));
}

TEST_CASE("solver rejects bad targets", "[privacy][accountant]") {
  CHECK_THROWS_AS(lepton::solve_noise_multiplier(0.0, 1e-5, 0.01, 100), lepton::InvalidArgument);
  CHECK_THROWS_AS(lepton::solve_noise_multiplier(1.0, 0.0, 0.01, 100), lepton::InvalidArgument);
  CHECK_THROWS_AS(lepton::solve_noise_multiplier(1.0, 1e-5, 2.0, 100), lepton::InvalidArgument);
  // Epsilon 1e-9 with q = 1 over 10^6 steps needs a multiplier far above the solver's limit.
  CHECK_THROWS_AS(lepton::solve_noise_multiplier(1e-9, 1e-5, 1.0, 1000000), lepton::InvalidArgument);
}
