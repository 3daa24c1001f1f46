"""PruneLab's pruning engine for Keras 3, in `keras.ops` only (any backend): tfmot's rules, bit for bit.

    import keras
    from prunelab.core.specs import ConstantSchedule
    from prunelab.prune import Pruner

    pruner = Pruner(model, ConstantSchedule(target_sparsity=0.8, begin_step=0, end_step=-1, frequency=100))
    model.fit(x, y, callbacks=[pruner.callback()])
    plain = pruner.strip()

Importing this package imports `keras` (Keras 3): set KERAS_BACKEND before the first import.
docs/keras3-engine.md says how it works and why.
"""

from prunelab.prune.engine import PrunedWeight, Pruner, PruningCallback
from prunelab.prune.layers import PRUNABLE_WEIGHTS, layer_facts, prunable_variables
from prunelab.prune.masks import block_mask, compute_mask, m_by_n_mask, magnitude_mask

__all__ = [
    "PRUNABLE_WEIGHTS",
    "PrunedWeight",
    "Pruner",
    "PruningCallback",
    "block_mask",
    "compute_mask",
    "layer_facts",
    "m_by_n_mask",
    "magnitude_mask",
    "prunable_variables",
]
