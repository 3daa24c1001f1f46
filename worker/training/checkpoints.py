"""Epoch-end checkpoints: what a requeued attempt needs to continue a run at the next epoch.

A checkpoint is one .npz read with `allow_pickle=False`: every model weight (kernels, biases and
tfmot's masks, thresholds and pruning steps), every optimizer variable (Adam's moments and its
iteration count, from which tfmot's pruning step is taken), the reporter's state (step, wall time,
sparsities, the mask history behind churn and mask pictures), the lottery ticket's rewind snapshot
once taken, numpy's and Python's random states, and a JSON header. The data position is the
epoch: `epochs.epoch_order` makes epoch k read the same batches in any process.

Where checkpoints are kept is the worker's business (`Checkpointer`); this module only writes and
reads the file. Checkpoints are taken at the end of each epoch of the main training loop; a lottery
ticket's retraining phase and a sensitivity sweep start over from the end of that loop.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from prunelab.worker.training.callbacks import PruningReporter
from prunelab.worker.training.recipes.lottery import RewindSnapshot
from prunelab.worker.training.tf import keras

log = logging.getLogger(__name__)
FORMAT = 1


class Checkpointer(Protocol):
    def latest(self) -> Path | None:
        """A local copy of the run's latest checkpoint, or None to start at step 1."""

    def save(self, epoch: int, step: int, path: Path) -> None:
        """Keep the checkpoint written to `path` after epoch `epoch` (1-based) ends at `step`; blocks."""


@dataclass(frozen=True)
class Resumed:
    epoch: int  # epochs already trained: training continues with epoch `epoch + 1` (1-based)
    step: int


def _optimizer_variables(model: keras.Model) -> list[Any]:
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)  # creates Adam's slots now, as the first step would
    return list(optimizer.variables)


def write_checkpoint(
    path: Path, model: keras.Model, progress: PruningReporter, epoch: int, rewind: RewindSnapshot | None
) -> Path:
    """Everything needed to continue after epoch `epoch` (1-based), in one .npz."""
    progress.drain()  # the mask history is complete only once the background snapshots are done
    arrays: dict[str, np.ndarray] = {}
    for index, value in enumerate(model.get_weights()):
        arrays[f"weight/{index}"] = np.asarray(value)
    for index, variable in enumerate(_optimizer_variables(model)):
        arrays[f"optimizer/{index}"] = np.asarray(variable.numpy())
    previous = progress.masks._previous
    for layer_index, masks in enumerate(previous.values()):
        for mask_index, mask in enumerate(masks):
            arrays[f"previous_mask/{layer_index}/{mask_index}"] = mask
    pictures = list(progress.masks.pictures)
    for index, name in enumerate(pictures):
        arrays[f"picture/{index}"] = progress.masks.pictures[name]
    snapshot = rewind.snapshot if rewind is not None else None
    for index, value in enumerate((snapshot or {}).values()):
        arrays[f"rewind/{index}"] = value
    legacy_state: tuple[Any, ...] = np.random.get_state(legacy=True)  # type: ignore[assignment]
    arrays["numpy_rng"] = np.asarray(legacy_state[1])
    python_state = random.getstate()
    arrays["python_rng"] = np.asarray(python_state[1], dtype=np.uint64)
    header = {
        "format": FORMAT,
        "epoch": epoch,
        "step": progress.step,
        "wall_time": progress.wall_time(),
        "measured_sparsity": progress.measured_sparsity,
        "layer_sparsity": progress.layer_sparsity,
        "previous_mask_layers": [[name, len(masks)] for name, masks in previous.items()],
        "pictures": pictures,
        "rewind": list(snapshot) if snapshot is not None else None,
        "numpy_rng": [legacy_state[0], int(legacy_state[2]), int(legacy_state[3]), float(legacy_state[4])],
        "python_rng": [python_state[0], python_state[2]],
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    return path


def restore_checkpoint(
    path: Path, model: keras.Model, progress: PruningReporter, rewind: RewindSnapshot | None
) -> Resumed:
    """Put the model, its optimizer, the reporter and the random states back as they were after the epoch."""
    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(bytes(archive["header"]).decode())
        if header["format"] != FORMAT:
            raise ValueError(f"checkpoint format {header['format']} is not {FORMAT}")
        weights = [archive[f"weight/{index}"] for index in range(len(model.get_weights()))]
        model.set_weights(weights)
        variables = _optimizer_variables(model)
        for index, variable in enumerate(variables):
            value = archive[f"optimizer/{index}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"optimizer variable {variable.name}: checkpoint shape {value.shape}")
            variable.assign(value)
        progress.masks._previous = {
            name: [archive[f"previous_mask/{layer_index}/{mask_index}"] for mask_index in range(count)]
            for layer_index, (name, count) in enumerate(header["previous_mask_layers"])
        }
        progress.masks.pictures = {name: archive[f"picture/{index}"] for index, name in enumerate(header["pictures"])}
        if rewind is not None and header["rewind"] is not None:
            rewind.snapshot = {name: archive[f"rewind/{index}"] for index, name in enumerate(header["rewind"])}
        kind, position, has_gauss, cached = header["numpy_rng"]
        np.random.set_state((kind, archive["numpy_rng"], position, has_gauss, cached))
        version, gauss_next = header["python_rng"]
        random.setstate((version, tuple(int(value) for value in archive["python_rng"]), gauss_next))
    progress.resume(header["step"], header["wall_time"], header["measured_sparsity"], header["layer_sparsity"])
    return Resumed(epoch=header["epoch"], step=header["step"])


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
