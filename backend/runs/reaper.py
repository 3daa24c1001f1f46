"""The reaper: the database, not the broker, decides what happens to a run whose worker died.

One pass (run every `reaper_interval_s` by a thread in the API process, or once by
`prunelab reap`) does two things:

- A running run whose heartbeat is older than `heartbeat_timeout_s` lost its worker
  (killed, out of memory, machine gone). It is requeued while it has had fewer than
  `max_attempts` attempts, else marked failed "worker lost". Every update is fenced on
  the attempt and heartbeat read, so two reapers, or a worker that comes back, never
  race it into a wrong state; a worker that does come back finds its attempt gone and
  writes nothing more.
- A run queued in the database for more than `reconcile_after_s` whose message is not
  in the broker (lost with a restarted Redis, or never sent during an outage) is sent
  again (Redis and kombu's SQLAlchemy transport; other brokers are not inspected).
  A duplicate message is harmless: the claim is atomic, a second one skips.

External runs (backend/runs/external.py) have no worker: they are never requeued or re-sent.
One whose client has been silent for `external_run_timeout_s` (its script was killed before it
finished the run) is marked failed, so it does not show as running for ever.

Each pass also compacts the metric history of finished runs that still have hot rows (runs
that finished before compaction existed, or whose worker died before compacting them).

Metrics of a dead attempt stay. A requeued run continues after its latest epoch-end checkpoint
(worker/checkpoints.py), or from step 1 without one; steps stored twice keep the first write
(ON CONFLICT DO NOTHING). A run failed here has its checkpoints deleted.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from prunelab.server.artifacts.service import discard_checkpoints, get_store
from prunelab.server.db import after_commit, session_scope
from prunelab.server.metrics.compaction import compact_pending
from prunelab.server.models import Run, RunStatus, utcnow
from prunelab.server.queue.broker import run_ids_in_broker
from prunelab.server.queue.client import enqueue_run
from prunelab.server.queue.workers import forget_old_workers
from prunelab.server.runs import links
from prunelab.server.runs.external import PRUNELAB_SOURCE
from prunelab.server.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ReaperReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    compacted: list[int] = field(default_factory=list)


def release_run(session: Session, run_id: int, attempt: int, reason: str, *, max_attempts: int, retry: bool) -> str:
    """Requeue (if `retry` and attempts remain) or fail a running attempt; fenced on that attempt.

    Returns "requeued", "failed", or "" when the attempt was no longer running.
    """
    fence = (Run.id == run_id, Run.attempt == attempt, Run.status == RunStatus.RUNNING)
    if retry and attempt < max_attempts:
        values: dict[str, object] = {"status": RunStatus.QUEUED, "worker": None, "heartbeat_at": None}
        outcome = "requeued"
    else:
        values = {"status": RunStatus.FAILED, "error": reason, "finished_at": utcnow(), "checkpoint": None}
        outcome = "failed"
    released = session.execute(update(Run).where(*fence).values(**values).returning(Run.id)).first()
    if released is None:
        return ""
    log.warning("run %s attempt %s: %s; %s", run_id, attempt, reason, outcome)
    if outcome == "requeued":
        after_commit(session, lambda: enqueue_run(run_id))
    else:
        links.fail_waiting_runs(session, run_id, "failed")
        after_commit(session, lambda: discard_checkpoints(run_id))
    return outcome


def reap_dead_runs(session: Session, settings: Settings, now: datetime, report: ReaperReport) -> None:
    """Requeue or fail running runs whose heartbeat stopped."""
    cutoff = now - timedelta(seconds=settings.heartbeat_timeout_s)
    stale = session.execute(
        select(Run.id, Run.attempt, Run.heartbeat_at).where(
            Run.status == RunStatus.RUNNING,
            Run.source == PRUNELAB_SOURCE,
            or_(Run.heartbeat_at < cutoff, Run.heartbeat_at.is_(None)),
        )
    ).all()
    for run_id, attempt, heartbeat_at in stale:
        seen = heartbeat_at.isoformat(timespec="seconds") if heartbeat_at else "never"
        reason = f"worker lost (heartbeat stopped at {seen}) on attempt {attempt} of {settings.max_attempts}"
        outcome = release_run(session, run_id, attempt, reason, max_attempts=settings.max_attempts, retry=True)
        if outcome:
            getattr(report, outcome).append(run_id)


def fail_silent_external_runs(session: Session, settings: Settings, now: datetime, report: ReaperReport) -> None:
    """Fail external runs whose client sent nothing for `external_run_timeout_s`; never requeued."""
    cutoff = now - timedelta(seconds=settings.external_run_timeout_s)
    silent = session.execute(
        select(Run.id, Run.attempt, Run.heartbeat_at).where(
            Run.status == RunStatus.RUNNING,
            Run.source != PRUNELAB_SOURCE,
            or_(Run.heartbeat_at < cutoff, Run.heartbeat_at.is_(None)),
        )
    ).all()
    for run_id, attempt, heartbeat_at in silent:
        seen = heartbeat_at.isoformat(timespec="seconds") if heartbeat_at else "never"
        reason = f"nothing heard from the script since {seen}: it stopped without finishing the run"
        if release_run(session, run_id, attempt, reason, max_attempts=1, retry=False):
            report.failed.append(run_id)


def reconcile_queue(
    session: Session, settings: Settings, now: datetime, in_broker: set[int], report: ReaperReport
) -> None:
    """Send again runs queued in the database for a while but missing from the broker."""
    cutoff = now - timedelta(seconds=settings.reconcile_after_s)
    waiting = session.scalars(
        select(Run.id).where(
            Run.status == RunStatus.QUEUED,
            Run.cancel_requested.is_(False),
            Run.created_at <= cutoff,
            links.base_run_ready(),  # a run waiting on its dense base run is sent when that succeeds
        )
    ).all()
    for run_id in waiting:
        if run_id in in_broker or run_id in report.requeued:
            continue
        report.resent.append(run_id)
        after_commit(session, partial(enqueue_run, run_id))


def reap_once(settings: Settings) -> ReaperReport:
    """One pass: reap dead runs, then reconcile the queue with the broker."""
    report = ReaperReport()
    with session_scope() as session:
        reap_dead_runs(session, settings, utcnow(), report)
        fail_silent_external_runs(session, settings, utcnow(), report)
        forget_old_workers(session, utcnow())
    remove_stale_partials(settings)
    report.compacted = compact_pending()
    try:
        in_broker = run_ids_in_broker(settings)
    except Exception:
        log.warning("broker unreachable; queue reconciliation waits for the next pass", exc_info=True)
        return report
    if in_broker is None:
        return report  # a broker PruneLab cannot look into: nothing to compare with
    with session_scope() as session:
        reconcile_queue(session, settings, utcnow(), in_broker, report)
    if report.resent:
        log.warning("re-sent runs queued in the database but missing from the broker: %s", report.resent)
    return report


def remove_stale_partials(settings: Settings) -> int:
    """Temporary files of artifact writes killed midway, once older than any run may last."""
    if settings.artifact_dir is not None and not settings.artifact_dir.is_dir():
        return 0
    return get_store(settings).remove_stale_partials(settings.run_time_limit_s + 3600)


class ReaperThread:
    """Runs `reap_once` every `reaper_interval_s` until stopped; a failed pass is logged and retried."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="prunelab-reaper", daemon=True)

    def start(self) -> ReaperThread:
        if self.settings.reaper_interval_s > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                reap_once(self.settings)
            except Exception:
                log.exception("reaper pass failed; retrying in %s s", self.settings.reaper_interval_s)
            self._stop.wait(max(0.0, self.settings.reaper_interval_s - (time.monotonic() - started)))
