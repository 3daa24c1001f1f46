"""The Celery app both processes share: the API sends runs, the worker registers tasks.

Built from the one Settings object. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
from functools import lru_cache

from celery import Celery
from sqlalchemy.engine import make_url

from prunelab.server.settings import Settings, get_settings

TRAIN_TASK = "prunelab.train_run"
log = logging.getLogger(__name__)


def make_celery(settings: Settings) -> Celery:
    app = Celery("prunelab", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # the database is the source of truth for a run
        task_default_queue=settings.queue,
        task_acks_late=True,
        task_reject_on_worker_lost=False,  # a killed run is failed by us, never redelivered in a loop
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=25,  # bounds memory a long-lived TensorFlow process can leak
        task_time_limit=settings.run_time_limit_s,
        task_soft_time_limit=settings.run_soft_time_limit_s,
        broker_transport_options=transport_options(settings),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


def transport_options(settings: Settings) -> dict[str, object]:
    if settings.broker_url.startswith("sqla+sqlite"):
        # kombu's SQLAlchemy transport passes these options to create_engine: its connections come from here.
        return {"creator": functools.partial(_broker_connection, make_url(settings.broker_url[5:]).database or "")}
    if settings.broker_url.startswith("sqla+"):
        return {}
    # Redis redelivers an unacknowledged task after the visibility timeout: make it outlast any run.
    return {"visibility_timeout": settings.broker_visibility_timeout_s}


def _broker_connection(path: str) -> sqlite3.Connection:
    """A connection to the embedded SQLite broker in WAL mode with synchronous=NORMAL: kombu commits once per
    message, and in SQLite's default rollback journal each commit waits for several fsyncs (a sweep's 1,000
    messages took seconds). A message that a power cut undoes is sent again by the reaper's reconciliation."""
    connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


@lru_cache
def get_celery() -> Celery:
    return make_celery(get_settings())


def enqueue_run(run_id: int) -> None:
    """Send a committed run to the workers; a broker outage leaves it queued for reconciliation."""
    enqueue_runs([run_id])


def enqueue_runs(run_ids: list[int], celery: Celery | None = None, queue: str | None = None) -> None:
    """Send committed runs to the workers over one broker connection (a sweep's thousand runs in one go)."""
    celery = celery or get_celery()
    queue = queue or get_settings().queue
    policy = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5}
    sent = 0
    try:
        with celery.producer_or_acquire() as producer:
            for run_id in run_ids:
                celery.send_task(
                    TRAIN_TASK, args=[run_id], queue=queue, retry=True, retry_policy=policy, producer=producer
                )
                sent += 1
    except Exception:
        log.exception("could not send runs %s to the broker; they stay queued until reconciled", run_ids[sent:])


def enqueue_runs_in_background(run_ids: list[int]) -> None:
    """Send many committed runs from a thread, so a request that queued a thousand runs answers at once.

    The broker and queue are read here, in the request, so the thread never reads settings of its own.
    A message lost there (the process ends first, the broker is down) is sent again by the reaper's
    reconciliation, as for any run queued in the database and missing from the broker.
    """
    arguments = (run_ids, get_celery(), get_settings().queue)
    threading.Thread(target=enqueue_runs, args=arguments, name="prunelab-enqueue", daemon=True).start()
