"""The API plans each run with its own engine's registry: depthwise kernels are the keras engine's, not tfmot's."""

from __future__ import annotations

import pytest

from prunelab.core.architectures import model_layers, param_counts
from prunelab.core.errors import InvalidSpec
from prunelab.core.plans import resolve_plan
from prunelab.core.registry import KERAS_ENGINE_WEIGHTS, TFMOT_WEIGHTS, prunable_classes
from prunelab.core.scope import decide_layers
from prunelab.core.specs import RunSpec


def _spec(engine: str, **fields: object) -> RunSpec:
    return RunSpec.model_validate(
        {
            "dataset": "cifar10",
            "model": "mobilenet_tiny",
            "epochs": 1,
            "batch_size": 512,
            "schedule": {"kind": "constant", "frequency": 5},
            "engine": engine,
            **fields,
        }
    )


def test_the_keras_engine_prunes_depthwise_kernels_and_tfmot_does_not() -> None:
    assert {"DepthwiseConv1D", "DepthwiseConv2D"} <= prunable_classes("keras")
    assert "DepthwiseConv2D" not in prunable_classes("tfmot") and TFMOT_WEIGHTS["DepthwiseConv2D"] == ()
    # Apart from the depthwise kernels, the keras engine prunes what tfmot prunes, class by class.
    for name, weights in KERAS_ENGINE_WEIGHTS.items():
        if not name.startswith("DepthwiseConv") and name in TFMOT_WEIGHTS:
            assert weights == TFMOT_WEIGHTS[name], name
    keras_facts = {layer.name: layer for layer in model_layers("mobilenet_tiny", (32, 32, 3), 10, "keras")}
    tfmot_facts = {layer.name: layer for layer in model_layers("mobilenet_tiny", (32, 32, 3), 10, "tfmot")}
    assert keras_facts["dw1"].prunable_shapes == ((3, 3, 16, 1),) and tfmot_facts["dw1"].prunable_shapes == ()
    assert keras_facts["dw2"].prunable_params == 3 * 3 * 32
    counts = {engine: param_counts("mobilenet_tiny", (32, 32, 3), 10, engine) for engine in ("tfmot", "keras")}
    assert counts["keras"]["params"] == counts["tfmot"]["params"]
    assert counts["keras"]["prunable_params"] == counts["tfmot"]["prunable_params"] + 3 * 3 * (16 + 32)


def test_a_keras_run_may_scope_depthwise_layers_and_a_tfmot_run_may_not() -> None:
    plan = resolve_plan(_spec("keras", backend="jax", scope={"layer_types": ["DepthwiseConv2D"]}))
    assert plan.target_sparsity == 0.5
    with pytest.raises(InvalidSpec) as refused:
        resolve_plan(_spec("tfmot", scope={"layer_types": ["DepthwiseConv2D"]}))
    assert refused.value.field == ("scope",)
    assert "the scope selects no layer to prune" in str(refused.value)


def test_layer_targets_of_a_keras_run_weigh_the_depthwise_layers() -> None:
    plan = resolve_plan(_spec("keras", layer_targets={"dw1": 0.8, "logits": 0.2}))
    assert plan.layer_schedules is not None
    assert plan.layer_schedules["dw1"].prunable_params == 3 * 3 * 16
    assert set(plan.layer_schedules) == {"stem", "dw1", "pw1", "dw2", "pw2", "logits"}
    with pytest.raises(InvalidSpec, match=r"layer 'dw1' is not pruned \(not prunable in tfmot's registry\)"):
        resolve_plan(_spec("tfmot", layer_targets={"dw1": 0.8}))


@pytest.mark.parametrize(
    ("engine", "note"),
    [("tfmot", "not prunable in tfmot's registry"), ("keras", "not prunable by the keras engine")],
)
def test_the_coverage_note_names_the_run_s_engine(engine: str, note: str) -> None:
    spec = _spec(engine)
    decisions = {d.name: d for d in decide_layers(model_layers("mobilenet_tiny", (32, 32, 3), 10, engine), spec)}
    assert decisions["stem_bn"].reason == note
    assert decisions["dw1"].wrapped == (engine == "keras")
