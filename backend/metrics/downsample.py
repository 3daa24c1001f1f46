"""Shrink a series to what a chart can draw without hiding its peaks or its gaps.

Min/max per bucket: the interior of the series is cut into equal buckets and each
bucket keeps the points holding its minimum and its maximum (in step order), so a
spike survives at any zoom. The first and last points are always kept (the chart's
x range and the run's latest value). A bucket containing a gap (a null value, a
diverged step) also keeps its first null, so the chart still breaks the line there.
The result never has more than `max_points` points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_POINTS = 5000  # more than any chart is wide in pixels
MIN_POINTS = 5  # both ends, one bucket's minimum and maximum, and a gap


def downsample_indices(values: Sequence[float | None], max_points: int) -> list[int]:
    """Indices of the points to keep, ascending, at most `max_points` of them."""
    count = len(values)
    if max_points < MIN_POINTS:
        raise ValueError(f"max_points must be >= {MIN_POINTS}")
    if count <= max_points:
        return list(range(count))
    interior = np.array([np.nan if value is None else value for value in values[1:-1]], dtype=np.float64)
    gaps = np.isnan(interior)
    points_per_bucket = 3 if gaps.any() else 2
    buckets = max(1, (max_points - 2) // points_per_bucket)
    bucket_size = -(-interior.size // buckets)  # ceil: at most `buckets` rows
    rows = -(-interior.size // bucket_size)
    pad = rows * bucket_size - interior.size
    low = np.pad(np.where(gaps, np.inf, interior), (0, pad), constant_values=np.inf).reshape(rows, bucket_size)
    high = np.pad(np.where(gaps, -np.inf, interior), (0, pad), constant_values=-np.inf).reshape(rows, bucket_size)
    gap_rows = np.pad(gaps, (0, pad), constant_values=False).reshape(rows, bucket_size)
    offsets = np.arange(rows) * bucket_size + 1  # +1: interior starts at index 1
    has_value = np.pad(~gaps, (0, pad), constant_values=False).reshape(rows, bucket_size).any(axis=1)
    chosen = [
        (offsets + low.argmin(axis=1))[has_value],
        (offsets + high.argmax(axis=1))[has_value],
        (offsets + gap_rows.argmax(axis=1))[gap_rows.any(axis=1)],
    ]
    kept = np.unique(np.concatenate([[0, count - 1], *chosen]))
    return [int(index) for index in kept]


def downsample(
    steps: Sequence[int], values: Sequence[float | None], wall_times: Sequence[float], max_points: int | None
) -> tuple[list[int], list[float | None], list[float]]:
    """The same series with at most `max_points` points (unchanged when `max_points` is None)."""
    if max_points is None:
        return list(steps), list(values), list(wall_times)
    keep = downsample_indices(values, max_points)
    return [steps[i] for i in keep], [values[i] for i in keep], [wall_times[i] for i in keep]
