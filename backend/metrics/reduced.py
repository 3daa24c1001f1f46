"""Downsampled series of many runs, reduced inside the database.

Fetching every point of 20 runs x 20,000 steps x 6 keys (2.4 M rows) costs seconds in the
driver alone, so the compare page's series are reduced by the database: each series is cut
into buckets of equal step width (about a pixel of the chart) and each bucket returns only
aggregates (lowest and highest value, first and last step, first gap), one GROUP BY for every
run and key. Per bucket the page gets its minimum and maximum, in the order that continues the
line from the previous bucket (falling curves fall, rising ones rise), at the bucket's first and
last steps: the extremes are exact, their x position is exact to within one bucket. The first and
last point of each series are read exactly. Plain aggregates keep it portable (PostgreSQL, SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, select, tuple_
from sqlalchemy.orm import Session

from backend.metrics.service import Series
from backend.models import LatestMetric, Metric


def read_reduced_series(
    session: Session, total_steps: dict[int, int], keys: Sequence[str], max_points: int
) -> dict[int, dict[str, Series]]:
    """Per-run, per-key series with at most `max_points` points each (ends exact, extrema kept)."""
    run_ids = list(total_steps)
    # The plan's step count, or more when a series has gone past it (the latest-value table says so cheaply).
    logged = session.execute(
        select(LatestMetric.run_id, func.max(LatestMetric.step))
        .where(LatestMetric.run_id.in_(run_ids))
        .group_by(LatestMetric.run_id)
    )
    span = dict(total_steps)
    for run_id, step in logged:
        span[run_id] = max(span[run_id], int(step))
    # Each bucket yields up to 3 points (min, max, a gap); the series' first and last points make 2 more.
    buckets = max(1, (max_points - 2) // 3)
    width = case(*((Metric.run_id == run_id, max(1, -(-total // buckets))) for run_id, total in span.items()), else_=1)
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
        .where(Metric.run_id.in_(run_ids), Metric.key.in_(keys))
        .group_by(Metric.run_id, Metric.key, bucket)
        .order_by(Metric.run_id, Metric.key, func.min(Metric.step))
    ).all()
    points: dict[tuple[int, str], dict[int, tuple[float | None, float]]] = {}
    ends: dict[tuple[int, str], list[int]] = {}
    previous: dict[tuple[int, str], float | None] = {}
    for run_id, key, first, last, low, high, first_wall, last_wall, gap_step, gap_wall in rows:
        series = points.setdefault((run_id, key), {})
        ends.setdefault((run_id, key), [first, last])[1] = last
        if low is not None and high is not None:
            before = previous.get((run_id, key))
            falling = before is not None and abs(before - high) < abs(before - low)
            series[first] = (high if falling else low, first_wall)
            if last != first:
                series[last] = (low if falling else high, last_wall)
            previous[(run_id, key)] = low if falling else high
        if gap_step is not None:
            series[gap_step] = (None, gap_wall)
    _read_exact_ends(session, ends, points)
    result: dict[int, dict[str, Series]] = {run_id: {key: Series([], [], []) for key in keys} for run_id in run_ids}
    for (run_id, key), series in points.items():
        steps = sorted(series)
        result[run_id][key] = Series(steps, [series[s][0] for s in steps], [series[s][1] for s in steps])
    return result


def _read_exact_ends(
    session: Session,
    ends: dict[tuple[int, str], list[int]],
    points: dict[tuple[int, str], dict[int, tuple[float | None, float]]],
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
