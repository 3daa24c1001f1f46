"""The model zoo: every model named in `core.catalog.MODELS`, one definition for both engines.

Each model is written once against a Keras `layers` namespace: `build_model` builds it as a tf-keras
Sequential for the tfmot engine (the default), or with `keras=` the Keras 3 module, for PruneLab's own
engine (`prunelab.prune`) on any backend; tests/worker/test_zoo.py checks that both give the same layers,
names and weight shapes. This module imports no Keras itself.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from prunelab.core.catalog import MODELS

Layers = Any  # a Keras `layers` namespace: tf_keras.layers or (Keras 3) keras.layers


def _mnist_cnn(layers: Layers, num_classes: int) -> list[Any]:
    # The CNN of the tfmot pruning tutorials; 'same' padding lets it build for 8x8 digits too.
    return [
        layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1"),
        layers.MaxPool2D(2, padding="same", name="pool1"),
        layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2"),
        layers.MaxPool2D(2, padding="same", name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dense(256, activation="relu", name="dense"),
        layers.Dense(num_classes, name="logits"),
    ]


def _mlp(layers: Layers, num_classes: int) -> list[Any]:
    return [
        layers.Flatten(name="flatten"),
        layers.Dense(128, activation="relu", name="dense"),
        layers.Dense(num_classes, name="logits"),
    ]


def _tutorial_cnn(layers: Layers, num_classes: int) -> list[Any]:
    # tfmot's "Pruning in Keras" tutorial model: 20,410 parameters on 28x28 MNIST.
    return [
        layers.Conv2D(12, 3, activation="relu", name="conv"),
        layers.MaxPool2D(2, name="pool"),
        layers.Flatten(name="flatten"),
        layers.Dense(num_classes, name="logits"),
    ]


def _tutorial_mnist_cnn(layers: Layers, num_classes: int) -> list[Any]:
    # The seeds' schedules-comparison CNN with the tutorial's 'valid' padding: 431,242 parameters on 28x28 MNIST.
    return [
        layers.Conv2D(32, 3, activation="relu", name="conv1"),
        layers.MaxPool2D(2, name="pool1"),
        layers.Conv2D(64, 3, activation="relu", name="conv2"),
        layers.MaxPool2D(2, name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dense(256, activation="relu", name="dense"),
        layers.Dense(num_classes, name="logits"),
    ]


def _mobilenet_tiny(layers: Layers, num_classes: int) -> list[Any]:
    # Depthwise-separable blocks as in MobileNet; convolutions feed batch norm, so they carry no bias.
    stack = [
        layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem"),
        layers.BatchNormalization(name="stem_bn"),
        layers.ReLU(name="stem_relu"),
    ]
    for block, (filters, strides) in enumerate([(32, 1), (64, 2)], start=1):
        stack += [
            layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"dw{block}"),
            layers.BatchNormalization(name=f"dw{block}_bn"),
            layers.ReLU(name=f"dw{block}_relu"),
            layers.Conv2D(filters, 1, use_bias=False, name=f"pw{block}"),
            layers.BatchNormalization(name=f"pw{block}_bn"),
            layers.ReLU(name=f"pw{block}_relu"),
        ]
    return [*stack, layers.GlobalAveragePooling2D(name="pool"), layers.Dense(num_classes, name="logits")]


_BUILDERS: dict[str, Callable[[Layers, int], list[Any]]] = {
    "mnist_cnn": _mnist_cnn,
    "mlp": _mlp,
    "tutorial_cnn": _tutorial_cnn,
    "tutorial_mnist_cnn": _tutorial_mnist_cnn,
    "mobilenet_tiny": _mobilenet_tiny,
}


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, keras: ModuleType | None = None) -> Any:
    """A fresh model that outputs logits; layer names are fixed so per-layer metrics keep their keys.

    `keras`: the Keras to build it with; tf-keras (the tfmot engine's) when not given.
    """
    if name not in MODELS or name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    keras = keras or _tf_keras()
    stack = [keras.Input(shape=tuple(input_shape), name="image"), *_BUILDERS[name](keras.layers, num_classes)]
    return keras.Sequential(stack, name=name)


def compile_model(model: Any, learning_rate: float, keras: ModuleType | None = None) -> None:
    """How every run trains its model, with either Keras: Adam, cross-entropy on the logits, accuracy."""
    keras = keras or _tf_keras()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def _tf_keras() -> ModuleType:
    from prunelab.worker.training.tf import keras  # TensorFlow loads only when a tf-keras model is built

    return keras


def model_names() -> list[str]:
    """Models this zoo can build (a test checks they are exactly the catalog's)."""
    return sorted(_BUILDERS)
