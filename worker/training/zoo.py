"""The model zoo: every model named in `core.catalog.MODELS`, built as a tf-keras Sequential."""

from __future__ import annotations

from collections.abc import Callable

from prunelab.core.catalog import MODELS
from prunelab.worker.training.tf import keras


def _mnist_cnn(num_classes: int) -> list[keras.layers.Layer]:
    # The CNN of the tfmot pruning tutorials; 'same' padding lets it build for 8x8 digits too.
    return [
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.MaxPool2D(2, padding="same", name="pool1"),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.MaxPool2D(2, padding="same", name="pool2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(256, activation="relu", name="dense"),
        keras.layers.Dense(num_classes, name="logits"),
    ]


def _mlp(num_classes: int) -> list[keras.layers.Layer]:
    return [
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(128, activation="relu", name="dense"),
        keras.layers.Dense(num_classes, name="logits"),
    ]


def _tutorial_cnn(num_classes: int) -> list[keras.layers.Layer]:
    # tfmot's "Pruning in Keras" tutorial model: 20,410 parameters on 28x28 MNIST.
    return [
        keras.layers.Conv2D(12, 3, activation="relu", name="conv"),
        keras.layers.MaxPool2D(2, name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(num_classes, name="logits"),
    ]


def _tutorial_mnist_cnn(num_classes: int) -> list[keras.layers.Layer]:
    # The seeds' schedules-comparison CNN with the tutorial's 'valid' padding: 431,242 parameters on 28x28 MNIST.
    return [
        keras.layers.Conv2D(32, 3, activation="relu", name="conv1"),
        keras.layers.MaxPool2D(2, name="pool1"),
        keras.layers.Conv2D(64, 3, activation="relu", name="conv2"),
        keras.layers.MaxPool2D(2, name="pool2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(256, activation="relu", name="dense"),
        keras.layers.Dense(num_classes, name="logits"),
    ]


def _mobilenet_tiny(num_classes: int) -> list[keras.layers.Layer]:
    # Depthwise-separable blocks as in MobileNet; convolutions feed batch norm, so they carry no bias.
    layers = [
        keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem"),
        keras.layers.BatchNormalization(name="stem_bn"),
        keras.layers.ReLU(name="stem_relu"),
    ]
    for block, (filters, strides) in enumerate([(32, 1), (64, 2)], start=1):
        layers += [
            keras.layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"dw{block}"),
            keras.layers.BatchNormalization(name=f"dw{block}_bn"),
            keras.layers.ReLU(name=f"dw{block}_relu"),
            keras.layers.Conv2D(filters, 1, use_bias=False, name=f"pw{block}"),
            keras.layers.BatchNormalization(name=f"pw{block}_bn"),
            keras.layers.ReLU(name=f"pw{block}_relu"),
        ]
    return [*layers, keras.layers.GlobalAveragePooling2D(name="pool"), keras.layers.Dense(num_classes, name="logits")]


_BUILDERS: dict[str, Callable[[int], list[keras.layers.Layer]]] = {
    "mnist_cnn": _mnist_cnn,
    "mlp": _mlp,
    "tutorial_cnn": _tutorial_cnn,
    "tutorial_mnist_cnn": _tutorial_mnist_cnn,
    "mobilenet_tiny": _mobilenet_tiny,
}


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """A fresh model that outputs logits; layer names are fixed so per-layer metrics keep their keys."""
    if name not in MODELS or name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    layers = [keras.Input(shape=tuple(input_shape), name="image"), *_BUILDERS[name](num_classes)]
    return keras.Sequential(layers, name=name)


def model_names() -> list[str]:
    """Models this zoo can build (a test checks they are exactly the catalog's)."""
    return sorted(_BUILDERS)
