"""Reading the series store: compacted chunks merged with hot rows, reduced to what a chart draws.

A read names runs, keys, an optional step window and a point budget. For each compacted series
it picks the coarsest pyramid level whose buckets are no wider than a pixel column (level 0,
every point, when the window's points fit the budget), fetches only that level's chunks that
overlap the window, and reduces them to about four points per column (first, last, min, max,
and the first gap). Hot rows of the same series are merged in, each step once: where both tiers
hold a step, the compacted point wins (it was written first). The cost follows the window and
the budget, not the stored history.

A compacted series never changes (compaction rewrites it whole, with a new extent and count), so
what a read made of it is kept in an in-process LRU, keyed by the series' identity, the window and
the budget: a second look at a finished run's charts decodes and reduces nothing. Series with hot
rows in the read are never cached.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from prunelab.server.metrics import chunks, hot
from prunelab.server.metrics.points import Points
from prunelab.server.metrics.pyramid import PyramidShape, choose_level, reduce_to_budget
from prunelab.server.models import MetricChunk, MetricSeries

SeriesKey = tuple[int, str]
# Level 0 is read (and reduced exactly) while the window holds up to this many times the budget.
RAW_READ_FACTOR = 2
# Reduced series kept between reads, counted in points (24 B each): about 50 MB per API process.
CACHE_POINTS = 2_000_000
_cache: LRUCache[tuple[object, ...], Points] = LRUCache(maxsize=CACHE_POINTS, getsizeof=len)
_cache_lock = threading.Lock()  # cachetools' caches are not thread-safe; FastAPI runs sync routes in threads


@dataclass(frozen=True)
class Window:
    """A step range, both ends included; None leaves that end open."""

    first: int | None = None
    last: int | None = None

    def clip(self, first: int, last: int) -> tuple[int, int]:
        low = first if self.first is None else max(first, self.first)
        return low, last if self.last is None else min(last, self.last)


EVERYTHING = Window()


@dataclass(frozen=True)
class _Plan:
    level: int
    first: int  # steps to fetch, widened to whole pixel columns on a reduced level
    last: int
    span: int  # steps the chart spans (the window clipped to the series)


def _plan(row: MetricSeries, window: Window, max_points: int | None) -> _Plan | None:
    first, last = window.clip(row.first_step, row.last_step)
    if first > last:
        return None
    span = last - first + 1
    shape = PyramidShape(row.base_width, row.level_factor, row.level_count)
    expected = row.point_count * span / max(1, row.last_step - row.first_step + 1)
    if max_points is None or expected <= RAW_READ_FACTOR * max_points:
        return _Plan(0, first, last, span)
    level = choose_level(shape, span, max_points)
    width = shape.width(level)
    # Whole level buckets at both edges: a bucket cut by the window would lose the extremes of its other part.
    return _Plan(level, first // width * width, (last // width + 1) * width - 1, span)


def _series_rows(session: Session, run_ids: Sequence[int], keys: Sequence[str] | None) -> list[MetricSeries]:
    query = select(MetricSeries).where(MetricSeries.run_id.in_(run_ids))
    if keys is not None:
        query = query.where(MetricSeries.key.in_(keys))
    return list(session.scalars(query))


def _cache_key(row: MetricSeries, window: Window, max_points: int | None) -> tuple[object, ...]:
    """A compacted series' identity (a recompaction changes its extent or count), the window and the budget."""
    return (row.run_id, row.key, row.point_count, row.first_step, row.last_step, row.base_width, row.level_count,
            window.first, window.last, max_points)  # fmt: skip


