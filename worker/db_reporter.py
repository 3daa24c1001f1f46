"""The training library's Reporter, backed by the database.

`log` only enqueues the step (one tuple per step, not an object per point); a background
thread turns what was logged into numpy columns and writes them every `flush_interval`
seconds in one transaction that first renews the run's heartbeat, fenced on the
attempt this worker holds. If the run was reassigned (or deleted) nothing is
written and training is told to stop. A failed flush keeps its points and retries:
writes are idempotent, so a retried batch never doubles a point.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping

from sqlalchemy import update

from prunelab.server.db import session_scope
from prunelab.server.metrics.ingest import PointBatch, record_batch
from prunelab.server.models import Run, RunStatus, utcnow

log = logging.getLogger(__name__)

LoggedStep = tuple[int, tuple[str, ...], list[float], float]  # step, keys, their values, wall time


class DatabaseReporter:
    def __init__(
        self,
        run_id: int,
        attempt: int,
        *,
        flush_interval: float = 0.5,
        shutdown: threading.Event | None = None,
    ) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self.flush_interval = flush_interval
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._shutdown = shutdown or threading.Event()
        self._incoming: queue.SimpleQueue[LoggedStep] = queue.SimpleQueue()
        self._pending: list[LoggedStep] = []
        self._closing = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"reporter-run{run_id}", daemon=True)

    # Reporter interface -------------------------------------------------
    def log(self, step: int, metrics: Mapping[str, float], wall_time: float) -> None:
        self._incoming.put((step, tuple(metrics), [float(value) for value in metrics.values()], wall_time))

    def stop_requested(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set() or self._shutdown.is_set()

    # lifecycle ------------------------------------------------------------
    @property
    def shutdown(self) -> bool:
        return self._shutdown.is_set()

    def start(self) -> DatabaseReporter:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and write everything logged so far (retrying once on error)."""
        if self._thread.is_alive():
            self._closing.set()
            self._thread.join()
        if not self.flush():
            self.flush()

    def _loop(self) -> None:
        while not self._closing.wait(self.flush_interval):
            self.flush()

    def flush(self) -> bool:
        with self._flush_lock:
            while True:
                try:
                    self._pending.append(self._incoming.get_nowait())
                except queue.Empty:
                    break
            if self.lost.is_set():
                self._pending.clear()
                return True
            try:
                with session_scope() as session:
                    held = session.execute(
                        update(Run)
                        .where(
                            Run.id == self.run_id,
                            Run.attempt == self.attempt,
                            Run.status == RunStatus.RUNNING,
                        )
                        .values(heartbeat_at=utcnow())
                        .returning(Run.cancel_requested)
                    ).first()
                    if held is None:
                        self.lost.set()
                        self._pending.clear()
                        return True
                    if held.cancel_requested:
                        self.cancelled.set()
                    record_batch(session, PointBatch.of_steps(self.run_id, self._pending))
            except Exception:
                log.exception("writing metrics of run %s failed; retrying", self.run_id)
                return False
            self._pending.clear()
            return True
