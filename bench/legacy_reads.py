"""Today's read path before the series store (issue 14's "before"), kept callable so a benchmark measures it.

`app` is PruneLab's API plus two routes that read as the code before the store did: the run
page's `GET /legacy/runs/{id}/metrics` scans every row of the run and downsamples in Python;
the compare page's `GET /legacy/compare` reduces the rows in the database with one GROUP BY
(backend/metrics/reduced.py as it was), and both answer through pydantic models and FastAPI's
JSON encoder. `GET /legacy/runs` is the runs table's read before issue 14 part 5: the newest
1,000 runs at most, which the browser then filtered and sorted. Served by the same kind of
process as the real API (`uvicorn bench.legacy_reads:app`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import case, func, select, tuple_
from sqlalchemy.orm import Session, selectinload
from starlette.routing import Mount

from prunelab.server.app import create_app
from prunelab.server.compare.service import CompareOut, compare_data
from prunelab.server.kit.dependencies import RunId, SessionDep
from prunelab.server.kit.params import run_ids_param, split_keys
from prunelab.server.metrics.presenters import series_out
from prunelab.server.metrics.schemas import MaxPoints, MetricsOut
from prunelab.server.metrics.service import Series
from prunelab.server.models import LatestMetric, Metric, Run
from prunelab.server.runs import service
from prunelab.server.runs.presenters import run_outs
from prunelab.server.runs.schemas import RunOut

router = APIRouter(prefix="/legacy")


def read_series_of_runs(
    session: Session, run_ids: Sequence[int], keys: Sequence[str] | None
) -> dict[int, dict[str, Series]]:
    """Per-run, per-key series in step order, in one query (the row scan before the store)."""
    query = select(Metric.run_id, Metric.key, Metric.step, Metric.value, Metric.wall_time).where(
        Metric.run_id.in_(run_ids)
    )
    if keys is not None:
        query = query.where(Metric.key.in_(keys))
    result: dict[int, dict[str, Series]] = {
        run_id: {key: Series([], [], []) for key in keys or ()} for run_id in run_ids
    }
    rows = session.execute(query.order_by(Metric.run_id, Metric.key, Metric.step))
    for run_id, key, step, value, wall_time in rows:
        entry = result[run_id].setdefault(key, Series([], [], []))
        entry.steps.append(step)
        entry.values.append(value)
        entry.wall_times.append(wall_time)
    return result


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


@router.get("/runs/{run_id}/metrics")
def legacy_metrics(
    run_id: RunId, session: SessionDep, keys: str | None = None, max_points: MaxPoints = None
) -> MetricsOut:
    service.get_run(session, run_id)
    series = read_series_of_runs(session, [run_id], split_keys(keys))[run_id]
    return MetricsOut(run_id=run_id, series={key: series_out(s, max_points) for key, s in series.items()})


@router.get("/compare")
def legacy_compare(
    session: SessionDep,
    runs: Annotated[list[int], Depends(run_ids_param("runs", 21, required=True))],
    keys: Annotated[str | None, Query()] = None,
    max_points: MaxPoints = None,
) -> CompareOut:
    out, _ = compare_data(session, runs, split_keys(keys), 5, None)  # everything but the series
    wanted = [run.id for run in out.runs]
    by_id = {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(wanted)))}
    if max_points is None:
        series = read_series_of_runs(session, wanted, out.keys)
    else:
        total_steps = {run_id: int(by_id[run_id].plan["total_steps"]) for run_id in wanted}
        series = read_reduced_series(session, total_steps, out.keys, max_points)
    out.series = {run_id: {key: series_out(s, None) for key, s in series[run_id].items()} for run_id in wanted}
    return out


@router.get("/runs")
def legacy_runs(session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[RunOut]:
    """The runs table before issue 14: the newest `limit` runs (1,000 at most), unfiltered; the browser filtered."""
    query = select(Run).options(selectinload(Run.artifacts)).order_by(Run.id.desc()).limit(limit)
    return run_outs(session, list(session.scalars(query)))


app = create_app()
app.include_router(router)
# Ahead of the frontend's catch-all mount at "/", which would otherwise answer /legacy/... with a 404.
app.router.routes[:] = sorted(app.router.routes, key=lambda route: isinstance(route, Mount))
