"""The worker's presence: its Celery main process upserts one `workers` row every `worker_heartbeat_s`.

The dashboard, `prunelab workers` and `/metrics` read these rows (backend/queue/workers.py): a worker
whose heartbeat is older than two intervals is shown gone, whether it was killed or its machine went
away. A clean shutdown records `stopped_at`. The run a worker trains is read from `runs.worker`, which
the claim sets to the same node name.

Each row records the Keras backends this worker's keras engine can run, so that the API refuses a keras run
for a backend no live worker offers (backend/runs/service.py).

The main process forks pool processes later, so each beat uses an engine that pools no connection.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import CursorResult, update

from prunelab.server.db import one_off_engine, session_scope
from prunelab.server.models import Worker, utcnow
from prunelab.server.settings import get_settings
from prunelab.worker.keras3.process import installed_backends

log = logging.getLogger(__name__)


class Presence:
    def __init__(self, name: str, queues: list[str], concurrency: int) -> None:
        self.name = name
        self.queues = queues
        self.concurrency = concurrency
        self.keras_backends = installed_backends()  # probed once: installing a package needs a worker restart
        self.settings = get_settings()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="prunelab-presence", daemon=True)

    def start(self) -> Presence:
        self.beat()
        self._thread.start()
        return self

    def beat(self) -> None:
        """Renew this worker's row (insert it on the first beat of this process)."""
        now = utcnow()
        shown = {
            "host": socket.gethostname(),
            "queues": self.queues,
            "concurrency": self.concurrency,
            "keras_backends": self.keras_backends,
            "heartbeat_at": now,
            "stopped_at": None,
        }
        engine = one_off_engine(self.settings.database_url)
        try:
            with session_scope(engine) as session:
                mine = (Worker.name == self.name, Worker.pid == os.getpid())
                renewed = session.execute(update(Worker).where(*mine).values(**shown))
                if isinstance(renewed, CursorResult) and renewed.rowcount == 0:
                    session.merge(Worker(name=self.name, pid=os.getpid(), started_at=now, **shown))
        finally:
            engine.dispose()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        engine = one_off_engine(self.settings.database_url)
        try:
            with session_scope(engine) as session:
                session.execute(update(Worker).where(Worker.name == self.name).values(stopped_at=utcnow()))
        finally:
            engine.dispose()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.worker_heartbeat_s):
            try:
                self.beat()
            except Exception:
                log.warning(
                    "worker heartbeat failed; retrying in %s s", self.settings.worker_heartbeat_s, exc_info=True
                )


presence: dict[str, Presence] = {}


@worker_ready.connect
def _start_presence(sender: Any = None, **_: Any) -> None:
    queues = sorted(sender.app.amqp.queues.consume_from or {sender.app.conf.task_default_queue: None})
    concurrency = int(getattr(sender.controller, "concurrency", 0) or get_settings().worker_concurrency)
    try:
        presence["self"] = Presence(sender.hostname, queues, concurrency).start()
    except Exception:
        log.exception("could not record this worker's presence; it trains, but is not shown as online")


@worker_shutdown.connect
def _stop_presence(**_: Any) -> None:
    running = presence.pop("self", None)
    if running is not None:
        try:
            running.stop()
        except Exception:
            log.warning("could not record this worker's shutdown; it is shown gone after two heartbeats", exc_info=True)
