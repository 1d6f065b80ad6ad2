// Shapley axioms and estimator properties over many shapes: efficiency, symmetry, dummy, linearity,
// the linear closed form, convergence of the sampling explainers, thread-count independence, gradients.

#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "lepton/error.hpp"
#include "lepton/explain.hpp"
#include "support/random_mlp.hpp"

using namespace lepton;
using test_support::random_mlp;
using test_support::random_rows;

namespace {

Background random_weighted_background(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<double> uniform(0.1, 2.0);
  std::vector<double> weights(rows);
  for (double& w : weights) w = uniform(engine);
  return Background::weighted(random_rows(rows, cols, seed + 1), std::move(weights));
}

double sum_values(const Explanation& explanation, std::size_t row, std::size_t output) {
  double total = 0.0;
  for (std::size_t g = 0; g < explanation.groups; ++g) total += explanation.value(row, g, output);
  return total;
}

// Both Kernel SHAP samplers must satisfy every property below.
constexpr KernelSampler kSamplers[] = {KernelSampler::Stratified, KernelSampler::Shap};

double max_difference(const Explanation& a, const Explanation& b) {
  double largest = 0.0;
  for (std::size_t i = 0; i < a.values.size(); ++i) largest = std::max(largest, std::abs(a.values[i] - b.values[i]));
  return largest;
}

}  // namespace

TEST_CASE("exact efficiency over many shapes", "[explain][properties]") {
  for (std::size_t inputs : {1, 2, 3, 7, 9}) {
    for (std::size_t outputs : {1, 3}) {
      const OutputLink link = outputs == 1 ? OutputLink::Logistic : OutputLink::Softmax;
      const ExplainModel model = ExplainModel::from_mlp(random_mlp({inputs, 8, 5, outputs}, Activation::Tanh, inputs), link);
      const ExactExplainer explainer(model, random_weighted_background(7, inputs, 3), FeatureGroups::per_column(inputs));
      const DoubleMatrix rows = random_rows(4, inputs, 11);
      const Explanation explanation = explainer.explain(rows);
      const DoubleMatrix predictions = model.evaluate(rows);

      for (std::size_t r = 0; r < rows.rows; ++r) {
        for (std::size_t k = 0; k < outputs; ++k) {
          INFO("inputs " << inputs << " outputs " << outputs << " row " << r << " output " << k);
          CHECK(std::abs(sum_values(explanation, r, k) - (predictions(r, k) - explanation.base_values[k])) < 1e-9);
        }
      }
    }
  }
}

TEST_CASE("kernel efficiency with sampled coalitions", "[explain][properties]") {
  // 12 groups and a budget of 300 leave most sizes sampled, yet efficiency is a constraint of the solve.
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({12, 16, 1}, Activation::Gelu, 5), OutputLink::Identity);
  const DoubleMatrix rows = random_rows(5, 12, 21);
  for (KernelSampler sampler : kSamplers) {
    const KernelExplainer explainer(model, random_weighted_background(9, 12, 8), FeatureGroups::per_column(12),
                                    KernelOptions().samples(300).seed(3).sampler(sampler));
    const Explanation explanation = explainer.explain(rows);
    for (std::size_t r = 0; r < rows.rows; ++r) {
      INFO("sampler " << to_string(sampler) << " row " << r);
      CHECK(explanation.completeness_gaps[r] < 1e-9);
    }
  }
}

TEST_CASE("symmetric features get equal values", "[explain][properties]") {
  // f is symmetric in x0 and x1, and the explained row and background agree on those two columns.
  const ExplainModel model = ExplainModel::from_function(3, 1, [](const double* rows, std::size_t n, double* out) {
    for (std::size_t i = 0; i < n; ++i) {
      const double* x = rows + 3 * i;
      out[i] = std::tanh(x[0] + x[1]) + x[0] * x[1] + 0.3 * x[2];
    }
  });
  const DoubleMatrix background = DoubleMatrix::from_rows({{0.5, 0.5, 1.0}, {-1.0, -1.0, 2.0}});
  const DoubleMatrix row = DoubleMatrix::from_rows({{2.0, 2.0, -1.0}});
  const Explanation exact = ExactExplainer(model, Background::uniform(background), FeatureGroups::per_column(3)).explain(row);
  CHECK(exact.value(0, 0) == Approx(exact.value(0, 1)).epsilon(0).margin(1e-12));

  for (KernelSampler sampler : kSamplers) {
    const Explanation kernel = KernelExplainer(model, Background::uniform(background), FeatureGroups::per_column(3),
                                               KernelOptions().samples(6).sampler(sampler)).explain(row);
    INFO("sampler " << to_string(sampler));
    CHECK(kernel.value(0, 0) == Approx(kernel.value(0, 1)).epsilon(0).margin(1e-12));
  }
}

