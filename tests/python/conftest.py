"""Shared fixtures: the AI4I data file, the C++ CLI, and one pipeline run by each of them.

LEPTON_SHARED_DIR names the folder with data/ai4i2020.csv (default: the repository's ../shared).
LEPTON_CLI names the `lepton` executable of the same build; by default the tests look for it in the
build tree that holds the imported module.
"""
import os
import pathlib
import subprocess

import pytest

import lepton

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
REQUIREMENTS = REPOSITORY / "examples" / "predictive_maintenance" / "requirements.json"


def shared_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("LEPTON_SHARED_DIR", REPOSITORY.parent / "shared"))


@pytest.fixture(scope="session")
def ai4i_path() -> str:
    path = shared_dir() / "data" / "ai4i2020.csv"
    assert path.is_file(), f"{path} is missing; set LEPTON_SHARED_DIR to the folder with data/ai4i2020.csv"
    return str(path)


@pytest.fixture(scope="session")
def requirements_path() -> str:
    return str(REQUIREMENTS)


@pytest.fixture(scope="session")
def cli() -> str:
    candidates = []
    if "LEPTON_CLI" in os.environ:
        candidates.append(pathlib.Path(os.environ["LEPTON_CLI"]))
    # build/bindings/python/lepton.*.so -> build/lepton
    candidates.append(pathlib.Path(lepton.__file__).resolve().parents[2] / "lepton")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.skip(f"the lepton CLI was not found at {', '.join(map(str, candidates))}; set LEPTON_CLI")


@pytest.fixture(scope="session")
def python_run(tmp_path_factory, ai4i_path, requirements_path):
    """The pipeline run through the Python module: (PipelineResult, output folder)."""
    out = tmp_path_factory.mktemp("python_run")
    requirements = lepton.load_requirements(requirements_path)
    result = lepton.run_pipeline(requirements, lepton.PipelineOptions(data_path=ai4i_path, output_dir=str(out)))
    return result, out


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory, cli, ai4i_path, requirements_path):
    """The same job run by the C++ CLI: its output folder."""
    out = tmp_path_factory.mktemp("cli_run")
    completed = subprocess.run([cli, "run", "-r", requirements_path, "-d", ai4i_path, "-o", str(out), "-q"],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return out


@pytest.fixture(scope="session")
def predictor(python_run):
    result, _ = python_run
    return lepton.Predictor.load(result.model_path)


@pytest.fixture(scope="session")
def table(ai4i_path):
    return lepton.read_csv(ai4i_path)
