"""The one place that imports TensorFlow, tf-keras and tfmot.

`worker` must be imported first: it selects the legacy tf-keras (which tfmot
needs) before TensorFlow loads, so the import order below is deliberate.
"""
# ruff: noqa: I001

import prunelab.worker  # noqa: F401

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_utils
from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

__all__ = ["PruneLowMagnitude", "PruneRegistry", "keras", "pruning_utils", "tf", "tfmot"]