TEST_CASE("dummy feature gets zero", "[explain][properties]") {
  const ExplainModel model = ExplainModel::from_function(4, 1, [](const double* rows, std::size_t n, double* out) {
    for (std::size_t i = 0; i < n; ++i) {
      const double* x = rows + 4 * i;
      out[i] = std::sin(x[0]) * x[1] + std::exp(0.1 * x[3]);  // x[2] is never read.
    }
  });
  const Background background = random_weighted_background(6, 4, 2);
  const DoubleMatrix rows = random_rows(3, 4, 4);
  const FeatureGroups groups = FeatureGroups::per_column(4);

  const Explanation exact = ExactExplainer(model, background, groups).explain(rows);
  const Explanation permutation = PermutationExplainer(model, background, groups, PermutationOptions().seed(1)).explain(rows);
  for (std::size_t r = 0; r < rows.rows; ++r) {
    CHECK(exact.value(r, 2) == 0.0);
    CHECK(permutation.value(r, 2) == 0.0);
  }
  // 14 = 2^4 - 2 enumerates every coalition. A sampled design need not give a dummy exactly 0.
  for (KernelSampler sampler : kSamplers) {
    const Explanation kernel =
        KernelExplainer(model, background, groups, KernelOptions().samples(14).sampler(sampler)).explain(rows);
    for (std::size_t r = 0; r < rows.rows; ++r) {
      INFO("sampler " << to_string(sampler) << " row " << r);
      CHECK(std::abs(kernel.value(r, 2)) < 1e-12);
    }
  }
}

TEST_CASE("exact values are linear in the model", "[explain][properties]") {
  const ExplainModel f = ExplainModel::from_mlp(random_mlp({5, 6, 1}, Activation::Relu, 1), OutputLink::Identity);
  const ExplainModel g = ExplainModel::from_mlp(random_mlp({5, 4, 1}, Activation::Tanh, 2), OutputLink::Logistic);
  const ExplainModel combined = ExplainModel::from_function(5, 1, [&](const double* rows, std::size_t n, double* out) {
    std::vector<double> a(n), b(n);
    f.evaluate(rows, n, a.data());
    g.evaluate(rows, n, b.data());
    for (std::size_t i = 0; i < n; ++i) out[i] = 2.0 * a[i] - 3.0 * b[i];
  });
  const Background background = random_weighted_background(5, 5, 6);
  const FeatureGroups groups = FeatureGroups::per_column(5);
  const DoubleMatrix rows = random_rows(3, 5, 9);

  const Explanation phi_f = ExactExplainer(f, background, groups).explain(rows);
  const Explanation phi_g = ExactExplainer(g, background, groups).explain(rows);
  const Explanation phi_combined = ExactExplainer(combined, background, groups).explain(rows);
  for (std::size_t i = 0; i < phi_combined.values.size(); ++i) {
    CHECK(phi_combined.values[i] == Approx(2.0 * phi_f.values[i] - 3.0 * phi_g.values[i]).epsilon(0).margin(1e-12));
  }
}

