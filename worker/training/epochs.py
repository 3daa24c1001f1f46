"""The order a run reads its training examples in: each epoch's a function of (seed, epoch) alone.

Keras's own shuffling draws from TensorFlow's global random state, which a new process
cannot put back where an interrupted one left it. Here epoch k reads the permutation
`default_rng((seed, k))` draws, whichever process trains it, so a run resumed at epoch k
reads the same batches as a run that never stopped: the data position is the epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from prunelab.worker.training.tf import tf


def epoch_order(seed: int, epoch: int, examples: int) -> np.ndarray:
    """The indices of the examples in the order epoch `epoch` (0-based) reads them."""
    return np.random.default_rng((seed, epoch)).permutation(examples)


def steps_per_epoch(examples: int, batch_size: int) -> int:
    return math.ceil(examples / batch_size)


def epoch_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, epochs: tuple[int, int]) -> tf.data.Dataset:
    """Batches of epochs [first, last), each epoch in its own order, its last batch short as Keras makes it."""
    from prunelab.worker.training.tf import tf  # the tfmot engine's input pipeline; the keras engine's is below

    orders = np.stack([epoch_order(seed, epoch, len(x)) for epoch in range(*epochs)]).astype(np.int64)
    features, labels = tf.constant(x), tf.constant(y)
    batches = tf.data.Dataset.from_tensor_slices(orders).flat_map(
        lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
    )
    return batches.map(
        lambda indices: (tf.gather(features, indices), tf.gather(labels, indices)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).prefetch(tf.data.AUTOTUNE)


def epoch_arrays(
    x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, epochs: tuple[int, int]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The batches `epoch_batches` gives, as numpy arrays: the keras engine's input on any Keras backend."""
    for epoch in range(*epochs):
        order = epoch_order(seed, epoch, len(x))
        for start in range(0, len(x), batch_size):
            indices = order[start : start + batch_size]
            yield x[indices], y[indices]
