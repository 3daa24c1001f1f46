"""The compress part of a run spec: tfmot's stage order, refusals that say what to change, phases on the step axis."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from prunelab.core.errors import InvalidSpec
from prunelab.core.plans import resolve_plan
from prunelab.core.specs import ClusterStage, QatStage, RunSpec, TfliteInt8Stage
from prunelab.server.errors import UNION_TAGS

BASE = {
    "dataset": "digits",
    "model": "mlp",
    "epochs": 2,
    "batch_size": 64,
    "schedule": {"kind": "constant", "frequency": 5},
}


def errors_of(compress: list[dict]) -> dict[str, str]:  # type: ignore[type-arg]
    with pytest.raises(ValidationError) as caught:
        RunSpec.model_validate({**BASE, "compress": compress})
    return {".".join(str(p) for p in e["loc"] if p not in UNION_TAGS): e["msg"] for e in caught.value.errors()}


@pytest.mark.parametrize(
    ("compress", "field", "message"),
    [
        (
            [{"kind": "qat", "scheme": "pcqat"}],
            "compress",
            "compress[0] (qat): scheme pcqat preserves clusters, and no cluster stage comes before it; "
            "add a cluster stage before qat, or use scheme pqat",
        ),
        (
            [{"kind": "qat"}, {"kind": "cluster"}],
            "compress",
            "compress[1] (cluster) comes after compress[0] (qat); tfmot's order is cluster -> qat -> tflite_int8: "
            "move cluster before qat",
        ),
        (
            [{"kind": "tflite_int8"}, {"kind": "qat"}],
            "compress",
            "compress[1] (qat) comes after compress[0] (tflite_int8); tfmot's order is cluster -> qat -> "
            "tflite_int8: move qat before tflite_int8",
        ),
        (
            [{"kind": "cluster"}, {"kind": "qat", "scheme": "pqat"}],
            "compress",
            "compress[1] (qat): scheme pqat would undo the clusters of compress[0]; use scheme pcqat after a "
            "cluster stage",
        ),
        (
            [{"kind": "cluster"}, {"kind": "cluster"}],
            "compress",
            "compress[1] (cluster) repeats compress[0]; give each stage at most once",
        ),
        (
            [{"kind": "cluster", "number_of_clusters": 1}],
            "compress.0.number_of_clusters",
            "number_of_clusters should be in range [2, 256] (an int8 kernel holds 256 values)",
        ),
        ([{"kind": "cluster", "centroid_init": "kmeans"}], "compress.0.centroid_init", None),
        ([{"kind": "qat", "scheme": "int4"}], "compress.0.scheme", None),
        ([{"kind": "prune"}], "compress.0", None),
    ],
)
def test_unsupported_orders_and_values_are_refused_naming_the_field(
    compress: list[dict],  # type: ignore[type-arg]
    field: str,
    message: str | None,
) -> None:
    errors = errors_of(compress)
    assert field in errors, errors
    if message is not None:
        assert errors[field] == f"Value error, {message}"


@pytest.mark.parametrize(
    "kinds",
    [
        ["cluster"],
        ["cluster", "qat:pcqat"],
        ["cluster", "qat:pcqat", "tflite_int8"],
        ["cluster", "tflite_int8"],
        ["qat:pqat"],
        ["qat:pqat", "tflite_int8"],
        ["qat:default"],
        ["tflite_int8"],
    ],
)
def test_every_supported_order_validates_and_round_trips(kinds: list[str]) -> None:
    compress = [
        {"kind": kind.split(":")[0], **({"scheme": kind.split(":")[1]} if ":" in kind else {})} for kind in kinds
    ]
    spec = RunSpec.model_validate({**BASE, "compress": compress})
    assert [stage.kind for stage in spec.compress] == [kind.split(":")[0] for kind in kinds]
    assert RunSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_each_training_stage_is_a_phase_that_continues_the_step_axis() -> None:
    spec = RunSpec.model_validate(
        {
            **BASE,
            "compress": [
                {"kind": "cluster", "epochs": 1},
                {"kind": "qat", "scheme": "pcqat", "epochs": 3},
                {"kind": "tflite_int8"},
            ],
        }
    )
    plan = resolve_plan(spec)
    steps = plan.steps_per_epoch
    assert plan.phase_steps == [2 * steps, 1 * steps, 3 * steps]
    assert plan.total_steps == 6 * steps and plan.training_steps == 2 * steps
    assert plan.schedule.end_step == 2 * steps  # pruning ends with the pruning phase; the stages keep its masks
    assert max(plan.pruning_steps()) <= 2 * steps
    assert len(plan.target_sparsity_series()) == plan.total_steps


def test_defaults_are_tfmots() -> None:
    cluster, qat, tflite = ClusterStage(), QatStage(), TfliteInt8Stage()
    assert (cluster.number_of_clusters, cluster.centroid_init, cluster.preserve_sparsity) == (
        16,
        "kmeans_plus_plus",
        True,
    )
    assert qat.scheme == "pqat" and tflite.calibration_examples == 100


def test_a_sensitivity_sweep_has_nothing_to_compress() -> None:
    spec = RunSpec.model_validate({**BASE, "recipe": {"kind": "sensitivity"}, "compress": [{"kind": "cluster"}]})
    with pytest.raises(InvalidSpec) as refused:
        resolve_plan(spec)
    assert refused.value.field == ("compress",)
    assert "remove compress" in str(refused.value)