TEST_CASE("linear model has closed-form values", "[explain][properties]") {
  // phi_i = w_i (x_i - E_w[bg_i]) with the weighted background mean, for every explainer.
  const std::vector<double> w = {0.7, -1.3, 2.1, 0.0, -0.4};
  DoubleMlp linear;
  linear.layers.push_back(DoubleDenseLayer{5, 1, w, {0.25}, Activation::Identity});
  const ExplainModel model = ExplainModel::from_mlp(linear, OutputLink::Identity);
  const Background background = random_weighted_background(8, 5, 13);
  const FeatureGroups groups = FeatureGroups::per_column(5);
  const DoubleMatrix rows = random_rows(4, 5, 17);

  std::vector<double> mean(5, 0.0);
  double total = 0.0;
  for (double weight : background.weights) total += weight;
  for (std::size_t b = 0; b < background.size(); ++b) {
    for (std::size_t i = 0; i < 5; ++i) mean[i] += background.weights[b] / total * background.rows(b, i);
  }

  const Explanation exact = ExactExplainer(model, background, groups).explain(rows);
  const Explanation kernel = KernelExplainer(model, background, groups, KernelOptions().samples(12).seed(2)).explain(rows);
  const Explanation kernel_shap = KernelExplainer(model, background, groups,
                                                  KernelOptions().samples(12).seed(2).sampler(KernelSampler::Shap))
                                      .explain(rows);
  const Explanation permutation = PermutationExplainer(model, background, groups).explain(rows);
  const Explanation gradient = GradientExplainer(model, background, groups).explain(rows);
  for (std::size_t r = 0; r < rows.rows; ++r) {
    for (std::size_t i = 0; i < 5; ++i) {
      const double expected = w[i] * (rows(r, i) - mean[i]);
      INFO("row " << r << " feature " << i);
      CHECK(exact.value(r, i) == Approx(expected).epsilon(0).margin(1e-12));
      CHECK(kernel.value(r, i) == Approx(expected).epsilon(0).margin(1e-10));
      CHECK(kernel_shap.value(r, i) == Approx(expected).epsilon(0).margin(1e-10));
      CHECK(permutation.value(r, i) == Approx(expected).epsilon(0).margin(1e-12));
      CHECK(gradient.value(r, i) == Approx(expected).epsilon(0).margin(1e-12));
    }
  }
}

TEST_CASE("kernel converges to exact as samples grow", "[explain][properties]") {
  const std::size_t width = 10;
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({width, 16, 8, 1}, Activation::Relu, 4), OutputLink::Identity);
  const Background background = random_weighted_background(10, width, 5);
  const FeatureGroups groups = FeatureGroups::per_column(width);
  const DoubleMatrix rows = random_rows(4, width, 6);
  const Explanation exact = ExactExplainer(model, background, groups).explain(rows);

  for (KernelSampler sampler : kSamplers) {
    INFO("sampler " << to_string(sampler));
    const KernelOptions options = KernelOptions().seed(1).sampler(sampler);
    const Explanation small = KernelExplainer(model, background, groups, KernelOptions(options).samples(60)).explain(rows);
    const Explanation large = KernelExplainer(model, background, groups, KernelOptions(options).samples(800)).explain(rows);
    const Explanation all = KernelExplainer(model, background, groups, KernelOptions(options).samples(1022)).explain(rows);
    INFO("max error at 60 samples " << max_difference(small, exact) << ", at 800 " << max_difference(large, exact));
    CHECK(max_difference(large, exact) < max_difference(small, exact));
    CHECK(max_difference(large, exact) < 0.05);
    CHECK(max_difference(all, exact) < 1e-9);

    // The bootstrap error is an estimate, so only its order of magnitude is checked: the mean true error
    // should lie within a factor 4 of the mean reported standard error.
    double true_error = 0.0;
    double reported = 0.0;
    for (std::size_t i = 0; i < small.values.size(); ++i) {
      true_error += std::abs(small.values[i] - exact.values[i]);
      reported += small.standard_errors[i];
    }
    INFO("mean true error " << true_error / small.values.size() << ", mean standard error " << reported / small.values.size());
    CHECK(reported > 0.0);
    CHECK(true_error < 4.0 * reported);
    CHECK(reported < 4.0 * true_error);
  }
}

TEST_CASE("permutation converges to exact as pairs grow", "[explain][properties]") {
  const std::size_t width = 8;
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({width, 12, 1}, Activation::Tanh, 14), OutputLink::Logistic);
  const Background background = random_weighted_background(6, width, 15);
  const FeatureGroups groups = FeatureGroups::per_column(width);
  const DoubleMatrix rows = random_rows(3, width, 16);
  const Explanation exact = ExactExplainer(model, background, groups).explain(rows);

  const Explanation small = PermutationExplainer(model, background, groups, PermutationOptions().permutations(2).seed(5)).explain(rows);
  const Explanation large = PermutationExplainer(model, background, groups, PermutationOptions().permutations(400).seed(5)).explain(rows);
  CHECK(max_difference(large, exact) < max_difference(small, exact));
  CHECK(max_difference(large, exact) < 5e-3);
  for (std::size_t r = 0; r < rows.rows; ++r) CHECK(large.completeness_gaps[r] < 1e-12);

  double true_error = 0.0;
  double reported = 0.0;
  for (std::size_t i = 0; i < large.values.size(); ++i) {
    true_error += std::abs(large.values[i] - exact.values[i]);
    reported += large.standard_errors[i];
  }
  CHECK(true_error < 4.0 * reported);
}

