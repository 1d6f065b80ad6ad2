"""AI4I's failure rules: the F1 that they reach, and a copy of the data with their quantities.

    python3 failure_rules.py ceiling --data ai4i2020.csv --split-dir SPLIT_DIR --seeds 0,1,2
    python3 failure_rules.py augment --data ai4i2020.csv --out ai4i2020_physical.csv

Three failure modes follow thresholds on the machine's columns. Heat dissipation: process minus air temperature
below 8.6 K at under 1380 rpm. Power: torque x speed, in W, below 3500 or above 9000. Overstrain: tool wear x
torque above 11,000, 12,000 or 13,000 min Nm for product types L, M and H. `ceiling` checks that these rules
reproduce the data's HDF, PWF and OSF columns row by row, and prints the share of rows where each agrees. The
other failures (tool wear, TWF, and failures without a mode) are not a function of the columns.

ceiling: test F1 of "any of the three rules holds" on each seed's test rows, and on all rows. A model whose inputs
are these columns alone cannot expect a higher F1, because the other failures are random.

augment: writes the CSV with three columns appended ("temperature difference [K]", "torque x speed",
"tool wear x torque"), so that `lepton run` can be measured with the rules' quantities as inputs. The new file
is written to a temporary name and renamed.
"""
import argparse
import json
import os

import numpy as np
import pandas as pd

from common import TARGET, add_common_arguments, parse_common_arguments, physical_columns, read_split_rows, \
    sklearn_split_rows

OVERSTRAIN_LIMIT = {"L": 11000.0, "M": 12000.0, "H": 13000.0}
PHYSICAL_NAMES = ["temperature difference [K]", "torque x speed", "tool wear x torque"]


def rule_modes(frame):
    """Return {mode column: boolean array} for the three deterministic failure rules."""
    temperature_difference, torque_speed, wear_torque = physical_columns(frame).T
    speed = frame["Rotational speed [rpm]"].to_numpy()
    power_watts = torque_speed * 2 * np.pi / 60

    heat_dissipation = (temperature_difference < 8.6) & (speed < 1380)
    power = (power_watts < 3500) | (power_watts > 9000)
    overstrain = wear_torque > frame["Type"].map(OVERSTRAIN_LIMIT).to_numpy()
    return {"HDF": heat_dissipation, "PWF": power, "OSF": overstrain}


def f1(labels, predicted):
    true_positives = int(np.sum(labels & predicted))
    return 2 * true_positives / (int(np.sum(labels)) + int(np.sum(predicted)))


def ceiling(args):
    frame = pd.read_csv(args.data)
    labels = frame[TARGET].to_numpy() == 1
    modes = rule_modes(frame)
    predicted = modes["HDF"] | modes["PWF"] | modes["OSF"]
    agreement = {mode: float(np.mean(rule == (frame[mode].to_numpy() == 1))) for mode, rule in modes.items()}

    per_seed = []
    for seed in args.seed_list:
        if args.split_dir:
            test = read_split_rows(args.split_dir, seed)[2]
        else:
            test = sklearn_split_rows(labels.astype(np.int64), seed)[2]
        per_seed.append(dict(seed=seed, f1=f1(labels[test], predicted[test]),
                             missed=int(np.sum(labels[test] & ~predicted[test])),
                             false_alarms=int(np.sum(~labels[test] & predicted[test]))))

    print(json.dumps(dict(rule_agreement=agreement, all_rows=dict(f1=f1(labels, predicted), failures=int(labels.sum()),
                                        not_explained=int(np.sum(labels & ~predicted)),
                                        false_alarms=int(np.sum(~labels & predicted))),
                          mean_test_f1=float(np.mean([s["f1"] for s in per_seed])), per_seed=per_seed)))


def augment(args):
    frame = pd.read_csv(args.data)
    extra = physical_columns(frame)
    for i, name in enumerate(PHYSICAL_NAMES):
        frame[name] = extra[:, i]

    temporary = f"{args.out}.tmp-{os.getpid()}"
    frame.to_csv(temporary, index=False, float_format="%.10g")
    os.replace(temporary, args.out)
    print(f"wrote {len(frame)} rows with {', '.join(PHYSICAL_NAMES)} to {args.out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["ceiling", "augment"])
    parser.add_argument("--out", help="augment: path of the CSV to write")
    add_common_arguments(parser)
    args = parse_common_arguments(parser)
    if args.command == "augment":
        if not args.out:
            parser.error("augment needs --out PATH for the CSV to write")
        augment(args)
    else:
        ceiling(args)


if __name__ == "__main__":
    main()
