"""Run lifecycle: create, read, cancel, delete. Services flush; the caller's scope commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from backend.artifacts.storage import ArtifactStore, run_prefix
from backend.db import after_commit
from backend.errors import RunNotFound, RunStateConflict
from backend.models import Run, RunStatus, utcnow
from backend.plans import resolve_plan
from backend.queue import enqueue_run
from backend.specs import RunSpec


def create_run(session: Session, spec: RunSpec) -> Run:
    """Validate and store a run, then queue it once the row is committed."""
    plan = resolve_plan(spec)
    run = Run(
        name=spec.display_name(),
        status=RunStatus.QUEUED,
        spec=spec.model_dump(mode="json"),
        plan=plan.model_dump(mode="json"),
    )
    session.add(run)
    session.flush()
    run_id = run.id
    after_commit(session, lambda: enqueue_run(run_id))
    return run


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id, options=[selectinload(Run.artifacts)])
    if run is None:
        raise RunNotFound(run_id)
    return run


def list_runs(session: Session, limit: int, offset: int) -> list[Run]:
    query = select(Run).options(selectinload(Run.artifacts)).order_by(Run.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))


def update_run(session: Session, run_id: int, tags: list[str] | None, note: str | None) -> Run:
    """Replace the run's tags (deduplicated, in order) and/or its note."""
    run = get_run(session, run_id)
    if tags is not None:
        run.tags = list(dict.fromkeys(tags))
    if note is not None:
        run.note = note
    session.flush()
    return run


def cancel_run(session: Session, run_id: int) -> Run:
    """A queued run never starts; a running one stops within a few steps; a finished one is left as it is."""
    run = get_run(session, run_id)
    if RunStatus(run.status).finished:
        return run
    run.cancel_requested = True
    if run.status == RunStatus.QUEUED:
        run.status = RunStatus.CANCELLED
        run.finished_at = utcnow()
    session.flush()
    return run


def delete_run(session: Session, store: ArtifactStore, run_id: int) -> None:
    """Delete a run that is not running, with its metrics and files."""
    run = get_run(session, run_id)
    if run.status == RunStatus.RUNNING:
        raise RunStateConflict(f"run {run_id} is running; cancel it first, then delete it")
    session.delete(run)
    session.flush()
    after_commit(session, lambda: store.delete_prefix(run_prefix(run_id)))
