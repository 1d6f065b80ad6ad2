"""The Python examples run end to end on the real AI4I file."""
import os
import pathlib
import subprocess
import sys

import lepton

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


def run_example(script, *arguments):
    environment = dict(os.environ, PYTHONPATH=str(pathlib.Path(lepton.__file__).resolve().parent))
    return subprocess.run([sys.executable, str(REPOSITORY / "examples" / "python" / script), *arguments],
                          env=environment, capture_output=True, text=True, timeout=600)


def test_walkthrough_trains_and_explains(ai4i_path, tmp_path):
    finished = run_example("walkthrough.py", ai4i_path, str(tmp_path))
    assert finished.returncode == 0, finished.stderr
    assert "test F1 0." in finished.stdout
    assert (tmp_path / "model.lepton").is_file()
    assert (tmp_path / "model_int8.lepton").is_file()
    assert "because" in finished.stdout
