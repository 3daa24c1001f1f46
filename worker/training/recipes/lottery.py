"""Lottery-ticket rewinding (Frankle et al.): keep the final masks, reset every weight to an earlier snapshot.

The snapshot is taken at initialisation (rewind_epoch 0) or at the end of epoch k, after
tfmot's epoch-end re-masking. Rewinding writes the snapshot into every weight, pruned
kernels multiplied by their masks, and checks the result exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prunelab.worker.training import export
from prunelab.worker.training.tf import keras


class RewindError(RuntimeError):
    """The rewound weights are not the snapshot under the mask."""


@dataclass
class RewindRecord:
    """Per weight (by variable name): the snapshot rewound to, the final mask (pruned weights), and the result."""

    saved: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    rewound: dict[str, np.ndarray]

    def save(self, path: Path) -> Path:
        """rewind.npz: `saved/<weight>` and `mask/<weight>` arrays, weight names with '/' written as '.'."""
        arrays = {f"saved/{name.replace('/', '.')}": value for name, value in self.saved.items()}
        arrays.update({f"mask/{name.replace('/', '.')}": value for name, value in self.masks.items()})
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        return path


def weight_snapshot(model: keras.Model) -> dict[str, np.ndarray]:
    """Every weight of the model as it will be stripped (no masks, thresholds or steps), by variable name."""
    weights = export.stripped_weights(model)
    values = keras.backend.batch_get_value([weight.variable for weight in weights])
    return {weight.variable.name: np.array(value) for weight, value in zip(weights, values, strict=True)}


class RewindSnapshot(keras.callbacks.Callback):
    """Keeps the weights at the end of epoch `rewind_epoch` (goes after tfmot's UpdatePruningStep)."""

    def __init__(self, rewind_epoch: int, initial: Mapping[str, np.ndarray] | None = None) -> None:
        super().__init__()
        self.rewind_epoch = rewind_epoch
        self.snapshot: dict[str, np.ndarray] | None = dict(initial) if initial is not None else None

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        if epoch + 1 == self.rewind_epoch:
            self.snapshot = weight_snapshot(self.model)


def rewind(model: keras.Model, snapshot: Mapping[str, np.ndarray]) -> RewindRecord:
    """Write the snapshot into the model's weights under the final masks; raise unless exact."""
    weights = export.stripped_weights(model)
    pruned = [weight for weight in weights if weight.mask is not None]
    mask_values = keras.backend.batch_get_value([weight.mask for weight in pruned])
    masks = {weight.variable.name: np.array(value) for weight, value in zip(pruned, mask_values, strict=True)}
    assignments = []
    for weight in weights:
        saved = snapshot[weight.variable.name]
        mask = masks.get(weight.variable.name)
        rewound = saved if mask is None else np.where(mask != 0, saved, 0).astype(saved.dtype)
        assignments.append((weight.variable, rewound))
    keras.backend.batch_set_value(assignments)
    record = RewindRecord(saved=dict(snapshot), masks=masks, rewound=weight_snapshot(model))
    check_rewind(record)
    return record


def check_rewind(record: RewindRecord) -> None:
    """Every surviving weight equals its snapshot bit for bit, every pruned one is zero."""
    for name, rewound in record.rewound.items():
        saved, mask = record.saved[name], record.masks.get(name)
        kept = np.ones(saved.shape, dtype=bool) if mask is None else mask != 0
        if not np.array_equal(rewound[kept], saved[kept]) or np.any(rewound[~kept]):
            raise RewindError(f"weight {name!r} was not rewound exactly")
