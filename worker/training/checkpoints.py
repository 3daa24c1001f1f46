"""Epoch-end checkpoints of the tfmot engine: the callback that writes them and the resume at a run's start.

The file itself (what it holds, how it is read back) is `checkpoint_file`, shared with the keras engine.
"""

from __future__ import annotations

from pathlib import Path

from prunelab.worker.training.callbacks import PruningReporter
from prunelab.worker.training.checkpoint_file import (
    FORMAT,
    Checkpointer,
    Resumed,
    restore_checkpoint,
    write_checkpoint,
)
from prunelab.worker.training.recipes.lottery import RewindSnapshot
from prunelab.worker.training.tf import keras

__all__ = [
    "FORMAT",
    "Checkpointer",
    "EpochCheckpoint",
    "Resumed",
    "restore_checkpoint",
    "resume_from",
    "write_checkpoint",
]


class EpochCheckpoint(keras.callbacks.Callback):
    """At each epoch end, write a checkpoint and hand it to the checkpointer (goes after the reporter)."""

    def __init__(
        self, checkpointer: Checkpointer, progress: PruningReporter, scratch: Path, rewind: RewindSnapshot | None
    ) -> None:
        super().__init__()
        self.checkpointer = checkpointer
        self.progress = progress
        self.scratch = scratch
        self.rewind = rewind

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        path = write_checkpoint(
            self.scratch / f"epoch-{epoch + 1}.npz", self.model, self.progress, epoch + 1, self.rewind
        )
        try:
            self.checkpointer.save(epoch + 1, self.progress.step, path)
        finally:
            path.unlink(missing_ok=True)


def resume_from(
    checkpointer: Checkpointer | None, model: keras.Model, progress: PruningReporter, rewind: RewindSnapshot | None
) -> Resumed | None:
    """The state of the latest checkpoint, restored into the model and reporter; None when there is none."""
    if checkpointer is None:
        return None
    path = checkpointer.latest()
    return None if path is None else restore_checkpoint(path, model, progress, rewind)
