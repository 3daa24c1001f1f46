"""A stored series as the API shows it: downsampled to the asked budget."""

from __future__ import annotations

from prunelab.server.metrics.downsample import downsample
from prunelab.server.metrics.schemas import SeriesOut
from prunelab.server.metrics.service import Series


def series_out(series: Series, max_points: int | None) -> SeriesOut:
    steps, values, wall_times = downsample(series.steps, series.values, series.wall_times, max_points)
    return SeriesOut(steps=steps, values=values, wall_times=wall_times)
