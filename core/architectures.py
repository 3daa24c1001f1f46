"""The zoo's layers as plain facts (names, classes, weight shapes), computed without TensorFlow.

The API counts parameters and checks a run's scope from these; tests/worker/test_zoo.py
checks they equal what Keras builds for every model and dataset shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from prunelab.core.catalog import MODELS
from prunelab.core.registry import PRUNED_WEIGHTS, Engine
from prunelab.core.scope import LayerFacts

Shape = tuple[int, ...]
Builder = Callable[[str, str, dict[str, Shape]], LayerFacts]


def _same(size: int, stride: int) -> int:
    return math.ceil(size / stride)


def _facts(engine: Engine) -> Builder:
    """A layer's facts from its weights' names and shapes, with what `engine`'s registry prunes of them."""
    registry = PRUNED_WEIGHTS[engine]

    def build(name: str, class_name: str, weights: dict[str, Shape]) -> LayerFacts:
        params = sum(math.prod(shape) for shape in weights.values())
        shapes = tuple(weights[weight] for weight in registry.get(class_name, ()))
        return LayerFacts(name, class_name, params, class_name in registry, shapes)

    return build


def _weightless(layer: Builder, name: str, class_name: str) -> LayerFacts:
    return layer(name, class_name, {})


def _dense(layer: Builder, name: str, inputs: int, units: int) -> LayerFacts:
    return layer(name, "Dense", {"kernel": (inputs, units), "bias": (units,)})


def _conv(layer: Builder, name: str, size: int, channels_in: int, filters: int, *, bias: bool = True) -> LayerFacts:
    weights = {"kernel": (size, size, channels_in, filters), **({"bias": (filters,)} if bias else {})}
    return layer(name, "Conv2D", weights)


def _depthwise(layer: Builder, name: str, channels: int) -> LayerFacts:
    # Keras 3 names the depthwise kernel `kernel` (tf-keras `depthwise_kernel`; tfmot prunes neither).
    return layer(name, "DepthwiseConv2D", {"kernel": (3, 3, channels, 1)})


def _batch_norm(layer: Builder, name: str, channels: int) -> LayerFacts:
    names = ("gamma", "beta", "moving_mean", "moving_variance")
    return layer(name, "BatchNormalization", {weight: (channels,) for weight in names})


def _mlp(layer: Builder, input_shape: Shape, num_classes: int) -> list[LayerFacts]:
    return [
        _weightless(layer, "flatten", "Flatten"),
        _dense(layer, "dense", math.prod(input_shape), 128),
        _dense(layer, "logits", 128, num_classes),
    ]


def _two_conv_cnn(layer: Builder, channels: int, flat: int, num_classes: int) -> list[LayerFacts]:
    """Two 3x3 convolutions (32, 64 filters) each pooled, then dense 256: `flat` is what the padding leaves."""
    return [
        _conv(layer, "conv1", 3, channels, 32),
        _weightless(layer, "pool1", "MaxPooling2D"),
        _conv(layer, "conv2", 3, 32, 64),
        _weightless(layer, "pool2", "MaxPooling2D"),
        _weightless(layer, "flatten", "Flatten"),
        _dense(layer, "dense", flat, 256),
        _dense(layer, "logits", 256, num_classes),
    ]


def _mnist_cnn(layer: Builder, input_shape: Shape, num_classes: int) -> list[LayerFacts]:
    height, width, channels = input_shape
    return _two_conv_cnn(layer, channels, _same(_same(height, 2), 2) * _same(_same(width, 2), 2) * 64, num_classes)


def _tutorial_cnn(layer: Builder, input_shape: Shape, num_classes: int) -> list[LayerFacts]:
    height, width, channels = input_shape
    flat = ((height - 2) // 2) * ((width - 2) // 2) * 12  # 'valid' 3x3 convolution, then 2x2 pooling
    return [
        _conv(layer, "conv", 3, channels, 12),
        _weightless(layer, "pool", "MaxPooling2D"),
        _weightless(layer, "flatten", "Flatten"),
        _dense(layer, "logits", flat, num_classes),
    ]


def _valid_conv_pool(size: int) -> int:
    # A 'valid' 3x3 convolution, then 2x2 pooling (floor, as Keras pools without padding).
    return (size - 2) // 2


def _tutorial_mnist_cnn(layer: Builder, input_shape: Shape, num_classes: int) -> list[LayerFacts]:
    height, width, channels = input_shape
    flat = _valid_conv_pool(_valid_conv_pool(height)) * _valid_conv_pool(_valid_conv_pool(width)) * 64
    return _two_conv_cnn(layer, channels, flat, num_classes)


def _mobilenet_tiny(layer: Builder, input_shape: Shape, num_classes: int) -> list[LayerFacts]:
    channels = input_shape[-1]
    layers = [
        _conv(layer, "stem", 3, channels, 16, bias=False),
        _batch_norm(layer, "stem_bn", 16),
        _weightless(layer, "stem_relu", "ReLU"),
    ]
    for block, (channels_in, channels_out) in enumerate([(16, 32), (32, 64)], start=1):
        layers += [
            _depthwise(layer, f"dw{block}", channels_in),
            _batch_norm(layer, f"dw{block}_bn", channels_in),
            _weightless(layer, f"dw{block}_relu", "ReLU"),
            _conv(layer, f"pw{block}", 1, channels_in, channels_out, bias=False),
            _batch_norm(layer, f"pw{block}_bn", channels_out),
            _weightless(layer, f"pw{block}_relu", "ReLU"),
        ]
    return [*layers, _weightless(layer, "pool", "GlobalAveragePooling2D"), _dense(layer, "logits", 64, num_classes)]


ARCHITECTURES: dict[str, Callable[[Builder, Shape, int], list[LayerFacts]]] = {
    "mlp": _mlp,
    "mnist_cnn": _mnist_cnn,
    "tutorial_cnn": _tutorial_cnn,
    "tutorial_mnist_cnn": _tutorial_mnist_cnn,
    "mobilenet_tiny": _mobilenet_tiny,
}


def fits(model: str, input_shape: Shape) -> bool:
    """Whether zoo model `model` builds for images of `input_shape` (its smallest side is large enough)."""
    return min(input_shape[:2]) >= MODELS[model].min_input_size


def model_layers(model: str, input_shape: Shape, num_classes: int, engine: Engine = "tfmot") -> list[LayerFacts]:
    """The layers (after the input) of zoo model `model` built for `input_shape`, as `engine` prunes them."""
    return ARCHITECTURES[model](_facts(engine), tuple(input_shape), num_classes)


def param_counts(model: str, input_shape: Shape, num_classes: int, engine: Engine = "tfmot") -> dict[str, int]:
    """Keras's count_params() and the weights `engine` can prune (all prunable layers in scope)."""
    layers = model_layers(model, input_shape, num_classes, engine)
    return {
        "params": sum(layer.params for layer in layers),
        "prunable_params": sum(layer.prunable_params for layer in layers if layer.supported),
    }
