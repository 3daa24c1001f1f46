"""Reads of the hot tier: the rows of runs still training (and of finished runs not compacted yet).

Raw reads return every row. Reduced reads let the database cut each series into buckets of
equal step width (about a pixel column) and return only aggregates per bucket (lowest and
highest value, first and last step, first gap) in one GROUP BY for every run and key: fetching
every row of a long live run costs seconds in the driver alone. Per bucket the minimum and
maximum are placed at the bucket's first and last steps, in the order that continues the line
from the previous bucket; the series' first and last points are read exactly. Plain aggregates
keep it portable (PostgreSQL, SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from prunelab.server.metrics.points import Points
from prunelab.server.models import LatestMetric, Metric, Run

SeriesKey = tuple[int, str]


def _window(run_ids: Sequence[int], keys: Sequence[str] | None, first: int | None, last: int | None) -> list:  # type: ignore[type-arg]
    conditions: list[ColumnElement[bool]] = [Metric.run_id.in_(run_ids)]
    if keys is not None:
        conditions.append(Metric.key.in_(keys))
    if first is not None:
        conditions.append(Metric.step >= first)
    if last is not None:
        conditions.append(Metric.step <= last)
    return conditions


def read_raw(
    session: Session, run_ids: Sequence[int], keys: Sequence[str] | None, first: int | None, last: int | None
) -> dict[SeriesKey, Points]:
    """Every hot row in the window, per (run, key), in step order."""
    rows = session.execute(
        select(Metric.run_id, Metric.key, Metric.step, Metric.value, Metric.wall_time)
        .where(*_window(run_ids, keys, first, last))
        .order_by(Metric.run_id, Metric.key, Metric.step)
    ).all()
    grouped: dict[SeriesKey, list[tuple[int, float | None, float]]] = {}
    for run_id, key, step, value, wall_time in rows:
        grouped.setdefault((run_id, key), []).append((step, value, wall_time))
    return {series: Points.from_rows(points) for series, points in grouped.items()}


def read_reduced(
    session: Session,
    widths: dict[int, int],
    keys: Sequence[str] | None,
    first: int | None,
    last: int | None,
) -> dict[SeriesKey, Points]:
    """Per (run, key), min and max of each bucket of `widths[run]` steps, a gap marker, and exact ends."""
    run_ids = list(widths)
    width = case(*((Metric.run_id == run_id, max(1, w)) for run_id, w in widths.items()), else_=1)
    bucket = (Metric.step - 1) // width
    rows = session.execute(
        select(
            Metric.run_id,
            Metric.key,
            func.min(Metric.step),
            func.max(Metric.step),
            func.min(Metric.value),
            func.max(Metric.value),
            func.min(Metric.wall_time),
            func.max(Metric.wall_time),
            func.min(Metric.step).filter(Metric.value.is_(None)),
            func.min(Metric.wall_time).filter(Metric.value.is_(None)),
        )
        .where(*_window(run_ids, keys, first, last))
        .group_by(Metric.run_id, Metric.key, bucket)
        .order_by(Metric.run_id, Metric.key, func.min(Metric.step))
    ).all()
    points: dict[SeriesKey, dict[int, tuple[float | None, float]]] = {}
    ends: dict[SeriesKey, list[int]] = {}
    previous: dict[SeriesKey, float | None] = {}
    for run_id, key, low_step, high_step, low, high, first_wall, last_wall, gap_step, gap_wall in rows:
        series = points.setdefault((run_id, key), {})
        ends.setdefault((run_id, key), [low_step, high_step])[1] = high_step
        if low is not None and high is not None:
            before = previous.get((run_id, key))
            falling = before is not None and abs(before - high) < abs(before - low)
            series[low_step] = (high if falling else low, first_wall)
            if high_step != low_step:
                series[high_step] = (low if falling else high, last_wall)
            previous[(run_id, key)] = low if falling else high
        if gap_step is not None:
            series[gap_step] = (None, gap_wall)
    _read_exact_ends(session, ends, points)
    return {
        series: Points.from_rows((step, by_step[step][0], by_step[step][1]) for step in sorted(by_step))
        for series, by_step in points.items()
    }


def _read_exact_ends(
    session: Session,
    ends: dict[SeriesKey, list[int]],
    points: dict[SeriesKey, dict[int, tuple[float | None, float]]],
) -> None:
    """Overwrite each series' first and last point with the stored values (a live run's latest value)."""
    wanted = [(run_id, key, step) for (run_id, key), steps in ends.items() for step in set(steps)]
    for start in range(0, len(wanted), 300):  # stays under SQLite's bound-parameter limit
        chunk = wanted[start : start + 300]
        query = select(Metric.run_id, Metric.key, Metric.step, Metric.value, Metric.wall_time).where(
            tuple_(Metric.run_id, Metric.key, Metric.step).in_(chunk)
        )
        for run_id, key, step, value, wall_time in session.execute(query):
            points[(run_id, key)][step] = (value, wall_time)


def runs_with_hot_rows(session: Session, run_ids: Sequence[int]) -> list[int]:
    """The runs among `run_ids` that have any hot row (a semi-join: an index probe per run, not a scan)."""
    has_rows = select(Metric.step).where(Metric.run_id == Run.id).exists()
    return list(session.scalars(select(Run.id).where(Run.id.in_(run_ids), has_rows)))


def hot_extent(session: Session, run_ids: Sequence[int]) -> dict[int, int]:
    """The highest step logged per run, from the latest-value table (one row per key, not a history scan)."""
    rows = session.execute(
        select(LatestMetric.run_id, func.max(LatestMetric.step))
        .where(LatestMetric.run_id.in_(run_ids))
        .group_by(LatestMetric.run_id)
    )
    return {run_id: int(step) for run_id, step in rows if step is not None}
