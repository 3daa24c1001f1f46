"""The model zoo builds every catalog model with the documented layers."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from harness.stack import REPO
from prunelab.core.architectures import model_layers
from prunelab.core.catalog import MODELS
from prunelab.worker.training.tf import keras
from prunelab.worker.training.zoo import build_model, model_names

# Every zoo model as Keras 3 builds it (run in a process of its own: there `import keras` is Keras 3).
KERAS3_BUILD = """
import dataclasses, json, sys, keras
from prunelab.worker.training.zoo import build_model, model_names
from prunelab.prune import layer_facts
out = {}
for name in model_names():
    model = build_model(name, (28, 28, 1), 10, keras=keras)
    out[name] = {
        "layers": [[layer.name, type(layer).__name__, [list(w.shape) for w in layer.weights]]
                   for layer in model.layers],
        "params": model.count_params(),
        "prunable": [fact.name for fact in layer_facts(model) if fact.supported and fact.prunable_shapes],
        "facts": [dataclasses.astuple(fact) for fact in layer_facts(model)],
        # Weights but no kernel (batch norm): left dense with a note in the coverage, not refused by the scope.
        "no_kernel": [f.name for f in layer_facts(model) if f.supported and f.params and not f.prunable_shapes],
    }
print(json.dumps(out))
"""


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


def test_tutorial_mnist_cnn_is_the_seeds_model() -> None:
    model = build_model("tutorial_mnist_cnn", (28, 28, 1), 10)
    layers = [
        (type(layer).__name__, layer.get_config().get("filters") or layer.get_config().get("units"))
        for layer in model.layers
    ]
    assert layers == [
        ("Conv2D", 32),
        ("MaxPooling2D", None),
        ("Conv2D", 64),
        ("MaxPooling2D", None),
        ("Flatten", None),
        ("Dense", 256),
        ("Dense", 10),
    ]
    convolutions = [layer.get_config() for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert {(c["padding"], c["activation"], tuple(c["kernel_size"])) for c in convolutions} == {
        ("valid", "relu", (3, 3))
    }
    assert model.layers[1].output_shape == (None, 13, 13, 32) and model.layers[3].output_shape == (None, 5, 5, 64)
    assert model.count_params() == 431_242  # the seeds' table: 1,601,609 B zipped dense .h5


def test_mlp() -> None:
    model = build_model("mlp", (8, 8, 1), 10)
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Dense", "Dense"]
    assert model.count_params() == 64 * 128 + 128 + 128 * 10 + 10
    assert isinstance(model, keras.Sequential)


def test_unknown_model_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet", (8, 8, 1), 10)


def test_one_definition_builds_each_model_for_both_engines() -> None:
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env.update({"KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)})
    result = subprocess.run(
        [sys.executable, "-c", KERAS3_BUILD], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    keras3 = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(keras3) == sorted(MODELS)
    for name, built in keras3.items():
        model = build_model(name, (28, 28, 1), 10)  # tf-keras, for tfmot
        tf_keras = [
            [layer.name, type(layer).__name__, [list(w.shape) for w in layer.weights]] for layer in model.layers
        ]
        assert built["layers"] == tf_keras, name
        assert built["params"] == model.count_params(), name
        # The Keras engine prunes what tfmot's registry does here (Conv2D, Dense), and the depthwise kernels.
        assert built["prunable"] == [layer.name for layer in model.layers if type(layer).__name__ in KERAS_ENGINE]
        normalization = [layer.name for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
        assert built["no_kernel"] == normalization, name
        # What the API plans a keras run with is what the engine finds in the built model.
        facts = [dataclasses.astuple(fact) for fact in model_layers(name, (28, 28, 1), 10, "keras")]
        assert built["facts"] == json.loads(json.dumps(facts)), name


KERAS_ENGINE = {"Conv2D", "Dense", "DepthwiseConv2D"}
