"""Build the deployable Lambda artefacts without Docker: the layer zip and one zip per function.

The layer is ``python/`` holding the reclaim package and its runtime dependencies. They come
from one of three places:

* ``pip``: ``pip install --target`` with Lambda's platform (manylinux2014 x86_64 wheels for
  CPython 3.11, binary only) pinned by ``constraints.txt``. This is the deployable build.
* ``env``: copied from this Python environment's installed distributions. No network; fit
  for tests and size estimates on a Linux x86_64 CPython 3.11, but the wheels may need a
  newer glibc than Lambda's, so do not deploy it.
* ``none``: the reclaim package alone (tests of the packaging itself).

Some runtime dependencies are left out (:data:`EXCLUDED`), each for a stated reason.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal

import reclaim

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = Path(reclaim.__file__).resolve().parent
FUNCTIONS = ROOT / "functions"
DEFAULT_OUT = ROOT / "build" / "lambda"

#: Lambda's limits: function code and all its layers unzipped, and a zip uploaded directly.
MAX_UNZIPPED = 250 * 1024 * 1024
MAX_ZIPPED_DIRECT = 50 * 1024 * 1024

PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.11"

#: Runtime dependencies that stay out of the layer, and why.
EXCLUDED: dict[str, str] = {
    "moto": "a test double; the embedded memory:// store uses it, the functions use dynamodb://",
    "oslo-messaging": "the AMQP listener's library; on Lambda the event source mapping consumes",
    "oslo-service": "the listener's service runner (its eventlet/greenlet pins have no "
    "manylinux2014 wheels for Lambda's python3.11)",
}

#: Distributions the layer needs beyond the project's runtime dependencies, and why. kombu
#: comes to the bus through oslo.messaging, which the layer leaves out; the sweeper's notice
#: publisher on Lambda uses it directly (pure Python, as are amqp and vine). Pinned by
#: ``constraints.txt``.
LAYER_EXTRAS: dict[str, str] = {
    "kombu": "notices from the sweeper function (reclaim.serverless.notices)",
}

Deps = Literal["pip", "env", "none"]
_SKIP_DIRS = {"__pycache__", "bin"}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def canonical(name: str) -> str:
    """A distribution name in its canonical form (PEP 503)."""
    return name.lower().replace("_", "-").replace(".", "-")


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The project's runtime dependencies from ``pyproject.toml``, minus :data:`EXCLUDED`,
    plus :data:`LAYER_EXTRAS`."""
    from packaging.requirements import Requirement

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    named = [r for r in project["dependencies"] if canonical(Requirement(r).name) not in EXCLUDED]
    return named + [
        n for n in LAYER_EXTRAS if n not in {canonical(Requirement(r).name) for r in named}
    ]


@dataclass(frozen=True)
class Artifact:
    """A built zip and the sizes Lambda's limits are about."""

    path: Path
    zipped: int
    unzipped: int


@dataclass
class BuildReport:
    """What a build made, and whether it fits Lambda."""

    layer: Artifact
    functions: dict[str, Artifact] = field(default_factory=dict)
    deps: Deps = "pip"

    def problems(self) -> list[str]:
        """Every limit an artefact breaks; [] when all fit."""
        out = []
        if self.layer.zipped > MAX_ZIPPED_DIRECT:
            out.append(
                f"{self.layer.path.name}: {mib(self.layer.zipped)} zipped, over the 50 MiB direct-upload limit"
            )
        for name, fn in self.functions.items():
            total = self.layer.unzipped + fn.unzipped
            if total > MAX_UNZIPPED:
                out.append(f"{name}: {mib(total)} unzipped with its layer, over Lambda's 250 MiB")
            if fn.zipped > MAX_ZIPPED_DIRECT:
                out.append(
                    f"{fn.path.name}: {mib(fn.zipped)} zipped, over the 50 MiB direct-upload limit"
                )
        if not self.functions and self.layer.unzipped > MAX_UNZIPPED:
            out.append(
                f"{self.layer.path.name}: {mib(self.layer.unzipped)} unzipped, over Lambda's 250 MiB"
            )
        return out


def mib(size: int) -> str:
    """A byte count in MiB, one decimal."""
    return f"{size / 1024 / 1024:.1f} MiB"


def _ignore(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n in _SKIP_DIRS or n.endswith((".pyc", ".pyo"))}