TEST_CASE("results do not depend on thread count", "[explain][properties]") {
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({9, 10, 2}, Activation::Relu, 31), OutputLink::Softmax);
  const Background background = random_weighted_background(5, 9, 32);
  const FeatureGroups groups = FeatureGroups::per_column(9);
  const DoubleMatrix rows = random_rows(7, 9, 33);

  for (KernelSampler sampler : kSamplers) {
    INFO("sampler " << to_string(sampler));
    const KernelOptions options = KernelOptions().samples(100).seed(4).sampler(sampler);
    const Explanation one_thread = KernelExplainer(model, background, groups, KernelOptions(options).threads(1)).explain(rows);
    const Explanation three_threads = KernelExplainer(model, background, groups, KernelOptions(options).threads(3)).explain(rows);
    CHECK(one_thread.values == three_threads.values);
    CHECK(one_thread.standard_errors == three_threads.standard_errors);
  }
  const Explanation kernel_one = KernelExplainer(model, background, groups, KernelOptions().samples(100).seed(4).threads(1)).explain(rows);

  const Explanation permutation_one = PermutationExplainer(model, background, groups, PermutationOptions().seed(4).threads(1)).explain(rows);
  const Explanation permutation_three = PermutationExplainer(model, background, groups, PermutationOptions().seed(4).threads(3)).explain(rows);
  CHECK(permutation_one.values == permutation_three.values);

  // One row alone gets the same values as inside a batch, because its generator depends on (seed, row index).
  DoubleMatrix first(1, 9);
  std::copy(rows.row(0), rows.row(0) + 9, first.row(0));
  const Explanation alone = KernelExplainer(model, background, groups, KernelOptions().samples(100).seed(4)).explain(first);
  for (std::size_t i = 0; i < alone.values.size(); ++i) CHECK(alone.values[i] == kernel_one.values[i]);
}

TEST_CASE("different seeds give different kernel samples", "[explain][properties]") {
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({9, 10, 1}, Activation::Relu, 41), OutputLink::Identity);
  const Background background = random_weighted_background(5, 9, 42);
  const FeatureGroups groups = FeatureGroups::per_column(9);
  const DoubleMatrix rows = random_rows(2, 9, 43);
  for (KernelSampler sampler : kSamplers) {
    INFO("sampler " << to_string(sampler));
    const KernelOptions options = KernelOptions().samples(60).sampler(sampler);
    const Explanation a = KernelExplainer(model, background, groups, KernelOptions(options).seed(1)).explain(rows);
    const Explanation b = KernelExplainer(model, background, groups, KernelOptions(options).seed(2)).explain(rows);
    CHECK(a.values != b.values);
  }
}

TEST_CASE("grouped columns act as one player", "[explain][properties]") {
  // Grouping columns {0,1} and {2,3,4}: exact values on the groups equal exact values of a 2-input model.
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({5, 7, 1}, Activation::Gelu, 51), OutputLink::Identity);
  const Background background = random_weighted_background(4, 5, 52);
  const FeatureGroups groups = FeatureGroups::custom(5, {{"a", {1, 0}, false}, {"b", {2, 3, 4}, false}});
  const DoubleMatrix rows = random_rows(2, 5, 53);
  const Explanation explanation = ExactExplainer(model, background, groups).explain(rows);
  REQUIRE(explanation.group_names == std::vector<std::string>{"a", "b"});

  for (std::size_t r = 0; r < rows.rows; ++r) {
    // Two players: phi_a = (v(a) - v({}) + v(ab) - v(b)) / 2.
    auto value = [&](bool a_on, bool b_on) {
      double total = 0.0, weight_total = 0.0;
      for (std::size_t b = 0; b < background.size(); ++b) {
        std::vector<double> hybrid(background.rows.row(b), background.rows.row(b) + 5);
        for (std::size_t c = 0; c < 5; ++c) {
          if ((c < 2 && a_on) || (c >= 2 && b_on)) hybrid[c] = rows(r, c);
        }
        double out = 0.0;
        model.evaluate(hybrid.data(), 1, &out);
        total += background.weights[b] * out;
        weight_total += background.weights[b];
      }
      return total / weight_total;
    };
    const double phi_a = 0.5 * (value(true, false) - value(false, false) + value(true, true) - value(false, true));
    CHECK(explanation.value(r, 0) == Approx(phi_a).epsilon(0).margin(1e-12));
  }
}

