// Integrated gradients (Sundararajan et al., 2017) and expected gradients with an analytic MLP gradient.

#include <cmath>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/explain_detail.hpp"

namespace lepton {

namespace {

/// Attributions of one straight path from `baseline` to `row` for every output, per encoded column:
/// full[k][c] with the m-interval trapezoid rule and half[k][c] with the m/2-interval rule on every second point.
void integrate_path(const ExplainModel& model, const double* baseline, const double* row, std::size_t steps,
                    std::vector<double>& full, std::vector<double>& half) {
  const std::size_t width = model.inputs();
  const std::size_t k_count = model.outputs();
  full.assign(k_count * width, 0.0);
  half.assign(k_count * width, 0.0);
  std::vector<double> point(width);
  std::vector<double> gradient(width);

  for (std::size_t s = 0; s <= steps; ++s) {
    const double alpha = static_cast<double>(s) / static_cast<double>(steps);
    for (std::size_t c = 0; c < width; ++c) point[c] = baseline[c] + alpha * (row[c] - baseline[c]);
    const double end_factor = (s == 0 || s == steps) ? 0.5 : 1.0;
    const bool on_half_grid = s % 2 == 0;

    for (std::size_t k = 0; k < k_count; ++k) {
      model.gradient(point.data(), k, gradient.data());
      for (std::size_t c = 0; c < width; ++c) {
        full[k * width + c] += end_factor * gradient[c];
        if (on_half_grid) half[k * width + c] += end_factor * gradient[c];
      }
    }
  }

  for (std::size_t k = 0; k < k_count; ++k) {
    for (std::size_t c = 0; c < width; ++c) {
      const double span = row[c] - baseline[c];
      full[k * width + c] *= span / static_cast<double>(steps);
      half[k * width + c] *= span / static_cast<double>(steps / 2);
    }
  }
}

}  // namespace

GradientExplainer::GradientExplainer(ExplainModel model, Background background, FeatureGroups groups,
                                     GradientOptions options)
    : model_(std::move(model)), background_(std::move(background)), groups_(std::move(groups)), options_(options) {
  detail::check_setup(model_, background_, groups_, "GradientExplainer");
  if (detail::ModelAccess::plan(model_) == nullptr) {
    throw InvalidArgument(
        "GradientExplainer: the model has no analytic gradient; build it with ExplainModel::from_mlp, or use "
        "KernelExplainer for a plain function");
  }
  if (!model_.has_gradient()) throw InvalidArgument(detail::step_gradient_message("GradientExplainer"));
  if (options_.steps_ < 2 || options_.steps_ % 2 != 0) {
    throw InvalidArgument(fmt::format(
        "GradientExplainer: steps = {}; use an even number >= 2, because the error estimate compares against "
        "the half-step rule",
        options_.steps_));
  }
}

Explanation GradientExplainer::explain(const Matrix& rows) const { return explain(DoubleMatrix::from(rows)); }

Explanation GradientExplainer::explain(const DoubleMatrix& rows) const {
  detail::check_rows(rows, model_.inputs(), "GradientExplainer");
  const std::size_t width = model_.inputs();
  const std::size_t group_count = groups_.size();
  const std::size_t k_count = model_.outputs();
  Explanation explanation = detail::make_explanation("integrated_gradients", rows.rows, groups_, k_count);

  // Paths start at the weighted background mean, or at every background row with its weight.
  const double weight_sum = [&] {
    double total = 0.0;
    for (double w : background_.weights) total += w;
    return total;
  }();
  DoubleMatrix baselines;
  std::vector<double> baseline_weights;
  if (options_.baseline_ == GradientBaseline::BackgroundMean) {
    baselines = DoubleMatrix(1, width);
    for (std::size_t b = 0; b < background_.size(); ++b) {
      for (std::size_t c = 0; c < width; ++c) baselines(0, c) += background_.weights[b] / weight_sum * background_.rows(b, c);
    }
    baseline_weights = {1.0};
  } else {
    baselines = background_.rows;
    for (double w : background_.weights) baseline_weights.push_back(w / weight_sum);
  }

  // The base value is the mean output at the baselines, so that completeness reads sum = f(x) - base.
  const DoubleMatrix baseline_outputs = model_.evaluate(baselines);
  for (std::size_t b = 0; b < baselines.rows; ++b) {
    for (std::size_t k = 0; k < k_count; ++k) explanation.base_values[k] += baseline_weights[b] * baseline_outputs(b, k);
  }
  if (rows.rows == 0) return explanation;

  detail::for_each_row(rows.rows, options_.threads_, [&](std::size_t r, std::size_t) {
    std::vector<double> full;
    std::vector<double> half;
    std::vector<double> column_full(k_count * width, 0.0);
    std::vector<double> column_half(k_count * width, 0.0);
    for (std::size_t b = 0; b < baselines.rows; ++b) {
      integrate_path(model_, baselines.row(b), rows.row(r), options_.steps_, full, half);
      for (std::size_t i = 0; i < full.size(); ++i) {
        column_full[i] += baseline_weights[b] * full[i];
        column_half[i] += baseline_weights[b] * half[i];
      }
    }

    // Group sums; the trapezoid error is about (I_m - I_{m/2}) / 3 by Richardson extrapolation.
    for (std::size_t g = 0; g < group_count; ++g) {
      for (std::size_t k = 0; k < k_count; ++k) {
        double value = 0.0;
        double coarse = 0.0;
        for (std::size_t c : groups_.groups()[g].columns) {
          value += column_full[k * width + c];
          coarse += column_half[k * width + c];
        }
        const std::size_t index = (r * group_count + g) * k_count + k;
        explanation.values[index] = value;
        explanation.standard_errors[index] = std::abs(value - coarse) / 3.0;
      }
    }
  });

  detail::finish_explanation(model_, rows, explanation);
  return explanation;
}

}  // namespace lepton
