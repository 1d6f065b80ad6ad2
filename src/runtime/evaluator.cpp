// Scores predictions with the metrics of their task, so that training and deployment report the
// same numbers for the same rows.

#include "lepton/evaluator.hpp"

#include <numeric>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/metrics_detail.hpp"
#include "runtime/model_detail.hpp"

namespace lepton {

namespace {

void check_rows(std::size_t prediction_rows, std::size_t truth_rows) {
  if (prediction_rows != truth_rows) {
    throw InvalidArgument(fmt::format("evaluate: predictions have {} rows but truth has {}; pass one truth value "
                                      "per predicted row",
                                      prediction_rows, truth_rows));
  }
}

// An Evaluation that scored no rows has an empty confusion matrix, which counts as all zeros.
detail::BinaryCounts counts_of(const ConfusionMatrix& confusion) {
  detail::BinaryCounts counts;
  if (confusion.classes == 0) return counts;

  counts.tn = confusion.at(0, 0);
  counts.fp = confusion.at(0, 1);
  counts.fn = confusion.at(1, 0);
  counts.tp = confusion.at(1, 1);
  return counts;
}

// Recomputes the threshold-dependent metrics from the stored labels, so that they match the labels
// that the caller already acted on.
void score_stored_labels(const std::vector<std::int64_t>& truth, const std::vector<std::int64_t>& labels,
                         BinaryMetrics& metrics) {
  metrics.confusion = confusion_matrix(truth, labels, 2);

  const detail::BinaryCounts counts = counts_of(metrics.confusion);
  const detail::ClassScores scores = detail::class_scores(counts.tp, counts.fp, counts.fn);
  metrics.accuracy = static_cast<double>(counts.tp + counts.tn) / static_cast<double>(truth.size());
  metrics.precision = scores.precision;
  metrics.recall = scores.recall;
  metrics.f1 = scores.f1;
}

[[noreturn]] void throw_not_applicable(Metric metric, Task task) {
  throw InvalidArgument(fmt::format("Evaluation::value: metric '{}' does not apply to task {}; choose a metric "
                                    "of that task",
                                    to_string(metric), detail::task_name(task)));
}

double binary_value(const BinaryMetrics& metrics, Metric metric) {
  switch (metric) {
    case Metric::F1: return metrics.f1;
    case Metric::RocAuc: return metrics.roc_auc;
    case Metric::PrAuc: return metrics.pr_auc;
    case Metric::Accuracy: return metrics.accuracy;
    case Metric::LogLoss: return metrics.log_loss;
    case Metric::MacroF1: return detail::binary_macro_f1(counts_of(metrics.confusion));
    case Metric::WeightedF1: return detail::binary_weighted_f1(counts_of(metrics.confusion));
    default: throw_not_applicable(metric, Task::BinaryClassification);
  }
}

double multiclass_value(const MulticlassMetrics& metrics, Metric metric) {
  switch (metric) {
    case Metric::RocAuc: return metrics.roc_auc_ovr;
    case Metric::Accuracy: return metrics.accuracy;
    case Metric::LogLoss: return metrics.log_loss;
    case Metric::MacroF1: return metrics.macro_f1;
    case Metric::WeightedF1: return metrics.weighted_f1;
    default: throw_not_applicable(metric, Task::MulticlassClassification);
  }
}

double regression_value(const RegressionMetrics& metrics, Metric metric) {
  switch (metric) {
    case Metric::Mae: return metrics.mae;
    case Metric::Rmse: return metrics.rmse;
    case Metric::R2: return metrics.r2;
    default: throw_not_applicable(metric, Task::Regression);
  }
}

}  // namespace

double Evaluation::value(Metric metric) const {
  switch (task) {
    case Task::BinaryClassification: return binary_value(binary, metric);
    case Task::MulticlassClassification: return multiclass_value(multiclass, metric);
    case Task::Regression: return regression_value(regression, metric);
  }
  throw InternalError(fmt::format("Evaluation::value: Task value {} is out of range", static_cast<int>(task)));
}

nlohmann::json Evaluation::to_json() const {
  nlohmann::json result;
  switch (task) {
    case Task::BinaryClassification:
      result = binary.to_json();
      result["macro_f1"] = value(Metric::MacroF1);
      result["weighted_f1"] = value(Metric::WeightedF1);
      break;
    case Task::MulticlassClassification:
      result = multiclass.to_json();
      break;
    case Task::Regression:
      result = regression.to_json();
      break;
  }
  result["task"] = detail::task_name(task);
  result["rows"] = rows;
  return result;
}

Evaluation evaluate(const Predictions& predictions, const std::vector<std::int64_t>& truth) {
  if (predictions.task == Task::Regression) {
    throw InvalidArgument("evaluate: regression predictions need target values; pass a std::vector<double> "
                          "as truth");
  }
  check_rows(predictions.rows, truth.size());

  Evaluation evaluation;
  evaluation.task = predictions.task;
  evaluation.rows = predictions.rows;
  if (predictions.task == Task::BinaryClassification) {
    if (predictions.label_index.size() != predictions.rows) {
      throw InvalidArgument(fmt::format("evaluate: predictions have {} rows but {} labels; pass Predictions "
                                        "as returned by Predictor::predict",
                                        predictions.rows, predictions.label_index.size()));
    }
    evaluation.binary = binary_metrics(truth, predictions.probability, predictions.threshold);
    score_stored_labels(truth, predictions.label_index, evaluation.binary);
  } else {
    evaluation.multiclass = multiclass_metrics(truth, predictions.probability, predictions.classes);
  }
  return evaluation;
}

Evaluation evaluate(const Predictions& predictions, const std::vector<double>& truth) {
  if (predictions.task != Task::Regression) {
    throw InvalidArgument(fmt::format("evaluate: {} predictions need class ids; pass a std::vector<std::int64_t> "
                                      "as truth",
                                      detail::task_name(predictions.task)));
  }
  check_rows(predictions.rows, truth.size());

  Evaluation evaluation;
  evaluation.task = Task::Regression;
  evaluation.rows = predictions.rows;
  evaluation.regression = regression_metrics(truth, predictions.value);
  return evaluation;
}

Evaluation evaluate(const Predictor& predictor, const Table& records) {
  const Predictions predictions = predictor.predict(records);

  std::vector<std::size_t> rows(records.rows());
  std::iota(rows.begin(), rows.end(), std::size_t{0});
  const TargetEncoding& target = predictor.artifact().target;
  if (target.task == Task::Regression) {
    return evaluate(predictions, target.encode_values(records, rows));
  }
  return evaluate(predictions, target.encode_labels(records, rows));
}

}  // namespace lepton