TEST_CASE("fast path matches reference path", "[explain][properties]") {
  const std::size_t width = 11;
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({width, 32, 16, 1}, Activation::Relu, 61), OutputLink::Logistic);
  const Background background = random_weighted_background(12, width, 62);
  const FeatureGroups groups = FeatureGroups::custom(width, {{"a", {0, 1, 2}, true}, {"b", {3}, false}, {"c", {4, 5}, false},
                                                             {"d", {6}, false}, {"e", {7, 8, 9, 10}, false}});
  const DoubleMatrix rows = random_rows(3, width, 63);
  for (KernelSampler sampler : kSamplers) {
    INFO("sampler " << to_string(sampler));
    const KernelOptions options = KernelOptions().samples(20).seed(9).sampler(sampler);
    const Explanation reference = KernelExplainer(model, background, groups, options).explain(rows);
    const Explanation fast = KernelExplainer(model, background, groups, KernelOptions(options).path(CoalitionPath::Fast)).explain(rows);
    // Float rounding in 32 + 16 units of a probability: 1e-5 is about 100 float ulps of 0.5.
    CHECK(max_difference(reference, fast) < 1e-5);
  }
}

TEST_CASE("gradient matches finite differences", "[explain][properties]") {
  for (Activation activation : {Activation::Relu, Activation::Tanh, Activation::Gelu, Activation::Identity}) {
    for (OutputLink link : {OutputLink::Identity, OutputLink::Logistic, OutputLink::Softmax}) {
      const std::size_t outputs = link == OutputLink::Logistic ? 1 : 3;
      const ExplainModel model = ExplainModel::from_mlp(random_mlp({4, 6, 5, outputs}, activation, 71), link);
      const DoubleMatrix point = random_rows(1, 4, 72);
      for (std::size_t k = 0; k < outputs; ++k) {
        std::vector<double> gradient(4);
        model.gradient(point.row(0), k, gradient.data());
        for (std::size_t i = 0; i < 4; ++i) {
          // Central differences with h = 1e-6 have error O(h^2) plus round-off of about 1e-10.
          const double h = 1e-6;
          std::vector<double> up(point.row(0), point.row(0) + 4), down = up;
          up[i] += h;
          down[i] -= h;
          std::vector<double> out_up(outputs), out_down(outputs);
          model.evaluate(up.data(), 1, out_up.data());
          model.evaluate(down.data(), 1, out_down.data());
          INFO("activation " << static_cast<int>(activation) << " link " << to_string(link) << " output " << k << " input " << i);
          CHECK(gradient[i] == Approx((out_up[k] - out_down[k]) / (2 * h)).epsilon(0).margin(1e-7));
        }
      }
    }
  }
}

TEST_CASE("integrated gradients are nearly complete", "[explain][properties]") {
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({6, 10, 1}, Activation::Tanh, 81), OutputLink::Logistic);
  const Background background = random_weighted_background(5, 6, 82);
  const FeatureGroups groups = FeatureGroups::per_column(6);
  const DoubleMatrix rows = random_rows(3, 6, 83);

  for (GradientBaseline baseline : {GradientBaseline::BackgroundMean, GradientBaseline::EachBackground}) {
    const Explanation coarse = GradientExplainer(model, background, groups, GradientOptions().steps(4).baseline(baseline)).explain(rows);
    const Explanation fine = GradientExplainer(model, background, groups, GradientOptions().steps(256).baseline(baseline)).explain(rows);
    for (std::size_t r = 0; r < rows.rows; ++r) {
      INFO("baseline " << static_cast<int>(baseline) << " row " << r);
      CHECK(fine.completeness_gaps[r] < 1e-4);
      CHECK(fine.completeness_gaps[r] <= coarse.completeness_gaps[r]);
    }
  }

  // Expected gradients' base value is the weighted mean output over the background rows.
  const Explanation expected = GradientExplainer(model, background, groups, GradientOptions().baseline(GradientBaseline::EachBackground)).explain(rows);
  const DoubleMatrix outputs = model.evaluate(background.rows);
  double base = 0.0, total = 0.0;
  for (std::size_t b = 0; b < background.size(); ++b) {
    base += background.weights[b] * outputs(b, 0);
    total += background.weights[b];
  }
  CHECK(expected.base_values[0] == Approx(base / total).epsilon(1e-12));
}

