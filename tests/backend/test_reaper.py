"""The reaper: dead runs are requeued under an attempt cap, then failed; lost queue entries are sent again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from billiard.exceptions import WorkerLostError
from celery.exceptions import TimeLimitExceeded

import prunelab.server.runs.reaper as reaper
from prunelab.server.db import session_scope
from prunelab.server.models import Run, RunStatus, utcnow
from prunelab.server.queue.broker import run_id_of, run_ids_in_broker
from prunelab.server.queue.client import enqueue_run
from prunelab.worker.db_reporter import DatabaseReporter
from prunelab.worker.executor import claim_run
from prunelab.worker.failures import release_lost_run
from tests.worker.test_db_reporter import metric_count, queued_run


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run ids the reaper sends to the broker (recorded, not sent)."""
    calls: list[int] = []
    monkeypatch.setattr(reaper, "enqueue_run", calls.append)
    return calls


def age_heartbeat(run_id: int, seconds: float) -> None:
    with session_scope() as session:
        session.get(Run, run_id).heartbeat_at = utcnow() - timedelta(seconds=seconds)


def read(run_id: int) -> Run:
    with session_scope() as session:
        return session.get(Run, run_id)


def test_a_dead_run_is_requeued_then_failed_at_the_attempt_cap(settings, sent: list[int]) -> None:  # type: ignore[no-untyped-def]
    run_id = queued_run()
    first = claim_run(run_id, "worker-a")
    assert first is not None
    reporter = DatabaseReporter(run_id, first.attempt, flush_interval=3600)
    reporter.log(1, {"loss": 1.0}, wall_time=0.0)
    assert reporter.flush()
    age_heartbeat(run_id, settings.heartbeat_timeout_s + 1)

    report = reaper.reap_once(settings)
    assert report.requeued == [run_id] and sent == [run_id]
    run = read(run_id)
    assert (run.status, run.attempt, run.worker, run.heartbeat_at) == ("queued", 1, None, None)
    assert metric_count(run_id) == 1  # the dead attempt's metrics stay

    # The old attempt comes back to life: fenced out, it writes nothing and is told to stop.
    reporter.log(2, {"loss": 0.5}, wall_time=0.1)
    reporter.flush()
    assert reporter.lost.is_set() and metric_count(run_id) == 1

    second = claim_run(run_id, "worker-b")
    assert second is not None and second.attempt == 2
    age_heartbeat(run_id, settings.heartbeat_timeout_s + 1)
    report = reaper.reap_once(settings)
    assert report.failed == [run_id] and sent == [run_id]
    run = read(run_id)
    assert run.status == "failed" and run.error.startswith("worker lost (heartbeat stopped at ")
    assert "attempt 2 of 2" in run.error


def test_a_live_run_is_left_alone(settings, sent: list[int]) -> None:  # type: ignore[no-untyped-def]
    run_id = queued_run()
    assert claim_run(run_id, "worker-a") is not None
    age_heartbeat(run_id, settings.heartbeat_timeout_s - 5)
    assert reaper.reap_once(settings).requeued == []
    assert read(run_id).status == "running"


def test_the_defaults_reap_within_90_seconds() -> None:
    from prunelab.server.settings import Settings

    defaults = Settings()
    assert defaults.heartbeat_timeout_s + defaults.reaper_interval_s < 90
    assert defaults.max_attempts == 2


def test_queued_runs_missing_from_the_broker_are_sent_again(settings, sent: list[int], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    lost, waiting, fresh = queued_run(), queued_run(), queued_run()
    with session_scope() as session:
        for run_id in (lost, waiting):
            session.get(Run, run_id).created_at = utcnow() - timedelta(seconds=settings.reconcile_after_s + 1)
    monkeypatch.setattr(reaper, "run_ids_in_broker", lambda _: {waiting})
    report = reaper.reap_once(settings)
    assert report.resent == [lost] and sent == [lost]  # `fresh` may still be on its way to the broker

    def unreachable(_):  # type: ignore[no-untyped-def]
        raise ConnectionError("broker down")

    monkeypatch.setattr(reaper, "run_ids_in_broker", unreachable)
    assert reaper.reap_once(settings).resent == []  # an unreachable broker is not an empty one
    assert fresh


def test_duplicate_messages_are_harmless(settings) -> None:  # type: ignore[no-untyped-def]
    run_id = queued_run()
    claims = [claim_run(run_id, f"worker-{index}") for index in range(3)]
    assert [claim is not None for claim in claims] == [True, False, False]
    assert read(run_id).attempt == 1


def test_the_broker_is_read_for_run_ids(settings) -> None:  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis.from_url(settings.broker_url)
    client.delete(settings.queue)
    try:
        enqueue_run(41)
        enqueue_run(42)
        assert run_ids_in_broker(settings) == {41, 42}
    finally:
        client.delete(settings.queue)
    assert run_id_of(b"not json") is None
    assert run_id_of('{"headers": {"task": "other"}, "body": ""}') is None


def test_the_main_process_fails_a_hard_timed_out_run_at_once(settings) -> None:  # type: ignore[no-untyped-def]
    run_id = queued_run()
    assert claim_run(run_id, "node-a") is not None
    assert release_lost_run(run_id, "node-b", TimeLimitExceeded(20)) == ""  # not this worker's run
    assert release_lost_run(run_id, "node-a", TimeLimitExceeded(20)) == "failed"
    run = read(run_id)
    assert run.status == "failed" and "time limit" in run.error


def test_the_main_process_requeues_a_run_whose_pool_process_died(settings, sent: list[int]) -> None:  # type: ignore[no-untyped-def]
    run_id = queued_run()
    assert claim_run(run_id, "node-a") is not None
    assert release_lost_run(run_id, "node-a", WorkerLostError("signal 9")) == "requeued"
    assert read(run_id).status == RunStatus.QUEUED and sent == [run_id]
