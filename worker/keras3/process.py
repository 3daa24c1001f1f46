"""Start a keras-engine run's child process and stand in for it in the worker process.

`train` has the tfmot engine's signature (`prunelab.worker.training.train.train`), so the executor calls
either engine the same way. The child (`prunelab.worker.keras3.child`) gets KERAS_BACKEND set to the run's
backend and no TF_USE_LEGACY_KERAS; its points go to this process's reporter (the database reporter: heartbeats,
fenced writes, cancellation stay here), its checkpoints to this process's checkpointer, and a stop (cancel,
worker shutdown) is passed to it. If this process is interrupted (the soft time limit), the child is killed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from prunelab.core.plans import RunPlan
from prunelab.core.specs import KERAS_BACKEND_INSTALL, KERAS_BACKEND_PACKAGES, RunSpec
from prunelab.core.telemetry import Reporter
from prunelab.worker import KERAS3_CHILD
from prunelab.worker.training.checkpoint_file import Checkpointer
from prunelab.worker.training.result import TrainingResult

log = logging.getLogger(__name__)
STOP_POLL_S = 0.2


class EngineFailed(RuntimeError):
    """The child's training raised: the run's error is the child's own `Type: message`, as a tfmot run's is."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.run_error = f"{type_name}: {message}"


class BackendNotInstalled(RuntimeError):
    """This worker cannot run the run's Keras backend."""


def missing_packages(backend: str) -> list[str]:
    """What this machine lacks to run Keras 3 on `backend`, found without importing anything."""
    return [name for name in ("keras", KERAS_BACKEND_PACKAGES[backend]) if importlib.util.find_spec(name) is None]


def installed_backends() -> list[str]:
    """The Keras backends this worker can run a keras-engine run on (its presence row records them)."""
    return [backend for backend in KERAS_BACKEND_PACKAGES if not missing_packages(backend)]


def check_backend(backend: str) -> None:
    """Raise BackendNotInstalled, naming the backend and what to install, unless Keras 3 and it are here."""
    missing = missing_packages(backend)
    if missing:
        raise BackendNotInstalled(
            f"the keras engine's {backend} backend is not installed on this worker ({', '.join(missing)} missing): "
            f"{KERAS_BACKEND_INSTALL[backend]}"
        )


def child_environment(backend: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    # JAX picks its platform itself (a CUDA build takes the GPU, the CPU build the CPU): forcing cpu here would
    # train a GPU worker's runs on its CPU.
    env.update({"KERAS_BACKEND": backend, KERAS3_CHILD: "1", "PYTHONUNBUFFERED": "1"})
    return env


def train(
    spec: RunSpec,
    plan: RunPlan,
    reporter: Reporter,
    *,
    data_dir: Path | None,
    output_dir: Path,
    start_model: Path | None = None,
    checkpoints: Checkpointer | None = None,
) -> TrainingResult:
    """Train a keras-engine run in a child process on its backend; report, checkpoint and stop through this one."""
    check_backend(spec.keras_backend)
    request = {
        "spec": spec.model_dump(mode="json"),
        "plan": plan.model_dump(mode="json"),
        "data_dir": str(data_dir) if data_dir else None,
        "output_dir": str(output_dir),
        "start_model": str(start_model) if start_model else None,
        "checkpoints": checkpoints is not None,
        "checkpoint": str(latest) if checkpoints is not None and (latest := checkpoints.latest()) else None,
    }
    stderr_path = output_dir.parent / "keras-engine.log"
    with stderr_path.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "prunelab.worker.keras3.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=child_environment(spec.keras_backend),
            text=True,
        )
        try:
            return _converse(child, request, reporter, checkpoints, stderr_path)
        except BaseException:
            child.kill()  # a failure, or the soft time limit here: the child's training ends with it
            raise
        finally:
            _end(child)


def _converse(
    child: subprocess.Popen[str],
    request: dict[str, Any],
    reporter: Reporter,
    checkpoints: Checkpointer | None,
    stderr_path: Path,
) -> TrainingResult:
    assert child.stdin is not None and child.stdout is not None
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        with lock:
            child.stdin.write(json.dumps(message) + "\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]

    send(request)
    done = threading.Event()

    def pass_stop() -> None:
        while not done.wait(STOP_POLL_S):
            if reporter.stop_requested():
                with contextlib.suppress(BrokenPipeError, ValueError):  # the child has already ended
                    send({"kind": "stop"})
                return

    threading.Thread(target=pass_stop, name="prunelab-keras3-stop", daemon=True).start()
    try:
        for line in child.stdout:
            message = json.loads(line)
            kind = message["kind"]
            if kind == "log":
                reporter.log(message["step"], message["metrics"], message["wall_time"])
            elif kind == "checkpoint":
                assert checkpoints is not None
                checkpoints.save(message["epoch"], message["step"], Path(message["path"]))
                send({"kind": "saved"})
            elif kind == "result":
                exports = {name: Path(path) for name, path in message["exports"].items()}
                return TrainingResult(
                    summary=message["summary"],
                    exports=exports,
                    cancelled=message["cancelled"],
                    steps_completed=message["steps_completed"],
                )
            elif kind == "failed":  # the traceback is in the child's stderr, which goes with the scratch folder
                log.error("keras engine run failed:\n%s", stderr_path.read_text(errors="replace")[-4000:])
                raise EngineFailed(message["type"], message["message"])
    finally:
        done.set()
    code = child.wait()
    tail = stderr_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the keras engine's training process exited with code {code} before its result: {tail}")


def _end(child: subprocess.Popen[str]) -> None:
    """Close the child's stdin (it stops at its next step) and wait for it; kill it if it does not exit."""
    try:
        if child.stdin is not None:
            child.stdin.close()
    except OSError:
        pass
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
