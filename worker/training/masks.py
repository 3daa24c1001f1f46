"""Mask history of a run: churn between pruning events and small pictures of each layer's mask.

`masks.npz` holds one uint8 array per (layer, pruning step), named `<layer>@<step>`: the layer's
first pruned weight reshaped to (-1, last dimension) and averaged over cells so that it is at
most 128 x 128; each value is the kept fraction of its cell times 255 (255: all kept, 0: all
pruned), so a mask small enough to need no averaging is exactly 0 or 255.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

MAX_PICTURE_SIDE = 128


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

    def record(self, step: int, layer_masks: dict[str, list[np.ndarray]]) -> dict[str, float]:
        """Store this event's masks; return per layer the fraction of mask bits flipped (0 at the first)."""
        churn = {}
        for name, masks in layer_masks.items():
            binary = [mask != 0 for mask in masks]
            previous = self._previous.get(name)
            flipped = (
                sum(int(np.count_nonzero(old != new)) for old, new in zip(previous, binary, strict=True))
                if (previous is not None)
                else 0
            )
            churn[name] = flipped / sum(mask.size for mask in binary)
            self._previous[name] = binary
            self.pictures[f"{name}@{step}"] = mask_picture(masks[0])
        return churn

    def save(self, path: Path) -> Path:
        """Write every picture into one compressed .npz."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez_compressed(handle, **self.pictures)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        return path
