"""Response shapes of the sweeps API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from prunelab.core.sweeps import SweepSpec
from prunelab.server.runs.schemas import RunOut

PointStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "missing"]


class ProgressOut(BaseModel):
    """How many of the sweep's points stand where; `missing`: the point's run was deleted."""

    total: int
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    missing: int = 0


class SweepPointOut(BaseModel):
    index: int
    variant: str | None
    values: dict[str, Any] = Field(description="Axis path -> this point's value.")
    seed: int
    run_id: int | None = Field(description="The run that stands for the point now; null once it was deleted.")
    status: PointStatus


class SweepSummaryOut(BaseModel):
    id: int
    name: str
    status: Literal["running", "finished", "cancelled"] = Field(
        description="running while a point is queued or running; cancelled once cancelled and nothing runs."
    )
    progress: ProgressOut
    created_at: datetime
    cancelled_at: datetime | None
    owner: str | None


class SweepOut(SweepSummaryOut):
    spec: SweepSpec
    tag: str = Field(description='The tag every run of the sweep carries: filter the runs with tag:"sweep:<id>".')
    group_by: list[str] = Field(
        description="The sweep's default grouping for GET /api/groups: every axis but the seed "
        "(tag:variant, tag:<path>)."
    )
    points: list[SweepPointOut]


class SweepDetailOut(SweepOut):
    runs: list[RunOut] = Field(description="The points' runs, in point order (missing points have none).")


class SweepsPage(BaseModel):
    sweeps: list[SweepSummaryOut]
