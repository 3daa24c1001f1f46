"""Metric ingestion and reads, after mlflow's tracking store.

History rows (the hot tier) are keyed by (run, key, step) and written with ON CONFLICT DO
NOTHING, so a retried batch or a duplicate delivery never doubles a point: the first write
wins (backend/metrics/ingest.py, the one writer, takes numpy columns). Non-finite values (NaN,
+inf, -inf: a diverged loss) are stored as NULL and served as JSON null, which charts draw as a
gap; the step itself is kept. When a run ends its rows are
compacted (backend/metrics/compaction.py); reads merge both tiers (backend/metrics/store.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from prunelab.server.metrics.ingest import MetricPoint, PointBatch, record_batch
from prunelab.server.metrics.points import Points
from prunelab.server.metrics.store import read_points
from prunelab.server.models import LatestMetric

MAX_KEY_LENGTH = 200


def record_points(session: Session, run_id: int, points: Iterable[MetricPoint] | PointBatch) -> None:
    """Store points idempotently: the first write of a (run, key, step) wins."""
    if isinstance(points, PointBatch):
        record_batch(session, points)
    else:
        record_batch(session, PointBatch.of_runs({run_id: points}))


def record_points_of_runs(session: Session, points_of_runs: Mapping[int, Iterable[MetricPoint]]) -> None:
    """`record_points` for many runs in one batch (imports, seeded benchmarks)."""
    record_batch(session, PointBatch.of_runs(points_of_runs))


@dataclass
class Series:
    steps: list[int]
    values: list[float | None]
    wall_times: list[float]

    @staticmethod
    def of(points: Points) -> Series:
        values = points.values.tolist()
        return Series(points.steps.tolist(), [None if math.isnan(v) else v for v in values], points.wall_times.tolist())


def read_series(session: Session, run_id: int, keys: Sequence[str] | None) -> dict[str, Series]:
    """Per-key series in step order; all keys when `keys` is None."""
    return read_series_of_runs(session, [run_id], keys)[run_id]


def read_series_of_runs(
    session: Session, run_ids: Sequence[int], keys: Sequence[str] | None
) -> dict[int, dict[str, Series]]:
    """Per-run, per-key full series in step order (both tiers); every requested key is present, maybe empty."""
    return {
        run_id: {key: Series.of(points) for key, points in series.items()}
        for run_id, series in read_points(session, run_ids, keys).items()
    }


def latest_values(session: Session, run_id: int) -> dict[str, tuple[int, float | None]]:
    """The newest (step, value) of each key of one run."""
    return latest_values_of_runs(session, [run_id])[run_id]


class MetricKeyOut(BaseModel):
    """A metric key logged by a run (or by any of the runs asked about)."""

    key: str
    last_step: int = Field(description="The largest step at which the key was last logged.")
    runs: int = Field(1, description="How many of the runs asked about logged it.")


def metric_keys(session: Session, run_ids: Sequence[int]) -> list[MetricKeyOut]:
    """Every key any of the runs logged, how many of them logged it and its largest last step: one query."""
    if not run_ids:
        return []
    rows = session.execute(
        select(LatestMetric.key, func.count(LatestMetric.run_id), func.max(LatestMetric.step))
        .where(LatestMetric.run_id.in_(run_ids))
        .group_by(LatestMetric.key)
        .order_by(LatestMetric.key)
    )
    return [MetricKeyOut(key=key, runs=runs, last_step=last_step) for key, runs, last_step in rows]


def latest_values_of_runs(session: Session, run_ids: Sequence[int]) -> dict[int, dict[str, tuple[int, float | None]]]:
    """The newest (step, value) of each key of every run, in one query; runs without metrics map to {}."""
    result: dict[int, dict[str, tuple[int, float | None]]] = {run_id: {} for run_id in run_ids}
    if not run_ids:
        return result
    rows = session.execute(
        select(LatestMetric.run_id, LatestMetric.key, LatestMetric.step, LatestMetric.value).where(
            LatestMetric.run_id.in_(run_ids)
        )
    )
    for run_id, key, step, value in rows:
        result[run_id][key] = (step, value)
    return result
