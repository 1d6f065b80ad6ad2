"""Write an int8 copy of a Lepton model file, every layer int8 with one activation scale per row.

Usage: PYTHONPATH=BUILD/bindings/python /usr/bin/python3 tests/bench/quantize_model.py MODEL DATA OUT

The accuracy gate runs on every row of DATA with a tolerance of 1.0, so no layer falls back to f32. The
output is meant for measuring file sizes and speed, not for deployment: `lepton run` writes gated int8
exports itself when the configurator chooses int8.
"""

import sys

import lepton


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model_path, data_path, out_path = sys.argv[1:4]

    artifact = lepton.load_artifact(model_path)
    table = lepton.read_csv(data_path)
    rows = list(range(table.rows))
    encoded = artifact.preprocessor.transform(table, None)
    labels = artifact.target.encode_labels(table, rows)

    options = lepton.QuantizationOptions(tolerance=1.0)
    result = lepton.quantize(artifact, None, encoded, labels, options)
    lepton.save_artifact(result.artifact, out_path)
    print(f"{out_path}: layers {[str(p) for p in result.precisions]}, metric drop {result.metric_drop:.4f}")


if __name__ == "__main__":
    main()