def _read_compacted(session: Session, plans: dict[SeriesKey, _Plan]) -> dict[SeriesKey, Points]:
    """The planned level of each series over its planned steps: one query per level (one for most reads)."""
    by_level: dict[int, list[SeriesKey]] = {}
    for series, plan in plans.items():
        by_level.setdefault(plan.level, []).append(series)
    parts: dict[SeriesKey, list[Points]] = {series: [] for series in plans}
    for level, members in by_level.items():
        low = min(plans[series].first for series in members)
        high = max(plans[series].last for series in members)
        rows = session.execute(
            select(
                MetricChunk.run_id, MetricChunk.key, MetricChunk.first_step, MetricChunk.last_step, MetricChunk.payload
            )
            .where(
                MetricChunk.run_id.in_({run_id for run_id, _ in members}),
                MetricChunk.key.in_({key for _, key in members}),
                MetricChunk.level == level,
                MetricChunk.last_step >= low,
                MetricChunk.first_step <= high,
            )
            .order_by(MetricChunk.run_id, MetricChunk.key, MetricChunk.first_step)
        )
        for run_id, key, first_step, last_step, payload in rows:
            wanted = plans.get((run_id, key))
            if wanted is None or wanted.level != level or last_step < wanted.first or first_step > wanted.last:
                continue
            parts[(run_id, key)].append(chunks.decode(payload))
    return {series: Points.concat(parts[series]).between(plan.first, plan.last) for series, plan in plans.items()}


def _read_hot(
    session: Session, run_ids: Sequence[int], keys: Sequence[str] | None, window: Window, max_points: int | None
) -> dict[SeriesKey, Points]:
    live = hot.runs_with_hot_rows(session, run_ids)
    if not live:
        return {}
    if max_points is None:
        return hot.read_raw(session, live, keys, window.first, window.last)
    extents = hot.hot_extent(session, live)
    buckets = max(1, (max_points - 2) // 3)  # up to 3 points per bucket (min, max, gap) and 2 exact ends
    widths = {}
    for run_id in live:
        first, last = window.clip(1, max(1, extents.get(run_id, 1)))
        widths[run_id] = max(1, -(-(last - first + 1) // buckets))
    return hot.read_reduced(session, widths, keys, window.first, window.last)


def read_points(
    session: Session,
    run_ids: Sequence[int],
    keys: Sequence[str] | None,
    window: Window = EVERYTHING,
    max_points: int | None = None,
) -> dict[int, dict[str, Points]]:
    """Per run, per key: the series in `window`, at most `max_points` points each (every point when None).

    Every requested key is present (maybe empty); with `keys` None, the keys that have points.
    """
    # Hot rows first: each statement may see a newer snapshot, and a series compacted between the two
    # reads then shows up in both (merged, each step once) instead of in neither.
    live = _read_hot(session, run_ids, keys, window, max_points)
    result: dict[int, dict[str, Points]] = {run_id: {key: Points.empty() for key in keys or ()} for run_id in run_ids}
    plans: dict[SeriesKey, _Plan] = {}
    cache_keys: dict[SeriesKey, tuple[object, ...]] = {}
    for row in _series_rows(session, run_ids, keys):
        series = (row.run_id, row.key)
        if (plan := _plan(row, window, max_points)) is None:
            continue
        if series not in live:
            cache_keys[series] = _cache_key(row, window, max_points)
            with _cache_lock:
                cached = _cache.get(cache_keys[series])
            if cached is not None:
                result[row.run_id][row.key] = cached
                continue
        plans[series] = plan
    compacted = _read_compacted(session, plans)
    for series in sorted(compacted.keys() | live.keys()):
        planned = plans.get(series)
        points = compacted.get(series, Points.empty()).merged_with(live.get(series, Points.empty()))
        if max_points is not None and len(points) > max_points:
            if planned is None:
                first, last = window.clip(int(points.steps[0]), int(points.steps[-1]))
                span = last - first + 1
            else:
                span = planned.span
            points = reduce_to_budget(points, span, max_points)
        result[series[0]][series[1]] = points
        if series in cache_keys:
            with _cache_lock:
                _cache[cache_keys[series]] = points
    if keys is None:  # keys in order, however each was read
        return {run_id: dict(sorted(by_key.items())) for run_id, by_key in result.items()}
    return result
