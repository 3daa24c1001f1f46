"""Workers and the queue as the dashboard, `prunelab workers` and `/metrics` show them.

Read from the rows the workers write themselves (worker/presence.py) and from the runs table: no
broker round trip per request. A worker is online while its heartbeat is younger than two
`worker_heartbeat_s`; after that it is shown gone (killed, or its machine went away) until the
reaper forgets it a day later. The queue is the runs queued in the database, oldest first, which is
the order Celery hands them out in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, CursorResult, and_, delete, func, select, tuple_
from sqlalchemy.orm import Session

from prunelab.server.models import Run, RunStatus, Worker
from prunelab.server.settings import Settings

FORGET_AFTER = timedelta(days=1)
SHOWN_QUEUED_RUNS = 100
TRAINED_HERE = "prunelab"  # runs.source of runs a worker trains (external runs never wait in the queue)


class WorkerOut(BaseModel):
    name: str = Field(description="Celery node name, as runs record it.")
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    keras_backends: list[str] | None = Field(
        description="The Keras backends its keras engine can run; null: not recorded (a worker of an earlier version)."
    )
    state: Literal["online", "gone", "stopped"] = Field(
        description="online: heartbeat within two intervals; gone: heartbeat missed (killed?); stopped: shut down."
    )
    started_at: datetime
    heartbeat_at: datetime
    running: list[int] = Field(description="Ids of the runs this worker is training.")


class QueuedRunOut(BaseModel):
    id: int
    name: str
    position: int = Field(description="1 = the next run a worker takes.")


class QueueOut(BaseModel):
    name: str
    length: int = Field(description="Runs queued for a worker.")
    runs: list[QueuedRunOut] = Field(description=f"The first {SHOWN_QUEUED_RUNS} queued runs, next first.")
    waiting: str | None = Field(description="Why queued runs do not start, when no worker listens on the queue.")


class WorkersOut(BaseModel):
    workers: list[WorkerOut]
    queue: QueueOut


def online_since(settings: Settings, now: datetime) -> datetime:
    """A worker whose heartbeat is older than this has missed two beats."""
    return now - timedelta(seconds=2 * settings.worker_heartbeat_s)


def _state(worker: Worker, cutoff: datetime) -> Literal["online", "gone", "stopped"]:
    if worker.stopped_at is not None:
        return "stopped"
    return "online" if worker.heartbeat_at >= cutoff else "gone"


def list_workers(session: Session, settings: Settings, now: datetime) -> list[WorkerOut]:
    """Every worker seen in the last day, online first, each with the runs it is training."""
    cutoff = online_since(settings, now)
    rows = session.scalars(select(Worker).order_by(Worker.heartbeat_at.desc(), Worker.name)).all()
    running: dict[str | None, list[int]] = {}
    for run_id, worker_name in session.execute(
        select(Run.id, Run.worker).where(Run.status == RunStatus.RUNNING, Run.worker.is_not(None)).order_by(Run.id)
    ):
        running.setdefault(worker_name, []).append(run_id)
    shown = [
        WorkerOut(
            name=row.name,
            host=row.host,
            pid=row.pid,
            queues=row.queues,
            concurrency=row.concurrency,
            keras_backends=row.keras_backends,
            state=_state(row, cutoff),
            started_at=row.started_at,
            heartbeat_at=row.heartbeat_at,
            running=running.get(row.name, []) if _state(row, cutoff) == "online" else [],
        )
        for row in rows
    ]
    return sorted(shown, key=lambda worker: worker.state != "online")


def online_count(session: Session, settings: Settings, now: datetime, queue: str | None = None) -> int:
    """Workers online (listening on `queue`, when given)."""
    rows = session.scalars(
        select(Worker.queues).where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= online_since(settings, now))
    ).all()
    return sum(1 for queues in rows if queue is None or queue in queues)


def online_keras_backends(session: Session, settings: Settings, now: datetime) -> list[str] | None:
    """The Keras backends the online workers on the runs' queue offer together; None when that is unknown: no
    worker is online (queued runs wait for one) or one did not record its backends."""
    rows = session.scalars(
        select(Worker).where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= online_since(settings, now))
    ).all()
    listening = [row for row in rows if settings.queue in row.queues]
    if not listening or any(row.keras_backends is None for row in listening):
        return None
    return sorted({backend for row in listening for backend in row.keras_backends or []})


def no_worker_message(session: Session, settings: Settings, now: datetime) -> str | None:
    """Why a queued run does not start, when no online worker listens on the runs' queue."""
    if online_count(session, settings, now, settings.queue):
        return None
    return f"no worker is listening on queue `{settings.queue}`: start one with `prunelab worker`"


def _queued() -> ColumnElement[bool]:
    return and_(Run.status == RunStatus.QUEUED, Run.source == TRAINED_HERE)


def queue_length(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Run).where(_queued())) or 0


def queue_position(session: Session, run: Run) -> int | None:
    """1 for the next queued run a worker takes; None for a run not waiting in the queue."""
    if run.status != RunStatus.QUEUED or run.source != TRAINED_HERE:
        return None
    ahead = (
        select(func.count())
        .select_from(Run)
        .where(_queued(), tuple_(Run.created_at, Run.id) < tuple_(run.created_at, run.id))
    )
    return (session.scalar(ahead) or 0) + 1


def queue_out(session: Session, settings: Settings, now: datetime) -> QueueOut:
    length = queue_length(session)
    first = session.execute(
        select(Run.id, Run.name).where(_queued()).order_by(Run.created_at, Run.id).limit(SHOWN_QUEUED_RUNS)
    ).all()
    return QueueOut(
        name=settings.queue,
        length=length,
        runs=[QueuedRunOut(id=run_id, name=name, position=index) for index, (run_id, name) in enumerate(first, 1)],
        waiting=no_worker_message(session, settings, now) if length else None,
    )


def forget_old_workers(session: Session, now: datetime) -> int:
    """Remove workers not heard from for a day (the reaper calls this)."""
    result = session.execute(delete(Worker).where(Worker.heartbeat_at < now - FORGET_AFTER))
    return result.rowcount if isinstance(result, CursorResult) else 0
