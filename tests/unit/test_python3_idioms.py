"""The collection's Python is Python 3 only (3.10+ on the control node): no `class X(object)` and no
`super(Cls, self)`, which the modules had carried over from Python 2 habits."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(REPO / "plugins").rglob("*.py"), *(REPO / "roles").rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(REPO)))
def test_no_python2_idioms(path):
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(getattr(base, "id", None) == "object" for base in node.bases):
            found.append("line %d: class %s(object)" % (node.lineno, node.name))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "super" and node.args:
            found.append("line %d: super() with arguments" % node.lineno)
    assert found == []
