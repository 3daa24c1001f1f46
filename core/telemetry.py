"""What a pruning run measures step by step, as arithmetic on numpy arrays: the one implementation.

The Keras callback both the worker and a user's script train with (`prunelab.telemetry_callback`) reads
the weights and masks out of TensorFlow and hands them here; the numbers it reports are computed only here:
each batch's own metric values, mask sparsity per layer and overall, mask churn and pictures between
pruning events, the compressed size of the weights as they will be exported, and the coverage report.

`masks.npz` holds one uint8 array per (layer, pruning step), named `<layer>@<step>`: the layer's first
pruned weight reshaped to (-1, last dimension) and averaged over cells so that it is at most 128 x 128;
each value is the kept fraction of its cell times 255 (255: all kept, 0: all pruned), so a mask small
enough to need no averaging is exactly 0 or 255.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

# Metrics whose per-example values are 0 or 1, so an epoch's running total is a whole number of examples.
COUNT_METRICS = frozenset({"accuracy", "sparse_categorical_accuracy", "categorical_accuracy"})
# The level at which weight bytes are compressed while training (zlib's default trade-off).
COMPRESSION_LEVEL = 6
MAX_PICTURE_SIDE = 128


class Reporter(Protocol):
    """The narrow interface through which training reports: the worker's database, a script's HTTP sender."""

    def log(self, step: int, metrics: Mapping[str, float], wall_time: float) -> None:
        """Record metric values at a training step; must return at once (never blocks on I/O)."""

    def stop_requested(self) -> bool:
        """True once the run should stop (cancelled); checked after every training step."""


class BatchMetricRecovery:
    """Each batch's own metric values, recovered from Keras's running epoch means.

    Keras reports mean_n = total_n / seen_n after batch n of an epoch, so batch n's value is
    (seen_n * mean_n - seen_{n-1} * mean_{n-1}) / (seen_n - seen_{n-1}), computed in float64; a short
    last batch weighs what it holds. `seen_examples` is the number of examples the epoch has seen (Keras's
    loss tracker counts them); without it the batches are taken to be equal. For count metrics the running
    total is rounded to the whole number of examples it is, which removes the float32 rounding of the mean.
    """

    def __init__(self) -> None:
        self.start_epoch()

    def start_epoch(self) -> None:
        self._seen = 0.0
        self._totals: dict[str, float] = {}

    def batch_values(
        self, batch_index: int, running_means: Mapping[str, float], seen_examples: float | None = None
    ) -> dict[str, float]:
        seen = float(batch_index + 1) if seen_examples is None else float(seen_examples)
        size = seen - self._seen
        values = {}
        for name, mean in running_means.items():
            total = seen * float(mean)
            if seen_examples is not None and name in COUNT_METRICS:
                total = float(round(total))
            values[name] = (total - self._totals.get(name, 0.0)) / size if size > 0 else float(mean)
            self._totals[name] = total
        self._seen = seen
        return values


def layer_masks(layer_names: Sequence[str], masks: Iterable[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Masks grouped by the layer that owns each (`layer_names[i]` owns the i-th mask), in order."""
    by_layer: dict[str, list[np.ndarray]] = {}
    for name, mask in zip(layer_names, masks, strict=True):
        by_layer.setdefault(name, []).append(mask)
    return by_layer


@dataclass(frozen=True)
class MaskSparsity:
    """Zero fraction of all masks together, and of each layer's masks."""

    overall: float
    by_layer: dict[str, float]

    def metrics(self) -> dict[str, float]:
        return {f"layer_sparsity/{name}": value for name, value in self.by_layer.items()}


def mask_sparsity(masks_by_layer: Mapping[str, Sequence[np.ndarray]]) -> MaskSparsity:
    """The sparsity the masks impose: overall (every mask's zeros over every mask's size) and per layer."""
    zeros = {name: sum(m.size - int(np.count_nonzero(m)) for m in masks) for name, masks in masks_by_layer.items()}
    sizes = {name: sum(m.size for m in masks) for name, masks in masks_by_layer.items()}
    total = sum(sizes.values())
    return MaskSparsity(
        overall=sum(zeros.values()) / total if total else 0.0,
        by_layer={name: zeros[name] / sizes[name] for name in sizes if sizes[name]},
    )


