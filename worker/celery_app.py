"""The worker's Celery app: the shared app from backend.queue.client, with the tasks registered.

TensorFlow is not imported here: each pool process imports it when its first run
starts, after the fork (TensorFlow is not fork-safe).
"""

from __future__ import annotations

import prunelab.worker  # noqa: F401 - selects tf-keras before anything imports TensorFlow
from prunelab.server.queue.client import get_celery

app = get_celery()
app.conf.include = [
    "prunelab.worker.tasks",
    "prunelab.worker.lifecycle",
    "prunelab.worker.failures",
    "prunelab.worker.presence",
]
