"""The package's import graph: reclaim does not depend on reclaim_sim (the simulated cloud)."""

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
                base = _resolve(name, path.name == "__init__.py", node)
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
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
    assert ("pkg.sub.a", "reclaim_sim.x.y", True) in found


def test_reclaim_imports_the_simulated_cloud_only_lazily_from_its_entry_points() -> None:
    found = [i for i in imports() if _is_sim(i.target)]
    assert found, "the sim and demo commands import reclaim_sim"
    wrong = [i for i in found if i.importer not in SIM_ENTRY_POINTS or not i.lazy]
    assert wrong == []
    assert {i.importer for i in found} <= SIM_ENTRY_POINTS
