"""Worker shutdown: a warm shutdown asks running trainings to stop at the next step.

Celery's warm shutdown waits for running tasks; a training run can last hours. The
main process forwards the shutdown to its pool processes as SIGUSR2, which sets
`shutdown_requested`; the run's reporter reports it as a stop, and the run ends
`failed` with the reason, its metrics kept.

The handler is installed when a run starts, not at pool-process init: billiard
replaces every terminate-like handler (SIGUSR2 included) after Celery's process
initializer has run, and its own handler exits the process with code 70.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

from celery.signals import worker_shutting_down
from celery.worker import state as worker_state

shutdown_requested = threading.Event()


def _on_usr2(_signum: int, _frame: Any) -> None:
    shutdown_requested.set()


def listen_for_shutdown() -> None:
    """In the pool process, at the start of a run: let a worker shutdown stop the training."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGUSR2, _on_usr2)


@worker_shutting_down.connect
def _forward_shutdown(**_: Any) -> None:
    shutdown_requested.set()
    # Only pool processes running a run listen for SIGUSR2; an idle one would exit on it.
    for request in list(worker_state.active_requests):
        if request.worker_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(request.worker_pid, signal.SIGUSR2)
