"""Every kind of bad input raises the mapped Python exception with the C++ message."""
import json

import numpy as np
import pandas as pd
import pytest

import lepton

VALID_REQUIREMENTS = {"version": 1, "task": "binary_classification", "target": "Machine failure"}


def test_exception_hierarchy():
    assert issubclass(lepton.InvalidArgument, ValueError)
    assert issubclass(lepton.ParseError, lepton.InvalidArgument)
    assert issubclass(lepton.ValidationError, lepton.InvalidArgument)
    assert issubclass(lepton.ConstraintError, lepton.InvalidArgument)
    assert issubclass(lepton.IoError, OSError)
    assert issubclass(lepton.FileNotFound, FileNotFoundError)
    assert issubclass(lepton.FileNotFound, lepton.IoError)
    assert issubclass(lepton.InternalError, RuntimeError)
    assert issubclass(lepton.OperationError, RuntimeError)
    for name in ["InvalidArgument", "IoError", "InternalError", "OperationError"]:
        assert issubclass(getattr(lepton, name), lepton.Error)
    assert not issubclass(lepton.InvalidArgument, RuntimeError)


def test_missing_csv_is_file_not_found(tmp_path):
    path = tmp_path / "absent.csv"
    with pytest.raises(FileNotFoundError, match="absent.csv") as caught:
        lepton.read_csv(str(path))
    assert isinstance(caught.value, lepton.FileNotFound)


def test_ragged_csv_names_line_and_column():
    with pytest.raises(ValueError, match=r"inline\.csv:3:1: data row 1 \(0-based\) has 1 fields") as caught:
        lepton.parse_csv("a,b\n1,2\n3\n", "inline.csv")
    assert isinstance(caught.value, lepton.ParseError)


def test_unclosed_quote_is_parse_error():
    with pytest.raises(lepton.ParseError, match=r"inline\.csv:2:3: quoted field is not closed"):
        lepton.parse_csv('a,b\n1,"2\n', "inline.csv")


def test_validation_error_lists_every_problem():
    document = dict(VALID_REQUIREMENTS, objectve="f1", task="binary_clasification")
    with pytest.raises(ValueError) as caught:
        lepton.parse_requirements(document, "reqs.json")
    error = caught.value
    assert isinstance(error, lepton.ValidationError)
    assert error.source == "reqs.json"
    assert sorted(problem.path for problem in error.problems) == ["$.objectve", "$.task"]
    assert "did you mean 'objective'?" in str(error)


def test_requirements_file_syntax_error_names_position(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"version": 1,\n "task": }')
    with pytest.raises(lepton.ParseError, match=r"bad\.json:2:10"):
        lepton.load_requirements(str(path))


def test_requirements_file_syntax_error_names_place_once(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"version": 1,\n "task": }')
    with pytest.raises(lepton.ParseError) as caught:
        lepton.load_requirements(str(path))
    message = str(caught.value)
    assert message == (f"{path}:2:10: JSON syntax error: unexpected '}}'; expected '[', '{{', or a literal; "
                       "fix the JSON syntax there")
    assert "json.exception" not in message


def test_requirements_text_syntax_error():
    # Column 3 is the 'o' at which "no" stops being a JSON literal.
    with pytest.raises(lepton.ParseError) as caught:
        lepton.parse_requirements("{not json")
    message = str(caught.value)
    assert message.startswith("<memory>:1:3: JSON syntax error: invalid literal; last read: '{no'")
    assert message.endswith("; fix the JSON syntax there, or pass a dict")
    assert "json.exception" not in message
    assert "parse error" not in message


def test_requirements_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        lepton.load_requirements(str(tmp_path / "absent.json"))


def test_unsupported_json_value_is_type_error():
    with pytest.raises(TypeError, match=r"document\['name'\]: object is not JSON data"):
        lepton.parse_requirements(dict(VALID_REQUIREMENTS, name=object()))


def test_integer_too_large_for_json():
    with pytest.raises(ValueError, match=r"document\['seed'\]: the integer .* does not fit in 64 bits"):
        lepton.parse_requirements(dict(VALID_REQUIREMENTS, seed=2**70))


def test_unmeetable_constraint_is_constraint_error(table):
    # Below the fixed call cost of every SIMD level, so no model can meet it.
    document = dict(VALID_REQUIREMENTS, constraints={"max_latency_us": 0.01})
    requirements = lepton.parse_requirements(document)
    profile = lepton.profile_table(table, requirements.target)
    with pytest.raises(ValueError, match=r"constraints\.max_latency_us = 0\.01") as caught:
        lepton.configure(requirements, profile)
    assert isinstance(caught.value, lepton.ConstraintError)


def test_unknown_column_is_invalid_argument(table):
    with pytest.raises(lepton.InvalidArgument, match="column 'Torque' not found"):
        table.column_index("Torque")


