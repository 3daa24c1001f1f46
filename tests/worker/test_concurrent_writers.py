"""8 writers at once (the sweep case), each with its own sessions: every (run, key, step) stored once, right value.

Two writers share each run and log overlapping step ranges, every batch is delivered twice (a retry),
and a later re-delivery with other values loses to the first write; a stale attempt's writes are refused.
Runs on PostgreSQL and SQLite (the `settings` fixture).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select, update

from prunelab.server.db import session_scope
from prunelab.server.models import LatestMetric, Metric, Run, RunStatus
from prunelab.worker.db_reporter import DatabaseReporter
from prunelab.worker.executor import claim_run
from tests.worker.test_db_reporter import queued_run

WRITERS = 8
RUNS = WRITERS // 2
KEYS = ("loss", "accuracy", "layer0/sparsity", "layer1/sparsity", "val_loss", "val_accuracy")
STEPS_PER_WRITER = 300
OVERLAP = 150  # the second writer of a run starts this many steps before the first one ends
BATCH_STEPS = 25


def expected_value(run_id: int, key: str, step: int) -> float:
    return run_id * 1e6 + KEYS.index(key) * 1e5 + step + 0.25


def writer(run_id: int, attempt: int, first_step: int, start: threading.Barrier) -> None:
    reporter = DatabaseReporter(run_id, attempt, flush_interval=3600)
    start.wait(timeout=60)
    steps = range(first_step, first_step + STEPS_PER_WRITER)
    for batch_start in range(0, len(steps), BATCH_STEPS):
        batch = steps[batch_start : batch_start + BATCH_STEPS]
        for _delivery in range(2):  # each batch twice: a retried flush
            for step in batch:
                reporter.log(step, {key: expected_value(run_id, key, step) for key in KEYS}, wall_time=step / 10)
            assert reporter.flush(), "a flush failed"
    assert not reporter.lost.is_set()


def stored(run_ids: list[int]) -> list[tuple[int, str, int, float | None]]:
    with session_scope() as session:
        return [
            tuple(row)  # type: ignore[misc]
            for row in session.execute(
                select(Metric.run_id, Metric.key, Metric.step, Metric.value).where(Metric.run_id.in_(run_ids))
            )
        ]


def test_eight_concurrent_writers_store_each_point_exactly_once(settings: object) -> None:
    claims = []
    for _ in range(RUNS):
        claim = claim_run(queued_run(), "sweep")
        assert claim is not None
        claims.append(claim)
    start = threading.Barrier(WRITERS)
    with ThreadPoolExecutor(WRITERS) as pool:  # each writer's sessions are its own connections
        writers = [
            pool.submit(writer, claim.run_id, claim.attempt, 1 + second * (STEPS_PER_WRITER - OVERLAP), start)
            for claim in claims
            for second in (0, 1)
        ]
        for done in writers:
            done.result(timeout=600)  # re-raises a writer's failure
    run_ids = [claim.run_id for claim in claims]
    last_step = 1 + (STEPS_PER_WRITER - OVERLAP) + STEPS_PER_WRITER - 1
    expected = {
        (run_id, key, step): expected_value(run_id, key, step)
        for run_id in run_ids
        for key in KEYS
        for step in range(1, last_step + 1)
    }
    rows = stored(run_ids)
    assert len(rows) == len(expected)  # nothing doubled
    assert {(run_id, key, step): value for run_id, key, step, value in rows} == expected  # nothing lost, right value
    with session_scope() as session:
        latest = {
            (row.run_id, row.key): (row.step, row.value)
            for row in session.scalars(select(LatestMetric).where(LatestMetric.run_id.in_(run_ids)))
        }
    assert latest == {
        (run_id, key): (last_step, expected_value(run_id, key, last_step)) for run_id in run_ids for key in KEYS
    }

    # A late re-delivery with other values changes nothing: the first write won.
    late = DatabaseReporter(claims[0].run_id, claims[0].attempt, flush_interval=3600)
    late.log(10, dict.fromkeys(KEYS, -1.0), wall_time=0.0)
    assert late.flush()
    assert {(r, k, s): v for r, k, s, v in stored(run_ids)} == expected


def test_a_stale_attempt_writes_nothing_while_the_new_one_does(settings: object) -> None:
    run_id = queued_run()
    first = claim_run(run_id, "a")
    assert first is not None
    stale = DatabaseReporter(run_id, first.attempt, flush_interval=3600)
    stale.log(1, {"loss": 1.0}, wall_time=0.1)
    assert stale.flush()
    # The reaper gives the run to another worker: the next claim takes attempt 2.
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == run_id).values(status=RunStatus.QUEUED))
    second = claim_run(run_id, "b")
    assert second is not None and second.attempt == first.attempt + 1
    current = DatabaseReporter(run_id, second.attempt, flush_interval=3600)
    start = threading.Barrier(2)

    def log_and_flush(reporter: DatabaseReporter, value: float) -> None:
        start.wait(timeout=60)
        for step in range(2, 200):
            reporter.log(step, {"loss": value}, wall_time=step / 10)
            if step % 20 == 0:
                reporter.flush()
        reporter.flush()

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(log_and_flush, stale, -1.0), pool.submit(log_and_flush, current, 2.0)]:
            done.result(timeout=600)
    assert stale.lost.is_set() and stale.stop_requested()
    assert not current.lost.is_set()
    rows = stored([run_id])
    assert sorted((step, value) for _, _, step, value in rows) == [(1, 1.0)] + [(step, 2.0) for step in range(2, 200)]
