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
    found = lepton.screen_derived_inputs(preprocessor, encoded, labels, seed=42)
    assert found.candidates == 10
    assert [d.name for d in found.kept] == ["Air temperature [K] - Process temperature [K]"]
    assert found.kept[0].loss_reduction > 0.02
    assert found.best_rejected_reduction < 0.015
    assert found.final_loss < found.base_loss


def test_appended_column_is_the_standardized_difference(ai4i_encoded, table):
    preprocessor, encoded, labels = ai4i_encoded
    derived = lepton.screen_derived_inputs(preprocessor, encoded, labels, seed=42).kept
    widened = lepton.append_derived(encoded, derived)
    assert widened.shape == (encoded.shape[0], encoded.shape[1] + 1)
    np.testing.assert_array_equal(widened[:, :-1], encoded)
    assert abs(float(widened[:, -1].mean())) < 1e-4
    assert float(widened[:, -1].std()) == pytest.approx(1.0, abs=1e-3)


KEPT_WITH_PRODUCTS = ["Rotational speed [rpm] * Torque [Nm]", "Torque [Nm] * Tool wear [min]",
                      "Air temperature [K] / Process temperature [K]"]


def test_products_screen_keeps_the_failure_rules_quantities(ai4i_encoded):
    preprocessor, encoded, labels = ai4i_encoded
    found = lepton.screen_derived_inputs(preprocessor, encoded, labels, seed=42, products=True)
    assert found.candidates == 30
    assert [d.name for d in found.kept] == KEPT_WITH_PRODUCTS
    assert [d.kind for d in found.kept] == [lepton.DerivedKind.Product, lepton.DerivedKind.Product,
                                            lepton.DerivedKind.Ratio]
    assert all(d.loss_reduction > 0.04 for d in found.kept)
    assert found.best_rejected_reduction < 0.04
    assert found.final_loss < found.base_loss


def test_products_need_log_columns_then_fold(ai4i_encoded, table):
    preprocessor, encoded, labels = ai4i_encoded
    kept = lepton.screen_derived_inputs(preprocessor, encoded, labels, seed=42, products=True).kept
    with pytest.raises(lepton.InvalidArgument, match="not bound to encoded columns yet"):
        lepton.append_derived(encoded, kept)

    features = lepton.with_log_columns([lepton.FeatureSpec(t.column, t.type) for t in preprocessor.features], kept)
    assert [f.column for f in features if f.log_column] == [
        "Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]", "Torque [Nm]", "Tool wear [min]"]
    rows = np.arange(table.rows)
    logged = lepton.Preprocessor.fit(table, features, rows)
    wide = logged.transform(table, rows)
    assert wide.shape[1] == 13
    bound = lepton.bind_derived(kept, logged, wide)
    assert bound[0].left_input == logged.features[3].offset + 1

    # The five log columns carry the products and the ratio and leave the training columns; three derived
    # ones join.
    widened = lepton.append_derived(wide, bound)
    assert widened.shape == (wide.shape[0], 8 + 3)
    np.testing.assert_array_equal(widened[:, :8], encoded)
    assert np.abs(widened[:, -3:].mean(axis=0)).max() < 1e-4
    np.testing.assert_allclose(widened[:, -3:].std(axis=0), 1.0, atol=1e-3)


def test_screen_rejects_bad_arguments(ai4i_encoded):
    preprocessor, encoded, labels = ai4i_encoded
    bad = np.array(labels, copy=True)
    bad[3] = 2
    with pytest.raises(lepton.InvalidArgument, match=r"labels\[3\] is 2"):
        lepton.screen_derived_inputs(preprocessor, encoded, bad)
    with pytest.raises(ValueError, match="encoded: expected 8 columns"):
        lepton.screen_derived_inputs(preprocessor, encoded[:, :4], labels)
    with pytest.raises(TypeError):
        lepton.screen_derived_inputs(preprocessor, encoded, labels, 42)  # seed is keyword-only
