"""Which layer classes each engine can wrap, and which of their weights it prunes: names only, one registry per engine.

The API plans a run (`core.architectures`' zoo facts, `core.scope`) with the registry of the run's engine, and
the engines prune by the same lists: `prunelab.prune` builds its class map from `KERAS_ENGINE_WEIGHTS`, and
tfmot's own `PruneRegistry` is what `TFMOT_WEIGHTS` mirrors (tests/worker/test_pruning.py checks they are equal;
tests/worker/test_keras3_engine.py that `prunelab.prune` reads these names).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Engine = Literal["tfmot", "keras"]

# tfmot 0.8.1's `PruneRegistry._LAYERS_WEIGHTS_MAP`, by class name: a class with () is wrapped but stays dense.
_TFMOT_PRUNED = {
    "Conv1D": ("kernel",), "Conv2D": ("kernel",), "Conv2DTranspose": ("kernel",), "Conv3D": ("kernel",),
    "Conv3DTranspose": ("kernel",), "SeparableConv1D": ("pointwise_kernel",), "SeparableConv2D": ("pointwise_kernel",),
    "Dense": ("kernel",), "Embedding": ("embeddings",), "LocallyConnected1D": ("kernel",),
    "LocallyConnected2D": ("kernel",),
    "MultiHeadAttention": ("_query_dense.kernel", "_key_dense.kernel", "_value_dense.kernel", "_output_dense.kernel"),
}  # fmt: skip
_TFMOT_DENSE = (
    "ELU", "LeakyReLU", "ReLU", "Softmax", "ThresholdedReLU", "Cropping1D", "Cropping2D", "Cropping3D",
    "DepthwiseConv2D", "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D",
    "ZeroPadding3D", "Activation", "ActivityRegularization", "Dropout", "Flatten", "Lambda", "Masking", "Permute",
    "RepeatVector", "Reshape", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "Add", "Average",
    "Concatenate", "Dot", "Maximum", "Minimum", "Multiply", "Subtract", "AlphaDropout", "GaussianDropout",
    "GaussianNoise", "BatchNormalization", "LayerNormalization", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
    "SyncBatchNormalization",
)  # fmt: skip
TFMOT_WEIGHTS: Mapping[str, tuple[str, ...]] = {**dict.fromkeys(_TFMOT_DENSE, ()), **_TFMOT_PRUNED}

# The keras engine (`prunelab.prune`) on Keras 3: tfmot's choice of weight per class, plus the depthwise kernel of
# DepthwiseConv1D/2D, which tfmot leaves dense. Weight names as Keras 3 names the variables. The classes with ()
# hold weights but no kernel (normalization, PReLU): left dense with a note, not refused. A class with no weights
# is not listed: it has nothing to prune or to refuse.
KERAS_ENGINE_WEIGHTS: Mapping[str, tuple[str, ...]] = {
    "Dense": ("kernel",), "Conv1D": ("kernel",), "Conv2D": ("kernel",), "Conv3D": ("kernel",),
    "Conv1DTranspose": ("kernel",), "Conv2DTranspose": ("kernel",), "Conv3DTranspose": ("kernel",),
    "DepthwiseConv1D": ("kernel",), "DepthwiseConv2D": ("kernel",),
    "SeparableConv1D": ("pointwise_kernel",), "SeparableConv2D": ("pointwise_kernel",),
    "Embedding": ("embeddings",),
    "BatchNormalization": (), "LayerNormalization": (), "Normalization": (), "PReLU": (),
}  # fmt: skip

PRUNED_WEIGHTS: Mapping[Engine, Mapping[str, tuple[str, ...]]] = {
    "tfmot": TFMOT_WEIGHTS,
    "keras": KERAS_ENGINE_WEIGHTS,
}

# Why a layer with weights stays dense when its engine prunes none of them (the coverage note).
NOT_PRUNABLE: Mapping[Engine, str] = {
    "tfmot": "not prunable in tfmot's registry",
    "keras": "not prunable by the keras engine",
}


def prunable_classes(engine: Engine) -> frozenset[str]:
    """The layer classes whose weights `engine` prunes."""
    return frozenset(name for name, weights in PRUNED_WEIGHTS[engine].items() if weights)
