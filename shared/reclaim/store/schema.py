"""The timer table's schema, read from ``template.yaml`` (its source of truth)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

#: Where a clone keeps the template; ``RECLAIM_TEMPLATE`` overrides it.
DEFAULT_TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"
TABLE_RESOURCE = "TimerTable"


class _CloudFormationLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A YAML loader that reads CloudFormation's short-form tags (``!Ref``...) as plain data
    (libyaml's when PyYAML has it: every command that makes a table reads the template)."""


def _tag(loader: Any, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = suffix if suffix == "Ref" else f"Fn::{suffix}"
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _tag)


def template_path() -> Path:
    """The template in force: ``$RECLAIM_TEMPLATE`` or the clone's ``template.yaml``."""
    return Path(os.environ.get("RECLAIM_TEMPLATE", DEFAULT_TEMPLATE))


def load_template(path: Path | None = None) -> dict[str, Any]:
    """Parse a SAM/CloudFormation template, short-form tags included."""
    path = path or template_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the timer table's schema comes from template.yaml "
            "(set RECLAIM_TEMPLATE to its path)"
        )
    with path.open(encoding="utf-8") as fh:
        loaded = yaml.load(fh, Loader=_CloudFormationLoader)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: not a template")
    return loaded


def create_table_request(table_name: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """CreateTable arguments for the timer table as the template defines it."""
    template = template or load_template()
    props = template["Resources"][TABLE_RESOURCE]["Properties"]
    request: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return request


def ttl_attribute(template: dict[str, Any] | None = None) -> str | None:
    """The attribute the template names for time-to-live expiry, if any."""
    template = template or load_template()
    spec = template["Resources"][TABLE_RESOURCE]["Properties"].get("TimeToLiveSpecification")
    return spec["AttributeName"] if spec and spec.get("Enabled") else None
