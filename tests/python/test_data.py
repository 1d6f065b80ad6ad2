"""Tables from numpy and pandas, requirements from dicts and files, and numpy arrays without copies."""
import json
import math

import numpy as np
import pandas as pd
import pytest

import lepton


def test_real_file_shape(table):
    assert table.rows == 10000
    assert table.columns == 14
    assert table.column_names[8] == "Machine failure"
    assert table.cell(0, 1) == "M14860"


def test_data_frame_encodes_like_csv(table, ai4i_path, predictor):
    frame = pd.read_csv(ai4i_path)
    from_frame = lepton.Table.from_pandas(frame)
    assert from_frame.column_names == table.column_names
    preprocessor = predictor.artifact.preprocessor
    np.testing.assert_array_equal(preprocessor.transform(from_frame), preprocessor.transform(table))


def test_float_cells_round_trip_exactly():
    values = np.array([0.1, 1 / 3, 2.5e-300, -1e300, 298.1], dtype=np.float64)
    table = lepton.Table.from_columns({"x": values})
    assert [float(table.cell(r, 0)) for r in range(len(values))] == values.tolist()


def test_float32_cells_keep_their_double_value():
    values = np.array([0.1, 1 / 3], dtype=np.float32)
    table = lepton.Table.from_columns({"x": values})
    assert [float(table.cell(r, 0)) for r in range(2)] == [float(v) for v in values]


def test_missing_values_become_missing_cells():
    frame = pd.DataFrame({
        "number": [1.5, np.nan, 3.0],
        "text": ["a", None, "c"],
        "nullable": pd.array([1, None, 3], dtype="Int64"),
        "category": pd.Categorical(["x", "y", None]),
    })
    table = lepton.Table.from_pandas(frame)
    assert [table.is_missing(1, c) for c in range(3)] == [True, True, True]
    assert table.is_missing(2, 3)
    assert not table.is_missing(0, 3)
    assert table.cell(0, 2) == "1"
    assert table.cell(1, 3) == "y"


def test_infinite_value_is_rejected():
    with pytest.raises(ValueError, match=r"columns\['x'\]: row 1 is inf"):
        lepton.Table.from_columns({"x": np.array([1.0, np.inf])})


def test_bool_and_int_columns_become_numbers():
    table = lepton.Table.from_columns({"flag": np.array([True, False]), "count": np.array([7, -2])})
    assert [table.cell(0, 0), table.cell(1, 0)] == ["1", "0"]
    assert [table.cell(0, 1), table.cell(1, 1)] == ["7", "-2"]


def test_from_numpy_needs_one_name_per_column():
    with pytest.raises(ValueError, match="column_names: got 1 names for an array of shape \\(2, 2\\)"):
        lepton.Table.from_numpy(np.zeros((2, 2)), ["a"])
    table = lepton.Table.from_numpy(np.arange(6, dtype=np.float64).reshape(3, 2), ["a", "b"])
    assert table.column(1) == ["1", "3", "5"]


def test_to_pandas_round_trips_cells(table):
    frame = table.select_rows([0, 1, 2]).to_pandas()
    assert list(frame.columns) == table.column_names
    assert frame.iloc[1, 1] == table.cell(1, 1)


def test_requirements_from_dict_and_file_agree(requirements_path):
    with open(requirements_path, encoding="utf-8") as file:
        document = json.load(file)
    from_dict = lepton.parse_requirements(document)
    from_file = lepton.load_requirements(requirements_path)
    assert from_dict.to_json() == from_file.to_json()
    assert from_file.target == "Machine failure"
    assert from_file.task == lepton.Task.BinaryClassification
    assert str(from_file.objective) == "f1"
    assert from_file.constraints.max_latency_us == 50


def test_requirements_schema_is_a_dict():
    schema = lepton.requirements_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")
    assert "target" in schema["properties"]


def test_configuration_has_a_reason_per_field(table, requirements_path):
    requirements = lepton.load_requirements(requirements_path)
    config = lepton.configure(requirements, lepton.profile_table(table, requirements.target, requirements.task))
    assert "hidden_units" in config.reasons
    assert config.reasons["batch_size"].text
    assert lepton.ModelConfig.from_json(config.to_json()).to_json() == config.to_json()
    features, dropped = lepton.select_features(requirements, lepton.profile_table(table, requirements.target))
    assert [f.column for f in features] == [f.column for f in config.features]
    assert any("Product ID" in line for line in dropped)


def test_transform_output_owns_its_buffer_without_copy(predictor, table):
    encoded = predictor.artifact.preprocessor.transform(table)
    assert encoded.dtype == np.float32
    assert encoded.shape == (10000, 8)
    assert encoded.flags.c_contiguous
    assert not encoded.flags.owndata  # the buffer is the moved C++ vector, kept alive by a capsule
    assert encoded.base is not None


def test_prediction_arrays_view_the_result(predictor, table):
    predictions = predictor.predict(table)
    probability = predictions.probability
    assert not probability.flags.writeable
    assert np.shares_memory(probability, predictions.probability)
    with pytest.raises(ValueError):
        probability[0] = 1.0


def test_metrics_match_sklearn_definitions():
    truth = np.array([0, 0, 1, 1])
    probability = np.array([0.1, 0.4, 0.35, 0.8])
    # sklearn 1.2: roc_auc_score = 0.75, average_precision_score = 0.8333..., f1 at 0.5 = 0.6667
    assert lepton.roc_auc(truth, probability) == pytest.approx(0.75)
    assert lepton.average_precision(truth, probability) == pytest.approx(5 / 6)
    metrics = lepton.binary_metrics(truth, probability)
    assert metrics.f1 == pytest.approx(2 / 3)
    assert metrics.confusion.counts.tolist() == [[2, 0], [1, 1]]
    assert math.isclose(metrics.to_json()["f1"], metrics.f1)
