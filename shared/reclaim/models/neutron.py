"""Neutron security-group-rule notifications."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SecurityGroupRule(BaseModel):
    """One rule as ``security_group_rule.create.end`` carries it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1)
    security_group_id: str | None = None
    project_id: str | None = None
    direction: str | None = None
    ethertype: str | None = None
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


class SecurityGroupRulePayload(BaseModel):
    """``{"security_group_rule": {...}}`` on create; delete events carry only the id."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    rule: SecurityGroupRule

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "security_group_rule" in raw:
            return {"rule": raw["security_group_rule"]}
        if isinstance(raw, dict) and "security_group_rule_id" in raw:
            return {"rule": {"id": raw["security_group_rule_id"]}}
        return raw
