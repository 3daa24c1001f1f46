"""Child processes that each load one Keras: tfmot on tf-keras (TF_USE_LEGACY_KERAS=1) or Keras 3 on a backend.

Which Keras a process gets is fixed at its first import, so the engine identity tests (tests/prune) and the
keras3_engine benchmark run each side as `python -m MODULE ARGS...` in a process of its own, from a clean
environment with only their own choice set, and exchange arrays through .npz files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.stack import REPO

LEGACY_KERAS = {"TF_USE_LEGACY_KERAS": "1"}


def keras3(backend: str) -> dict[str, str]:
    """The environment of a Keras 3 side on `backend` (tensorflow, jax, torch)."""
    return {"KERAS_BACKEND": backend}


def side_environment(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without any Keras choice, on the CPU, with `env` on top."""
    clean = {key: value for key, value in os.environ.items() if key not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    clean.update({"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", **env})
    return clean


def start_side(module: str, arguments: Sequence[str], env: dict[str, str]) -> subprocess.Popen:
    """Start `python -m module arguments...` with `env` on a clean environment; output kept for `finish_side`."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *arguments],
        cwd=REPO,
        env=side_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_side(process: subprocess.Popen, timeout: float = 600) -> str:
    """Wait for a side; its output, or a RuntimeError carrying the end of it."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise RuntimeError(f"{process.args!r} ran past {timeout} s:\n{output[-6000:]}") from None
    if process.returncode != 0:
        raise RuntimeError(f"{process.args!r} exited {process.returncode}:\n{output[-6000:]}")
    return output


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read into memory."""
    with np.load(path) as saved:
        return {key: saved[key] for key in saved.files}
