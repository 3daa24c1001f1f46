"""tfmot's magnitude masks in `keras.ops`: unstructured, block (AVG/MAX pooled) and m-by-n.

Each function reproduces `tensorflow_model_optimization`'s `pruning_impl.Pruning` bit for bit:

- unstructured: keep the `k = max(round_half_even(float32(size) * (1 - s)), 1)` largest |w|
  (`core.schedule_math.kept_count`); every weight tied with the k-th largest is kept too, so
  a threshold of 0 keeps every weight (zeros and -0.0 included).
- block: |w| pooled over (h, w) blocks by tfmot's `factorized_pool` (rows first, then columns,
  TF's SAME padding, which pads `total // 2` cells *before* the first window), the unstructured
  rule on the pooled grid, each pooled cell expanded back to a block aligned at (0, 0) and cropped
  (tfmot's `expand_tensor` ignores the padding offset, and so must we).
- m-by-n: set once; along the input channels (a Dense kernel's rows, a Conv2D kernel's third
  axis), keep the n - m largest |w| of every n, the lower index on ties.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from prunelab.core.schedule_math import kept_count
from prunelab.core.specs import BlockSparsity, MByNSparsity, UnstructuredSparsity

AnyStructure = UnstructuredSparsity | BlockSparsity | MByNSparsity


def magnitude_mask(weights: Any, sparsity: float) -> Any:
    """1 where |w| is at least the k-th largest |w| (k from `kept_count`), else 0; in the weights' dtype."""
    magnitudes = ops.abs(weights)
    size = int(ops.size(magnitudes))
    kept = kept_count(size, sparsity)
    largest, _ = ops.top_k(ops.reshape(magnitudes, (-1,)), k=kept, sorted=True)
    threshold = largest[kept - 1]
    return ops.cast(ops.greater_equal(magnitudes, threshold), weights.dtype)


def _same_padding(length: int, window: int) -> tuple[int, int]:
    """TF's SAME padding for stride == window: (before, after), the odd cell after."""
    windows = -(-length // window)
    total = max((windows - 1) * window + window - length, 0)
    return total // 2, total - total // 2


def _pool_rows(magnitudes: Any, window: int, pooling: str) -> Any:
    """tf.nn.pool over axis 0 with window == stride and SAME padding: padding ignored by MAX and AVG alike."""
    if window == 1:
        return magnitudes
    length, width = int(magnitudes.shape[0]), int(magnitudes.shape[1])
    before, after = _same_padding(length, window)
    windows = (length + before + after) // window
    padded = ops.pad(magnitudes, ((before, after), (0, 0)))
    cells = ops.reshape(padded, (windows, window, width))
    # Which padded rows hold real weights: AVG divides by their count (TF excludes padding from the mean).
    rows = ops.arange(length + before + after)
    real = ops.reshape(ops.logical_and(rows >= before, rows < before + length), (windows, window))
    if pooling == "MAX":
        return ops.max(cells, axis=1)  # |w| >= 0, so zero padding never wins over a real cell
    total = cells[:, 0, :]
    for offset in range(1, window):  # left to right, as TF's CPU kernel accumulates
        total = total + cells[:, offset, :]
    count = ops.cast(ops.sum(ops.cast(real, "int32"), axis=1), magnitudes.dtype)
    return total / ops.expand_dims(count, 1)


def block_mask(weights: Any, sparsity: float, block_size: tuple[int, int], pooling: str) -> Any:
    """tfmot's block mask of a 2-D kernel: blocks ranked by pooled |w|, then expanded and cropped."""
    if len(weights.shape) != 2:
        raise ValueError(f"block sparsity needs 2-D weights; got shape {tuple(weights.shape)}")
    if tuple(block_size) == (1, 1):
        return magnitude_mask(weights, sparsity)
    block_height, block_width = block_size
    height, width = int(weights.shape[0]), int(weights.shape[1])
    magnitudes = ops.abs(weights)
    pooled = _pool_rows(magnitudes, block_height, pooling)
    pooled = ops.transpose(_pool_rows(ops.transpose(pooled), block_width, pooling))
    pooled_mask = magnitude_mask(pooled, sparsity)
    expanded = ops.repeat(ops.repeat(pooled_mask, block_height, axis=0), block_width, axis=1)
    return ops.cast(expanded[:height, :width], weights.dtype)


def _input_channel_rows(weights: Any) -> Any:
    """tfmot's `weights_rearrange`: a 2-D view whose rows run along the input channels."""
    if len(weights.shape) == 2:
        return ops.transpose(weights)
    if len(weights.shape) == 4:
        permuted = ops.transpose(weights, (3, 0, 1, 2))
        return ops.reshape(permuted, (-1, int(weights.shape[2])))
    raise ValueError(f"m_by_n sparsity needs 2-D (Dense) or 4-D (Conv2D) weights; got shape {tuple(weights.shape)}")


def m_by_n_mask(weights: Any, m: int, n: int) -> Any:
    """tfmot's m-by-n mask: in every n consecutive input-channel weights, the n - m largest |w| kept."""
    if not 1 <= m < n:
        raise ValueError(f"m_by_n needs 1 <= m < n; got m={m}, n={n}")
    rows = ops.abs(_input_channel_rows(weights))
    row_count, row_length = int(rows.shape[0]), int(rows.shape[1])
    padded = ops.pad(rows, ((0, 0), (0, n - row_length % n)))  # tfmot pads a whole group when it divides
    groups = ops.reshape(padded, (-1, n))
    _, kept_indices = ops.top_k(groups, k=n - m, sorted=False)
    group_mask = ops.sum(ops.one_hot(kept_indices, n, dtype=weights.dtype), axis=1)
    mask_rows = ops.reshape(group_mask, (row_count, -1))[:, :row_length]
    if len(weights.shape) == 2:
        return ops.transpose(mask_rows)
    height, width, channels_in, channels_out = (int(size) for size in weights.shape)
    return ops.transpose(ops.reshape(mask_rows, (channels_out, height, width, channels_in)), (1, 2, 3, 0))


def compute_mask(weights: Any, sparsity: float, structure: AnyStructure) -> Any:
    """The mask tfmot's `Pruning` computes for `weights` at `sparsity` under `structure`."""
    if isinstance(structure, MByNSparsity):
        return m_by_n_mask(weights, structure.m, structure.n)
    if isinstance(structure, BlockSparsity):
        return block_mask(weights, sparsity, structure.block_size, structure.block_pooling_type)
    return magnitude_mask(weights, sparsity)


def apply_mask(variable: keras.Variable, mask: Any) -> None:
    """w = w * mask, as tfmot's `weight_mask_op` (a pruned negative weight becomes -0.0, as there)."""
    variable.assign(ops.multiply(variable.value, ops.cast(mask, variable.dtype)))
