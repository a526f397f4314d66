"""Commands for reclaim on AWS Lambda: ``build`` (artefacts, template check) and local invoke."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from reclaim.cli.common import fail, print_json


class DepsSource(StrEnum):
    """Where the layer's dependencies come from (see :mod:`reclaim.serverless.build`)."""

    pip = "pip"
    env = "env"
    none = "none"


def _check(template: Path | None) -> list[str]:
    from reclaim.serverless.validate import validate

    try:
        return [str(p) for p in validate(template)]
    except (FileNotFoundError, ValueError) as exc:
        fail(f"template: {exc}")
    except ImportError as exc:
        fail(
            f"checking template.yaml needs the SAM translator and cfn-lint ({exc.name} is "
            "missing): pip install -c constraints.txt -e '.[build]'"
        )


def build(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where to write layer.zip and functions/ (default: build/lambda)."
        ),
    ] = None,
    deps: Annotated[
        DepsSource,
        typer.Option(
            "--deps",
            help="Layer dependencies: pip (Lambda's platform wheels; deployable), "
            "env (copied from this environment; offline, not for deployment), none (reclaim only).",
        ),
    ] = DepsSource.pip,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Only check template.yaml (SAM translator, cfn-lint, handlers)."
        ),
    ] = False,
    skip_check: Annotated[
        bool, typer.Option("--skip-check", help="Build without checking the template.")
    ] = False,
    template: Annotated[
        Path | None,
        typer.Option(
            "--template", help="Template to check (default: the project's template.yaml)."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Check template.yaml and build the Lambda layer and function zips, without Docker."""
    if not skip_check:
        problems = _check(template)
        if problems:
            for line in problems:
                typer.echo(line, err=True)
            fail(f"template: {len(problems)} problem(s)", 1)
        if check:
            typer.echo("template: sound (SAM translator, cfn-lint, handlers)")
            return
    from reclaim.serverless.build import DEFAULT_OUT, BuildError, mib
    from reclaim.serverless.build import build as run_build

    try:
        report = run_build(out or DEFAULT_OUT, deps=deps.value)
    except BuildError as exc:
        fail(str(exc))
    artefacts = {"layer": report.layer, **report.functions}
    problems = report.problems()
    if json_out:
        rows = [
            {"artefact": name, "path": str(a.path), "zipped": a.zipped, "unzipped": a.unzipped}
            for name, a in artefacts.items()
        ]
        print_json({"deps": deps.value, "artefacts": rows, "problems": problems})
    else:
        for name, a in artefacts.items():
            typer.echo(
                f"{name:<16} {mib(a.zipped):>10} zipped {mib(a.unzipped):>10} unzipped  {a.path}"
            )
        for line in problems:
            typer.echo(f"over a Lambda limit: {line}", err=True)
    if problems:
        raise typer.Exit(1)


def _simulated_cloud() -> Callable[[], AbstractContextManager[dict[str, str]]] | None:
    """The simulated cloud's empty-cloud starter, or None where reclaim_sim is not installed
    (the Lambda layer leaves it out)."""
    try:
        from reclaim_sim.server import empty_cloud_environment
    except ImportError:
        return None
    return empty_cloud_environment


def invoke_lambda(function: str, files: list[Path], store: str | None = None) -> None:
    """Run FUNCTION's real ``lambda_handler`` here on each Lambda event file; print the responses.

    The timer table is moto's (built from the template's schema) unless ``store`` names an
    endpoint; the cloud, when none is configured, an empty simulated one served here. Meant
    for ``reclaim invoke --lambda FUNCTION FILE``.
    """
    from reclaim.serverless.local import FunctionNotFound, invoke
    from reclaim.store import StoreError

    local_cloud = _simulated_cloud()

    responses: list[Any] = []
    for path in files:
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            fail(f"{path}: {exc}")
        try:
            responses.append(invoke(function, event, store_url=store, local_cloud=local_cloud))
        except FunctionNotFound as exc:
            fail(str(exc))
        except StoreError as exc:
            fail(f"store: {exc} (the batch would be redelivered)", 1)
        except ValueError as exc:
            fail(f"{path}: {exc}")
    print_json(responses[0] if len(responses) == 1 else responses)


def register(app: typer.Typer) -> None:
    """Add ``build`` to ``app``."""
    app.command()(build)