def copy_package(site: Path) -> None:
    """Copy the reclaim package source into ``site`` (no byte-code caches)."""
    shutil.copytree(PACKAGE, site / "reclaim", ignore=_ignore, dirs_exist_ok=True)


def pip_install(
    requirements: Iterable[str], site: Path, constraints: Path = ROOT / "constraints.txt"
) -> None:
    """Install ``requirements`` into ``site`` as Lambda's python3.11 on x86_64 needs them."""
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--upgrade",
        "--target", str(site), "--platform", PLATFORM, "--only-binary=:all:",
        "--python-version", PYTHON_VERSION, "--implementation", "cp",
        "--constraint", str(constraints), *requirements,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"pip install failed:\n{done.stderr.strip()[-4000:]}")
    shutil.rmtree(site / "bin", ignore_errors=True)


def environment_closure(requirements: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions ``requirements`` need, transitively, minus :data:`EXCLUDED`."""
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonical(req.name)
        if name in EXCLUDED or name == "reclaim":
            continue
        first = name not in seen
        if first:
            try:
                seen[name] = metadata.distribution(req.name)
            except metadata.PackageNotFoundError as exc:
                raise BuildError(f"{req.name} is not installed in this environment") from exc
        extras = [""] if first else []
        extras += sorted(req.extras)
        for wanted in extras:
            for sub in seen[name].requires or []:
                todo.append((Requirement(sub), wanted))
    return list(seen.values())


def copy_distributions(dists: Iterable[metadata.Distribution], site: Path) -> None:
    """Copy each distribution's installed files into ``site`` (not scripts, not caches)."""
    for dist in dists:
        for file in dist.files or []:
            parts = Path(str(file)).parts
            if (
                not parts
                or parts[0] == ".."
                or _SKIP_DIRS.intersection(parts)
                or file.suffix == ".pyc"
            ):
                continue
            source = Path(str(dist.locate_file(file)))
            if not source.is_file():
                continue
            dest = site / Path(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)


def zip_tree(source: Path, dest: Path) -> Artifact:
    """Zip ``source``'s contents (paths relative to it) reproducibly; report both sizes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    files = sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and not _SKIP_DIRS.intersection(p.relative_to(source).parts)
    )
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), _ZIP_TIME)
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data)
    return Artifact(dest, dest.stat().st_size, unzipped)


class BuildError(RuntimeError):
    """The artefacts could not be built."""


def function_folders(functions: Path = FUNCTIONS) -> dict[str, Path]:
    """Function name -> folder, for every ``functions/<name>/app.py``."""
    return {p.parent.name: p.parent for p in sorted(functions.glob("*/app.py"))}


def build(out: Path = DEFAULT_OUT, deps: Deps = "pip", functions: Path = FUNCTIONS) -> BuildReport:
    """Write ``out/layer.zip`` and ``out/functions/<name>.zip``; keep the unzipped layer in ``out/layer``."""
    layer_dir = out / "layer"
    shutil.rmtree(layer_dir, ignore_errors=True)
    site = layer_dir / "python"
    site.mkdir(parents=True)
    requirements = runtime_requirements()
    if deps == "pip":
        pip_install(requirements, site)
    elif deps == "env":
        copy_distributions(environment_closure(requirements), site)
    copy_package(site)
    report = BuildReport(zip_tree(layer_dir, out / "layer.zip"), deps=deps)
    for name, folder in function_folders(functions).items():
        report.functions[name] = zip_tree(folder, out / "functions" / f"{name}.zip")
    return report


def check_imports(layer: Path, function: Path, handler: str = "app.lambda_handler") -> str | None:
    """Import ``handler`` in a fresh interpreter that sees only ``function`` and ``layer/python``.

    Returns None when the handler imports and is callable, else the interpreter's error.
    """
    module, _, name = handler.rpartition(".")
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(function)!r}, {str(layer / 'python')!r}]\n"
        f"import importlib; m = importlib.import_module({module!r})\n"
        f"assert callable(getattr(m, {name!r})), 'not callable'\n"
        "import reclaim\n"
        f"assert reclaim.__file__.startswith({str(layer)!r}), 'reclaim from ' + reclaim.__file__\n"
        "bad = [n for n, mod in sys.modules.items() if n.split('.')[0] in ('moto', 'oslo_messaging')]\n"
        "assert not bad, f'imported {bad}'\n"
    )
    # -I: no PYTHONPATH, no user site; -S: no site-packages of this environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["failed"])[-1]
