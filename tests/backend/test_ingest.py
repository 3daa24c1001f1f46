"""The hot tier's writer: columns in, each (run, key, step) once, gaps as NULL, several batches per transaction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import func, select

from prunelab.core.errors import RunNotFound
from prunelab.server.db import session_scope
from prunelab.server.metrics.ingest import MetricPoint, PointBatch, record_batch
from prunelab.server.models import LatestMetric, Metric
from tests.worker.test_db_reporter import queued_run


def rows(run_id: int) -> dict[tuple[str, int], tuple[float | None, float]]:
    with session_scope() as session:
        query = select(Metric.key, Metric.step, Metric.value, Metric.wall_time).where(Metric.run_id == run_id)
        return {(key, step): (value, wall) for key, step, value, wall in session.execute(query)}


def test_logged_steps_with_changing_keys_become_the_same_columns_as_points() -> None:
    logged = [
        (1, ("loss", "accuracy"), [0.5, 0.25], 0.1),
        (2, ("loss",), [0.4], 0.2),
        (3, ("accuracy", "loss"), [0.75, 0.3], 0.3),
    ]
    batch = PointBatch.of_steps(7, logged).first_writes()
    points = PointBatch.of_runs(
        {
            7: [
                MetricPoint(key, step, value, wall)
                for step, keys, values, wall in logged
                for key, value in zip(keys, values, strict=True)
            ]
        }
    ).first_writes()
    assert batch.keys == points.keys == ("accuracy", "loss")
    for column in ("run_ids", "key_ids", "steps", "values", "wall_times"):
        assert np.array_equal(getattr(batch, column), getattr(points, column)), column
    assert [batch.keys[k] for k in batch.key_ids] == ["accuracy", "accuracy", "loss", "loss", "loss"]


def test_first_write_wins_within_a_batch_and_non_finite_values_are_gaps(settings: object) -> None:
    run_id = queued_run()
    batch = PointBatch.of_columns(
        ("a", "b"),
        [run_id] * 5,
        [0, 1, 0, 1, 1],
        [1, 1, 1, 2, 3],
        [1.5, math.inf, 9.0, -math.inf, math.nan],
        [0.1, 0.2, 0.3, 0.4, 0.5],
    )
    with session_scope() as session:
        record_batch(session, batch)
    assert rows(run_id) == {("a", 1): (1.5, 0.1), ("b", 1): (None, 0.2), ("b", 2): (None, 0.4), ("b", 3): (None, 0.5)}
    with session_scope() as session:
        latest = {row.key: (row.step, row.value) for row in session.scalars(select(LatestMetric))}
    assert latest == {"a": (1, 1.5), "b": (3, None)}


def test_several_batches_with_other_keys_in_one_transaction(settings: object) -> None:
    run_id = queued_run()
    with session_scope() as session:
        record_batch(
            session, PointBatch.of_runs({run_id: [MetricPoint("z", 1, 1.0, 0.0), MetricPoint("y", 1, 2.0, 0.0)]})
        )
        record_batch(session, PointBatch.of_runs({run_id: [MetricPoint("x", 2, 3.0, 0.0)]}))
        record_batch(session, PointBatch.of_runs({run_id: [MetricPoint("y", 1, 5.0, 0.0)]}))  # already stored
    assert rows(run_id) == {("z", 1): (1.0, 0.0), ("y", 1): (2.0, 0.0), ("x", 2): (3.0, 0.0)}


def test_a_batch_naming_a_missing_run_is_refused_whole(settings: object) -> None:
    """`metrics` has no foreign key: the writer checks the batch's runs itself, and nothing of the batch stays."""
    run_id = queued_run()
    batch = PointBatch.of_runs(
        {run_id: [MetricPoint("a", 1, 1.0, 0.0)], run_id + 1000: [MetricPoint("a", 1, 2.0, 0.0)]}
    )
    with pytest.raises(RunNotFound, match=f"run {run_id + 1000} does not exist"), session_scope() as session:
        record_batch(session, batch)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Metric)) == 0
        assert session.scalar(select(func.count()).select_from(LatestMetric)) == 0
