"""Response shapes of the runs API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from backend.plans import RunPlan
from backend.specs import RunSpec


class ArtifactOut(BaseModel):
    format: str
    size_bytes: int
    zip_size_bytes: int
    sha256: str
    url: str


class RunOut(BaseModel):
    id: int
    name: str
    status: str
    spec: RunSpec
    plan: RunPlan
    summary: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    step: int | None
    parent_run_id: int | None = None  # the dense run this run starts from (pretrained)
    latest: dict[str, float | None]
    artifacts: list[ArtifactOut]


class SeriesOut(BaseModel):
    steps: list[int]
    values: list[float | None]
    wall_times: list[float]


class MetricsOut(BaseModel):
    run_id: int
    series: dict[str, SeriesOut]
