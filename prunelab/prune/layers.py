"""Which Keras 3 layers the engine prunes, and which of their weights: `core.registry`'s keras-engine registry.

The names (classes, weights) are core's, so the API plans a keras run with exactly what this engine prunes:
tfmot's choice of a kernel (never a bias) per class, plus DepthwiseConv1D/2D's depthwise kernel, which tfmot's
registry leaves dense. This module only finds the classes and the variables in Keras 3.
"""

from __future__ import annotations

import keras

from prunelab.core.registry import KERAS_ENGINE_WEIGHTS
from prunelab.core.scope import LayerFacts

# Exact classes, as tfmot's registry matches them (a subclass may change what its weights mean).
REGISTERED: dict[type, tuple[str, ...]] = {
    getattr(keras.layers, name): KERAS_ENGINE_WEIGHTS[name] for name in KERAS_ENGINE_WEIGHTS
}
PRUNABLE_WEIGHTS: dict[type, tuple[str, ...]] = {cls: weights for cls, weights in REGISTERED.items() if weights}


def _variable(layer: keras.layers.Layer, name: str) -> object:
    # Keras 3 keeps a Dense/Conv kernel and an Embedding's table behind a property (`_kernel`, `_embeddings`)
    # that LoRA or quantization may replace; the variable itself is the underscored attribute where there is one.
    held = getattr(layer, f"_{name}", None)
    return held if isinstance(held, keras.Variable) else getattr(layer, name, None)


def prunable_variables(layer: keras.layers.Layer) -> list[keras.Variable]:
    """The variables the engine prunes in `layer` (empty for a class it does not prune)."""
    variables = []
    for name in PRUNABLE_WEIGHTS.get(type(layer), ()):
        variable = _variable(layer, name)
        if not isinstance(variable, keras.Variable):
            raise ValueError(
                f"layer {layer.name!r} ({type(layer).__name__}) keeps no plain {name} variable "
                "(LoRA-enabled or quantized); prune it before enabling LoRA or quantizing, or leave it out of scope"
            )
        variables.append(variable)
    return variables


def layer_facts(model: keras.Model) -> list[LayerFacts]:
    """The scope rule's view of a built Keras 3 model's top-level layers."""
    facts = []
    for layer in model.layers:
        # A normalization layer is registered with no weight to prune: left dense with a note, not refused.
        supported = type(layer) in REGISTERED
        shapes = tuple(tuple(int(size) for size in variable.shape) for variable in prunable_variables(layer))
        facts.append(LayerFacts(layer.name, type(layer).__name__, int(layer.count_params()), supported, shapes))
    return facts
