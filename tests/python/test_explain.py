"""Explanations through Python equal the C++ CLI's (`lepton explain`) to 1e-12 on an AI4I model.

Both sides use the background that the pipeline stored in the model, the default output link and the
same explainer options, so any difference would come from the bindings' conversions. The CLI computes
coalition values on the fast path by default, so each method is compared on both paths.
"""
import json
import subprocess

import numpy as np
import pytest

import lepton

ROWS = list(range(0, 12)) + [50, 51, 52, 53]
ROWS_ARGUMENT = "0-11,50-53"
TOLERANCE = 1e-12  # the same double computations on both sides; the CLI prints 17 significant digits

METHODS = {
    "exact": (lepton.ExactExplainer, lambda path: lepton.ExactOptions(threads=2, path=path), []),
    "kernel": (lepton.KernelExplainer, lambda path: lepton.KernelOptions(samples=64, seed=7, threads=2, path=path),
               ["--samples", "64"]),
    "permutation": (lepton.PermutationExplainer,
                    lambda path: lepton.PermutationOptions(permutations=4, seed=7, threads=2, path=path),
                    ["--samples", "4"]),
    "gradient": (lepton.GradientExplainer, lambda path: lepton.GradientOptions(threads=2), []),
}
PATHS = {"fast": lepton.CoalitionPath.Fast, "reference": lepton.CoalitionPath.Reference}


def cli_explanation(cli, model_path, ai4i_path, method, extra, out):
    command = [cli, "explain", "-m", model_path, "-d", ai4i_path, "-o", str(out), "--rows", ROWS_ARGUMENT,
               "--method", method, "--seed", "7", "-j", "2", *extra]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    with open(out / "attributions.json", encoding="utf-8") as file:
        return json.load(file)


def python_explanation(artifact, table, method, path="reference"):
    explainer_type, options, _ = METHODS[method]
    model = lepton.explain_model(artifact, lepton.default_output_link(artifact))
    groups = lepton.FeatureGroups.from_preprocessor(artifact.preprocessor)
    explainer = explainer_type(model, lepton.stored_background(artifact), groups, options(PATHS[path]))
    return explainer.explain(artifact.preprocessor.transform(table, ROWS))


def without_steps(model_path, out_path):
    """Saves the model with its step inputs and their first-layer columns removed, so that it has a gradient."""
    artifact = lepton.load_artifact(model_path)
    network = artifact.network
    smooth_terms = [k for k, product in enumerate(network.products) if product.step is None]
    assert len(smooth_terms) < len(network.products), "the default AI4I model should compute step inputs"
    first = network.layers[0]
    columns = list(range(network.inputs)) + [network.inputs + k for k in smooth_terms]
    smooth = lepton.Mlp([lepton.DenseLayer(first.weight[:, columns], first.bias, first.activation),
                         *network.layers[1:]])
    smooth.products = [network.products[k] for k in smooth_terms]
    artifact.network = smooth
    lepton.save_artifact(artifact, str(out_path))
    return str(out_path)


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("method", sorted(METHODS))
def test_explanation_equals_cli(method, path, python_run, cli, ai4i_path, table, tmp_path):
    result, _ = python_run
    # Integrated gradients need a network without steps. The next test checks that both sides reject one.
    model_path = without_steps(result.model_path, tmp_path / "smooth.lepton") if method == "gradient" \
        else result.model_path
    expected = cli_explanation(cli, model_path, ai4i_path, method, [*METHODS[method][2], "--path", path], tmp_path)
    artifact = lepton.load_artifact(model_path)
    explanation = python_explanation(artifact, table, method, path)

    assert explanation.method == expected["method"]
    assert explanation.group_names == expected["groups"]
    assert expected["rows_explained"] == ROWS
    np.testing.assert_allclose(explanation.base_values, expected["base_values"], rtol=0, atol=TOLERANCE)
    for r, row in enumerate(expected["rows"]):
        np.testing.assert_allclose(explanation.predictions[r], row["prediction"], rtol=0, atol=TOLERANCE)
        for g, name in enumerate(explanation.group_names):
            np.testing.assert_allclose(explanation.values[r, g], row["values"][name], rtol=0, atol=TOLERANCE)
            np.testing.assert_allclose(explanation.standard_errors[r, g], row["standard_errors"][name], rtol=0,
                                       atol=TOLERANCE)

    importance = lepton.global_importance(explanation)
    np.testing.assert_allclose(importance.mean_abs[:, 0], expected["global_importance"]["mean_abs"], rtol=0,
                               atol=TOLERANCE)


def test_gradient_refuses_step_inputs(python_run, cli, ai4i_path, table, tmp_path):
    result, _ = python_run
    completed = subprocess.run([cli, "explain", "-m", result.model_path, "-d", ai4i_path, "-o", str(tmp_path / "out"),
                                "--rows", "0-3", "--method", "gradient"], capture_output=True, text=True, timeout=120)
    assert completed.returncode != 0
    assert "step inputs" in completed.stderr
    assert not (tmp_path / "out" / "attributions.json").exists()

    artifact = lepton.load_artifact(result.model_path)
    model = lepton.explain_model(artifact, lepton.default_output_link(artifact))
    assert not model.has_gradient
    with pytest.raises(lepton.InvalidArgument, match="step inputs"):
        lepton.GradientExplainer(model, lepton.stored_background(artifact),
                                 lepton.FeatureGroups.from_preprocessor(artifact.preprocessor))


