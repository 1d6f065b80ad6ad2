#!/usr/bin/python3
"""Write tests/golden/metric_goldens.json: metric values from scikit-learn on fixed seeded inputs.

Run from the repository root with Debian's python3-sklearn (1.2) and python3-numpy:
    /usr/bin/python3 tests/golden/make_metric_goldens.py > tests/golden/metric_goldens.json
test_metrics.cpp compares Lepton's metrics against these values. The inputs are stored beside the
expected values, so the test does not need numpy's generator.
"""

import json
import sys

import numpy as np
import sklearn
from sklearn import metrics

# Lepton clips log-loss probabilities to [1e-15, 1 - 1e-15]; sklearn 1.2 defaults to the dtype's epsilon.
LOG_LOSS_EPS = 1e-15


def floats(values):
    return [float(v) for v in values]


def binary_case(name, truth, probability, threshold=0.5):
    truth = np.asarray(truth, dtype=np.int64)
    probability = np.asarray(probability, dtype=np.float64)
    predicted = (probability >= threshold).astype(np.int64)
    both_labels = 0 < truth.sum() < len(truth)
    return {
        "name": name,
        "truth": [int(v) for v in truth],
        "probability": floats(probability),
        "threshold": threshold,
        "accuracy": metrics.accuracy_score(truth, predicted),
        "precision": metrics.precision_score(truth, predicted, zero_division=0),
        "recall": metrics.recall_score(truth, predicted, zero_division=0),
        "f1": metrics.f1_score(truth, predicted, zero_division=0),
        "macro_f1": metrics.f1_score(truth, predicted, average="macro", labels=[0, 1], zero_division=0),
        "weighted_f1": metrics.f1_score(truth, predicted, average="weighted", labels=[0, 1], zero_division=0),
        # sklearn raises for one-class truth; Lepton's binary_metrics reports NaN, written here as null.
        "roc_auc": metrics.roc_auc_score(truth, probability) if both_labels else None,
        "pr_auc": metrics.average_precision_score(truth, probability) if truth.sum() > 0 else None,
        "log_loss": metrics.log_loss(truth, probability, eps=LOG_LOSS_EPS, labels=[0, 1]),
        "confusion_matrix": metrics.confusion_matrix(truth, predicted, labels=[0, 1]).tolist(),
    }


def multiclass_case(name, truth, probability):
    truth = np.asarray(truth, dtype=np.int64)
    probability = np.asarray(probability, dtype=np.float64)
    classes = probability.shape[1]
    labels = list(range(classes))
    predicted = probability.argmax(axis=1)

    def score(function, average):
        return function(truth, predicted, labels=labels, average=average, zero_division=0)

    return {
        "name": name,
        "classes": classes,
        "truth": [int(v) for v in truth],
        "probability": floats(probability.ravel()),
        "accuracy": metrics.accuracy_score(truth, predicted),
        "macro_precision": score(metrics.precision_score, "macro"),
        "macro_recall": score(metrics.recall_score, "macro"),
        "macro_f1": score(metrics.f1_score, "macro"),
        "weighted_precision": score(metrics.precision_score, "weighted"),
        "weighted_recall": score(metrics.recall_score, "weighted"),
        "weighted_f1": score(metrics.f1_score, "weighted"),
        "precision": floats(score(metrics.precision_score, None)),
        "recall": floats(score(metrics.recall_score, None)),
        "f1": floats(score(metrics.f1_score, None)),
        "roc_auc_ovr": metrics.roc_auc_score(truth, probability, multi_class="ovr", average="macro", labels=labels),
        "log_loss": metrics.log_loss(truth, probability, eps=LOG_LOSS_EPS, labels=labels),
        "confusion_matrix": metrics.confusion_matrix(truth, predicted, labels=labels).tolist(),
    }


