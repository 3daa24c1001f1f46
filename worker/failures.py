"""The Celery main process notices a pool process that died with its run: fail or requeue it at once.

A pool process killed by the hard time limit, or lost (out of memory, killed), cannot
record anything itself; Celery's main process then sends `task_failure` with
TimeLimitExceeded or WorkerLostError. Without this the reaper would still catch the
run once its heartbeat is `heartbeat_timeout_s` old; with it the run ends at once.
A hard time limit fails the run (running it again would time out again); a lost
pool process is requeued under the same attempt cap as the reaper's.

The main process forks pool processes later, so it uses an engine that pools no
connection (a pooled socket must never be shared with a forked child).
"""

from __future__ import annotations

import logging
from typing import Any

from billiard.exceptions import WorkerLostError
from celery.exceptions import TimeLimitExceeded
from celery.signals import celeryd_after_setup, task_failure
from sqlalchemy import select

from prunelab.server.db import one_off_engine, session_scope
from prunelab.server.models import Run, RunStatus
from prunelab.server.queue.client import TRAIN_TASK
from prunelab.server.runs.reaper import release_run
from prunelab.server.settings import get_settings

log = logging.getLogger(__name__)
node: dict[str, str] = {}


@celeryd_after_setup.connect
def _remember_node_name(sender: str, **_: Any) -> None:
    node["name"] = sender


def release_lost_run(run_id: int, worker_name: str, exception: BaseException) -> str:
    """Fail (hard time limit) or requeue (lost pool process) the run this worker was training."""
    settings = get_settings()
    engine = one_off_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            attempt = session.scalar(
                select(Run.attempt).where(Run.id == run_id, Run.status == RunStatus.RUNNING, Run.worker == worker_name)
            )
            if attempt is None:
                return ""  # finished, or already taken over: nothing of ours to release
            if isinstance(exception, TimeLimitExceeded):
                reason = (
                    f"time limit: the run was killed at its hard time limit of {settings.run_time_limit_s} s "
                    "(PRUNELAB_RUN_TIME_LIMIT_S)"
                )
                return release_run(session, run_id, attempt, reason, max_attempts=settings.max_attempts, retry=False)
            reason = f"worker lost: the training process died ({exception}) on attempt {attempt}"
            return release_run(session, run_id, attempt, reason, max_attempts=settings.max_attempts, retry=True)
    finally:
        engine.dispose()


@task_failure.connect
def _on_task_failure(sender: Any = None, exception: BaseException | None = None, args: Any = None, **_: Any) -> None:
    if getattr(sender, "name", None) != TRAIN_TASK or not isinstance(exception, TimeLimitExceeded | WorkerLostError):
        return
    try:
        release_lost_run(int(args[0]), node.get("name", ""), exception)
    except Exception:
        log.exception("could not release run %s after %r; the reaper will", args, exception)
