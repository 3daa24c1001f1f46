"""The model zoo builds every catalog model with the documented layers."""

from __future__ import annotations

import pytest

from core.catalog import MODELS
from worker.training.tf import keras
from worker.training.zoo import build_model, model_names


def test_zoo_builds_exactly_the_catalog_models() -> None:
    assert model_names() == sorted(MODELS)


@pytest.mark.parametrize(("input_shape", "flat"), [((8, 8, 1), 2 * 2 * 64), ((28, 28, 1), 7 * 7 * 64)])
def test_mnist_cnn_builds_for_digits_and_mnist(input_shape: tuple[int, ...], flat: int) -> None:
    model = build_model("mnist_cnn", input_shape, 10)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dense",
    ]
    assert model.output_shape == (None, 10)
    expected = (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64) + (flat * 256 + 256) + (256 * 10 + 10)
    assert model.count_params() == expected
    assert model.layers[-1].get_config()["activation"] == "linear"  # logits


def test_mlp() -> None:
    model = build_model("mlp", (8, 8, 1), 10)
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Dense", "Dense"]
    assert model.count_params() == 64 * 128 + 128 + 128 * 10 + 10
    assert isinstance(model, keras.Sequential)


def test_unknown_model_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet", (8, 8, 1), 10)