def apply_masks(has_mask: Sequence[bool], values: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The arrays `strip_pruning` would leave: `values` holds the weights, then the masks of those that have one."""
    masks = iter(values[len(has_mask) :])
    kept = values[: len(has_mask)]
    return [value * next(masks) if masked else value for masked, value in zip(has_mask, kept, strict=True)]


def compressed_size(arrays: Iterable[np.ndarray]) -> int:
    """Bytes of the concatenated weight tensors after zlib at `COMPRESSION_LEVEL`."""
    return len(zlib.compress(b"".join(np.asarray(array).tobytes() for array in arrays), COMPRESSION_LEVEL))


def mask_picture(mask: np.ndarray, max_side: int = MAX_PICTURE_SIDE) -> np.ndarray:
    """The kept fraction per cell of `mask` as 2-D uint8 (0..255), at most max_side x max_side."""
    grid = mask.reshape(-1, mask.shape[-1]) if mask.ndim > 1 else mask.reshape(1, -1)
    rows, cols = grid.shape
    cell_rows, cell_cols = math.ceil(rows / max_side), math.ceil(cols / max_side)
    out_rows, out_cols = math.ceil(rows / cell_rows), math.ceil(cols / cell_cols)
    padding = ((0, out_rows * cell_rows - rows), (0, out_cols * cell_cols - cols))
    kept = np.pad(grid.astype(np.float64) != 0, padding).reshape(out_rows, cell_rows, out_cols, cell_cols)
    present = np.pad(np.ones_like(grid, dtype=np.float64), padding).reshape(kept.shape)
    fraction = kept.sum(axis=(1, 3)) / present.sum(axis=(1, 3))
    return np.round(fraction * 255).astype(np.uint8)


class MaskHistory:
    """Masks seen at pruning events: churn against the previous event, and pictures for masks.npz."""

    def __init__(self) -> None:
        self._previous: dict[str, list[np.ndarray]] = {}
        self.pictures: dict[str, np.ndarray] = {}

    def record(self, step: int, masks_by_layer: Mapping[str, Sequence[np.ndarray]]) -> dict[str, float]:
        """Store this event's masks; return per layer the fraction of mask bits flipped (0 at the first)."""
        churn = {}
        for name, masks in masks_by_layer.items():
            binary = [mask != 0 for mask in masks]
            previous = self._previous.get(name)
            flipped = (
                sum(int(np.count_nonzero(old != new)) for old, new in zip(previous, binary, strict=True))
                if previous is not None
                else 0
            )
            churn[name] = flipped / max(1, sum(mask.size for mask in binary))
            self._previous[name] = binary
            self.pictures[f"{name}@{step}"] = mask_picture(np.asarray(masks[0]))
        return churn

    def save(self, path: Path) -> Path:
        """Write every picture into one compressed .npz."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez_compressed(handle, **self.pictures)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        return path


@dataclass(frozen=True)
class LayerWeights:
    """One layer of a stripped model for the coverage report: its decision, size and pruned weights."""

    name: str
    class_name: str
    wrapped: bool
    reason: str | None
    params: int
    pruned: Sequence[np.ndarray]  # the weights a wrapper masked, as stripped


def coverage_report(layers: Sequence[LayerWeights]) -> dict:
    """summary["coverage"]: per layer whether it was wrapped and why not, and the sparsity reached."""
    rows = []
    prunable_total = pruned_total = params_total = 0
    for layer in layers:
        zeros = sum(int(w.size - np.count_nonzero(w)) for w in layer.pruned)
        prunable_total += sum(int(w.size) for w in layer.pruned)
        pruned_total += zeros
        params_total += layer.params
        rows.append(
            {
                "name": layer.name,
                "class_name": layer.class_name,
                "wrapped": layer.wrapped,
                "reason": layer.reason,
                "params": layer.params,
                "pruned_params": zeros,
            }
        )
    return {
        "layers": rows,
        "sparsity_prunable": pruned_total / prunable_total if prunable_total else 0.0,
        "sparsity_total": pruned_total / params_total if params_total else 0.0,
    }


def weight_counts(weights: Sequence[np.ndarray], pruned: Sequence[np.ndarray]) -> dict[str, float | int]:
    """The run's final counts: parameters, those pruning masked, those non-zero, and the sparsity reached."""
    prunable = sum(int(w.size) for w in pruned)
    pruned_zeros = sum(int(w.size - np.count_nonzero(w)) for w in pruned)
    return {
        "param_count": sum(int(w.size) for w in weights),
        "prunable_param_count": prunable,
        "nonzero_params": sum(int(np.count_nonzero(w)) for w in weights),
        "measured_sparsity": pruned_zeros / prunable if prunable else 0.0,
    }
