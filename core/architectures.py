"""The zoo's layers as plain facts (names, classes, weight shapes), computed without TensorFlow.

The API counts parameters and checks a run's scope from these; tests/worker/test_zoo.py
checks they equal what Keras builds for every model and dataset shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from prunelab.core.catalog import MODELS
from prunelab.core.scope import LayerFacts

Shape = tuple[int, ...]


def _same(size: int, stride: int) -> int:
    return math.ceil(size / stride)


def _weightless(name: str, class_name: str) -> LayerFacts:
    return LayerFacts(name, class_name, 0, True, ())


def _dense(name: str, inputs: int, units: int) -> LayerFacts:
    return LayerFacts(name, "Dense", inputs * units + units, True, ((inputs, units),))


def _conv(name: str, size: int, channels_in: int, filters: int, *, bias: bool = True) -> LayerFacts:
    kernel = (size, size, channels_in, filters)
    return LayerFacts(name, "Conv2D", math.prod(kernel) + (filters if bias else 0), True, (kernel,))


def _depthwise(name: str, channels: int) -> LayerFacts:
    # tfmot's registry wraps DepthwiseConv2D but prunes none of its weights.
    return LayerFacts(name, "DepthwiseConv2D", 3 * 3 * channels, True, ())


def _batch_norm(name: str, channels: int) -> LayerFacts:
    return LayerFacts(name, "BatchNormalization", 4 * channels, True, ())


def _mlp(input_shape: Shape, num_classes: int) -> list[LayerFacts]:
    return [
        _weightless("flatten", "Flatten"),
        _dense("dense", math.prod(input_shape), 128),
        _dense("logits", 128, num_classes),
    ]


def _two_conv_cnn(channels: int, flat: int, num_classes: int) -> list[LayerFacts]:
    """Two 3x3 convolutions (32, 64 filters) each pooled, then dense 256: `flat` is what the padding leaves."""
    return [
        _conv("conv1", 3, channels, 32),
        _weightless("pool1", "MaxPooling2D"),
        _conv("conv2", 3, 32, 64),
        _weightless("pool2", "MaxPooling2D"),
        _weightless("flatten", "Flatten"),
        _dense("dense", flat, 256),
        _dense("logits", 256, num_classes),
    ]


def _mnist_cnn(input_shape: Shape, num_classes: int) -> list[LayerFacts]:
    height, width, channels = input_shape
    return _two_conv_cnn(channels, _same(_same(height, 2), 2) * _same(_same(width, 2), 2) * 64, num_classes)


def _tutorial_cnn(input_shape: Shape, num_classes: int) -> list[LayerFacts]:
    height, width, channels = input_shape
    flat = ((height - 2) // 2) * ((width - 2) // 2) * 12  # 'valid' 3x3 convolution, then 2x2 pooling
    return [
        _conv("conv", 3, channels, 12),
        _weightless("pool", "MaxPooling2D"),
        _weightless("flatten", "Flatten"),
        _dense("logits", flat, num_classes),
    ]


def _valid_conv_pool(size: int) -> int:
    # A 'valid' 3x3 convolution, then 2x2 pooling (floor, as Keras pools without padding).
    return (size - 2) // 2


def _tutorial_mnist_cnn(input_shape: Shape, num_classes: int) -> list[LayerFacts]:
    height, width, channels = input_shape
    flat = _valid_conv_pool(_valid_conv_pool(height)) * _valid_conv_pool(_valid_conv_pool(width)) * 64
    return _two_conv_cnn(channels, flat, num_classes)


def _mobilenet_tiny(input_shape: Shape, num_classes: int) -> list[LayerFacts]:
    channels = input_shape[-1]
    layers = [
        _conv("stem", 3, channels, 16, bias=False),
        _batch_norm("stem_bn", 16),
        _weightless("stem_relu", "ReLU"),
    ]
    for block, (channels_in, channels_out) in enumerate([(16, 32), (32, 64)], start=1):
        layers += [
            _depthwise(f"dw{block}", channels_in),
            _batch_norm(f"dw{block}_bn", channels_in),
            _weightless(f"dw{block}_relu", "ReLU"),
            _conv(f"pw{block}", 1, channels_in, channels_out, bias=False),
            _batch_norm(f"pw{block}_bn", channels_out),
            _weightless(f"pw{block}_relu", "ReLU"),
        ]
    return [*layers, _weightless("pool", "GlobalAveragePooling2D"), _dense("logits", 64, num_classes)]


ARCHITECTURES: dict[str, Callable[[Shape, int], list[LayerFacts]]] = {
    "mlp": _mlp,
    "mnist_cnn": _mnist_cnn,
    "tutorial_cnn": _tutorial_cnn,
    "tutorial_mnist_cnn": _tutorial_mnist_cnn,
    "mobilenet_tiny": _mobilenet_tiny,
}


def fits(model: str, input_shape: Shape) -> bool:
    """Whether zoo model `model` builds for images of `input_shape` (its smallest side is large enough)."""
    return min(input_shape[:2]) >= MODELS[model].min_input_size


def model_layers(model: str, input_shape: Shape, num_classes: int) -> list[LayerFacts]:
    """The layers (after the input) of zoo model `model` built for `input_shape`."""
    return ARCHITECTURES[model](tuple(input_shape), num_classes)


def param_counts(model: str, input_shape: Shape, num_classes: int) -> dict[str, int]:
    """Keras's count_params() and the weights tfmot can prune (all prunable layers in scope)."""
    layers = model_layers(model, input_shape, num_classes)
    return {
        "params": sum(layer.params for layer in layers),
        "prunable_params": sum(layer.prunable_params for layer in layers if layer.supported),
    }
