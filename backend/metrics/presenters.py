"""A stored series as the API shows it: downsampled to the asked budget."""

from __future__ import annotations

from backend.metrics.downsample import downsample
from backend.metrics.schemas import SeriesOut
from backend.metrics.service import Series


def series_out(series: Series, max_points: int | None) -> SeriesOut:
    steps, values, wall_times = downsample(series.steps, series.values, series.wall_times, max_points)
    return SeriesOut(steps=steps, values=values, wall_times=wall_times)
