"""Metric series as the API shows them, and the point budget a read may ask for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel

from prunelab.core.errors import InvalidParameter
from prunelab.server.metrics.downsample import MAX_POINTS, MIN_POINTS
from prunelab.server.metrics.store import Window

MaxPoints = Annotated[
    int | None,
    Query(ge=MIN_POINTS, le=MAX_POINTS, description="Downsample each series to at most this many points."),
]

MAX_STEP = 2**62
StartStep = Annotated[int | None, Query(ge=0, le=MAX_STEP, description="First step of a zoomed window (included).")]
EndStep = Annotated[int | None, Query(ge=0, le=MAX_STEP, description="Last step of a zoomed window (included).")]


def step_window(start_step: int | None, end_step: int | None) -> Window:
    """The window a read asked for; a reversed one is a 422 naming start_step."""
    if start_step is not None and end_step is not None and start_step > end_step:
        raise InvalidParameter(
            ("start_step",), f"start_step ({start_step}) must not exceed end_step ({end_step}): swap them"
        )
    return Window(start_step, end_step)


class SeriesOut(BaseModel):
    steps: list[int]
    values: list[float | None]
    wall_times: list[float]


class MetricsOut(BaseModel):
    run_id: int
    series: dict[str, SeriesOut]
