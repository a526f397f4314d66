"""The Docker-free build: layer and function zips, Lambda's size limits, imports in isolation."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from reclaim.serverless import build
from reclaim.serverless.build import (
    EXCLUDED,
    MAX_UNZIPPED,
    MAX_ZIPPED_DIRECT,
    BuildReport,
    canonical,
    check_imports,
    runtime_requirements,
)


@pytest.fixture(scope="module")
def env_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildReport]:
    """A full layer from this environment's installed wheels (offline)."""
    out = tmp_path_factory.mktemp("lambda-env")
    return out, build.build(out, deps="env")


def _names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_layer_holds_the_package_under_python_without_caches(tmp_path: Path) -> None:
    report = build.build(tmp_path, deps="none")
    names = _names(report.layer.path)
    assert "python/reclaim/__init__.py" in names
    assert "python/reclaim/serverless/notifications.py" in names
    assert all(n.startswith("python/") for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert _names(report.functions["notifications"].path) == ["app.py"]


def test_layer_leaves_out_the_simulated_cloud(tmp_path: Path) -> None:
    report = build.build(tmp_path, deps="none")
    names = _names(report.layer.path)
    assert "python/reclaim/cli/__init__.py" in names
    assert [n for n in names if "reclaim_sim" in n or "/sim/" in n or "scenarios" in n] == []


def test_build_is_reproducible(tmp_path: Path) -> None:
    first = build.build(tmp_path / "a", deps="none")
    second = build.build(tmp_path / "b", deps="none")
    assert first.layer.path.read_bytes() == second.layer.path.read_bytes()
    assert (
        first.functions["notifications"].path.read_bytes()
        == second.functions["notifications"].path.read_bytes()
    )


def test_layer_leaves_out_moto_and_the_amqp_listener() -> None:
    names = {canonical(r.split(">")[0].split("[")[0].split("=")[0]) for r in runtime_requirements()}
    assert {"moto", "oslo-messaging", "oslo-service"} <= set(EXCLUDED)
    assert not names & set(EXCLUDED)
    assert {"pydantic", "boto3", "openstacksdk"} <= names


def test_env_layer_fits_lambda_limits(env_build: tuple[Path, BuildReport]) -> None:
    _, report = env_build
    assert report.problems() == []
    assert report.layer.unzipped + report.functions["notifications"].unzipped < MAX_UNZIPPED
    assert report.layer.zipped < MAX_ZIPPED_DIRECT
    tops = {n.split("/")[1] for n in _names(report.layer.path) if n.count("/") > 1}
    assert {"reclaim", "pydantic", "boto3", "botocore", "openstack", "kombu", "amqp"} <= tops
    assert not {"moto", "oslo_messaging", "eventlet"} & tops


def test_each_function_imports_with_only_its_folder_and_the_layer(
    env_build: tuple[Path, BuildReport],
) -> None:
    out, report = env_build
    assert set(report.functions) == {"notifications", "sweeper", "reconcile", "mailer", "web"}
    for name in report.functions:
        folder = build.function_folders()[name]
        assert check_imports(out / "layer", folder) is None, name


def test_import_check_sees_a_missing_dependency(tmp_path: Path) -> None:
    build.build(tmp_path, deps="none")  # reclaim alone: pydantic is not there
    error = check_imports(tmp_path / "layer", build.function_folders()["notifications"])
    assert error is not None and "No module named" in error


def test_size_limits_are_reported() -> None:
    big = build.Artifact(Path("layer.zip"), MAX_ZIPPED_DIRECT + 1, MAX_UNZIPPED)
    small = build.Artifact(Path("fn.zip"), 10, 10)
    problems = BuildReport(big, {"fn": small}).problems()
    assert any("50 MiB" in p for p in problems)
    assert any("250 MiB" in p and p.startswith("fn:") for p in problems)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("RECLAIM_PIP_BUILD"),
    reason="downloads ~40 MB of Lambda-platform wheels; set RECLAIM_PIP_BUILD=1",
)
def test_pip_layer_for_lambda_platform(tmp_path: Path) -> None:
    report = build.build(tmp_path, deps="pip")
    assert report.problems() == []
    for name, folder in build.function_folders().items():
        assert check_imports(tmp_path / "layer", folder) is None, name
    print(
        f"\npip layer: {build.mib(report.layer.zipped)} zipped, {build.mib(report.layer.unzipped)} unzipped"
    )
