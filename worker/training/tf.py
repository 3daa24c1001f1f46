"""The one place that imports TensorFlow, tf-keras and tfmot.

`worker` must be imported first: it selects the legacy tf-keras (which tfmot
needs) before TensorFlow loads.
"""

import worker  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import (  # noqa: E402
    PruneLowMagnitude,
)

__all__ = ["PruneLowMagnitude", "keras", "tf", "tfmot"]
