"""Times both derived-input screens (differences, and with products=True differences and products) on
synthetic data: 8,000 rows with 5 numeric features (AI4I's shape), 20,000 rows with 12 (the configurator's
largest case), and 100,000 rows with 12 (screened on a sample).

Run: PYTHONPATH=BUILD/bindings/python python3 tests/bench/bench_derived_screen.py [--screen products]
"""
import argparse
import time

import numpy as np

import lepton

CASES = [(8000, 5), (20000, 12), (100000, 12)]


def synthetic(rows, numeric, generator):
    """Columns x0..x{numeric-1}, and a label that fires where x0 - x1 > 1.5, plus 2 % random failures.

    The columns are normal around 5, so all are positive and every pair is screened as a difference and a
    product: the screen's largest candidate set.
    """
    x = 5.0 + generator.normal(size=(rows, numeric))
    labels = ((x[:, 0] - x[:, 1] > 1.5) | (generator.random(rows) < 0.02)).astype(int)
    names = [f"x{i}" for i in range(numeric)]
    table = lepton.Table(names, [[f"{value:.5f}" for value in x[:, i]] for i in range(numeric)])
    return table, names, labels


def main():
    parser = argparse.ArgumentParser(description="Time the derived-input screens on synthetic data.")
    parser.add_argument("--screen", choices=["both", "differences", "products"], default="both",
                        help="which screen to time (default: both)")
    args = parser.parse_args()
    screens = {"both": (False, True), "differences": (False,), "products": (True,)}[args.screen]

    generator = np.random.default_rng(0)
    print(f"{'screen':>11} {'rows':>7} {'numeric':>7} {'candidates':>10} {'screened':>8} {'seconds':>7}  kept")
    for rows, numeric in CASES:
        table, names, labels = synthetic(rows, numeric, generator)
        specs = [lepton.FeatureSpec(name, lepton.FeatureType.Numeric) for name in names]
        preprocessor = lepton.Preprocessor.fit(table, specs, np.arange(rows))
        encoded = preprocessor.transform(table)

        for products in screens:
            start = time.perf_counter()
            result = lepton.screen_derived_inputs(preprocessor, encoded, labels, seed=1, products=products)
            seconds = time.perf_counter() - start
            kept = ", ".join(d.name for d in result.kept)
            screen = "products" if products else "differences"
            print(f"{screen:>11} {rows:>7} {numeric:>7} {result.candidates:>10} {result.screened_rows:>8} "
                  f"{seconds:>7.1f}  {kept}")


if __name__ == "__main__":
    main()
