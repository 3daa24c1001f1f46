"""The seeds' CNN as layer facts, without TensorFlow, and the refusal of a dataset too small for it."""

from __future__ import annotations

import pytest

from prunelab.core.architectures import fits, model_layers, param_counts
from prunelab.core.errors import InvalidSpec
from prunelab.core.plans import resolve_plan
from prunelab.core.specs import RunSpec


def test_tutorial_mnist_cnn_facts_are_the_seeds_model() -> None:
    layers = model_layers("tutorial_mnist_cnn", (28, 28, 1), 10)
    assert [(layer.name, layer.class_name, layer.params) for layer in layers] == [
        ("conv1", "Conv2D", 3 * 3 * 32 + 32),
        ("pool1", "MaxPooling2D", 0),
        ("conv2", "Conv2D", 3 * 3 * 32 * 64 + 64),
        ("pool2", "MaxPooling2D", 0),
        ("flatten", "Flatten", 0),
        ("dense", "Dense", 5 * 5 * 64 * 256 + 256),
        ("logits", "Dense", 256 * 10 + 10),
    ]
    assert param_counts("tutorial_mnist_cnn", (28, 28, 1), 10)["params"] == 431_242


def test_a_dataset_too_small_for_the_model_is_refused_naming_the_field() -> None:
    assert not fits("tutorial_mnist_cnn", (8, 8, 1)) and fits("tutorial_mnist_cnn", (28, 28, 1))
    with pytest.raises(InvalidSpec) as refused:
        resolve_plan(RunSpec(dataset="digits", model="tutorial_mnist_cnn", epochs=1))
    assert refused.value.field == ("model",)
    assert "at least 10x10" in str(refused.value) and "digits has 8x8" in str(refused.value)
