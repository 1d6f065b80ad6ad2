// Evaluation metrics. Each definition follows scikit-learn 1.2; tests/golden/make_metric_goldens.py
// records the sklearn calls that the tests compare against.

#include "lepton/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/metrics_detail.hpp"

namespace lepton {

namespace {

// sklearn log_loss(eps=1e-15): probabilities are clipped to [kLogLossEpsilon, 1 - kLogLossEpsilon].
constexpr double kLogLossEpsilon = 1e-15;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_lengths(const char* operation, const char* first_name, std::size_t first_size, const char* second_name,
                   std::size_t second_size) {
  if (first_size == 0) {
    throw InvalidArgument(fmt::format("{}: {} is empty; pass at least one row", operation, first_name));
  }
  if (first_size != second_size) {
    throw InvalidArgument(fmt::format("{}: {} has {} rows but {} has {}; pass one value per row", operation,
                                      first_name, first_size, second_name, second_size));
  }
}

void check_binary_labels(const char* operation, const std::vector<std::int64_t>& truth) {
  for (std::size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] != 0 && truth[i] != 1) {
      throw InvalidArgument(fmt::format("{}: truth[{}] is {}, expected a binary label 0 or 1", operation, i,
                                        truth[i]));
    }
  }
}

void check_class_labels(const char* operation, const std::vector<std::int64_t>& labels, const char* name,
                        std::size_t classes) {
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || static_cast<std::uint64_t>(labels[i]) >= classes) {
      throw InvalidArgument(fmt::format("{}: {}[{}] is {}, expected a class id in [0, {}]", operation, name, i,
                                        labels[i], classes - 1));
    }
  }
}

void check_finite(const char* operation, const char* name, const std::vector<double>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      throw InvalidArgument(fmt::format("{}: {}[{}] is {}, expected a finite number", operation, name, i,
                                        values[i]));
    }
  }
}

void check_probabilities(const char* operation, const std::vector<double>& probability) {
  for (std::size_t i = 0; i < probability.size(); ++i) {
    const double p = probability[i];
    if (!(p >= 0.0 && p <= 1.0)) {
      throw InvalidArgument(fmt::format("{}: probability[{}] is {}, expected a probability in [0, 1]", operation,
                                        i, p));
    }
  }
}

void check_binary_input(const char* operation, const std::vector<std::int64_t>& truth,
                        const std::vector<double>& probability) {
  check_lengths(operation, "truth", truth.size(), "probability", probability.size());
  check_binary_labels(operation, truth);
  check_probabilities(operation, probability);
}

void check_scores(const char* operation, const std::vector<std::int64_t>& truth, const std::vector<double>& score) {
  check_lengths(operation, "truth", truth.size(), "score", score.size());
  check_binary_labels(operation, truth);
  check_finite(operation, "score", score);
}

std::size_t count_positives(const std::vector<std::int64_t>& truth) {
  return static_cast<std::size_t>(std::count(truth.begin(), truth.end(), std::int64_t{1}));
}

// Row indices sorted by score; stable, so that equal scores keep row order (the result does not depend on it).
std::vector<std::size_t> order_by_score(const std::vector<double>& score, bool descending) {
  std::vector<std::size_t> order(score.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (descending) {
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
  } else {
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return score[a] < score[b]; });
  }
  return order;
}

