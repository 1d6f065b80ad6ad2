#pragma once
// Helpers shared by metrics.cpp and evaluator.cpp. Not installed.

#include <cstddef>

namespace lepton::detail {

/// Counts of a binary confusion matrix, with label 1 as the positive class.
struct BinaryCounts {
  std::size_t tp = 0, fp = 0, tn = 0, fn = 0;
};

/// Precision, recall and F1 of one class from its counts. A zero denominator gives 0, as sklearn's
/// zero_division=0. F1 is 2PR / (P + R), the form sklearn 1.2 uses, so results agree to the last bits.
struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
};
ClassScores class_scores(std::size_t true_positive, std::size_t false_positive, std::size_t false_negative);

/// Macro F1 over both classes of a binary problem (sklearn f1_score(average="macro", labels=[0, 1])).
double binary_macro_f1(const BinaryCounts& counts);

/// Support-weighted F1 over both classes (sklearn f1_score(average="weighted", labels=[0, 1])).
double binary_weighted_f1(const BinaryCounts& counts);

}  // namespace lepton::detail
