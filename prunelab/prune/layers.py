"""Which Keras 3 layers the engine prunes, and which of their weights: tfmot's registry, for Keras 3.

tfmot prunes a kernel (never a bias) per layer class; the same choice here, by class, with the
variable read from the attribute Keras 3 keeps it in. DepthwiseConv2D is the one addition: tfmot's
registry leaves its depthwise kernel dense, the engine prunes it (the same mask arithmetic).
"""

from __future__ import annotations

import keras

from prunelab.core.scope import KERAS_ENGINE_NO_KERNEL, LayerFacts

# Exact classes, as tfmot's registry matches them (a subclass may change what its weights mean).
PRUNABLE_WEIGHTS: dict[type, tuple[str, ...]] = {
    keras.layers.Dense: ("_kernel",),
    keras.layers.Conv1D: ("_kernel",),
    keras.layers.Conv2D: ("_kernel",),
    keras.layers.Conv3D: ("_kernel",),
    keras.layers.Conv1DTranspose: ("kernel",),
    keras.layers.Conv2DTranspose: ("kernel",),
    keras.layers.Conv3DTranspose: ("kernel",),
    keras.layers.DepthwiseConv1D: ("kernel",),
    keras.layers.DepthwiseConv2D: ("kernel",),
    keras.layers.SeparableConv1D: ("pointwise_kernel",),
    keras.layers.SeparableConv2D: ("pointwise_kernel",),
    keras.layers.Embedding: ("_embeddings",),
}


def prunable_variables(layer: keras.layers.Layer) -> list[keras.Variable]:
    """The variables the engine prunes in `layer` (empty for a class it does not prune)."""
    names = PRUNABLE_WEIGHTS.get(type(layer), ())
    variables = []
    for name in names:
        variable = getattr(layer, name, None)
        if not isinstance(variable, keras.Variable):
            raise ValueError(
                f"layer {layer.name!r} ({type(layer).__name__}) keeps no plain {name.lstrip('_')} variable "
                "(LoRA-enabled or quantized); prune it before enabling LoRA or quantizing, or leave it out of scope"
            )
        variables.append(variable)
    return variables


def layer_facts(model: keras.Model) -> list[LayerFacts]:
    """The scope rule's view of a built Keras 3 model's top-level layers."""
    facts = []
    for layer in model.layers:
        # A normalization layer is left dense with a note, as tfmot's registry leaves it (no kernel to prune).
        supported = type(layer) in PRUNABLE_WEIGHTS or type(layer).__name__ in KERAS_ENGINE_NO_KERNEL
        shapes = tuple(tuple(int(size) for size in variable.shape) for variable in prunable_variables(layer))
        facts.append(LayerFacts(layer.name, type(layer).__name__, int(layer.count_params()), supported, shapes))
    return facts
