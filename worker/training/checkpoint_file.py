"""Epoch-end checkpoints: what a requeued attempt needs to continue a run at the next epoch.

A checkpoint is one .npz read with `allow_pickle=False`: every model weight (kernels, biases and
tfmot's masks, thresholds and pruning steps), every optimizer variable (Adam's moments and its
iteration count, from which tfmot's pruning step is taken), the reporter's state (step, wall time,
sparsities, the mask history behind churn and mask pictures), the lottery ticket's rewind snapshot
once taken, numpy's and Python's random states, and a JSON header. The data position is the
epoch: `epochs.epoch_order` makes epoch k read the same batches in any process.

Both engines write this one file (duck-typed on the model: tf-keras's and Keras 3's both have
`get_weights`, `set_weights` and an optimizer with `build` and `variables`); the keras engine adds
its pruner's masks and step counter as `extra` arrays (`Pruner.state()`). No Keras is imported here.

Where checkpoints are kept is the worker's business (`Checkpointer`); this module only writes and
reads the file. Checkpoints are taken at the end of each epoch of the main training loop; a lottery
ticket's retraining phase and a sensitivity sweep start over from the end of that loop.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from prunelab.telemetry_loop import TelemetryLoop

if TYPE_CHECKING:
    from prunelab.worker.training.recipes.lottery import RewindSnapshot

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
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # what the writer added (the keras engine's masks)


def _optimizer_variables(model: Any) -> list[Any]:
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)  # creates Adam's slots now, as the first step would
    return list(optimizer.variables)


def write_checkpoint(
    path: Path,
    model: Any,
    progress: TelemetryLoop,
    epoch: int,
    rewind: RewindSnapshot | None,
    extra: dict[str, np.ndarray] | None = None,
) -> Path:
    """Everything needed to continue after epoch `epoch` (1-based), in one .npz."""
    progress.drain()  # the mask history is complete only once the background snapshots are done
    arrays: dict[str, np.ndarray] = {}
    for index, value in enumerate(model.get_weights()):
        arrays[f"weight/{index}"] = np.asarray(value)
    for index, variable in enumerate(_optimizer_variables(model)):
        arrays[f"optimizer/{index}"] = np.asarray(variable.numpy())
    for name, value in (extra or {}).items():
        arrays[f"extra/{name}"] = np.asarray(value)
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
        "extra": list(extra or {}),
        "numpy_rng": [legacy_state[0], int(legacy_state[2]), int(legacy_state[3]), float(legacy_state[4])],
        "python_rng": [python_state[0], python_state[2]],
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    return path


def restore_checkpoint(path: Path, model: Any, progress: TelemetryLoop, rewind: RewindSnapshot | None) -> Resumed:
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
        extra = {name: archive[f"extra/{name}"] for name in header.get("extra", [])}
        version, gauss_next = header["python_rng"]
        random.setstate((version, tuple(int(value) for value in archive["python_rng"]), gauss_next))
    progress.resume(header["step"], header["wall_time"], header["measured_sparsity"], header["layer_sparsity"])
    return Resumed(epoch=header["epoch"], step=header["step"], extra=extra)