// Mann-Whitney U statistic over P * N pairs. Twice U is an integer, so the sum is exact and the
// only rounding is the final division.
double roc_auc_unchecked(const std::vector<std::int64_t>& truth, const std::vector<double>& score,
                         std::size_t positives) {
  const std::size_t negatives = truth.size() - positives;
  const std::vector<std::size_t> order = order_by_score(score, false);

  std::uint64_t twice_u = 0;
  std::size_t negatives_below = 0;
  for (std::size_t start = 0; start < order.size();) {
    std::size_t end = start;
    std::size_t group_positives = 0;
    while (end < order.size() && score[order[end]] == score[order[start]]) {
      group_positives += truth[order[end]] == 1 ? 1 : 0;
      ++end;
    }
    const std::size_t group_negatives = (end - start) - group_positives;

    // A positive beats every lower negative and ties half with the negatives of its own score.
    twice_u += static_cast<std::uint64_t>(group_positives) * (2 * negatives_below + group_negatives);
    negatives_below += group_negatives;
    start = end;
  }
  return static_cast<double>(twice_u) / (2.0 * static_cast<double>(positives) * static_cast<double>(negatives));
}

double average_precision_unchecked(const std::vector<std::int64_t>& truth, const std::vector<double>& score,
                                   std::size_t positives) {
  const std::vector<std::size_t> order = order_by_score(score, true);

  // One step per distinct threshold: recall grows by the positives at that score, weighted by the
  // precision of everything scored at or above it.
  double sum = 0;
  std::size_t true_positives = 0;
  std::size_t false_positives = 0;
  for (std::size_t start = 0; start < order.size();) {
    std::size_t end = start;
    std::size_t group_positives = 0;
    while (end < order.size() && score[order[end]] == score[order[start]]) {
      group_positives += truth[order[end]] == 1 ? 1 : 0;
      ++end;
    }
    true_positives += group_positives;
    false_positives += (end - start) - group_positives;

    if (group_positives > 0) {
      const double precision =
          static_cast<double>(true_positives) / static_cast<double>(true_positives + false_positives);
      sum += static_cast<double>(group_positives) / static_cast<double>(positives) * precision;
    }
    start = end;
  }
  return sum;
}

double binary_log_loss_unchecked(const std::vector<std::int64_t>& truth, const std::vector<double>& probability) {
  double sum = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    // Same steps as sklearn: clip P(1), derive P(0), then renormalize the pair.
    const double p1 = std::clamp(probability[i], kLogLossEpsilon, 1.0 - kLogLossEpsilon);
    const double p0 = 1.0 - p1;
    const double chosen = truth[i] == 1 ? p1 : p0;
    sum -= std::log(chosen / (p0 + p1));
  }
  return sum / static_cast<double>(truth.size());
}

detail::BinaryCounts count_binary(const std::vector<std::int64_t>& truth, const std::vector<std::int64_t>& predicted) {
  detail::BinaryCounts counts;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] == 1) {
      ++(predicted[i] == 1 ? counts.tp : counts.fn);
    } else {
      ++(predicted[i] == 1 ? counts.fp : counts.tn);
    }
  }
  return counts;
}

