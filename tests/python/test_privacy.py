"""Privacy from Python: the RDP accountant against Opacus's values, the noise solver, DP fields and PII masking."""
import json
import math
import pathlib

import numpy as np
import pytest

import lepton
from conftest import shared_dir

# Golden values: fixtures/dp/epsilons.json, computed with Opacus 1.6.0's RDP accountant
# (opacus/accountants/analysis/rdp.py, default alphas, delta 1e-5); its "source" field records that.
EPSILONS = shared_dir() / "fixtures" / "dp" / "epsilons.json"
# The accountant runs the same float64 algorithm as Opacus, so only summation order separates the results.
RELATIVE = 1e-6


@pytest.fixture(scope="module")
def reference():
    assert EPSILONS.is_file(), f"{EPSILONS} is missing; set LEPTON_SHARED_DIR to the folder with fixtures/dp"
    return json.loads(EPSILONS.read_text(encoding="utf-8"))


def settings(reference):
    return reference["settings"]


def test_default_orders_match_opacus(reference):
    orders = lepton.default_rdp_orders()
    assert orders.dtype == np.float64
    assert orders.tolist() == pytest.approx(reference["alphas"]["values"], rel=1e-12)


def test_accountant_epsilon_matches_opacus(reference):
    assert len(settings(reference)) >= 3
    for setting in settings(reference):
        accountant = lepton.RdpAccountant(setting["sample_rate_q"], setting["noise_multiplier_sigma"])
        epsilon = accountant.epsilon(setting["steps"], setting["delta"])
        assert epsilon == pytest.approx(setting["epsilon_rdp"], rel=RELATIVE), setting["id"]


def test_accountant_order_matches_opacus(reference):
    for setting in settings(reference):
        accountant = lepton.RdpAccountant(setting["sample_rate_q"], setting["noise_multiplier_sigma"])
        attained = accountant.epsilon_at_order(setting["steps"], setting["delta"])
        assert attained.order == pytest.approx(setting["rdp_optimal_alpha"]), setting["id"]


def test_opacus_test_anchor(reference):
    anchor = reference["anchors_from_opacus_tests"]["reproduced"]["rdp_steps_2250"]
    assert lepton.RdpAccountant(0.04, 1.5).epsilon(2250, 1e-5) == pytest.approx(anchor, rel=RELATIVE)


def test_rdp_functions_compose_to_accountant(reference):
    setting = settings(reference)[0]
    orders = lepton.default_rdp_orders()
    per_step = lepton.rdp_per_step(setting["sample_rate_q"], setting["noise_multiplier_sigma"])
    converted = lepton.rdp_to_epsilon(orders, per_step * setting["steps"], setting["delta"])
    assert converted.epsilon == pytest.approx(setting["epsilon_rdp"], rel=RELATIVE)


def test_rdp_edge_values():
    assert lepton.rdp_per_step(0.0, 1.0).max() == 0.0
    assert np.isinf(lepton.rdp_per_step(0.01, 0.0)).all()
    assert lepton.RdpAccountant(0.01, 0.0).epsilon(1, 1e-5) == math.inf


def test_rdp_rejects_bad_arguments():
    with pytest.raises(lepton.InvalidArgument):
        lepton.rdp_per_step(1.5, 1.0)
    with pytest.raises(lepton.InvalidArgument):
        lepton.rdp_per_step(0.01, 1.0, orders=[0.5, 2.0])
    with pytest.raises(lepton.InvalidArgument):
        lepton.RdpAccountant(0.01, -1.0)
    with pytest.raises(ValueError):
        lepton.rdp_to_epsilon([2.0, 3.0], [0.1], 1e-5)
    with pytest.raises(ValueError):
        lepton.rdp_to_epsilon([2.0], [0.1], 1.0)


def test_solver_meets_budget(reference):
    setting = settings(reference)[1]
    target = setting["epsilon_rdp"]
    sigma = lepton.solve_noise_multiplier(target, setting["delta"], setting["sample_rate_q"], setting["steps"])
    spent = lepton.RdpAccountant(setting["sample_rate_q"], sigma).epsilon(setting["steps"], setting["delta"])
    assert spent <= target
    assert spent >= target * (1 - 1e-4)
    # The fixture's sigma produced target, so the smallest sigma within it is that sigma, up to the tolerance.
    assert sigma == pytest.approx(setting["noise_multiplier_sigma"], rel=1e-3)


def test_solver_rejects_unreachable_target():
    with pytest.raises(lepton.InvalidArgument):
        lepton.solve_noise_multiplier(1e-9, 1e-5, 1.0, 10**6)


def test_max_steps_within_budget():
    accountant = lepton.RdpAccountant(0.01, 1.0)
    steps = accountant.max_steps_within(2.0, 1e-5, 10**6)
    assert accountant.epsilon(steps, 1e-5) <= 2.0
    assert accountant.epsilon(steps + 1, 1e-5) > 2.0


def test_model_config_noise_multiplier_round_trips():
    config = lepton.ModelConfig()
    config.privacy = lepton.PrivacyBudget(epsilon=3.0)
    config.noise_multiplier = 1.25
    restored = lepton.ModelConfig.from_json(config.to_json())
    assert restored.noise_multiplier == 1.25
    assert restored.privacy.epsilon == 3.0


