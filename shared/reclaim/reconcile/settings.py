"""Settings of the reconcile: how often it runs, the first-install grace, the page size."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from reclaim.durations import Duration, parse_duration


class ReconcileSettings(BaseModel):
    """How ``reclaim reconcile`` (and the periodic reconcile of ``reclaim run``) reads the cloud."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval: Duration = Field(
        parse_duration("1d"), description="time between two periodic reconciles"
    )
    first_install_grace: Duration = Field(
        parse_duration("14d"),
        description="on first install, no action falls due sooner than this after the reconcile",
    )
    page_size: int = Field(1000, ge=1, le=1000, description="servers per listing request")
