"""Text features end to end: a maintenance note carries the failure signal, and the pipeline hashes its tokens."""
import numpy as np
import pytest

import lepton

WORDS = ["pump", "valve", "belt", "motor", "filter", "checked", "cleaned", "ok", "routine", "shift"]


def write_notes_csv(folder, rows=800, seed=5):
    """Rows whose label is 1 exactly when the note mentions a leak; the numeric column is noise."""
    generator = np.random.default_rng(seed)
    lines = ["load,note,label"]
    for _ in range(rows):
        words = list(generator.choice(WORDS, size=4))
        failed = generator.random() < 0.2
        if failed:
            words.insert(int(generator.integers(0, 4)), "LEAK")
        note = " ".join(words)
        lines.append(f"{generator.normal():.4f},\"{note}, seen\",{int(failed)}")
    path = folder / "notes.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def notes_requirements(note_type):
    return lepton.parse_requirements({
        "version": 1, "task": "binary_classification", "target": "label",
        "features": [{"column": "load", "type": "numeric"}, {"column": "note", "type": note_type}],
        "constraints": {"max_training_seconds": 60}})


@pytest.fixture(scope="module")
def notes_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notes")
    data = write_notes_csv(folder)
    result = lepton.run_pipeline(notes_requirements("text"),
                                 lepton.PipelineOptions(data_path=str(data), output_dir=str(folder / "out")))
    return result, data


def test_text_feature_learns_the_signal(notes_run):
    result, _ = notes_run
    assert result.test.binary.f1 > 0.9
    note = [f for f in lepton.load_artifact(result.model_path).preprocessor.features if f.column == "note"]
    assert len(note) == 1
    assert note[0].type == lepton.FeatureType.Text
    assert note[0].width == 32
    assert len(note[0].bucket_scale) == 32


def test_ignoring_the_text_loses_the_signal(tmp_path):
    data = write_notes_csv(tmp_path)
    result = lepton.run_pipeline(notes_requirements("ignore"),
                                 lepton.PipelineOptions(data_path=str(data), output_dir=str(tmp_path / "out")))
    assert result.test.binary.f1 < 0.6


def test_text_record_equals_batch_row(notes_run):
    result, data = notes_run
    predictor = lepton.Predictor.load(result.model_path)
    table = lepton.read_csv(str(data))
    batch = predictor.predict(table).probability
    row = 3
    record = {"load": float(table.cell(row, 0)), "note": table.cell(row, 1)}
    assert predictor.predict_record(record).probability[0] == pytest.approx(batch[row], abs=1e-6)
    missing = predictor.predict_record({"load": 0.0, "note": None}).probability[0]
    assert 0.0 <= missing <= 1.0


def test_text_is_one_explained_feature(notes_run):
    result, data = notes_run
    artifact = lepton.load_artifact(result.model_path)
    groups = lepton.FeatureGroups.from_preprocessor(artifact.preprocessor)
    assert [group.name for group in groups.groups] == ["load", "note"]
    assert len(groups.groups[1].columns) == 32