TEST_CASE("global importance is mean absolute value", "[explain][properties]") {
  Explanation explanation;
  explanation.rows = 3;
  explanation.groups = 2;
  explanation.outputs = 1;
  explanation.group_names = {"a", "b"};
  explanation.values = {1.0, -2.0, -3.0, 2.0, 2.0, 2.0};
  const GlobalImportance importance = global_importance(explanation);
  CHECK(importance.mean_abs[0] == Approx(2.0));
  CHECK(importance.mean_abs[1] == Approx(2.0));
  CHECK(importance.std_abs[0] == Approx(std::sqrt(2.0 / 3.0)));
  CHECK(importance.std_abs[1] == 0.0);
  CHECK_THROWS_AS(global_importance(Explanation{}), InvalidArgument);
}

TEST_CASE("explainers reject bad arguments", "[explain][properties]") {
  const ExplainModel model = ExplainModel::from_mlp(random_mlp({3, 4, 1}, Activation::Relu, 91), OutputLink::Identity);
  const Background background = Background::uniform(random_rows(4, 3, 92));
  const FeatureGroups groups = FeatureGroups::per_column(3);

  CHECK_THROWS_WITH(ExactExplainer(model, Background::uniform(random_rows(4, 2, 1)), groups),
                    Catch::Contains("background rows have 2 columns but the model takes 3"));
  CHECK_THROWS_WITH(ExactExplainer(model, background, FeatureGroups::per_column(4)),
                    Catch::Contains("the feature groups cover 4 columns"));
  CHECK_THROWS_WITH(ExactExplainer(model, background, groups).explain(random_rows(2, 5, 1)),
                    Catch::Contains("rows are 2 x 5 but the model takes 3 columns"));
  CHECK_THROWS_AS(KernelExplainer(model, background, groups, KernelOptions().samples(1)), InvalidArgument);
  CHECK_THROWS_AS(PermutationExplainer(model, background, groups, PermutationOptions().permutations(0)), InvalidArgument);
  CHECK_THROWS_WITH(GradientExplainer(model, background, groups, GradientOptions().steps(3)),
                    Catch::Contains("steps = 3"));

  const ExplainModel plain = ExplainModel::from_function(3, 1, [](const double*, std::size_t n, double* out) {
    for (std::size_t i = 0; i < n; ++i) out[i] = 1.0;
  });
  CHECK_THROWS_WITH(GradientExplainer(plain, background, groups), Catch::Contains("no analytic gradient"));
  CHECK_THROWS_WITH(ExactExplainer(plain, background, groups, ExactOptions().path(CoalitionPath::Fast)).explain(random_rows(1, 3, 1)),
                    Catch::Contains("CoalitionPath::Fast needs a model built with ExplainModel::from_mlp"));

  const ExplainModel wide = ExplainModel::from_function(21, 1, [](const double*, std::size_t n, double* out) {
    for (std::size_t i = 0; i < n; ++i) out[i] = 0.0;
  });
  CHECK_THROWS_WITH(ExactExplainer(wide, Background::uniform(random_rows(2, 21, 1)), FeatureGroups::per_column(21)),
                    Catch::Contains("use KernelExplainer"));

  DoubleMlp broken = random_mlp({3, 4, 1}, Activation::Relu, 1);
  broken.layers[1].inputs = 5;
  CHECK_THROWS_WITH(ExplainModel::from_mlp(broken, OutputLink::Identity), Catch::Contains("layers[1]"));
  CHECK_THROWS_WITH(ExplainModel::from_mlp(random_mlp({3, 2}, Activation::Relu, 1), OutputLink::Logistic),
                    Catch::Contains("link logistic needs 1 logit but the network emits 2"));
}

TEST_CASE("model exception reaches the caller", "[explain][properties]") {
  const ExplainModel failing = ExplainModel::from_function(2, 1, [](const double*, std::size_t, double*) {
    throw std::runtime_error("model backend unavailable");
  });
  const ExactExplainer explainer(failing, Background::uniform(random_rows(2, 2, 1)), FeatureGroups::per_column(2),
                                 ExactOptions().threads(2));
  CHECK_THROWS_WITH(explainer.explain(random_rows(4, 2, 2)), "model backend unavailable");
}
