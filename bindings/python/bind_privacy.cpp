// Privacy accounting for DP-SGD: RDP of the subsampled Gaussian mechanism, its (epsilon, delta) form,
// the accountant and the noise multiplier solver.
#include <fmt/format.h>

#include "bindings.hpp"
#include "lepton/privacy.hpp"

namespace lepton::python {
namespace {

/// The RDP orders of an optional Python sequence; None selects Opacus's default grid.
std::vector<double> orders_or_default(const py::object& orders) {
  if (orders.is_none()) return default_rdp_orders();
  return to_double_vector(orders, "orders");
}

/// RDP values as a 1-D float64 sequence. Unlike to_double_vector this keeps inf and NaN, which
/// rdp_per_step returns for a zero multiplier and rdp_to_epsilon skips or handles.
std::vector<double> rdp_values(const py::object& values) {
  const auto array = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(values);
  if (!array || array.ndim() != 1) {
    throw py::type_error(fmt::format("rdp: expected a 1-D sequence of numbers, got {}",
                                     py::str(py::type::of(values).attr("__name__")).cast<std::string>()));
  }
  return std::vector<double>(array.data(), array.data() + array.size());
}

void register_rdp(py::module_& m) {
  m.def(
      "default_rdp_orders", []() { return to_array(std::vector<double>(default_rdp_orders())); },
      "Return Opacus's RDPAccountant.DEFAULT_ALPHAS as a float64 array: 1.1, 1.2, ..., 10.9, then 12, 13, ..., "
      "63 (151 orders).");
  m.def(
      "rdp_per_step",
      [](double sample_rate, double noise_multiplier, const py::object& orders) {
        const std::vector<double> grid = orders_or_default(orders);
        std::vector<double> rdp;
        {
          py::gil_scoped_release release;
          rdp = rdp_per_step(sample_rate, noise_multiplier, grid);
        }
        return to_array(std::move(rdp));
      },
      py::arg("sample_rate"), py::arg("noise_multiplier"), py::arg("orders") = py::none(),
      "Return the RDP of one step of the Poisson-subsampled Gaussian mechanism at each order (float64 array). "
      "sample_rate in [0, 1]; noise_multiplier >= 0 is the noise standard deviation over the L2 sensitivity. "
      "Rate 0 gives 0 and multiplier 0 gives inf. orders: None for default_rdp_orders(). Raises "
      "InvalidArgument for values out of range or an order <= 1.");

  py::class_<EpsilonAtOrder>(m, "EpsilonAtOrder", "Epsilon and the RDP order that attains it.")
      .def_readonly("epsilon", &EpsilonAtOrder::epsilon, "Epsilon from the RDP values.")
      .def_readonly("order", &EpsilonAtOrder::order, "RDP order that attains epsilon.")
      .def("__repr__", [](const EpsilonAtOrder& self) {
        return fmt::format("EpsilonAtOrder(epsilon={}, order={})", self.epsilon, self.order);
      });
  m.def(
      "rdp_to_epsilon",
      [](const py::object& orders, const py::object& rdp, double delta) {
        return rdp_to_epsilon(to_double_vector(orders, "orders"), rdp_values(rdp), delta);
      },
      py::arg("orders"), py::arg("rdp"), py::arg("delta"),
      "Convert RDP values over orders to (epsilon, delta) with Balle et al. 2020, Theorem 21, and return an "
      "EpsilonAtOrder. Raises InvalidArgument for delta outside (0, 1) or sequences of different length.");
}

void register_accountant(py::module_& m) {
  py::class_<RdpAccountant>(m, "RdpAccountant",
                            "Counts DP-SGD steps of one training run (fixed sampling rate and noise multiplier) "
                            "and converts them to (epsilon, delta), as Opacus 1.6.0's RDP accountant does.")
      .def(py::init([](double sample_rate, double noise_multiplier, const py::object& orders) {
             return RdpAccountant(sample_rate, noise_multiplier, orders_or_default(orders));
           }),
           py::arg("sample_rate"), py::arg("noise_multiplier"), py::arg("orders") = py::none(),
           "Raises InvalidArgument for a rate outside [0, 1] or a negative multiplier. orders: None for "
           "default_rdp_orders().")
      .def("epsilon", &RdpAccountant::epsilon, py::arg("steps"), py::arg("delta"),
           "Return epsilon after steps steps at delta; inf when the multiplier is 0 and steps > 0.")
      .def("epsilon_at_order", &RdpAccountant::epsilon_at_order, py::arg("steps"), py::arg("delta"),
           "Return epsilon after steps steps at delta with the order that attains it (EpsilonAtOrder).")
      .def("max_steps_within", &RdpAccountant::max_steps_within, py::arg("target_epsilon"), py::arg("delta"),
           py::arg("max_steps"),
           "Return the largest step count whose epsilon stays at or below target_epsilon, capped at max_steps.")
      .def_property_readonly("sample_rate", &RdpAccountant::sample_rate, "Poisson sampling probability q, in [0, 1].")
      .def_property_readonly("noise_multiplier", &RdpAccountant::noise_multiplier,
                             "Noise standard deviation over the L2 sensitivity, >= 0.");

  m.def(
      "solve_noise_multiplier",
      [](double target_epsilon, double delta, double sample_rate, std::uint64_t steps, double relative_tolerance) {
        py::gil_scoped_release release;
        return solve_noise_multiplier(target_epsilon, delta, sample_rate, steps, relative_tolerance);
      },
      py::arg("target_epsilon"), py::arg("delta"), py::arg("sample_rate"), py::arg("steps"),
      py::arg("relative_tolerance") = 1e-4,
      "Return the smallest noise multiplier whose epsilon after steps steps at sample_rate is at most "
      "target_epsilon, to within relative_tolerance of the budget. The result always stays within the budget. "
      "Raises InvalidArgument for a target that no multiplier up to 10^6 reaches, or arguments out of range.");

  py::class_<PrivacySpent>(m, "PrivacySpent",
                           "Privacy budget spent by a DP-SGD run, as stored in the report and in the artifact's "
                           "extensions['privacy'].")
      .def_readonly("epsilon", &PrivacySpent::epsilon, "Spent after steps steps; at most target_epsilon.")
      .def_readonly("target_epsilon", &PrivacySpent::target_epsilon, "Epsilon budget of the run.")
      .def_readonly("delta", &PrivacySpent::delta, "Delta of the (epsilon, delta) guarantee.")
      .def_readonly("optimal_order", &PrivacySpent::optimal_order, "RDP order that gave epsilon.")
      .def_readonly("noise_multiplier", &PrivacySpent::noise_multiplier,
                    "Noise standard deviation in units of max_grad_norm.")
      .def_readonly("max_grad_norm", &PrivacySpent::max_grad_norm, "Per-sample clipping norm C.")
      .def_readonly("sample_rate", &PrivacySpent::sample_rate,
                    "Poisson sampling probability: expected batch size / training rows.")
      .def_readonly("expected_batch_size", &PrivacySpent::expected_batch_size,
                    "Expected number of rows per Poisson-sampled batch.")
      .def_readonly("steps", &PrivacySpent::steps, "Noisy gradient steps taken, including steps on empty batches.")
      .def_readonly("budget_exhausted", &PrivacySpent::budget_exhausted,
                    "True when training stopped because one more step would exceed target_epsilon.")
      .def(
          "to_json", [](const PrivacySpent& self) { return from_json(self.to_json()); }, "Return as a dict.");
}

}  // namespace

void register_privacy(py::module_& m) {
  register_rdp(m);
  register_accountant(m);
}

}  // namespace lepton::python
