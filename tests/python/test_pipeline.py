"""Train -> export -> load -> predict through Python gives the numbers of the C++ CLI on AI4I.

Both runs train with one thread and the seed of examples/predictive_maintenance/requirements.json, and
the trainer is deterministic for a seed on one machine, so metrics and weights are compared exactly.
"""
import csv
import json
import subprocess

import numpy as np
import pandas as pd
import pytest

import lepton


def read_json(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def test_metrics_json_equals_cli(python_run, cli_run):
    _, out = python_run
    assert read_json(out / "metrics.json") == read_json(cli_run / "metrics.json")


def test_config_json_equals_cli(python_run, cli_run):
    _, out = python_run
    assert read_json(out / "config.json") == read_json(cli_run / "config.json")


def test_weights_equal_cli(python_run, cli_run):
    result, _ = python_run
    ours = lepton.load_artifact(result.model_path)
    theirs = lepton.load_artifact(str(cli_run / "model.lepton"))
    assert ours.threshold == theirs.threshold
    assert len(ours.network.layers) == len(theirs.network.layers)
    for mine, other in zip(ours.network.layers, theirs.network.layers):
        np.testing.assert_array_equal(mine.weight, other.weight)
        np.testing.assert_array_equal(mine.bias, other.bias)


def test_result_matches_written_metrics(python_run):
    result, out = python_run
    metrics = read_json(out / "metrics.json")
    assert result.test.to_json() == metrics["test"]
    assert result.validation.to_json() == metrics["validation"]
    assert result.training.stop_reason == "cross_fitted"
    assert len(result.members) == result.config.cross_fit_folds
    for member in result.members:
        assert member.stop_reason in {"early_stopping", "max_epochs"}


def test_predictions_equal_cli_predict(python_run, predictor, table, cli, ai4i_path, tmp_path):
    result, _ = python_run
    out = tmp_path / "predictions.csv"
    completed = subprocess.run([cli, "predict", "-m", result.model_path, "-d", ai4i_path, "-o", str(out)],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr

    with open(out, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    predictions = predictor.predict(table)
    classes = predictor.artifact.target.classes
    assert len(rows) == predictions.rows == 10000
    # The CLI writes probabilities with fmt's {:.9g}; Python's .9g rounds the same double the same way.
    assert [row["probability"] for row in rows] == [f"{p:.9g}" for p in predictions.probability]
    assert [row["label"] for row in rows] == [classes[i] for i in predictions.label_index]
    # The file's ID-like columns come along, so that each prediction names its machine.
    assert list(rows[0])[:3] == ["row", "UDI", "Product ID"]
    assert (rows[0]["UDI"], rows[0]["Product ID"]) == ("1", "M14860")


def test_saved_artifact_round_trips(predictor, table, tmp_path):
    path = tmp_path / "copy.lepton"
    lepton.save_artifact(predictor.artifact, str(path))
    reloaded = lepton.Predictor.load(str(path))
    np.testing.assert_array_equal(reloaded.predict(table).probability, predictor.predict(table).probability)

    data = lepton.serialize_artifact(predictor.artifact)
    assert data == path.read_bytes()
    parsed = lepton.parse_artifact(data, "copy")
    assert parsed.threshold == predictor.artifact.threshold


def test_inputs_of_every_kind_predict_alike(predictor, table, ai4i_path):
    expected = predictor.predict(table).probability
    frame = pd.read_csv(ai4i_path)
    encoded = predictor.encode(table)

    np.testing.assert_array_equal(predictor.predict(frame).probability, expected)
    np.testing.assert_array_equal(predictor.predict({c: frame[c].to_numpy() for c in frame.columns}).probability,
                                  expected)
    np.testing.assert_array_equal(predictor.predict(lepton.Table.from_pandas(frame)).probability, expected)
    np.testing.assert_array_equal(predictor.predict(encoded).probability, expected)
    np.testing.assert_array_equal(predictor.predict(encoded.astype(np.float64)).probability, expected)
    np.testing.assert_array_equal(predictor.predict(np.asfortranarray(encoded)).probability, expected)


def test_single_record_equals_batch_row(predictor, table, ai4i_path):
    frame = pd.read_csv(ai4i_path)
    batch = predictor.predict(table).probability
    record = frame.iloc[17].to_dict()
    assert predictor.predict_record(record).probability[0] == batch[17]

    columns = list(frame.columns)
    schema = predictor.bind(columns)
    workspace = lepton.Workspace()
    values = [frame.iloc[17][c] for c in columns]
    assert predictor.predict_values(schema, values, workspace).probability[0] == batch[17]
    np.testing.assert_array_equal(predictor.encode_values(schema, values), predictor.encode(table)[17])


def test_split_and_evaluate_reproduce_test_metrics(python_run, table, requirements_path):
    """Compose the stages by hand as the pipeline does, and score the test rows."""
    result, out = python_run
    requirements = lepton.load_requirements(requirements_path)
    all_rows = np.arange(table.rows)
    encoding = lepton.TargetEncoding.fit(table, requirements.target, requirements.task, all_rows)
    labels = encoding.encode_labels(table, all_rows)
    split = lepton.stratified_split(labels, requirements.split, requirements.seed)

    predictor = lepton.Predictor.load(result.model_path)
    evaluation = lepton.evaluate(predictor, table.select_rows(split.test))
    assert evaluation.to_json() == read_json(out / "metrics.json")["test"]

    predictions = predictor.predict(table.select_rows(split.test))
    assert lepton.evaluate(predictions, labels[split.test]).to_json() == evaluation.to_json()


def test_cross_fitting_by_hand_equals_pipeline(python_run, table, requirements_path):
    """Cross-fitting driven from Python with the pipeline's configuration learns the same members."""
    result, _ = python_run
    requirements = lepton.load_requirements(requirements_path)
    all_rows = np.arange(table.rows)
    encoding = lepton.TargetEncoding.fit(table, requirements.target, requirements.task, all_rows)
    labels = encoding.encode_labels(table, all_rows)
    split = lepton.stratified_split(labels, requirements.split, requirements.seed)
    learning_rows = np.sort(np.concatenate([split.train, split.validation]))
    preprocessor = lepton.Preprocessor.fit(table, result.config.features, learning_rows)

    encoded = preprocessor.transform(table, learning_rows)
    found = lepton.screen_derived_inputs(preprocessor, encoded, labels[learning_rows], seed=result.config.seed,
                                         products=result.config.derived_products)
    assert [d.name for d in found.kept] == [d.name for d in result.config.derived_features]
    quantities = ["Rotational speed [rpm] * Torque [Nm]", "Torque [Nm] * Tool wear [min]",
                  "Air temperature [K] - Process temperature [K]"]
    assert [d.name for d in found.kept[:3]] == quantities
    assert [d.name.split(" > ")[0] for d in found.kept[3:]] == quantities

    data = lepton.TrainingData(lepton.append_derived(encoded, found.kept), labels=labels[learning_rows])
    epochs = []
    options = lepton.TrainerOptions(config=result.config, on_epoch=epochs.append)
    fitted = lepton.fit_cross_fitted(options, data, result.config.cross_fit_folds)
    network = lepton.fold_derived(fitted.network, found.kept)

    assert len(epochs) == len(result.training.history)
    assert {record.members for record in epochs} == {result.config.cross_fit_folds}
    assert [m.best_epoch for m in fitted.members] == [m.best_epoch for m in result.members]
    assert network.inputs == result.training.network.inputs
    assert [(p.left, p.right, p.step, p.mean, p.scale) for p in network.products] == [
        (p.left, p.right, p.step, p.mean, p.scale) for p in result.training.network.products]
    for mine, other in zip(network.layers, result.training.network.layers):
        np.testing.assert_array_equal(mine.weight, other.weight)


def test_merged_model_runs_in_blocks(predictor):
    """The 10 merged members' middle layer runs as 10 blocks; a silent dense fallback would give equal outputs."""
    assert predictor.layer_blocks == [1, 10, 1]
    assert predictor.artifact.network.inputs == 8


def test_int8_predictor_agrees_with_f32(predictor, table):
    artifact = predictor.artifact
    rows = np.arange(0, table.rows, 5)
    encoded = artifact.preprocessor.transform(table, rows)
    labels = artifact.target.encode_labels(table, rows)

    quantized = lepton.quantize(artifact, None, encoded, labels, lepton.QuantizationOptions(tolerance=0.02))
    int8 = lepton.Predictor(quantized.artifact)
    assert quantized.validation_rows == len(rows)
    assert quantized.metric_drop <= 0.02
    assert int8.quantized == (lepton.LayerPrecision.Int8 in quantized.precisions)

    f32_labels = predictor.predict(encoded).label_index
    int8_labels = int8.predict(encoded).label_index
    assert np.mean(f32_labels == int8_labels) == pytest.approx(quantized.label_agreement)
    assert quantized.label_agreement >= 0.98


def test_int8_artifact_round_trips(predictor, table, tmp_path):
    artifact = predictor.artifact
    encoded = predictor.encode(table)
    labels = artifact.target.encode_labels(table, np.arange(table.rows))
    quantized = lepton.quantize(artifact, None, encoded, labels, lepton.QuantizationOptions(tolerance=1.0))
    path = tmp_path / "int8.lepton"
    lepton.save_artifact(quantized.artifact, str(path))

    reloaded = lepton.Predictor.load(str(path))
    assert reloaded.quantized
    assert [layer.precision for layer in reloaded.artifact.network.layers] == quantized.precisions
    np.testing.assert_array_equal(reloaded.predict(encoded).probability,
                                  lepton.Predictor(quantized.artifact).predict(encoded).probability)