def dp_training_data(rows=240, seed=7):
    generator = np.random.default_rng(seed)
    features = generator.normal(size=(rows, 4)).astype(np.float32)
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(np.int64)
    return lepton.TrainingData(features, labels=labels)


def test_dp_training_reports_privacy_spent():
    config = lepton.ModelConfig()
    config.hidden_units = [8]
    config.max_epochs = 2
    config.batch_size = 40
    config.privacy = lepton.PrivacyBudget(epsilon=8.0, delta=1e-5, max_grad_norm=1.0)
    options = lepton.TrainerOptions(config=config, insecure_privacy_seed=3)
    result = lepton.Trainer(options).fit(dp_training_data(), dp_training_data(seed=8))
    spent = result.privacy
    assert spent is not None
    assert spent.epsilon <= 8.0
    assert spent.target_epsilon == 8.0
    assert spent.to_json()["epsilon"] == spent.epsilon


def test_plain_training_has_no_privacy_spent():
    config = lepton.ModelConfig()
    config.hidden_units = [8]
    config.max_epochs = 1
    result = lepton.Trainer(lepton.TrainerOptions(config=config)).fit(dp_training_data(), dp_training_data(seed=8))
    assert result.privacy is None


# ---- PII masking in a small pipeline run

MARKER = "PIIMARKER"


def write_pii_csv(folder: pathlib.Path, rows=300, seed=11) -> pathlib.Path:
    generator = np.random.default_rng(seed)
    regions = [f"{MARKER}-north", f"{MARKER}-south", f"{MARKER}-west"]
    lines = ["x1,x2,region,label"]
    for _ in range(rows):
        x1, x2 = generator.normal(size=2)
        region = int(generator.integers(0, 3))
        label = int(x1 + 0.8 * region - 0.8 > 0)
        lines.append(f"{x1:.5f},{x2:.5f},{regions[region]},{label}")
    path = folder / "pii.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pii_requirements(handling):
    return lepton.parse_requirements({
        "version": 1, "task": "binary_classification", "target": "label", "pii": ["region"],
        "pii_handling": handling, "constraints": {"max_training_seconds": 20}})


def test_requirements_expose_pii_fields():
    requirements = pii_requirements("hash")
    assert requirements.pii == ["region"]
    assert requirements.pii_handling == lepton.PiiHandling.Hash
    assert str(lepton.PiiHandling.Drop) == "drop"


def test_pii_hash_keeps_values_out_of_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_PII_KEY", "ab" * 32)
    data = write_pii_csv(tmp_path)
    out = tmp_path / "out"
    result = lepton.run_pipeline(pii_requirements("hash"), lepton.PipelineOptions(data_path=str(data),
                                                                                 output_dir=str(out)))
    artifact = lepton.load_artifact(result.model_path)
    region = [f for f in artifact.preprocessor.features if f.column == "region"]
    assert len(region) == 1
    assert len(region[0].categories) == 3
    for category in region[0].categories:
        assert len(category) == 64 and all(c in "0123456789abcdef" for c in category), category
    for written in out.iterdir():
        assert MARKER.encode() not in written.read_bytes(), written.name


def test_pii_hash_without_key_is_rejected(tmp_path, monkeypatch):
    monkeypatch.delenv("LEPTON_PII_KEY", raising=False)
    monkeypatch.delenv("LEPTON_PII_KEY_FILE", raising=False)
    data = write_pii_csv(tmp_path, rows=40)
    with pytest.raises(lepton.InvalidArgument, match="LEPTON_PII_KEY") as caught:
        lepton.run_pipeline(pii_requirements("hash"),
                            lepton.PipelineOptions(data_path=str(data), output_dir=str(tmp_path / "out")))
    assert MARKER not in str(caught.value)


def test_pii_drop_removes_column(tmp_path):
    data = write_pii_csv(tmp_path)
    result = lepton.run_pipeline(pii_requirements("drop"),
                                 lepton.PipelineOptions(data_path=str(data), output_dir=str(tmp_path / "out")))
    assert "region" not in [feature.column for feature in result.config.features]


def test_pipeline_keys_from_options_not_environment(tmp_path, monkeypatch):
    for variable in ("LEPTON_PII_KEY", "LEPTON_PII_KEY_FILE", "LEPTON_MODEL_KEY", "LEPTON_MODEL_KEY_FILE"):
        monkeypatch.delenv(variable, raising=False)
    data = write_pii_csv(tmp_path)
    model_key = lepton.EncryptionKey.generate()
    options = lepton.PipelineOptions(data_path=str(data), output_dir=str(tmp_path / "out"),
                                     protection=lepton.SaveOptions().with_key(model_key),
                                     pii_key=lepton.EncryptionKey.generate())

    result = lepton.run_pipeline(pii_requirements("hash"), options)

    with pytest.raises(lepton.InvalidArgument):
        lepton.load_artifact(result.model_path)
    artifact = lepton.load_artifact(result.model_path, lepton.LoadOptions().with_key(model_key))
    region = [f for f in artifact.preprocessor.features if f.column == "region"]
    assert len(region) == 1
    assert len(region[0].categories) == 3
