"""Worker shutdown: a warm shutdown asks running trainings to stop at the next step.

Celery's warm shutdown waits for running tasks; a training run can last hours. The
main process forwards the shutdown to its pool processes as SIGUSR2, which sets
`shutdown_requested`; the run's reporter reports it as a stop, and the run ends
`failed` with the reason, its metrics kept.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

from billiard.process import active_children
from celery.signals import worker_process_init, worker_shutting_down

shutdown_requested = threading.Event()


def _on_usr2(_signum: int, _frame: Any) -> None:
    shutdown_requested.set()


@worker_process_init.connect
def _install_child_handler(**_: Any) -> None:
    signal.signal(signal.SIGUSR2, _on_usr2)


@worker_shutting_down.connect
def _forward_shutdown(**_: Any) -> None:
    shutdown_requested.set()
    for child in active_children():
        if child.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGUSR2)
