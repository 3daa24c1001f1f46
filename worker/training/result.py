"""What training a run gives the worker, whichever engine trained it (no Keras here: both engines return it)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prunelab.telemetry_loop import TelemetryLoop
    from prunelab.worker.training.recipes.lottery import RewindRecord


class ModelNotUsable(ValueError):
    """A starting model that cannot be loaded safely or cannot be pruned; the run fails with this message."""


@dataclass
class TrainingResult:
    summary: dict[str, Any]
    exports: dict[str, Path]  # artifact format -> file (model formats, "masks", "manifest"); empty if cancelled
    cancelled: bool
    steps_completed: int
    rewind: RewindRecord | None = None  # lottery_ticket: what the weights were rewound to


def cancelled_result(progress: TelemetryLoop, started: float) -> TrainingResult:
    """A run stopped before its end: how far it got, no files."""
    summary: dict[str, Any] = {
        "steps": progress.step,
        "measured_sparsity": progress.measured_sparsity,
        "wall_time_s": time.monotonic() - started,
    }
    return TrainingResult(summary=summary, exports={}, cancelled=True, steps_completed=progress.step)
