"""The package's import graph: no import cycle in reclaim at module level, and no dependency
on reclaim_sim (the simulated cloud) but the lazy one of its sim and demo commands."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import reclaim

PACKAGE = Path(reclaim.__file__).resolve().parent

#: The only modules of reclaim that may import the simulated cloud, each inside a function
#: (lazily): the ``sim`` command, ``reclaim demo`` and ``reclaim invoke --lambda`` without a
#: cloud of its own.
SIM_ENTRY_POINTS = {"reclaim.cli", "reclaim.cli.serverless", "reclaim.demo"}


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    line: int
    lazy: bool  # inside a function body


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(root: Path = PACKAGE) -> Iterator[Import]:
    """Every import statement in the package, absolute, with whether it runs lazily."""
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        functions = [
            n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        lazy = {id(n) for f in functions for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                # pkg.name: a submodule, or (no such module) a name defined in pkg
                base = _resolve(name, path.name == "__init__.py", node)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                yield Import(name, target, node.lineno, id(node) in lazy)


def _is_sim(target: str) -> bool:
    return target == "reclaim_sim" or target.startswith("reclaim_sim.")


def test_the_import_parser_sees_relative_and_lazy_imports(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from . import sub\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "a.py").write_text(
        "from ..sub import b\nimport reclaim_sim\ndef f():\n    from reclaim_sim.x import y\n"
    )
    found = {(i.importer, i.target, i.lazy) for i in imports(root)}
    assert ("pkg", "pkg.sub", False) in found
    assert ("pkg.sub.a", "pkg.sub.b", False) in found
    assert ("pkg.sub.a", "reclaim_sim", False) in found
    assert ("pkg.sub.a", "pkg.sub", False) not in found, "b is a module of sub"
    assert ("pkg.sub.a", "reclaim_sim.x.y", True) in found


def test_reclaim_imports_the_simulated_cloud_only_lazily_from_its_entry_points() -> None:
    found = [i for i in imports() if _is_sim(i.target)]
    assert found, "the sim and demo commands import reclaim_sim"
    wrong = [i for i in found if i.importer not in SIM_ENTRY_POINTS or not i.lazy]
    assert wrong == []
    assert {i.importer for i in found} <= SIM_ENTRY_POINTS


def module_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at module level (imports inside functions
    run later, when every module is loaded).

    An import names the deepest module it reaches: ``from reclaim.sweeper.cloud import X``
    is an edge to ``reclaim.sweeper.cloud``, ``from reclaim import settings`` one to
    ``reclaim.settings``. Imports under ``if TYPE_CHECKING:`` count: they are module level.
    """
    modules = {module_name(p, root) for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for found in imports(root):
        if found.lazy:
            continue
        parts = found.target.split(".")
        for end in range(len(parts), 0, -1):
            target = ".".join(parts[:end])
            if target in modules:
                if target != found.importer:
                    graph[found.importer].add(target)
                break
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_cycles_are_found_through_several_modules_and_type_checking_blocks(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("from pkg.b import x\n")
    (root / "b.py").write_text("from . import c\n")
    (root / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import y\n"
    )
    (root / "d.py").write_text("import pkg.a\ndef f():\n    from pkg import d\n")
    assert cycles(module_graph(root)) == [["pkg.a", "pkg.b", "pkg.c"]]
    (root / "c.py").write_text("")
    assert cycles(module_graph(root)) == []


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(module_graph()) == [], "at module level (TYPE_CHECKING blocks included)"