nlohmann::json confusion_to_json(const ConfusionMatrix& confusion) {
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t t = 0; t < confusion.classes; ++t) {
    nlohmann::json row = nlohmann::json::array();
    for (std::size_t p = 0; p < confusion.classes; ++p) {
      row.push_back(confusion.at(t, p));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

double threshold_objective(Metric objective, const detail::BinaryCounts& counts) {
  const double rows = static_cast<double>(counts.tp + counts.fp + counts.tn + counts.fn);
  switch (objective) {
    case Metric::F1:
      return detail::class_scores(counts.tp, counts.fp, counts.fn).f1;
    case Metric::Accuracy:
      return static_cast<double>(counts.tp + counts.tn) / rows;
    case Metric::MacroF1:
      return detail::binary_macro_f1(counts);
    case Metric::WeightedF1:
      return detail::binary_weighted_f1(counts);
    default:
      throw InternalError(fmt::format("threshold_objective: {} does not depend on the threshold",
                                      to_string(objective)));
  }
}

}  // namespace

namespace detail {

ClassScores class_scores(std::size_t true_positive, std::size_t false_positive, std::size_t false_negative) {
  ClassScores scores;
  if (true_positive + false_positive > 0) {
    scores.precision = static_cast<double>(true_positive) / static_cast<double>(true_positive + false_positive);
  }
  if (true_positive + false_negative > 0) {
    scores.recall = static_cast<double>(true_positive) / static_cast<double>(true_positive + false_negative);
  }
  const double denominator = scores.precision + scores.recall;
  if (denominator > 0) {
    scores.f1 = 2.0 * scores.precision * scores.recall / denominator;
  }
  return scores;
}

double binary_macro_f1(const BinaryCounts& counts) {
  const double positive_f1 = class_scores(counts.tp, counts.fp, counts.fn).f1;
  const double negative_f1 = class_scores(counts.tn, counts.fn, counts.fp).f1;
  return (positive_f1 + negative_f1) / 2.0;
}

double binary_weighted_f1(const BinaryCounts& counts) {
  const double positive_f1 = class_scores(counts.tp, counts.fp, counts.fn).f1;
  const double negative_f1 = class_scores(counts.tn, counts.fn, counts.fp).f1;
  const double positives = static_cast<double>(counts.tp + counts.fn);
  const double negatives = static_cast<double>(counts.tn + counts.fp);
  return (positives * positive_f1 + negatives * negative_f1) / (positives + negatives);
}

}  // namespace detail

std::size_t ConfusionMatrix::at(std::size_t truth, std::size_t predicted) const {
  if (truth >= classes || predicted >= classes || counts.size() != classes * classes) {
    throw InvalidArgument(fmt::format("ConfusionMatrix::at({}, {}): the matrix has {} classes and {} counts; pass "
                                      "class indices below the class count of a matrix from confusion_matrix",
                                      truth, predicted, classes, counts.size()));
  }
  return counts[truth * classes + predicted];
}

ConfusionMatrix confusion_matrix(const std::vector<std::int64_t>& truth, const std::vector<std::int64_t>& predicted,
                                 std::size_t classes) {
  if (classes == 0) {
    throw InvalidArgument("confusion_matrix: classes is 0; pass the number of classes (at least 1)");
  }
  check_lengths("confusion_matrix", "truth", truth.size(), "predicted", predicted.size());
  check_class_labels("confusion_matrix", truth, "truth", classes);
  check_class_labels("confusion_matrix", predicted, "predicted", classes);

  ConfusionMatrix confusion;
  confusion.classes = classes;
  confusion.counts.assign(classes * classes, 0);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    ++confusion.counts[static_cast<std::size_t>(truth[i]) * classes + static_cast<std::size_t>(predicted[i])];
  }
  return confusion;
}

double roc_auc(const std::vector<std::int64_t>& truth, const std::vector<double>& score) {
  check_scores("roc_auc", truth, score);

  const std::size_t positives = count_positives(truth);
  if (positives == 0 || positives == truth.size()) {
    throw InvalidArgument(fmt::format(
        "roc_auc: truth contains only label {}; ROC AUC needs rows of both labels 0 and 1", truth.front()));
  }
  return roc_auc_unchecked(truth, score, positives);
}

double average_precision(const std::vector<std::int64_t>& truth, const std::vector<double>& score) {
  check_scores("average_precision", truth, score);

  const std::size_t positives = count_positives(truth);
  if (positives == 0) {
    throw InvalidArgument("average_precision: truth contains no row with label 1; average precision needs at "
                          "least one positive row");
  }
  return average_precision_unchecked(truth, score, positives);
}

double binary_log_loss(const std::vector<std::int64_t>& truth, const std::vector<double>& probability) {
  check_binary_input("binary_log_loss", truth, probability);
  return binary_log_loss_unchecked(truth, probability);
}

