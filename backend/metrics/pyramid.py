"""The min/max pyramid: honest reductions of a series by fixed step buckets.

A bucket of width W holds the points with the same `step // W`. Its reduction keeps real
points only: the first and the last, the first point holding the minimum and the first
holding the maximum (first occurrences, so a staircase keeps the exact step of each jump),
and the first gap (a NaN value), so a chart still breaks the line there. Widths nest
(level L's width is a multiple of level L-1's), so reducing level L-1 by level L's width
gives exactly the reduction of the raw series by that width: a read can start from any
level and reduce again to the pixel columns it draws. Everything is vectorised numpy
(`reduceat` over bucket boundaries), deterministic, and never invents a value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prunelab.server.metrics.points import Points

# Level 1 buckets span 16 logged points; each further level doubles the width. Doubling bounds what
# a read fetches to twice what it draws (it takes the coarsest level no wider than a pixel) at the
# price of storing about half as many points again as level 0 (4/16 + 4/32 + ... = 1/2).
LEVEL1_POINTS = 16
LEVEL_FACTOR = 2
MIN_LEVEL_POINTS = 512  # no level is built once the level below holds this few points
POINTS_PER_BUCKET = 4  # first, last, minimum, maximum (a gap adds a fifth)


def _first_true_per_bucket(mask: np.ndarray, bucket_of: np.ndarray) -> np.ndarray:
    """Index of the first True in each bucket that has one."""
    hits = np.flatnonzero(mask)
    if not hits.size:
        return hits
    buckets = bucket_of[hits]
    return hits[np.concatenate(([True], buckets[1:] != buckets[:-1]))]


def bucket_extremes(points: Points, width: int) -> Points:
    """The points each bucket of `width` steps keeps: first, last, minimum, maximum, first gap; in step order."""
    count = len(points)
    if count == 0 or width <= 1:
        return points
    bucket = np.floor_divide(points.steps, width)
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    if starts.size == count:
        return points  # one point per bucket: nothing to reduce
    lengths = np.diff(np.append(starts, count))
    bucket_of = np.repeat(np.arange(starts.size), lengths)
    gap = np.isnan(points.values)
    low = np.where(gap, np.inf, points.values)
    high = np.where(gap, -np.inf, points.values)
    lowest = np.minimum.reduceat(low, starts)[bucket_of]
    highest = np.maximum.reduceat(high, starts)[bucket_of]
    kept = np.concatenate(
        (
            starts,
            starts + lengths - 1,
            _first_true_per_bucket((low == lowest) & ~gap, bucket_of),
            _first_true_per_bucket((high == highest) & ~gap, bucket_of),
            _first_true_per_bucket(gap, bucket_of),
        )
    )
    keep = np.zeros(count, dtype=bool)
    keep[kept] = True  # a mask, not np.unique: no sort, and the points stay in step order
    return points.take(np.flatnonzero(keep))


@dataclass(frozen=True)
class PyramidShape:
    base_width: int  # bucket width of level 1, in steps
    factor: int
    level_count: int  # level 0 (every point) included

    def width(self, level: int) -> int:
        return 1 if level == 0 else self.base_width * self.factor ** (level - 1)


def shape_for(points: Points) -> PyramidShape:
    """Level 1 buckets span 16 logged points (a per-layer key logged every 100 steps gets 1,600-step buckets)."""
    spacing = int(np.median(np.diff(points.steps))) if len(points) > 1 else 1
    base = max(1, spacing) * LEVEL1_POINTS
    levels = 1
    remaining = len(points)
    while remaining > MIN_LEVEL_POINTS:
        # Level 1 keeps at most 4 of every 16 points; each level above at most half of the one below.
        remaining = remaining * POINTS_PER_BUCKET // LEVEL1_POINTS if levels == 1 else remaining // LEVEL_FACTOR
        levels += 1
    return PyramidShape(base, LEVEL_FACTOR, levels)


def build_levels(points: Points, shape: PyramidShape) -> list[Points]:
    """Level 0 is the series itself; level L reduces level L-1 by `shape.width(L)`."""
    levels = [points]
    for level in range(1, shape.level_count):
        levels.append(bucket_extremes(levels[-1], shape.width(level)))
    return levels


def pixel_width(span_steps: int, max_points: int) -> int:
    """Steps per pixel column: at most max_points // 4 columns over `span_steps` (one spare for the edges)."""
    columns = max(1, max_points // POINTS_PER_BUCKET - 1)
    return -(-max(1, span_steps) // columns)


def choose_level(shape: PyramidShape, span_steps: int, max_points: int) -> int:
    """The coarsest level whose buckets are no wider than one pixel column (so a read fetches at most twice what
    it draws). A level bucket may straddle two columns: every point drawn is still a real point, and an extreme
    is off by less than one level bucket, under a pixel."""
    target = pixel_width(span_steps, max_points)
    level = 0
    while level + 1 < shape.level_count and shape.width(level + 1) <= target:
        level += 1
    return level


def reduce_to_budget(points: Points, span_steps: int, max_points: int) -> Points:
    """At most `max_points` points, about four per pixel column; unchanged when they already fit."""
    if len(points) <= max_points:
        return points
    budget = max_points
    while True:
        reduced = bucket_extremes(points, pixel_width(span_steps, budget))
        if len(reduced) <= max_points or budget <= POINTS_PER_BUCKET * 2:
            break
        budget = budget * 4 // 5  # gaps add a fifth point per column: narrow the columns and retry
    if len(reduced) > max_points:  # a pathological series: fall back to the index-based reduction
        from prunelab.server.metrics.downsample import downsample_indices

        reduced = reduced.take(np.asarray(downsample_indices(list(reduced.values), max_points), dtype=np.int64))
    return reduced
