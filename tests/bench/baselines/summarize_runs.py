"""Summarize `lepton run` results per seed set: test F1, ROC-AUC, PR-AUC, epochs, best epoch, training
seconds, and the wall time and peak memory that GNU time (`/usr/bin/time -v -o seed<S>/time.txt`) recorded.

    python3 summarize_runs.py ROOT --seeds 0,1,2
Reads ROOT/seed<S>/run/report.json and ROOT/seed<S>/time.txt for each seed.
"""
import argparse
import json
import os
import re

from common import summarize


def read_time_file(path):
    """Return wall seconds and peak resident memory (MiB) from GNU time's -v output."""
    text = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if not wall or not peak:
        raise ValueError(f"{path} has no GNU time -v wall time or peak memory line; run with /usr/bin/time -v")
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return seconds, int(peak.group(1)) / 1024


def read_run(root, seed):
    folder = os.path.join(root, f"seed{seed}")
    report = json.load(open(os.path.join(folder, "run", "report.json")))
    test = report["metrics"]["test"]
    training = report["training"]
    wall_seconds, peak_mib = read_time_file(os.path.join(folder, "time.txt"))
    return dict(seed=seed, f1=test["f1"], roc_auc=test["roc_auc"], pr_auc=test["pr_auc"],
                epochs=training["epochs"], best_epoch=training["best_epoch"],
                stop_reason=training["stop_reason"], training_seconds=training["seconds"],
                wall_seconds=wall_seconds, peak_mib=peak_mib)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="folder with one seed<S> subfolder per run")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds to summarize")
    args = parser.parse_args()

    results = [read_run(args.root, int(s)) for s in args.seeds.split(",")]
    keys = ["f1", "roc_auc", "pr_auc", "epochs", "best_epoch", "training_seconds", "wall_seconds", "peak_mib"]
    print(json.dumps(dict(seeds=args.seeds, summary=summarize(results, keys), per_seed=results)))


if __name__ == "__main__":
    main()
