"""The worker's Celery app: the shared app from backend.queue.client, with the tasks registered.

TensorFlow is not imported here: each pool process imports it when its first run
starts, after the fork (TensorFlow is not fork-safe).
"""

from __future__ import annotations

import worker  # noqa: F401 - selects tf-keras before anything imports TensorFlow
from backend.queue.client import get_celery

app = get_celery()
app.conf.include = ["worker.tasks", "worker.lifecycle", "worker.failures"]
