"""Compaction: a finished run's hot rows become compressed chunks with a min/max pyramid.

Crash safety: each (run, key) series is compacted in one transaction that takes the run's row
lock, reads the hot rows, writes the chunks of every level, reads level 0 back and checks it
holds exactly the merged points, and only then deletes the hot rows it read. A process killed at
any moment leaves either the hot rows or the verified chunks (the transaction never committed,
or it did); reads merge both tiers, so each point is readable exactly once either way. Running
it again is harmless: a series without hot rows is skipped, and hot rows that arrived after a
compaction are merged into the chunks (the chunk's point wins a step both hold: first write wins).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
from sqlalchemy import CursorResult, delete, exists, insert, or_, select, update
from sqlalchemy.orm import Session

from prunelab.server.db import session_scope
from prunelab.server.metrics import chunks, pyramid
from prunelab.server.metrics.points import Points
from prunelab.server.models import LatestMetric, Metric, MetricChunk, MetricSeries, Run, RunStatus, utcnow

log = logging.getLogger(__name__)

CHUNK_POINTS = 4096  # a 1,000-step zoom touches one or two level-0 chunks
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
SETTLED_S = 120.0  # the background pass leaves a just-finished run to its worker this long


class CompactionMismatch(RuntimeError):
    """The chunks read back differ from what was written: the hot rows are kept."""


def _slices(count: int) -> list[slice]:
    return [slice(start, min(start + CHUNK_POINTS, count)) for start in range(0, count, CHUNK_POINTS)]


def write_series(session: Session, run_id: int, key: str, points: Points) -> int:
    """Replace the compacted form of (run, key) with `points` (every level); returns the chunk rows written."""
    session.execute(delete(MetricChunk).where(MetricChunk.run_id == run_id, MetricChunk.key == key))
    session.execute(delete(MetricSeries).where(MetricSeries.run_id == run_id, MetricSeries.key == key))
    if not len(points):
        return 0
    shape = pyramid.shape_for(points)
    rows = []
    for level, level_points in enumerate(pyramid.build_levels(points, shape)):
        for part in _slices(len(level_points)):
            piece = Points(level_points.steps[part], level_points.values[part], level_points.wall_times[part])
            rows.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "level": level,
                    "first_step": int(piece.steps[0]),
                    "last_step": int(piece.steps[-1]),
                    "point_count": len(piece),
                    "payload": chunks.encode(piece),
                }
            )
    session.execute(insert(MetricChunk), rows)
    session.add(
        MetricSeries(
            run_id=run_id,
            key=key,
            point_count=len(points),
            first_step=int(points.steps[0]),
            last_step=int(points.steps[-1]),
            base_width=shape.base_width,
            level_factor=shape.factor,
            level_count=shape.level_count,
        )
    )
    session.flush()
    return len(rows)


def read_level_zero(session: Session, run_id: int, key: str) -> Points:
    payloads = session.scalars(
        select(MetricChunk.payload)
        .where(MetricChunk.run_id == run_id, MetricChunk.key == key, MetricChunk.level == 0)
        .order_by(MetricChunk.first_step)
    )
    return Points.concat([chunks.decode(payload) for payload in payloads])


def _same(left: Points, right: Points) -> bool:
    return (
        np.array_equal(left.steps, right.steps)
        and np.array_equal(left.values, right.values, equal_nan=True)
        and np.array_equal(left.wall_times, right.wall_times)
    )


def _hold_finished_run(session: Session, run_id: int) -> bool:
    """Lock the run's row for this transaction (a no-op UPDATE: a row lock on PostgreSQL, the write lock on SQLite)."""
    held = session.execute(
        update(Run).where(Run.id == run_id, Run.status.in_(FINISHED)).values(status=Run.status).returning(Run.id)
    ).first()
    return held is not None


def delete_hot_rows(session: Session, run_id: int, key: str, hot: Points) -> None:
    """Delete exactly the hot rows that were compacted; anything else means a concurrent writer: roll back."""
    result = session.execute(
        delete(Metric).where(Metric.run_id == run_id, Metric.key == key, Metric.step <= int(hot.steps[-1]))
    )
    deleted = result.rowcount if isinstance(result, CursorResult) else -1
    if deleted != len(hot):
        raise CompactionMismatch(f"run {run_id} {key!r}: {deleted} hot rows to delete, {len(hot)} compacted")


def compact_series(session: Session, run_id: int, key: str) -> bool:
    """Move the hot rows of one finished series into chunks, in the caller's transaction; False when nothing to do."""
    if not _hold_finished_run(session, run_id):
        return False
    hot = Points.from_rows(
        session.execute(
            select(Metric.step, Metric.value, Metric.wall_time)
            .where(Metric.run_id == run_id, Metric.key == key)
            .order_by(Metric.step)
        )
    )
    if not len(hot):
        return False
    merged = read_level_zero(session, run_id, key).merged_with(hot)
    write_series(session, run_id, key, merged)
    if not _same(read_level_zero(session, run_id, key), merged):
        raise CompactionMismatch(f"run {run_id} {key!r}: the chunks read back differ from the points written")
    delete_hot_rows(session, run_id, key, hot)
    return True


def hot_keys(session: Session, run_id: int) -> list[str]:
    return list(session.scalars(select(Metric.key).where(Metric.run_id == run_id).distinct().order_by(Metric.key)))


def compact_run(run_id: int) -> int:
    """Compact every series of a finished run, one transaction per series; returns how many were compacted."""
    with session_scope() as session:
        keys = hot_keys(session, run_id)
    compacted = 0
    for key in keys:
        with session_scope() as session:
            compacted += compact_series(session, run_id, key)
    return compacted


def runs_to_compact(session: Session, limit: int, settled_s: float = 0.0) -> Sequence[int]:
    """Finished runs (for at least `settled_s`) that still have hot rows: from before compaction, or interrupted."""
    settled = or_(Run.finished_at.is_(None), Run.finished_at <= utcnow() - timedelta(seconds=settled_s))
    return session.scalars(
        select(Run.id)
        .where(Run.status.in_(FINISHED), settled, exists().where(Metric.run_id == Run.id))
        .order_by(Run.id)
        .limit(limit)
    ).all()


def compact_pending(limit: int = 20, settled_s: float = SETTLED_S) -> list[int]:
    """One background pass: compact up to `limit` finished runs; a failure is logged and retried next pass.

    A run is left `settled_s` after it ended: its worker compacts it then, and the pass only sweeps up
    what a dead worker or an older version left."""
    with session_scope() as session:
        pending = list(runs_to_compact(session, limit, settled_s))
    done = []
    for run_id in pending:
        try:
            compact_run(run_id)
            done.append(run_id)
        except Exception:
            log.exception("compacting run %s failed; the next pass retries it", run_id)
    return done


def store_compacted(session: Session, run_id: int, series: dict[str, Points]) -> None:
    """Write whole series straight into the compacted form (imports, benchmarks), with their latest values."""
    for key, points in series.items():
        write_series(session, run_id, key, points)
        if len(points):
            last = float(points.values[-1])
            session.merge(
                LatestMetric(run_id=run_id, key=key, step=int(points.steps[-1]), value=None if np.isnan(last) else last)
            )
    session.flush()
