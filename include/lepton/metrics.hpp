#pragma once
/// Evaluation metrics, defined once here so that training, export and deployment compute the same numbers.
/// Definitions follow scikit-learn 1.2 where a choice exists (noted per function).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lepton {

/// Counts[true][predicted] for `classes` classes.
struct ConfusionMatrix {
  std::size_t classes = 0;
  std::vector<std::size_t> counts;  ///< Row-major classes x classes.

  /// Returns the count of rows of class `truth` predicted as `predicted`. Throws InvalidArgument when either
  /// index is not below `classes` or `counts` does not hold classes x classes entries.
  std::size_t at(std::size_t truth, std::size_t predicted) const;
};

ConfusionMatrix confusion_matrix(const std::vector<std::int64_t>& truth,
                                 const std::vector<std::int64_t>& predicted, std::size_t classes);

/// Metrics of a binary classifier for the positive class (label 1) at one decision threshold.
struct BinaryMetrics {
  double threshold = 0.5;
  double accuracy = 0, precision = 0, recall = 0, f1 = 0;
  double roc_auc = 0;  ///< Area under the ROC curve, ties counted half (sklearn roc_auc_score).
  double pr_auc = 0;   ///< Average precision, step-wise without interpolation (sklearn average_precision_score).
  double log_loss = 0; ///< Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15].
  ConfusionMatrix confusion;

  nlohmann::json to_json() const;
};

/// Computes BinaryMetrics from labels in {0, 1} and probabilities of label 1.
/// Precision or recall with a zero denominator is 0, as sklearn's zero_division=0.
/// Throws InvalidArgument for mismatched lengths, empty input, or a label outside {0, 1}.
/// Also throws for a probability outside [0, 1] or a non-finite threshold. Where sklearn raises
/// because the truth has one class only, roc_auc (and pr_auc when no row is positive) are NaN.
BinaryMetrics binary_metrics(const std::vector<std::int64_t>& truth, const std::vector<double>& probability,
                             double threshold = 0.5);

/// Scores may be any finite numbers. Throws InvalidArgument when the truth has one class only.
double roc_auc(const std::vector<std::int64_t>& truth, const std::vector<double>& score);
/// Throws InvalidArgument when no row of the truth is positive.
double average_precision(const std::vector<std::int64_t>& truth, const std::vector<double>& score);
double binary_log_loss(const std::vector<std::int64_t>& truth, const std::vector<double>& probability);

/// Objective metrics that a requirements file can name.
enum class Metric { F1, RocAuc, PrAuc, Accuracy, LogLoss, MacroF1, WeightedF1, Mae, Rmse, R2 };

std::string to_string(Metric metric);
/// Parses "f1", "roc_auc", ... Returns false for an unknown name.
bool parse_metric(const std::string& name, Metric& metric);
/// True when larger values are better (false for log-loss, MAE and RMSE).
bool higher_is_better(Metric metric);

/// Chooses the threshold on validation data that maximizes `objective` (F1 by default; threshold-free
/// metrics keep 0.5). Candidates are the midpoints between distinct sorted probabilities; ties keep the
/// highest threshold, so that the result does not depend on row order. Returns 0.5 when all
/// probabilities are equal. Throws InvalidArgument for a regression objective.
double choose_threshold(const std::vector<std::int64_t>& truth, const std::vector<double>& probability,
                        Metric objective = Metric::F1);

/// Metrics of a multiclass classifier; probabilities are row-major rows x classes.
/// roc_auc_ovr is NaN when a class does not occur in the truth (sklearn raises).
struct MulticlassMetrics {
  double accuracy = 0;
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  double weighted_precision = 0, weighted_recall = 0, weighted_f1 = 0;
  double roc_auc_ovr = 0;  ///< Macro one-vs-rest ROC-AUC (sklearn multi_class="ovr", average="macro").
  double log_loss = 0;
  std::vector<double> precision, recall, f1;  ///< Per class.
  std::vector<std::size_t> support;
  ConfusionMatrix confusion;

  nlohmann::json to_json() const;
};

MulticlassMetrics multiclass_metrics(const std::vector<std::int64_t>& truth, const std::vector<double>& probability,
                                     std::size_t classes);

/// Metrics of a regressor.
struct RegressionMetrics {
  double mae = 0, rmse = 0, r2 = 0;  ///< R² as sklearn r2_score: 1 - SS_res / SS_tot.

  nlohmann::json to_json() const;
};

RegressionMetrics regression_metrics(const std::vector<double>& truth, const std::vector<double>& prediction);

}  // namespace lepton
