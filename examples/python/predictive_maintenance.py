"""Predictive maintenance on the AI4I 2020 data: train, reload, predict new machines, export int8.

Usage: predictive_maintenance.py DATA_CSV OUTPUT_DIR
Writes the pipeline's files (config.json, model.lepton, metrics.json, report.json, report.md) and
model_int8.lepton into OUTPUT_DIR.
"""
import pathlib
import sys

import numpy as np
import pandas as pd

import lepton

REQUIREMENTS = pathlib.Path(__file__).resolve().parents[1] / "predictive_maintenance" / "requirements.json"


def print_progress(record: lepton.EpochRecord) -> None:
    marker = "*" if record.improved else " "
    # One line per member in a terminal: each epoch overwrites the line, and a new member starts a new one.
    start = "\n" if record.epoch == 1 and record.member > 0 else "\r"
    print(f"{start}member {record.member + 1:2}/{record.members}  epoch {record.epoch:3}/{record.max_epochs}  "
          f"val_f1 {record.validation_metric:.4f}{marker}", end="")


def main(data_path: str, output_dir: str) -> None:
    requirements = lepton.load_requirements(str(REQUIREMENTS))
    options = lepton.PipelineOptions(data_path=data_path, output_dir=output_dir, on_epoch=print_progress)
    result = lepton.run_pipeline(requirements, options)  # Ctrl-C raises KeyboardInterrupt cleanly
    test = result.test.binary
    print(f"\ntest F1 {test.f1:.4f}, ROC-AUC {test.roc_auc:.4f}, threshold {test.threshold:.4f}")

    # Deployment side: the model file alone predicts raw records.
    predictor = lepton.Predictor.load(result.model_path)
    machines = pd.DataFrame({
        "Type": ["L", "H"],
        "Air temperature [K]": [302.1, 298.0],
        "Process temperature [K]": [310.5, 308.6],
        "Rotational speed [rpm]": [1290, 1550],
        "Torque [Nm]": [68.0, 40.0],
        "Tool wear [min]": [220, 10],
    })
    predictions = predictor.predict(machines)
    for row, probability in enumerate(predictions.probability):
        verdict = "service now" if predictions.label_index[row] == 1 else "ok"
        print(f"machine {row}: P(failure) = {probability:.3f} -> {verdict}")

    # int8 export, gated on the F1 of the validation rows (at most 0.005 below f32). The split is the
    # pipeline's: stratified on the target with the requirements' fractions and seed. The cross-fitted members
    # learned from these rows, so the gate measures how closely int8 follows f32, not how well it generalizes.
    frame = pd.read_csv(data_path)
    labels = predictor.artifact.target.encode_labels(frame, np.arange(len(frame)))
    split = lepton.stratified_split(labels, requirements.split, requirements.seed)
    validation = predictor.artifact.preprocessor.transform(frame, split.validation)
    quantized = lepton.quantize(predictor.artifact, None, validation, labels[split.validation])
    lepton.save_artifact(quantized.artifact, str(pathlib.Path(output_dir) / "model_int8.lepton"))
    print(f"int8 on the validation rows (learned from): F1 {quantized.int8_metric:.4f} "
          f"vs f32 {quantized.f32_metric:.4f}, "
          f"label agreement {quantized.label_agreement:.4f}, layers {[str(p) for p in quantized.precisions]}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
