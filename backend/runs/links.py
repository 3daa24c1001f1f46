"""Runs that wait on a dense base run: started when it succeeds, failed when it does not.

Called by the runs service (cancel, delete) and the worker (a run's outcome), inside the
caller's transaction; enqueueing happens after commit. Services flush, never commit.
"""

from __future__ import annotations

from functools import partial

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from prunelab.server.db import after_commit
from prunelab.server.models import Run, RunStatus, utcnow
from prunelab.server.queue.client import enqueue_run


def base_run_ready() -> ColumnElement[bool]:
    """SQL: the run has no base run, or its base run succeeded (a run may start, or be re-sent)."""
    base = aliased(Run)
    return or_(Run.parent_run_id.is_(None), exists().where(base.id == Run.parent_run_id, base.status == "succeeded"))


def waiting_run_ids(session: Session, base_run_id: int) -> list[int]:
    """Queued runs that start from `base_run_id`."""
    query = select(Run.id).where(Run.parent_run_id == base_run_id, Run.status == RunStatus.QUEUED)
    return list(session.scalars(query.order_by(Run.id)))


def start_waiting_runs(session: Session, base_run_id: int) -> list[int]:
    """Enqueue, once this transaction commits, every run waiting on the now succeeded `base_run_id`."""
    run_ids = waiting_run_ids(session, base_run_id)
    for run_id in run_ids:
        after_commit(session, partial(enqueue_run, run_id))
    return run_ids


def fail_waiting_runs(session: Session, base_run_id: int, outcome: str) -> list[int]:
    """Fail every run waiting on `base_run_id`, saying what became of it ("failed", "was cancelled", ...)."""
    run_ids = waiting_run_ids(session, base_run_id)
    if run_ids:
        session.execute(
            update(Run)
            .where(Run.id.in_(run_ids), Run.status == RunStatus.QUEUED)
            .values(
                status=RunStatus.FAILED,
                finished_at=utcnow(),
                error=f"its base run {base_run_id} {outcome}; it never started",
            )
        )
        session.flush()
    return run_ids
