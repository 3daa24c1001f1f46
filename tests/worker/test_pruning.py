"""Scope, pre-flight and coverage on real Keras models, and agreement with the API's layer facts."""

from __future__ import annotations

import pytest

from prunelab.core.architectures import fits, model_layers, param_counts
from prunelab.core.catalog import DATASETS, MODELS
from prunelab.core.plans import resolve_plan
from prunelab.core.registry import TFMOT_WEIGHTS
from prunelab.core.scope import EXCLUDED_BY_SCOPE, FIRST_KEPT_DENSE, LAST_KEPT_DENSE, NOT_IN_REGISTRY, decide_layers
from prunelab.core.specs import RunSpec
from prunelab.worker.training.pruning import layer_facts, preflight_model, prune_model
from prunelab.worker.training.tf import PruneLowMagnitude, PruneRegistry, keras
from prunelab.worker.training.zoo import build_model

# Only the pairs that build: a model too deep for a data set's images is refused before training, which
# tests/core/test_architectures checks.
BUILDABLE = [
    (model, dataset)
    for dataset in sorted(DATASETS)
    for model in sorted(MODELS)
    if fits(model, DATASETS[dataset].input_shape)
]


def test_core_s_tfmot_registry_is_tfmot_s() -> None:
    # tfmot adds a Rescaling entry keyed by its metaclass (`Rescaling.__class__`): no layer is of that class.
    tfmot = {cls.__name__: tuple(names) for cls, names in PruneRegistry._LAYERS_WEIGHTS_MAP.items() if cls is not type}
    assert tfmot == dict(TFMOT_WEIGHTS)


@pytest.mark.parametrize(("model", "dataset"), BUILDABLE)
def test_api_layer_facts_and_param_counts_equal_keras(model: str, dataset: str) -> None:
    info = DATASETS[dataset]
    built = build_model(model, info.input_shape, info.num_classes)
    assert layer_facts(built) == model_layers(model, info.input_shape, info.num_classes)
    assert param_counts(model, info.input_shape, info.num_classes)["params"] == built.count_params()


def test_the_tutorial_cnn_has_20410_parameters_on_mnist() -> None:
    assert build_model("tutorial_cnn", (28, 28, 1), 10).count_params() == 20410


def _spec(**fields) -> RunSpec:
    schedule = {"kind": "constant", "frequency": 5}
    return RunSpec.model_validate({"dataset": "digits", "epochs": 1, "batch_size": 64, "schedule": schedule, **fields})


def test_mobilenet_coverage_reports_layers_tfmot_cannot_prune() -> None:
    spec = _spec(model="mobilenet_tiny", scope={"keep_first_dense": True})
    model = build_model("mobilenet_tiny", (8, 8, 1), 10)
    pruned, decisions = prune_model(model, spec, resolve_plan(spec))
    reasons = {decision.name: decision.reason for decision in decisions}
    assert reasons["stem"] == FIRST_KEPT_DENSE
    assert reasons["dw1"] == reasons["stem_bn"] == NOT_IN_REGISTRY  # DepthwiseConv2D: the registry prunes nothing
    assert reasons["stem_relu"] == "no weights"
    assert {d.name for d in decisions if d.wrapped} == {"pw1", "pw2", "logits"}
    wrapped = {layer.layer.name for layer in pruned.layers if isinstance(layer, PruneLowMagnitude)}
    assert wrapped == {"pw1", "pw2", "logits"}


def test_scope_by_type_and_name_and_last_layer() -> None:
    model = build_model("mnist_cnn", (8, 8, 1), 10)
    by_type = decide_layers(layer_facts(model), _spec(model="mnist_cnn", scope={"layer_types": ["Dense"]}))
    assert [d.name for d in by_type if d.wrapped] == ["dense", "logits"]
    assert {d.reason for d in by_type if d.name.startswith("conv")} == {EXCLUDED_BY_SCOPE}
    spec = _spec(model="mnist_cnn", scope={"layer_names": ["conv2", "logits"], "keep_last_dense": True})
    by_name = decide_layers(layer_facts(model), spec)
    assert [d.name for d in by_name if d.wrapped] == ["conv2"]
    assert next(d for d in by_name if d.name == "logits").reason == LAST_KEPT_DENSE


def test_preflight_refuses_block_sparsity_on_convolutions() -> None:
    spec = RunSpec.model_construct(
        **{**_spec(model="mnist_cnn").__dict__, "structure": _spec(structure={"kind": "block"}).structure}
    )
    problems = preflight_model(build_model("mnist_cnn", (8, 8, 1), 10), spec)
    assert problems[0].field == ("structure", "block_size")
    assert "set scope.layer_types to ['Dense']" in problems[0].message


class Subclassed(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(10)

    def call(self, inputs):  # type: ignore[no-untyped-def]
        return self.dense(inputs)


class Unsupported(keras.layers.Layer):
    def build(self, input_shape):  # type: ignore[no-untyped-def]
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],))

    def call(self, inputs):  # type: ignore[no-untyped-def]
        return inputs * self.scale


def test_preflight_refuses_what_tfmot_cannot_prune_and_says_what_to_change() -> None:
    spec = _spec()
    [problem] = preflight_model(Subclassed(), spec)
    assert "subclassed models cannot be pruned" in problem.message
    import keras as keras3  # Keras 3: tfmot needs tf-keras

    keras3_model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    [problem] = preflight_model(keras3_model, spec)
    assert "Keras 3 model" in problem.message
    model = keras.Sequential([keras.Input((4,)), Unsupported(name="scale"), keras.layers.Dense(2, name="out")])
    [problem] = preflight_model(model, spec)
    assert "'scale' (Unsupported) is not prunable in tfmot's registry" in problem.message
    assert preflight_model(model, _spec(scope={"layer_types": ["Dense"]})) == []
    problems = preflight_model(model, _spec(scope={"layer_names": ["missing"]}))
    assert problems[0].field == ("scope", "layer_names")
    assert "no layer named 'missing'" in problems[0].message
    assert "the scope selects no layer to prune" in problems[-1].message
