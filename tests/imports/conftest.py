"""Event files written once per session by a real tfmot training (in a child process: TensorFlow stays out of here)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.stack import REPO


@dataclass(frozen=True)
class PruningLogs:
    folder: Path
    expected: dict[str, Any]  # {"layer_sparsity": {layer: {step: sparsity}}, "epochs": n}


@pytest.fixture(scope="session")
def pruning_logs(tmp_path_factory: pytest.TempPathFactory) -> PruningLogs:
    folder = tmp_path_factory.mktemp("tfmot-logs") / "mnist-pruning"
    done = subprocess.run(
        [sys.executable, "-m", "tests.imports.tfmot_events", str(folder)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return PruningLogs(folder, json.loads(done.stdout.strip().splitlines()[-1]))
