"""The architecture as CI checks it: the import-linter contracts of pyproject.toml are kept (the
layers among them), no two modules and no two packages import each other (directly or round a
longer loop, counting imports inside functions and under TYPE_CHECKING), and no module is over
500 lines. Import-time checks (no torch when the CLI, store or TUI starts) are in
test_boundaries.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "tuneterm"
MAX_LINES = 500


def _import_or_skip(name: str) -> Any:
    """import-linter (and grimp with it) is in the `test` extra, so CI always has it; a dev venv
    made before it was added skips these tests, but CI (CI=true) fails instead."""
    if os.environ.get("CI"):
        return __import__(name)
    return pytest.importorskip(name, reason="pip install -e '.[test]' brings import-linter")


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_import_linter_contracts_are_kept() -> None:
    _import_or_skip("importlinter")
    code = (
        "import sys; from importlinter.cli import lint_imports_command; "
        "sys.argv[0] = 'lint-imports'; lint_imports_command()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "0 broken" in proc.stdout, proc.stdout[-6000:]


def test_textual_contract_covers_every_package_but_the_tui() -> None:
    # import-linter's forbidden contract has no "everything except": a package added to tuneterm/
    # must be added to the contract's sources, or textual could creep into it unchecked.
    (contract,) = [c for c in _contracts() if c["id"] == "textual-only-in-tui"]
    top_level = {
        f"tuneterm.{p.stem if p.is_file() else p.name}"
        for p in PKG.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()
    }
    assert set(contract["source_modules"]) == top_level - {"tuneterm.tui"}


def test_every_package_directory_is_a_regular_package() -> None:
    # A folder without __init__.py is a namespace package: grimp (and so every contract) does not
    # see it, and setuptools' find_packages leaves it out of the wheel.
    missing = [
        str(d.relative_to(ROOT))
        for d in sorted(PKG.rglob("*"))
        if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))
        if not (d / "__init__.py").is_file()
    ]
    assert missing == []


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def _a_cycle(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """One concrete loop through the group's first module, found breadth-first inside it."""
    members, start = set(group), group[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    return group


# Imports that still close a loop, each with the work that removes it. Empty this list as they
# go: an entry whose import is gone fails the test below, so the list cannot go stale.
KNOWN_BACK_EDGES: dict[tuple[str, str], str] = {}


def _import_graph() -> dict[str, set[str]]:
    """Every module of tuneterm and the modules of tuneterm it imports, anywhere in the module:
    at the top, inside functions, and under `if TYPE_CHECKING:` (a type-only import is still an
    arrow a reader follows, and the first one a refactor turns into a real import)."""
    grimp = _import_or_skip("grimp")
    built = grimp.build_graph("tuneterm", exclude_type_checking_imports=False, cache_dir=None)
    graph = {m: set(built.find_modules_directly_imported_by(m)) for m in built.modules}
    assert len(graph) > 50, sorted(graph)  # the whole package was seen, tui included
    return graph


def _without_known_back_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    stale = [edge for edge in KNOWN_BACK_EDGES if edge[1] not in graph.get(edge[0], set())]
    assert stale == [], f"these imports are gone: remove them from KNOWN_BACK_EDGES: {stale}"
    return {
        m: {n for n in imported if (m, n) not in KNOWN_BACK_EDGES} for m, imported in graph.items()
    }


def _package(module: str) -> str:
    """`tuneterm.config.schema` -> `tuneterm.config`: the top-level package (or module)."""
    return ".".join(module.split(".")[:2])


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    return [
        " -> ".join(_a_cycle(graph, group)) + f"  (in a loop of {len(group)}: {', '.join(group)})"
        for group in _strongly_connected(graph)
    ]


def test_no_import_cycles_between_modules() -> None:
    graph = _without_known_back_edges(_import_graph())
    assert _cycles(graph) == [], "import cycles:\n" + "\n".join(_cycles(graph))


def test_no_import_cycles_between_packages() -> None:
    # Squashed to tuneterm.X: a loop between two packages is a loop even when no two of their
    # modules import each other (config.schema -> store.ids and store.runs -> config).
    packages: dict[str, set[str]] = {}
    for module, imported in _without_known_back_edges(_import_graph()).items():
        here = _package(module)
        packages.setdefault(here, set()).update(_package(n) for n in imported)
        packages[here].discard(here)
    assert len(packages) >= 12, sorted(packages)
    assert _cycles(packages) == [], "package import cycles:\n" + "\n".join(_cycles(packages))


def test_the_layers_contract_names_every_top_level_package() -> None:
    # A package left out of the layers would be checked by no layer: each must be placed.
    (contract,) = [c for c in _contracts() if c["id"] == "layers"]
    placed = {
        f"tuneterm.{name.strip()}" for layer in contract["layers"] for name in layer.split("|")
    }
    top_level = {
        f"tuneterm.{p.stem if p.is_file() else p.name}"
        for p in PKG.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()
    }
    assert placed == top_level


def test_cycle_finder_reports_a_loop() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _strongly_connected(graph) == [["a", "b", "c"]]
    assert _a_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_no_module_over_500_lines() -> None:
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in sorted(PKG.rglob("*.py"))
    }
    assert len(sizes) > 50
    over = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert over == {}, f"modules over {MAX_LINES} lines: {over}"
