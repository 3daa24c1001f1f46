"""The two-tier series store on PostgreSQL and SQLite: compaction, merged reads, windows, exports, deletes."""

from __future__ import annotations

import csv
import io
import math
from datetime import timedelta

import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from prunelab.server.db import session_scope
from prunelab.server.metrics.compaction import compact_run, runs_to_compact
from prunelab.server.metrics.service import MetricPoint, read_series, record_points
from prunelab.server.models import Metric, MetricChunk, MetricSeries, Run, RunStatus, utcnow
from tests.backend.seed import seeded_run
from tests.worker.test_db_reporter import queued_run

KEYS = ("noisy_loss", "noisy_accuracy", "layer_sparsity/dense")


def value_at(key: str, step: int) -> float:
    if key == "noisy_loss" and step % 997 == 0:
        return math.inf  # a diverged step: stored as NULL, served as a gap
    return math.sin(step / 50 + len(key)) + (step % 7) * 0.001


def log_steps(run_id: int, steps: range, key_filter: tuple[str, ...] = KEYS, offset: float = 0.0) -> None:
    points = [
        MetricPoint(key, step, value_at(key, step) + offset, 1.7e9 + step * 0.05)
        for step in steps
        for key in key_filter
        if not key.startswith("layer_") or step % 100 == 0
    ]
    with session_scope() as session:
        record_points(session, run_id, points)


def finish(run_id: int, status: RunStatus = RunStatus.SUCCEEDED) -> None:
    with session_scope() as session:
        run = session.get(Run, run_id)
        assert run is not None
        run.status, run.finished_at = status, utcnow()


def hot_count(run_id: int) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Metric).where(Metric.run_id == run_id)) or 0


def expected_value(key: str, step: int) -> float | None:
    value = value_at(key, step)
    return value if math.isfinite(value) else None


def test_compaction_moves_every_point_into_chunks_and_reads_are_unchanged(settings: object) -> None:
    run_id = queued_run()
    log_steps(run_id, range(1, 10_001))
    with session_scope() as session:
        before = read_series(session, run_id, None)
    assert compact_run(run_id) == 0  # a run still queued (or running) is never compacted
    finish(run_id)
    assert compact_run(run_id) == len(KEYS)
    assert hot_count(run_id) == 0
    assert compact_run(run_id) == 0  # again: nothing left to do
    with session_scope() as session:
        after = read_series(session, run_id, None)
        series_rows = session.scalar(
            select(func.count()).select_from(MetricSeries).where(MetricSeries.run_id == run_id)
        )
        levels = set(session.scalars(select(MetricChunk.level).where(MetricChunk.run_id == run_id)))
    assert after == before
    assert series_rows == len(KEYS) and {0, 1, 2} <= levels
    assert after["noisy_loss"].values[996] is None and after["noisy_loss"].steps[996] == 997
    assert after["layer_sparsity/dense"].steps == list(range(100, 10_001, 100))


def test_a_read_across_the_live_and_compacted_tiers_returns_each_step_once(settings: object) -> None:
    run_id = queued_run()
    log_steps(run_id, range(1, 5001))
    finish(run_id, RunStatus.FAILED)
    compact_run(run_id)
    # Late rows (as an import or a retried delivery would write): steps 4001-6000, half already compacted.
    log_steps(run_id, range(4001, 6001), offset=100.0)
    assert hot_count(run_id) > 0
    with session_scope() as session:
        series = read_series(session, run_id, ["noisy_loss", "layer_sparsity/dense"])
    loss = series["noisy_loss"]
    assert loss.steps == list(range(1, 6001))
    # The compacted point was written first: it wins where both tiers hold a step.
    assert loss.values[4499] == expected_value("noisy_loss", 4500)
    assert loss.values[5499] == value_at("noisy_loss", 5500) + 100.0
    assert series["layer_sparsity/dense"].steps == list(range(100, 6001, 100))
    # Compacting again merges the late rows into the chunks, each step still once.
    with session_scope() as session:
        assert list(runs_to_compact(session, 10)) == [run_id]
    compact_run(run_id)
    assert hot_count(run_id) == 0
    with session_scope() as session:
        assert read_series(session, run_id, ["noisy_loss"])["noisy_loss"] == loss


