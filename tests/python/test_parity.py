"""The C++/Python parity table in docs/python.md matches the module."""
import pathlib
import re

import lepton

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "python.md"


def python_names():
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- parity-table-start -->")[1].split("<!-- parity-table-end -->")[0]
    names = []
    for line in table.splitlines()[2:]:  # skip the header and the separator
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 2, line
        for token in re.findall(r"`([^`]+)`", cells[1]):
            token = token.split("(")[0]
            if re.fullmatch(r"[A-Za-z_][\w.]*", token):
                names.append(token)
    return names


def resolve(dotted):
    value = lepton
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def test_table_lists_enough_names():
    assert len(python_names()) > 150


def test_every_python_name_in_table_exists():
    missing = []
    for name in python_names():
        try:
            resolve(name)
        except AttributeError:
            missing.append(name)
    assert missing == []


def test_every_module_name_is_in_table():
    listed = {name.split(".")[0] for name in python_names()}
    public = {name for name in dir(lepton) if not name.startswith("_")}
    assert sorted(public - listed) == []
