"""The committed type stubs match the built module."""
import importlib.util
import pathlib

import lepton

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
STUBS = REPOSITORY / "bindings" / "python" / "lepton.pyi"


def load_generator():
    spec = importlib.util.spec_from_file_location("generate_stubs", REPOSITORY / "bindings" / "python" /
                                                  "generate_stubs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_are_current():
    # On failure, regenerate: PYTHONPATH=<build>/bindings/python python3 bindings/python/generate_stubs.py
    # bindings/python/lepton.pyi
    assert STUBS.read_text(encoding="utf-8") == load_generator().generate()


def test_every_public_name_has_a_stub():
    text = STUBS.read_text(encoding="utf-8")
    for name in dir(lepton):
        if name.startswith("_") and name != "__version__":
            continue
        assert f"class {name}" in text or f"def {name}(" in text or f"{name}:" in text, name


# NOTE: data fields (def_readonly/def_readwrite) are not checked; about 170 of them carry only their type
# in the generated signature, and their meaning is documented in the C++ headers.
def test_every_binding_has_a_docstring():
    missing = []
    for name in dir(lepton):
        value = getattr(lepton, name)
        if name.startswith("_") or not callable(value):
            continue
        if not (value.__doc__ or "").strip():
            missing.append(name)
        if isinstance(value, type) and not issubclass(value, BaseException):
            for attribute, member in vars(value).items():
                if attribute.startswith("_") or not callable(member) or hasattr(value, "__members__"):
                    continue
                doc = getattr(member, "__doc__", "") or ""
                # pybind11 puts the signature first; a docstring is any further text.
                if len([line for line in doc.splitlines() if line.strip()]) < 2:
                    missing.append(f"{name}.{attribute}")
    assert missing == []
