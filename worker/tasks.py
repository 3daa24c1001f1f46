"""Celery tasks: thin wrappers that hand a run id to the executor."""

from __future__ import annotations

from prunelab.server.queue.client import TRAIN_TASK
from prunelab.worker.celery_app import app
from prunelab.worker.executor import execute_run


@app.task(name=TRAIN_TASK, bind=True)
def train_run(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    """Train one queued run; the run row, not the task result, records the outcome."""
    return execute_run(run_id, worker_name=self.request.hostname or "worker")
