"""AI4I loading, split, encoding and test metrics shared by the baseline scripts.

Features: Type one-hot (H, L, M) and the five numeric columns, standardized with the training rows' mean and
standard deviation (ddof 0), as lepton's Preprocessor does. UDI, Product ID and the failure-mode columns
TWF..RNF are left out. Target: "Machine failure".
"""
import argparse
import os

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve, roc_auc_score
from sklearn.model_selection import train_test_split

TARGET = "Machine failure"
NUMERIC = ["Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]", "Torque [Nm]",
           "Tool wear [min]"]
TYPES = ["H", "L", "M"]


def default_data_path():
    shared = os.environ.get("LEPTON_SHARED_DIR")
    return os.path.join(shared, "data", "ai4i2020.csv") if shared else None


def add_common_arguments(parser: argparse.ArgumentParser):
    """Add --data, --split-dir and --seeds, which every baseline script takes."""
    parser.add_argument("--data", default=default_data_path(),
                        help="path of ai4i2020.csv (default: $LEPTON_SHARED_DIR/data/ai4i2020.csv)")
    parser.add_argument("--split-dir",
                        help="folder written by export_split (lepton's split); without it, sklearn's "
                             "stratified train_test_split with random_state=seed")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated split and model seeds")


def parse_common_arguments(parser: argparse.ArgumentParser):
    args = parser.parse_args()
    if not args.data:
        parser.error("the data path is missing: pass --data PATH or set LEPTON_SHARED_DIR")
    if not os.path.isfile(args.data):
        parser.error(f"--data {args.data!r} is not a file; pass the path of ai4i2020.csv")
    args.seed_list = [int(s) for s in args.seeds.split(",")]
    return args


def read_split_rows(split_dir, seed):
    """Read the 0-based data row indices that export_split wrote for one seed."""
    parts = []
    for part in ["train", "validation", "test"]:
        path = os.path.join(split_dir, f"seed{seed}_{part}.txt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found; run export_split DATA {split_dir} {seed} first")
        parts.append(np.loadtxt(path, dtype=np.int64, ndmin=1))
    return parts


def sklearn_split_rows(labels, seed):
    """Stratified 60/20/20 split with sklearn: 40 % held out, then halved into validation and test."""
    rows = np.arange(len(labels))
    train, rest = train_test_split(rows, test_size=0.4, stratify=labels, random_state=seed)
    validation, test = train_test_split(rest, test_size=0.5, stratify=labels[rest], random_state=seed)
    return train, validation, test


def physical_columns(frame):
    """Return the three quantities that AI4I's failure rules threshold, as float64 [rows, 3].

    Process minus air temperature (heat dissipation), torque x rotational speed (power, up to the factor
    2 pi / 60) and tool wear x torque (overstrain), computed from the data's own columns.
    """
    columns = [frame["Process temperature [K]"] - frame["Air temperature [K]"],
               frame["Torque [Nm]"] * frame["Rotational speed [rpm]"],
               frame["Tool wear [min]"] * frame["Torque [Nm]"]]
    return np.stack([column.to_numpy(dtype=np.float64) for column in columns], 1)


def load_split(data_path, split_dir, seed, with_physical_columns=False):
    """Return (x, y) for train, validation and test; x is float32 [rows, 8] (11 with the physical columns),
    y is int64 [rows]."""
    frame = pd.read_csv(data_path)
    labels = frame[TARGET].to_numpy().astype(np.int64)
    if split_dir:
        train, validation, test = read_split_rows(split_dir, seed)
    else:
        train, validation, test = sklearn_split_rows(labels, seed)

    numeric = frame[NUMERIC].to_numpy(dtype=np.float64)
    if with_physical_columns:
        numeric = np.concatenate([numeric, physical_columns(frame)], 1)
    numeric = (numeric - numeric[train].mean(0)) / numeric[train].std(0)
    onehot = np.stack([(frame["Type"] == t).to_numpy() for t in TYPES], 1).astype(np.float64)
    features = np.concatenate([onehot, numeric], 1).astype(np.float32)

    return tuple((features[rows], labels[rows]) for rows in (train, validation, test))


def best_threshold(labels, probability):
    """Return the threshold that maximizes F1 on these rows, and that F1."""
    precision, recall, thresholds = precision_recall_curve(labels, probability)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    # The last precision/recall pair has no threshold (recall 0), so it is left out.
    best = int(np.argmax(f1[:-1]))
    return float(thresholds[best]), float(f1[best])


def evaluate_on_test(validation_labels, validation_probability, test_labels, test_probability):
    """F1 on test at the threshold chosen on validation for F1, and the threshold-free ROC-AUC and PR-AUC."""
    threshold, _ = best_threshold(validation_labels, validation_probability)
    return dict(f1=float(f1_score(test_labels, test_probability >= threshold)),
                roc_auc=float(roc_auc_score(test_labels, test_probability)),
                pr_auc=float(average_precision_score(test_labels, test_probability)),
                threshold=threshold)


def summarize(results, keys):
    """Mean and sample standard deviation (ddof 1) of each key over the per-seed results."""
    summary = {}
    for key in keys:
        values = np.array([r[key] for r in results], dtype=np.float64)
        summary[key] = dict(mean=float(values.mean()),
                            std=float(values.std(ddof=1)) if len(values) > 1 else 0.0)
    return summary