def test_exact_values_add_up_to_prediction(predictor, table):
    artifact = predictor.artifact
    explanation = python_explanation(artifact, table, "exact")
    totals = explanation.values.sum(axis=1) + explanation.base_values
    np.testing.assert_allclose(totals, explanation.predictions, rtol=0, atol=1e-12)
    # The explained output is the predictor's probability; the explainer runs in double, the predictor
    # in float32 kernels, so they agree to float precision only.
    np.testing.assert_allclose(explanation.predictions[:, 0], predictor.predict(table.select_rows(ROWS)).probability,
                               rtol=0, atol=1e-6)


def test_python_function_model_equals_mlp_model(predictor, table):
    artifact = predictor.artifact
    mlp_model = lepton.explain_model(artifact, lepton.OutputLink.Logistic)
    calls = []

    def model(rows):
        calls.append(rows.shape)
        assert not rows.flags.writeable
        return mlp_model.evaluate(rows)

    function_model = lepton.ExplainModel.from_function(mlp_model.inputs, mlp_model.outputs, model)
    groups = lepton.FeatureGroups.from_preprocessor(artifact.preprocessor)
    background = lepton.stored_background(artifact)
    rows = artifact.preprocessor.transform(table, ROWS[:4])

    expected = lepton.ExactExplainer(mlp_model, background, groups, lepton.ExactOptions(threads=2)).explain(rows)
    actual = lepton.ExactExplainer(function_model, background, groups, lepton.ExactOptions(threads=2)).explain(rows)
    assert calls, "the Python model was never called"
    np.testing.assert_allclose(actual.values, expected.values, rtol=0, atol=1e-12)


def test_python_model_exception_reaches_caller(predictor, table):
    artifact = predictor.artifact

    def broken(rows):
        raise ZeroDivisionError("model failed on purpose")

    model = lepton.ExplainModel.from_function(artifact.network.inputs, 1, broken)
    groups = lepton.FeatureGroups.from_preprocessor(artifact.preprocessor)
    explainer = lepton.ExactExplainer(model, lepton.stored_background(artifact), groups)
    with pytest.raises(ZeroDivisionError, match="on purpose"):
        explainer.explain(artifact.preprocessor.transform(table, [0]))


def test_python_model_wrong_shape_is_rejected(predictor, table):
    artifact = predictor.artifact
    model = lepton.ExplainModel.from_function(artifact.network.inputs, 1, lambda rows: np.zeros((len(rows), 3)))
    groups = lepton.FeatureGroups.from_preprocessor(artifact.preprocessor)
    explainer = lepton.ExactExplainer(model, lepton.stored_background(artifact), groups)
    with pytest.raises(ValueError, match=r"return an array of shape"):
        explainer.explain(artifact.preprocessor.transform(table, [0]))


def test_explanation_arrays_are_read_only_views(predictor, table):
    explanation = python_explanation(predictor.artifact, table, "exact")
    values = explanation.values
    assert values.shape == (len(ROWS), explanation.groups, 1)
    assert not values.flags.writeable
    assert values.base is explanation or values.base.base is explanation


def test_background_json_round_trips(predictor):
    background = lepton.stored_background(predictor.artifact)
    copy = lepton.Background.from_json(background.to_json())
    np.testing.assert_array_equal(copy.rows, background.rows)
    np.testing.assert_array_equal(copy.weights, background.weights)


def test_kernel_sampler_defaults_to_stratified():
    assert lepton.KernelOptions().sampler == lepton.KernelSampler.Stratified
    assert str(lepton.KernelSampler.Shap) == "shap"
    assert str(lepton.KernelSampler.Stratified) == "stratified"


@pytest.mark.parametrize("sampler", [lepton.KernelSampler.Shap, lepton.KernelSampler.Stratified])
def test_kernel_samplers_keep_efficiency(sampler, predictor, table):
    # 20 coalitions of the 62 that 6 groups have, so most sizes are sampled, not enumerated.
    artifact = predictor.artifact
    model = lepton.explain_model(artifact, lepton.default_output_link(artifact))
    groups = lepton.FeatureGroups.from_preprocessor(artifact.preprocessor)
    options = lepton.KernelOptions(samples=20, seed=7, threads=2, sampler=sampler)
    assert options.sampler == sampler
    explainer = lepton.KernelExplainer(model, lepton.stored_background(artifact), groups, options)
    explanation = explainer.explain(artifact.preprocessor.transform(table, ROWS))
    totals = explanation.values.sum(axis=1) + explanation.base_values
    np.testing.assert_allclose(totals, explanation.predictions, rtol=0, atol=1e-9)


def test_kernel_samplers_draw_different_coalitions(predictor, table):
    artifact = predictor.artifact
    model = lepton.explain_model(artifact, lepton.default_output_link(artifact))
    groups = lepton.FeatureGroups.from_preprocessor(artifact.preprocessor)
    rows = artifact.preprocessor.transform(table, ROWS)
    values = {}
    for sampler in (lepton.KernelSampler.Shap, lepton.KernelSampler.Stratified):
        options = lepton.KernelOptions(samples=20, seed=7, threads=2, sampler=sampler)
        values[sampler] = lepton.KernelExplainer(model, lepton.stored_background(artifact), groups,
                                                 options).explain(rows).values
    assert not np.array_equal(values[lepton.KernelSampler.Shap], values[lepton.KernelSampler.Stratified])


@pytest.mark.parametrize("rows, message", [("5-2", "runs backwards; write the smaller row first, as '2-5'"),
                                           ("9999-10000", "outside the file's rows 0-9999")])
def test_cli_rejects_bad_row_ranges(rows, message, python_run, cli, ai4i_path, tmp_path):
    result, _ = python_run
    command = [cli, "explain", "-m", result.model_path, "-d", ai4i_path, "-o", str(tmp_path / "out"), "--rows", rows]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1
    assert message in completed.stderr
    assert not (tmp_path / "out").exists()