def test_a_zoomed_window_returns_every_raw_point_and_a_wide_one_is_reduced(client: TestClient) -> None:
    run_id = seeded_run(client, steps=2)
    log_steps(run_id, range(1, 50_001), ("noisy_loss",))
    compact_run(run_id)
    url = f"/api/runs/{run_id}/metrics"
    window = {"keys": "noisy_loss", "max_points": 1200, "start_step": 20_000, "end_step": 20_999}
    zoom = client.get(url, params=window).json()
    loss = zoom["series"]["noisy_loss"]
    assert loss["steps"] == list(range(20_000, 21_000))
    assert loss["values"] == [expected_value("noisy_loss", step) for step in range(20_000, 21_000)]
    wide = client.get(url, params={"keys": "noisy_loss", "max_points": 400}).json()["series"]["noisy_loss"]
    assert len(wide["steps"]) <= 400 and wide["steps"][0] == 1 and wide["steps"][-1] == 50_000
    assert wide["steps"] == sorted(set(wide["steps"]))
    finite = [expected_value("noisy_loss", step) for step in range(1, 50_001)]
    assert min(v for v in wide["values"] if v is not None) == min(v for v in finite if v is not None)
    assert max(v for v in wide["values"] if v is not None) == max(v for v in finite if v is not None)
    assert None in wide["values"]  # the diverged steps still break the line
    # The same request gives the same answer.
    assert client.get(url, params={"keys": "noisy_loss", "max_points": 400}).json()["series"]["noisy_loss"] == wide
    bad = client.get(url, params={"start_step": 10, "end_step": 5})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "start_step"


def test_exports_round_trip_the_full_history(client: TestClient) -> None:
    run_id = seeded_run(client, steps=2)
    log_steps(run_id, range(1, 3001))
    compact_run(run_id)
    log_steps(run_id, range(3001, 3101))  # and a few hot rows on top
    with session_scope() as session:
        expected = read_series(session, run_id, None)
    parquet = client.get(f"/api/runs/{run_id}/metrics.parquet")
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(parquet.content)).to_pylist()
    text = client.get(f"/api/runs/{run_id}/metrics.csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == len(rows) == sum(len(series.steps) for series in expected.values())
    for key, series in expected.items():
        from_parquet = [row for row in table if row["key"] == key]
        assert [row["step"] for row in from_parquet] == series.steps
        assert [row["value"] for row in from_parquet] == series.values
        assert [row["wall_time"] for row in from_parquet] == series.wall_times
        from_csv = [row for row in rows if row["key"] == key]
        assert [int(row["step"]) for row in from_csv] == series.steps
        assert [None if row["value"] == "" else float(row["value"]) for row in from_csv] == series.values
        assert [float(row["wall_time"]) for row in from_csv] == series.wall_times
    assert client.get("/api/runs/999999/metrics.csv").status_code == 404


def test_metric_keys_lists_what_was_logged(client: TestClient) -> None:
    run_id = seeded_run(client, steps=5)
    keys = client.get(f"/api/runs/{run_id}/metric-keys").json()
    assert {"key": "loss", "last_step": 5, "runs": 1} in keys
    assert [entry["key"] for entry in keys] == sorted(entry["key"] for entry in keys)


def test_deleting_a_compacted_run_removes_its_chunks(client: TestClient) -> None:
    run_id = seeded_run(client, steps=2)
    log_steps(run_id, range(1, 20_001))
    compact_run(run_id)
    assert client.delete(f"/api/runs/{run_id}").status_code == 204
    with session_scope() as session:
        for table in (MetricChunk, MetricSeries, Metric):
            assert session.scalar(select(func.count()).select_from(table).where(table.run_id == run_id)) == 0


def test_runs_finished_before_compaction_existed_are_compacted_by_the_reaper_and_the_cli(settings: object) -> None:
    from prunelab.server.cli import main
    from prunelab.server.runs import reaper

    first, second = queued_run(), queued_run()
    for run_id in (first, second):
        log_steps(run_id, range(1, 501))
        finish(run_id)
    assert reaper.reap_once(settings).compacted == []  # type: ignore[arg-type]  # just ended: left to the worker
    with session_scope() as session:
        for run_id in (first, second):  # as if they ended before compaction existed
            session.get(Run, run_id).finished_at = utcnow() - timedelta(hours=1)  # type: ignore[union-attr]
    assert reaper.reap_once(settings).compacted == [first, second]  # type: ignore[arg-type]
    assert hot_count(first) == hot_count(second) == 0
    third = queued_run()
    log_steps(third, range(1, 501))
    finish(third, RunStatus.FAILED)
    assert main(["compact"]) == 0
    assert hot_count(third) == 0
    with session_scope() as session:
        assert read_series(session, third, ["noisy_loss"])["noisy_loss"].steps == list(range(1, 501))
