"""The packages point one way, and no module imports itself back through others.

  common            errors, atomic writes, strict YAML, boards: imports none of the others
  train, hw         libraries: import common only (and never each other)
  flows             orchestrates FINN, train and hw
  wrn1bit           the console command over all of them

Every import statement counts, at module level or inside a function (a lazy import is still a
dependency). A `__main__` module is an entry point that nothing imports: it may call the command
line of a higher layer (`python -m hw verify` is `wrn1bit verify`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "train", "hw", "flows", "wrn1bit")
MAY_IMPORT = {"common": set(), "train": {"common"}, "hw": {"common"}, "flows": {"common", "train", "hw"},
              "wrn1bit": {"common", "train", "hw", "flows"}}


def project_modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def imported(module: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The project modules ``module`` imports: ``from a.b import c`` is a.b.c where that is a
    module, else a.b; relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names += [base] + [f"{base}.{a.name}" for a in node.names]
    found = set()
    for name in names:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = project_modules()
    return {m: imported(m, p, mods) for m, p in mods.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_circles():
    assert circles(import_graph()) == []


def test_circles_are_found():
    """The check itself: a two-module and a three-module circle, and a chain that is none."""
    assert circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert circles({"x": {"y"}, "y": {"z"}, "z": {"x"}}) == [["x", "y", "z"]]
    assert circles({"x": {"y"}, "y": {"z"}, "z": set()}) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_layers_point_one_way(package):
    wrong = sorted(f"{m} -> {d}" for m, deps in import_graph().items() if m.split(".")[0] == package
                   and not m.endswith("__main__")
                   for d in deps if d.split(".")[0] not in MAY_IMPORT[package] | {package})
    assert wrong == []


def test_main_modules_call_only_command_lines():
    """An entry point may reach up a layer, but only to a command line (a `cli` module)."""
    graph = import_graph()
    for m, deps in graph.items():
        if m.endswith("__main__"):
            up = [d for d in deps if d.split(".")[0] not in MAY_IMPORT[m.split(".")[0]] | {m.split(".")[0]}]
            assert all(d.endswith(".cli") for d in up), (m, up)
