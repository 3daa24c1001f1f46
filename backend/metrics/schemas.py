"""Metric series as the API shows them, and the point budget a read may ask for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel

from backend.metrics.downsample import MAX_POINTS, MIN_POINTS

MaxPoints = Annotated[
    int | None,
    Query(ge=MIN_POINTS, le=MAX_POINTS, description="Downsample each series to at most this many points."),
]


class SeriesOut(BaseModel):
    steps: list[int]
    values: list[float | None]
    wall_times: list[float]


class MetricsOut(BaseModel):
    run_id: int
    series: dict[str, SeriesOut]
