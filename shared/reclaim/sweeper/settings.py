"""The sweeper's own settings (environment ``RECLAIM_SWEEP_*``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from reclaim.durations import Duration, parse_duration


class SweepSettings(BaseSettings):
    """Caps, leases, retries and parallelism of a sweep."""

    model_config = SettingsConfigDict(env_prefix="RECLAIM_SWEEP_", extra="forbid", frozen=True)

    dry_run: bool = Field(False, description="default for --dry-run: no mutating request at all")
    max_actions: int = Field(
        100, ge=0, description="destructive actions per sweep before the breaker opens"
    )
    max_actions_per_project: int = Field(
        25, ge=0, description="destructive actions per project per sweep before the breaker opens"
    )
    lease: Duration = Field(parse_duration("10m"), description="how long a claim holds a timer")
    max_attempts: int = Field(5, ge=1, description="failed tries before a timer is marked failed")
    tries_per_sweep: int = Field(3, ge=1, description="tries of one action within one sweep")
    retry_sleep: float = Field(
        0.5, ge=0, description="seconds before the first in-sweep retry (doubles)"
    )
    retry_after: Duration = Field(
        parse_duration("15m"),
        description="wait before the next sweep retries (doubles per attempt)",
    )
    parallelism: int = Field(8, ge=1, description="actions in flight at once")
    change_tolerance: Duration = Field(
        timedelta(seconds=5),
        description="clock skew allowed between updated_at and the timer start",
    )
    offload_grace: Duration = Field(
        parse_duration("1d"),
        description="a shelve offload this soon after the shelve keeps the clock",
    )