BinaryMetrics binary_metrics(const std::vector<std::int64_t>& truth, const std::vector<double>& probability,
                             double threshold) {
  check_binary_input("binary_metrics", truth, probability);
  if (!std::isfinite(threshold)) {
    throw InvalidArgument(fmt::format("binary_metrics: threshold is {}, expected a finite number", threshold));
  }

  std::vector<std::int64_t> predicted(truth.size());
  for (std::size_t i = 0; i < truth.size(); ++i) {
    predicted[i] = probability[i] >= threshold ? 1 : 0;
  }

  BinaryMetrics metrics;
  metrics.threshold = threshold;
  metrics.confusion = confusion_matrix(truth, predicted, 2);

  const detail::BinaryCounts counts = count_binary(truth, predicted);
  const detail::ClassScores scores = detail::class_scores(counts.tp, counts.fp, counts.fn);
  metrics.accuracy = static_cast<double>(counts.tp + counts.tn) / static_cast<double>(truth.size());
  metrics.precision = scores.precision;
  metrics.recall = scores.recall;
  metrics.f1 = scores.f1;

  // sklearn raises for a ranking metric of one-class truth; a whole evaluation should not fail for it,
  // so those metrics are NaN instead.
  const std::size_t positives = counts.tp + counts.fn;
  const bool both_labels = positives > 0 && positives < truth.size();
  metrics.roc_auc = both_labels ? roc_auc_unchecked(truth, probability, positives) : kNaN;
  metrics.pr_auc = positives > 0 ? average_precision_unchecked(truth, probability, positives) : kNaN;
  metrics.log_loss = binary_log_loss_unchecked(truth, probability);
  return metrics;
}

nlohmann::json BinaryMetrics::to_json() const {
  return {{"threshold", threshold}, {"accuracy", accuracy},   {"precision", precision},
          {"recall", recall},       {"f1", f1},               {"roc_auc", roc_auc},
          {"pr_auc", pr_auc},       {"log_loss", log_loss},   {"confusion_matrix", confusion_to_json(confusion)}};
}

std::string to_string(Metric metric) {
  switch (metric) {
    case Metric::F1: return "f1";
    case Metric::RocAuc: return "roc_auc";
    case Metric::PrAuc: return "pr_auc";
    case Metric::Accuracy: return "accuracy";
    case Metric::LogLoss: return "log_loss";
    case Metric::MacroF1: return "macro_f1";
    case Metric::WeightedF1: return "weighted_f1";
    case Metric::Mae: return "mae";
    case Metric::Rmse: return "rmse";
    case Metric::R2: return "r2";
  }
  throw InternalError(fmt::format("to_string: Metric value {} is out of range", static_cast<int>(metric)));
}

bool parse_metric(const std::string& name, Metric& metric) {
  static const std::pair<const char*, Metric> kNames[] = {
      {"f1", Metric::F1},           {"roc_auc", Metric::RocAuc},         {"pr_auc", Metric::PrAuc},
      {"accuracy", Metric::Accuracy}, {"log_loss", Metric::LogLoss},     {"macro_f1", Metric::MacroF1},
      {"weighted_f1", Metric::WeightedF1}, {"mae", Metric::Mae},         {"rmse", Metric::Rmse},
      {"r2", Metric::R2}};
  for (const auto& [text, value] : kNames) {
    if (name == text) {
      metric = value;
      return true;
    }
  }
  return false;
}

bool higher_is_better(Metric metric) {
  return metric != Metric::LogLoss && metric != Metric::Mae && metric != Metric::Rmse;
}

