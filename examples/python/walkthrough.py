"""The pipeline one stage at a time, as a host application composes it.

Usage: walkthrough.py DATA_CSV OUTPUT_DIR
Each step calls one public stage of the C++ SDK. run_pipeline composes the same stages in one call, with
cross-fitted members where the configurator chooses them.
"""
import pathlib
import sys

import numpy as np
import pandas as pd

import lepton


def main(data_path: str, output_dir: str) -> None:
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)

    # 1. Requirements, from a dict here (load_requirements reads the same document from a file).
    requirements = lepton.parse_requirements({
        "version": 1,
        "name": "walkthrough",
        "task": "binary_classification",
        "target": "Machine failure",
        "exclude": ["UDI", "Product ID", "TWF", "HDF", "PWF", "OSF", "RNF"],
        "objective": "f1",
        "seed": 42,
    })

    # 2. Data: a DataFrame becomes a lepton.Table once; every later stage reads that table.
    table = lepton.Table.from_pandas(pd.read_csv(data_path), source=data_path)
    profile = lepton.profile_table(table, requirements.target, requirements.task)
    print(f"{profile.rows} rows, minority class {profile.minority_fraction:.1%}")

    # 3. Configuration, with the reason for each choice.
    config = lepton.configure(requirements, profile)
    for field in ("hidden_units", "batch_size", "positive_class_weight"):
        print(f"{field} = {getattr(config, field)}: {config.reasons[field].text}")

    # For small data the configurator chooses K-fold cross-fitting (config.cross_fit_folds), which run_pipeline
    # trains with fit_cross_fitted; examples/predictive_maintenance/main.cpp shows those steps. This walkthrough
    # trains one model, so that each stage stays visible.
    config.cross_fit_folds = 1

    # 4. Split (stratified), then fit preprocessing on the training rows only.
    all_rows = np.arange(table.rows)
    target = lepton.TargetEncoding.fit(table, requirements.target, requirements.task, all_rows)
    labels = target.encode_labels(table, all_rows)
    split = lepton.stratified_split(labels, requirements.split, requirements.seed)
    preprocessor = lepton.Preprocessor.fit(table, config.features, split.train)
    print("encoded columns:", preprocessor.encoded_names())

    # 5. Train with a Python progress callback. Ctrl-C stops after the current batch.
    train = lepton.TrainingData(preprocessor.transform(table, split.train), labels=labels[split.train])
    validation = lepton.TrainingData(preprocessor.transform(table, split.validation), labels=labels[split.validation])
    history = []
    options = lepton.TrainerOptions(config=config, on_epoch=history.append,
                                    checkpoint_path=str(out / "checkpoint.pt"))
    training = lepton.Trainer(options).fit(train, validation)
    print(f"{len(history)} epochs, best {training.best_epoch}, stopped by {training.stop_reason}")

    # 6. Assemble the artifact and choose the threshold on validation rows.
    artifact = lepton.ModelArtifact()
    artifact.task = requirements.task
    artifact.preprocessor = preprocessor
    artifact.target = target
    artifact.network = training.network
    artifact.configuration = config.to_json()
    validation_probability = lepton.Predictor(artifact).predict(validation.features).probability
    artifact.threshold = lepton.choose_threshold(validation.labels, validation_probability, config.objective)

    # 7. Evaluate on the held-out test rows.
    predictor = lepton.Predictor(artifact)
    evaluation = lepton.evaluate(predictor, table.select_rows(split.test))
    artifact.metrics = {"test": evaluation.to_json()}
    print(f"test F1 {evaluation.binary.f1:.4f} at threshold {artifact.threshold:.4f}")

    # 8. Store an explanation background, export, and reload as a deployment would.
    groups = lepton.FeatureGroups.from_preprocessor(preprocessor)
    background = lepton.Background.kmeans(train.features, groups, lepton.KMeansOptions(clusters=10, seed=1))
    lepton.store_background(artifact, background)
    lepton.save_artifact(artifact, str(out / "model.lepton"))
    deployed = lepton.Predictor.load(str(out / "model.lepton"))

    # 9. int8 model, gated on the validation rows.
    quantized = lepton.quantize(artifact, None, validation.features, validation.labels)
    lepton.save_artifact(quantized.artifact, str(out / "model_int8.lepton"))
    print(f"int8 F1 {quantized.int8_metric:.4f} (f32 {quantized.f32_metric:.4f})")

    # 10. Explain the test rows that the model flags, from the model file alone.
    model = lepton.explain_model(deployed.artifact, lepton.default_output_link(deployed.artifact))
    explainer = lepton.ExactExplainer(model, lepton.stored_background(deployed.artifact), groups)
    test_rows = np.asarray(split.test)
    flagged = test_rows[deployed.predict(table.select_rows(test_rows)).label_index == 1]
    explanation = explainer.explain(preprocessor.transform(table, flagged[:5]))
    for r, row in enumerate(flagged[:5]):
        top = np.argsort(-np.abs(explanation.values[r, :, 0]))[:2]
        reasons = ", ".join(f"{explanation.group_names[g]} {explanation.values[r, g, 0]:+.3f}" for g in top)
        print(f"row {row}: P(failure) {explanation.predictions[r, 0]:.3f} because {reasons}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