def test_cell_outside_table_is_index_error(table):
    with pytest.raises(IndexError, match=r"cell \(10000, 0\) is outside"):
        table.cell(10000, 0)


def test_corrupt_artifact_is_parse_error():
    with pytest.raises(lepton.ParseError, match=r"junk\.lepton: not a Lepton model file"):
        lepton.parse_artifact(b"garbage", "junk.lepton")


def test_missing_artifact_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        lepton.Predictor.load(str(tmp_path / "absent.lepton"))


def test_unwritable_artifact_path_is_os_error(predictor, tmp_path):
    with pytest.raises(OSError) as caught:
        lepton.save_artifact(predictor.artifact, str(tmp_path / "no" / "such" / "folder" / "m.lepton"))
    assert isinstance(caught.value, lepton.IoError)


def test_non_numeric_cell_names_row_and_column(predictor, ai4i_path):
    frame = pd.read_csv(ai4i_path, nrows=5)
    frame["Torque [Nm]"] = frame["Torque [Nm]"].astype(object)
    frame.loc[3, "Torque [Nm]"] = "high"
    with pytest.raises(lepton.ParseError, match=r"'high'") as caught:
        predictor.predict(frame)
    assert "Torque [Nm]" in str(caught.value)


def test_missing_feature_column_is_invalid_argument(predictor, ai4i_path):
    frame = pd.read_csv(ai4i_path, nrows=5).drop(columns=["Torque [Nm]"])
    with pytest.raises(lepton.InvalidArgument, match=r"Torque \[Nm\]"):
        predictor.predict(frame)


@pytest.mark.parametrize(
    "x, error, message",
    [
        (np.zeros((3, 8), dtype=np.int64), TypeError, r"x: expected dtype float32 or float64, got int64"),
        (np.zeros(8, dtype=np.float32), ValueError, r"x: expected a 2-D array .* got shape \(8,\)"),
        (np.zeros((2, 3, 8), dtype=np.float32), ValueError, r"x: expected a 2-D array"),
        (np.zeros((3, 7), dtype=np.float32), ValueError, r"x: expected 8 columns .* got shape \(3, 7\)"),
        (np.full((2, 8), np.nan, dtype=np.float64), ValueError, r"x: element \[0, 0\] is nan"),
        # float32 C-contiguous rows are read in place, without a copy, and are checked all the same.
        (np.array([[0.0] * 8, [0.0] * 7 + [np.nan]], dtype=np.float32), ValueError, r"x: element \[1, 7\] is nan"),
        (np.array([[0.0] * 3 + [np.inf] + [0.0] * 4], dtype=np.float32), ValueError, r"x: element \[0, 3\] is inf"),
        ([[0.0] * 8], TypeError, r"x: expected a lepton.Table, a pandas.DataFrame or a dict"),
    ],
    ids=["int64", "1-d", "3-d", "width", "nan", "float32 nan", "float32 inf", "list"],
)
def test_bad_encoded_rows_are_rejected(predictor, x, error, message):
    assert predictor.artifact.network.inputs == 8  # Type one-hot (3) + five numeric columns
    with pytest.raises(error, match=message):
        predictor.predict(x)


def test_float_labels_are_rejected():
    with pytest.raises(TypeError, match=r"labels: expected integer class ids, got dtype float64"):
        lepton.TrainingData(np.zeros((2, 3), dtype=np.float32), labels=np.array([0.0, 1.0]))


def test_negative_row_index_is_rejected(table):
    with pytest.raises(ValueError, match=r"rows\[1\] is -4"):
        table.select_rows([0, -4])


def test_row_index_past_end_is_index_error(table):
    with pytest.raises(IndexError, match=r"rows\[0\] is 10000"):
        table.select_rows([10000])


def test_record_value_of_wrong_type(predictor):
    with pytest.raises(TypeError, match=r"record\['Type'\]: expected a number, a str or None, got list"):
        predictor.predict_record({"Type": ["L"]})


def test_stop_token_inside_pipeline_is_operation_error(ai4i_path, requirements_path, tmp_path):
    token = lepton.StopToken()
    token.request_stop()
    options = lepton.PipelineOptions(data_path=ai4i_path, output_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="training was interrupted") as caught:
        lepton.run_pipeline(lepton.load_requirements(requirements_path), options, stop=token)
    assert isinstance(caught.value, lepton.OperationError)
    assert not (tmp_path / "model.lepton").exists()


def test_pipeline_missing_data_is_file_not_found(requirements_path, tmp_path):
    options = lepton.PipelineOptions(data_path=str(tmp_path / "absent.csv"), output_dir=str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        lepton.run_pipeline(lepton.load_requirements(requirements_path), options)


def test_bad_delimiter_option():
    with pytest.raises(ValueError, match="delimiter: expected one character, got ';;'"):
        lepton.CsvOptions(delimiter=";;")
