"""The house: no import circles among the package's modules, nor among the training's (every
import counts, also one inside a function: a circle is a circle however late it closes)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import ROOT


def imports(package: str) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports (anywhere in the file)."""
    folder = ROOT / package
    modules = {p.stem for p in folder.glob("*.py")}
    graph = {}
    for path in folder.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 or node.module == package:  # from . import x / from .x import y / from package import x
                    names = [node.module] if node.level == 1 and node.module else [a.name for a in node.names]
                elif node.module and node.module.startswith(package + "."):
                    names = [node.module.split(".")[1]]
                else:
                    continue
                found |= {n.split(".")[0] for n in names if n.split(".")[0] in modules}
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names
                          if a.name.startswith(package + ".") and a.name.split(".")[1] in modules}
        graph[path.stem] = found - {path.stem}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each circle found by a depth-first walk, as the path that closes it."""
    found, state, path = [], {}, []

    def walk(node):
        state[node] = "open"
        path.append(node)
        for other in sorted(graph.get(node, ())):
            if state.get(other) == "open":
                found.append(path[path.index(other):] + [other])
            elif other not in state:
                walk(other)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return found


def test_the_walk_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", ["mkdocs_sanet", "training"])
def test_no_import_circles(package):
    graph = imports(package)
    assert len(graph) > 5
    assert circles(graph) == []
