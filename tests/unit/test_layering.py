"""The house's layering, as pyproject.toml's [tool.importlinter] contracts state it: the
core's stages each import only the stages before them, the shared ground imports no stage,
only the adapters import the SDKs, the client knows nothing of the CLI or the service, and
there is no import circle at any depth. Plus one whole-tree check import-linter does not
make: no circle between modules of different top-level packages either."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "pyproject.toml"
# Both roots are on sys.path already: pyproject.toml's pytest `pythonpath`.


def _roots() -> list[str]:
    return list(tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["root_packages"])


def test_every_contract_is_kept(capsys) -> None:
    code = lint_imports(config_filename=str(CONFIG), no_cache=True)
    output = capsys.readouterr().out
    assert code == 0, output
    assert "BROKEN" not in output


def _circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in graph.modules:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return found


def test_no_module_imports_itself_back_through_others() -> None:
    graph = grimp.build_graph(*_roots(), cache_dir=None)
    assert _circles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    """The check above can fail: a two-module loop and a three-module one are found."""
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c", "p.d", "p.e"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.c", imported="p.d")
    graph.add_import(importer="p.d", imported="p.e")
    graph.add_import(importer="p.e", imported="p.c")
    assert sorted(_circles(graph)) == [["p.a", "p.b"], ["p.c", "p.d", "p.e"]]
