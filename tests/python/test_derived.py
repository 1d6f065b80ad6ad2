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
                      "Air temperature [K] - Process temperature [K]"]


def test_products_screen_keeps_the_failure_rules_quantities(ai4i_encoded):
    preprocessor, encoded, labels = ai4i_encoded
    found = lepton.screen_derived_inputs(preprocessor, encoded, labels, seed=42, products=True)
    assert found.candidates == 20
    quantities, steps = found.kept[:3], found.kept[3:]
    assert [d.name for d in quantities] == KEPT_WITH_PRODUCTS
    assert [d.kind for d in quantities] == [lepton.DerivedKind.Product, lepton.DerivedKind.Product,
                                            lepton.DerivedKind.Difference]
    assert all(d.loss_reduction > 0.04 for d in quantities)
    assert all(d.step is None for d in quantities)
    assert found.best_rejected_reduction < 0.04
    assert found.final_loss < found.base_loss

    # Each quantity brings a step at its best split. The data's rules put them near 9,000 W (in rpm x Nm,
    # 9000 x 60 / 2 pi = 85,944), a strain of 11,000 min Nm for type L, and a temperature gap of 8.6 K.
    assert [d.name.split(" > ")[0] for d in steps] == KEPT_WITH_PRODUCTS
    assert [d.kind for d in steps] == [d.kind for d in quantities]
    assert 85000 < steps[0].step < 87000
    assert 10900 < steps[1].step < 11100
    assert -8.8 < steps[2].step < -8.4
    assert steps[0].name == f"Rotational speed [rpm] * Torque [Nm] > {steps[0].step:.6g}"

    without = lepton.screen_derived_inputs(preprocessor, encoded, labels, seed=42, products=True, steps=False)
    assert [d.name for d in without.kept] == KEPT_WITH_PRODUCTS


def test_products_fold_into_network(ai4i_encoded, table):
    preprocessor, encoded, labels = ai4i_encoded
    kept = lepton.screen_derived_inputs(preprocessor, encoded, labels, seed=42, products=True).kept
    power = kept[0]
    speed, torque = preprocessor.features[3], preprocessor.features[4]
    assert (power.left_input, power.right_input) == (speed.offset, torque.offset)
    assert power.left_shift == pytest.approx(speed.mean)
    assert power.right_shift == pytest.approx(torque.mean)

    # The training columns: the encoded ones, then the three quantities and their three steps, standardized.
    # The first is speed x torque in raw units, and its step is 1 above the power limit.
    widened = lepton.append_derived(encoded, kept)
    assert widened.shape == (encoded.shape[0], 8 + 6)
    np.testing.assert_array_equal(widened[:, :8], encoded)
    assert np.abs(widened[:, -6:].mean(axis=0)).max() < 1e-4
    np.testing.assert_allclose(widened[:, -6:].std(axis=0), 1.0, atol=1e-3)
    raw_speed = np.array([float(v) for v in table.column(table.column_index("Rotational speed [rpm]"))])
    raw_torque = np.array([float(v) for v in table.column(table.column_index("Torque [Nm]"))])
    raw_power = raw_speed * raw_torque
    np.testing.assert_allclose(widened[:, 8], (raw_power - raw_power.mean()) / raw_power.std(), atol=1e-3)
    above = (raw_power > kept[3].step).astype(float)
    np.testing.assert_allclose(widened[:, 11], (above - above.mean()) / above.std(), atol=1e-3)

    # Folded, a network takes the 8 encoded columns and computes the two products and three steps itself.
    # The temperature difference folds into the first layer.
    layers = [lepton.DenseLayer(np.full((4, 14), 0.1, dtype=np.float32), np.zeros(4, dtype=np.float32),
                                lepton.Activation.Relu),
              lepton.DenseLayer(np.ones((1, 4), dtype=np.float32), np.zeros(1, dtype=np.float32),
                                lepton.Activation.Identity)]
    folded = lepton.fold_derived(lepton.Mlp(layers), kept)
    assert folded.inputs == 8
    wear = preprocessor.features[5].offset
    air, process = preprocessor.features[1].offset, preprocessor.features[2].offset
    assert [(p.left, p.right) for p in folded.products] == [(speed.offset, torque.offset), (torque.offset, wear),
                                                            (speed.offset, torque.offset), (torque.offset, wear),
                                                            (air, process)]
    assert [p.step is not None for p in folded.products] == [False, False, True, True, True]
    assert [p.difference for p in folded.products] == [False, False, False, False, True]
    assert folded.layers[0].inputs == 13


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
