"""The derived-input screen from Python: what it keeps on AI4I, folding, and bad arguments."""
import numpy as np
import pytest

import lepton


@pytest.fixture(scope="module")
def ai4i_encoded(table):
    features = [lepton.FeatureSpec("Type", lepton.FeatureType.Categorical)] + [
        lepton.FeatureSpec(name, lepton.FeatureType.Numeric)
        for name in ["Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]", "Torque [Nm]",
                     "Tool wear [min]"]
    ]
    rows = np.arange(table.rows)
    preprocessor = lepton.Preprocessor.fit(table, features, rows)
    encoding = lepton.TargetEncoding.fit(table, "Machine failure", lepton.Task.BinaryClassification, rows)
    return preprocessor, preprocessor.transform(table, rows), encoding.encode_labels(table, rows)


def test_screen_keeps_the_temperature_difference(ai4i_encoded):
    preprocessor, encoded, labels = ai4i_encoded
    found = lepton.search_derived_differences(preprocessor, encoded, labels, seed=42)
    assert found.candidates == 10
    assert [d.name for d in found.kept] == ["Air temperature [K] - Process temperature [K]"]
    assert found.kept[0].loss_reduction > 0.02
    assert found.best_rejected_reduction < 0.015
    assert found.final_loss < found.base_loss


def test_appended_column_is_the_standardized_difference(ai4i_encoded, table):
    preprocessor, encoded, labels = ai4i_encoded
    derived = lepton.search_derived_differences(preprocessor, encoded, labels, seed=42).kept
    widened = lepton.append_derived(encoded, derived)
    assert widened.shape == (encoded.shape[0], encoded.shape[1] + 1)
    np.testing.assert_array_equal(widened[:, :-1], encoded)
    assert abs(float(widened[:, -1].mean())) < 1e-4
    assert float(widened[:, -1].std()) == pytest.approx(1.0, abs=1e-3)


def test_screen_rejects_bad_arguments(ai4i_encoded):
    preprocessor, encoded, labels = ai4i_encoded
    bad = np.array(labels, copy=True)
    bad[3] = 2
    with pytest.raises(lepton.InvalidArgument, match=r"labels\[3\] is 2"):
        lepton.search_derived_differences(preprocessor, encoded, bad)
    with pytest.raises(ValueError, match="encoded: expected 8 columns"):
        lepton.search_derived_differences(preprocessor, encoded[:, :4], labels)
    with pytest.raises(TypeError):
        lepton.search_derived_differences(preprocessor, encoded, labels, 42)  # seed is keyword-only
