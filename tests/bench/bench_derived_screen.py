"""Times the derived-input screen on synthetic data: 8,000 rows with 5 numeric features (AI4I's shape),
20,000 rows with 12 (the configurator's largest case), and 100,000 rows with 12 (screened on a sample).

Run: PYTHONPATH=BUILD/bindings/python python3 tests/bench/bench_derived_screen.py
"""
import time

import numpy as np

import lepton

CASES = [(8000, 5), (20000, 12), (100000, 12)]


def synthetic(rows, numeric, generator):
    """Columns x0..x{numeric-1}, and a label that fires where x0 - x1 > 1.5, plus 2 % random failures."""
    x = generator.normal(size=(rows, numeric))
    labels = ((x[:, 0] - x[:, 1] > 1.5) | (generator.random(rows) < 0.02)).astype(int)
    names = [f"x{i}" for i in range(numeric)]
    table = lepton.Table(names, [[f"{value:.5f}" for value in x[:, i]] for i in range(numeric)])
    return table, names, labels


def main():
    generator = np.random.default_rng(0)
    print(f"{'rows':>7} {'numeric':>7} {'pairs':>5} {'screened':>8} {'seconds':>7}  kept")
    for rows, numeric in CASES:
        table, names, labels = synthetic(rows, numeric, generator)
        specs = [lepton.FeatureSpec(name, lepton.FeatureType.Numeric) for name in names]
        preprocessor = lepton.Preprocessor.fit(table, specs, np.arange(rows))
        encoded = preprocessor.transform(table)

        start = time.perf_counter()
        result = lepton.search_derived_differences(preprocessor, encoded, labels, seed=1)
        seconds = time.perf_counter() - start
        kept = ", ".join(d.name for d in result.kept)
        print(f"{rows:>7} {numeric:>7} {result.candidates:>5} {result.screened_rows:>8} {seconds:>7.1f}  {kept}")


if __name__ == "__main__":
    main()
