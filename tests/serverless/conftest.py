"""Fixtures for the Lambda tier: sample Lambda events, stores, dead letters, a template copy."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from reclaim.deadletters import DeadLetterStore
from reclaim.store import DynamoTimerStore, open_store

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_EVENTS = ROOT / "events" / "lambda"
TEMPLATE = ROOT / "template.yaml"

_tables = iter(range(1_000_000))


def lambda_event(name: str) -> Any:
    """A sample Lambda event from ``events/lambda/`` by file name (without ``.json``)."""
    return json.loads((LAMBDA_EVENTS / f"{name}.json").read_text())


def fresh_table() -> str:
    """A table name no other test uses."""
    return f"lambda-{os.getpid()}-{next(_tables)}"


@pytest.fixture
def table_store() -> DynamoTimerStore:
    """A fresh timer table on moto, created from template.yaml's schema."""
    return open_store(f"memory://{fresh_table()}")


@pytest.fixture
def deadletters(table_store: DynamoTimerStore) -> DeadLetterStore:
    """Dead letters in the same table as ``table_store``."""
    return DeadLetterStore.beside(table_store)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of template.yaml and functions/ that a test may break; returns the template."""
    shutil.copytree(
        ROOT / "functions", tmp_path / "functions", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(TEMPLATE, tmp_path / "template.yaml")
    return tmp_path / "template.yaml"
