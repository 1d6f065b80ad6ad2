#pragma once
/// Scores predictions against the truth with the metrics of the task.

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/metrics.hpp"
#include "lepton/predictor.hpp"

namespace lepton {

/// Metrics of one evaluated split. Only the member that matches `task` is filled.
struct Evaluation {
  Task task = Task::BinaryClassification;
  std::size_t rows = 0;
  BinaryMetrics binary;
  MulticlassMetrics multiclass;
  RegressionMetrics regression;

  /// Returns the value of `metric`. Throws InvalidArgument when it does not apply to the task.
  double value(Metric metric) const;
  /// Writes "task", "rows" and the task's metrics object. Binary adds "macro_f1" and "weighted_f1"
  /// next to the threshold and confusion matrix. NaN metrics become null.
  nlohmann::json to_json() const;
};

/// Scores classification predictions against class ids. Binary predictions use their stored labels.
Evaluation evaluate(const Predictions& predictions, const std::vector<std::int64_t>& truth);

/// Scores regression predictions against target values.
Evaluation evaluate(const Predictions& predictions, const std::vector<double>& truth);

/// Predicts `records` with `predictor` and scores them against the artifact's target column.
Evaluation evaluate(const Predictor& predictor, const Table& records);

}  // namespace lepton
