"""The model zoo: every model named in `backend.catalog.MODELS`, built as a tf-keras Sequential."""

from __future__ import annotations

from collections.abc import Callable

from backend.catalog import MODELS
from worker.training.tf import keras


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


_BUILDERS: dict[str, Callable[[int], list[keras.layers.Layer]]] = {
    "mnist_cnn": _mnist_cnn,
    "mlp": _mlp,
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