def regression_case(name, truth, prediction):
    truth = np.asarray(truth, dtype=np.float64)
    prediction = np.asarray(prediction, dtype=np.float64)
    return {
        "name": name,
        "truth": floats(truth),
        "prediction": floats(prediction),
        "mae": metrics.mean_absolute_error(truth, prediction),
        "rmse": metrics.mean_squared_error(truth, prediction, squared=False),
        "r2": metrics.r2_score(truth, prediction),
    }


def binary_cases(rng):
    truth = rng.integers(0, 2, 200)
    noisy = np.clip(0.35 * truth + rng.random(200) * 0.65, 0, 1)
    yield binary_case("random_200", truth, noisy)
    # One decimal digit: many tied probabilities, also across the two labels.
    yield binary_case("ties_200", truth, np.round(noisy, 1))
    yield binary_case("ties_threshold_0.3", truth, np.round(noisy, 1), threshold=0.3)

    rare = (rng.random(500) < 0.05).astype(np.int64)
    rare[0] = 1
    yield binary_case("imbalanced_500", rare, np.clip(0.2 * rare + rng.random(500) * 0.5, 0, 1))
    yield binary_case("all_predicted_negative", truth[:50], rng.random(50) * 0.49)
    yield binary_case("all_predicted_positive", truth[:50], 0.5 + rng.random(50) * 0.5)
    yield binary_case("perfect_separation", truth[:60], np.where(truth[:60] == 1, 0.9, 0.1))
    # Exact 0 and 1, on both sides of the truth: exercises the log-loss clipping.
    yield binary_case("extreme_probabilities", [1, 0, 1, 0, 1, 0], [1.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    yield binary_case("all_tied", truth[:20], np.full(20, 0.5))
    yield binary_case("one_class_negative", np.zeros(10, dtype=np.int64), rng.random(10))
    yield binary_case("one_class_positive", np.ones(10, dtype=np.int64), rng.random(10))


def multiclass_cases(rng):
    truth = rng.integers(0, 3, 150)
    probability = rng.dirichlet(np.ones(3), 150)
    probability[np.arange(150), truth] += 0.3
    probability /= probability.sum(axis=1, keepdims=True)
    yield multiclass_case("random_3_classes", truth, probability)

    truth = rng.integers(0, 4, 120)
    probability = rng.dirichlet(np.ones(4), 120)
    yield multiclass_case("random_4_classes", truth, probability)

    # Class 2 is never the argmax, so its precision has a zero denominator.
    truth = rng.integers(0, 3, 90)
    probability = rng.dirichlet([4, 4, 1], 90)
    probability[:, 2] = np.minimum(probability[:, 2], 0.3)
    probability /= probability.sum(axis=1, keepdims=True)
    probability[:, 2] = np.minimum(probability[:, 2], probability[:, :2].max(axis=1) * 0.99)
    probability /= probability.sum(axis=1, keepdims=True)
    yield multiclass_case("class_never_predicted", truth, probability)

    # Probabilities on a 0.1 grid: tied scores within each one-vs-rest column.
    truth = rng.integers(0, 3, 60)
    grid = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [0.4, 0.4, 0.2], [0.6, 0.2, 0.2]])
    yield multiclass_case("tied_scores", truth, grid[rng.integers(0, 4, 60)])


def regression_cases(rng):
    truth = rng.normal(10, 3, 100)
    yield regression_case("random_100", truth, truth + rng.normal(0, 1, 100))
    yield regression_case("constant_truth_perfect", np.full(20, 4.5), np.full(20, 4.5))
    yield regression_case("constant_truth_imperfect", np.full(20, 4.5), np.full(20, 4.5) + rng.normal(0, 1, 20))
    yield regression_case("worse_than_mean", truth[:30], truth[:30][::-1] * 2)


def main():
    rng = np.random.default_rng(20240601)
    goldens = {
        "command": "/usr/bin/python3 tests/golden/make_metric_goldens.py > tests/golden/metric_goldens.json",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "seed": 20240601,
        "binary": list(binary_cases(rng)),
        "multiclass": list(multiclass_cases(rng)),
        "regression": list(regression_cases(rng)),
    }
    json.dump(goldens, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
