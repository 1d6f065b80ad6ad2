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


def test_every_property_has_a_docstring():
    missing = []
    for name, cls in vars(lepton).items():
        if name.startswith("_") or not isinstance(cls, type) or issubclass(cls, BaseException):
            continue
        for attribute, member in vars(cls).items():
            if attribute.startswith("_") or not isinstance(member, property):
                continue
            # NOTE: pybind11 2.10 passes a static property's doc to property(), and CPython 3.11 drops it
            # because pybind11_static_property instances have no __dict__; the constants (BYTES,
            # FORMAT_VERSION, ...) keep their doc only in the binding source.
            if type(member).__name__ == "pybind11_static_property":
                continue
            if not (member.__doc__ or "").strip():
                missing.append(f"{name}.{attribute}")
    assert missing == []


def test_enum_value_has_a_docstring():
    # Every enum's `value` property comes from pybind11 itself, so its docstring is set in module.cpp.
    assert (vars(lepton.Task)["value"].__doc__ or "").strip() != ""


def test_committed_stubs_carry_property_docstrings():
    text = STUBS.read_text(encoding="utf-8")
    assert '"""Row indices of the training split."""' in text
