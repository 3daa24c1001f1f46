"""The database reporter and the run claim: fenced, idempotent, cancel-aware."""

from __future__ import annotations

from sqlalchemy import func, select

from prunelab.core.plans import resolve_plan
from prunelab.core.specs import ConstantSchedule, RunSpec
from prunelab.server.db import session_scope
from prunelab.server.models import Metric, Run, RunStatus
from prunelab.worker.db_reporter import DatabaseReporter
from prunelab.worker.executor import claim_run, finish_run


def queued_run() -> int:
    spec = RunSpec(epochs=1, schedule=ConstantSchedule(frequency=10))
    with session_scope() as session:
        run = Run(name="r", spec=spec.model_dump(mode="json"), plan=resolve_plan(spec).model_dump(mode="json"))
        session.add(run)
        session.flush()
        return run.id


def metric_count(run_id: int) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Metric).where(Metric.run_id == run_id)) or 0


def test_only_one_claim_wins_and_takes_the_next_attempt(settings: object) -> None:
    run_id = queued_run()
    first = claim_run(run_id, "a")
    second = claim_run(run_id, "b")
    assert first is not None and first.attempt == 1
    assert second is None


def test_cancelled_queued_run_is_never_claimed(settings: object) -> None:
    run_id = queued_run()
    with session_scope() as session:
        session.get(Run, run_id).cancel_requested = True
    assert claim_run(run_id, "a") is None


def test_reporter_writes_batches_and_sees_cancel(settings: object) -> None:
    run_id = queued_run()
    claim = claim_run(run_id, "a")
    assert claim is not None
    reporter = DatabaseReporter(run_id, claim.attempt, flush_interval=3600).start()
    for step in range(1, 101):
        reporter.log(step, {"loss": 1.0, "accuracy": 0.5}, wall_time=step / 10)
    reporter.log(50, {"loss": 7.0}, wall_time=0.0)  # a duplicate point: ignored
    assert reporter.flush()
    assert metric_count(run_id) == 200
    assert not reporter.stop_requested()
    with session_scope() as session:
        session.get(Run, run_id).cancel_requested = True
    reporter.flush()
    assert reporter.stop_requested() and reporter.cancelled.is_set()
    reporter.close()
    with session_scope() as session:
        value = session.scalar(
            select(Metric.value).where(Metric.run_id == run_id, Metric.key == "loss", Metric.step == 50)
        )
    assert value == 1.0


def test_a_stale_attempt_writes_nothing_and_is_told_to_stop(settings: object) -> None:
    run_id = queued_run()
    claim = claim_run(run_id, "a")
    assert claim is not None
    stale = DatabaseReporter(run_id, claim.attempt - 1 if claim.attempt > 1 else 99, flush_interval=3600)
    stale.log(1, {"loss": 1.0}, wall_time=0.0)
    stale.flush()
    assert stale.lost.is_set() and stale.stop_requested()
    assert metric_count(run_id) == 0
    stale_claim = claim.__class__(run_id, 99, claim.spec, claim.plan)
    assert finish_run(stale_claim, RunStatus.SUCCEEDED) is False
    assert finish_run(claim, RunStatus.FAILED, error="boom") is True
    with session_scope() as session:
        run = session.get(Run, run_id)
        assert (run.status, run.error) == ("failed", "boom")


def test_points_survive_a_failed_flush(settings: object, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    run_id = queued_run()
    claim = claim_run(run_id, "a")
    assert claim is not None
    reporter = DatabaseReporter(run_id, claim.attempt, flush_interval=3600)
    reporter.log(1, {"loss": 1.0}, wall_time=0.0)
    import prunelab.worker.db_reporter as module

    def broken():  # type: ignore[no-untyped-def]
        raise ConnectionError("database went away")

    monkeypatch.setattr(module, "session_scope", broken)
    assert reporter.flush() is False
    monkeypatch.undo()
    reporter.log(2, {"loss": 0.5}, wall_time=0.1)
    assert reporter.flush() is True
    assert metric_count(run_id) == 2