double choose_threshold(const std::vector<std::int64_t>& truth, const std::vector<double>& probability,
                        Metric objective) {
  check_binary_input("choose_threshold", truth, probability);
  if (objective == Metric::Mae || objective == Metric::Rmse || objective == Metric::R2) {
    throw InvalidArgument(fmt::format("choose_threshold: objective '{}' is a regression metric; pass a "
                                      "classification metric such as f1",
                                      to_string(objective)));
  }
  if (objective == Metric::RocAuc || objective == Metric::PrAuc || objective == Metric::LogLoss) {
    return 0.5;
  }

  const std::vector<std::size_t> order = order_by_score(probability, true);
  const std::size_t positives = count_positives(truth);
  const std::size_t negatives = truth.size() - positives;

  // Walk the distinct probabilities from the highest down. After each group, everything seen so far is
  // predicted positive, which is what a threshold between this group and the next one does.
  double best_threshold = 0.5;
  double best_score = -std::numeric_limits<double>::infinity();
  detail::BinaryCounts counts;
  for (std::size_t start = 0; start < order.size();) {
    std::size_t end = start;
    const double group_value = probability[order[start]];
    while (end < order.size() && probability[order[end]] == group_value) {
      ++(truth[order[end]] == 1 ? counts.tp : counts.fp);
      ++end;
    }
    if (end == order.size()) {
      break;  // No lower probability, so no midpoint below this group.
    }
    counts.fn = positives - counts.tp;
    counts.tn = negatives - counts.fp;

    const double next_value = probability[order[end]];
    double threshold = next_value + (group_value - next_value) / 2.0;
    if (!(threshold > next_value)) {
      threshold = group_value;  // Adjacent doubles: no double lies strictly between them.
    }

    // Strictly greater, so that a tie keeps the higher threshold found first.
    const double score = threshold_objective(objective, counts);
    if (score > best_score) {
      best_score = score;
      best_threshold = threshold;
    }
    start = end;
  }
  return best_threshold;
}

MulticlassMetrics multiclass_metrics(const std::vector<std::int64_t>& truth, const std::vector<double>& probability,
                                     std::size_t classes) {
  if (classes < 2) {
    throw InvalidArgument(fmt::format("multiclass_metrics: classes is {}, expected at least 2", classes));
  }
  if (truth.empty()) {
    throw InvalidArgument("multiclass_metrics: truth is empty; pass at least one row");
  }
  if (probability.size() != truth.size() * classes) {
    throw InvalidArgument(fmt::format("multiclass_metrics: probability has {} values but truth has {} rows of {} "
                                      "classes; pass rows x classes probabilities, row-major",
                                      probability.size(), truth.size(), classes));
  }
  check_class_labels("multiclass_metrics", truth, "truth", classes);
  check_probabilities("multiclass_metrics", probability);

  const std::size_t rows = truth.size();
  std::vector<std::int64_t> predicted(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    const double* row = probability.data() + r * classes;
    predicted[r] = static_cast<std::int64_t>(std::max_element(row, row + classes) - row);
  }

  MulticlassMetrics metrics;
  metrics.confusion = confusion_matrix(truth, predicted, classes);
  metrics.precision.resize(classes);
  metrics.recall.resize(classes);
  metrics.f1.resize(classes);
  metrics.support.resize(classes);

  std::size_t correct = 0;
  for (std::size_t k = 0; k < classes; ++k) {
    std::size_t row_sum = 0;
    std::size_t column_sum = 0;
    for (std::size_t j = 0; j < classes; ++j) {
      row_sum += metrics.confusion.at(k, j);
      column_sum += metrics.confusion.at(j, k);
    }
    const std::size_t tp = metrics.confusion.at(k, k);
    const detail::ClassScores scores = detail::class_scores(tp, column_sum - tp, row_sum - tp);
    metrics.precision[k] = scores.precision;
    metrics.recall[k] = scores.recall;
    metrics.f1[k] = scores.f1;
    metrics.support[k] = row_sum;
    correct += tp;
  }
  metrics.accuracy = static_cast<double>(correct) / static_cast<double>(rows);

  for (std::size_t k = 0; k < classes; ++k) {
    const double weight = static_cast<double>(metrics.support[k]) / static_cast<double>(rows);
    metrics.macro_precision += metrics.precision[k] / static_cast<double>(classes);
    metrics.macro_recall += metrics.recall[k] / static_cast<double>(classes);
    metrics.macro_f1 += metrics.f1[k] / static_cast<double>(classes);
    metrics.weighted_precision += weight * metrics.precision[k];
    metrics.weighted_recall += weight * metrics.recall[k];
    metrics.weighted_f1 += weight * metrics.f1[k];
  }

  // One-vs-rest AUC per class, then the plain mean. A class absent from the truth has no AUC
  // (sklearn raises), so the mean is NaN then.
  bool every_class_present = true;
  for (std::size_t k = 0; k < classes; ++k) {
    every_class_present = every_class_present && metrics.support[k] > 0 && metrics.support[k] < rows;
  }
  if (every_class_present) {
    std::vector<std::int64_t> is_class(rows);
    std::vector<double> class_probability(rows);
    double auc_sum = 0;
    for (std::size_t k = 0; k < classes; ++k) {
      for (std::size_t r = 0; r < rows; ++r) {
        is_class[r] = truth[r] == static_cast<std::int64_t>(k) ? 1 : 0;
        class_probability[r] = probability[r * classes + k];
      }
      auc_sum += roc_auc_unchecked(is_class, class_probability, metrics.support[k]);
    }
    metrics.roc_auc_ovr = auc_sum / static_cast<double>(classes);
  } else {
    metrics.roc_auc_ovr = kNaN;
  }

  // Log-loss as sklearn: clip every probability, renormalize the row, then take -log of the true class.
  double loss_sum = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    double row_sum = 0;
    for (std::size_t k = 0; k < classes; ++k) {
      row_sum += std::clamp(probability[r * classes + k], kLogLossEpsilon, 1.0 - kLogLossEpsilon);
    }
    const double chosen =
        std::clamp(probability[r * classes + static_cast<std::size_t>(truth[r])], kLogLossEpsilon,
                   1.0 - kLogLossEpsilon);
    loss_sum -= std::log(chosen / row_sum);
  }
  metrics.log_loss = loss_sum / static_cast<double>(rows);
  return metrics;
}

nlohmann::json MulticlassMetrics::to_json() const {
  return {{"accuracy", accuracy},
          {"macro_precision", macro_precision},
          {"macro_recall", macro_recall},
          {"macro_f1", macro_f1},
          {"weighted_precision", weighted_precision},
          {"weighted_recall", weighted_recall},
          {"weighted_f1", weighted_f1},
          {"roc_auc_ovr", roc_auc_ovr},
          {"log_loss", log_loss},
          {"precision", precision},
          {"recall", recall},
          {"f1", f1},
          {"support", support},
          {"confusion_matrix", confusion_to_json(confusion)}};
}

RegressionMetrics regression_metrics(const std::vector<double>& truth, const std::vector<double>& prediction) {
  check_lengths("regression_metrics", "truth", truth.size(), "prediction", prediction.size());
  check_finite("regression_metrics", "truth", truth);
  check_finite("regression_metrics", "prediction", prediction);

  const double rows = static_cast<double>(truth.size());
  const double truth_mean = std::accumulate(truth.begin(), truth.end(), 0.0) / rows;

  double absolute_sum = 0;
  double squared_sum = 0;
  double total_squared_sum = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const double error = truth[i] - prediction[i];
    absolute_sum += std::abs(error);
    squared_sum += error * error;
    total_squared_sum += (truth[i] - truth_mean) * (truth[i] - truth_mean);
  }

  RegressionMetrics metrics;
  metrics.mae = absolute_sum / rows;
  metrics.rmse = std::sqrt(squared_sum / rows);
  if (total_squared_sum > 0) {
    metrics.r2 = 1.0 - squared_sum / total_squared_sum;
  } else {
    // Constant truth: sklearn r2_score returns 1 for a perfect prediction and 0 otherwise.
    metrics.r2 = squared_sum == 0 ? 1.0 : 0.0;
  }
  return metrics;
}

nlohmann::json RegressionMetrics::to_json() const {
  return {{"mae", mae}, {"rmse", rmse}, {"r2", r2}};
}

}  // namespace lepton
