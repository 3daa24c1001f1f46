"""Spec validation at the edge: tfmot's messages, the field named, and plan resolution."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from prunelab.core.catalog import DATASETS
from prunelab.core.errors import InvalidSpec
from prunelab.core.plans import resolve_plan, split_sizes
from prunelab.core.specs import ConstantSchedule, PolynomialSchedule, RunSpec
from prunelab.server.errors import UNION_TAGS


def errors_of(payload: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        RunSpec.model_validate(payload)
    return {".".join(str(p) for p in e["loc"] if p not in UNION_TAGS): e["msg"] for e in caught.value.errors()}


@pytest.mark.parametrize(
    ("schedule", "field", "message"),
    [
        (
            {"kind": "constant", "target_sparsity": 1.0},
            "schedule.target_sparsity",
            "target_sparsity must be in range [0,1)",
        ),
        (
            {"kind": "constant", "target_sparsity": -0.1},
            "schedule.target_sparsity",
            "target_sparsity must be in range [0,1)",
        ),
        (
            {"kind": "polynomial", "final_sparsity": 1.5},
            "schedule.final_sparsity",
            "final_sparsity must be in range [0,1)",
        ),
        (
            {"kind": "polynomial", "initial_sparsity": 1},
            "schedule.initial_sparsity",
            "initial_sparsity must be in range [0,1)",
        ),
        ({"kind": "constant", "frequency": 0}, "schedule.frequency", "frequency should be > 0"),
        ({"kind": "constant", "begin_step": -1}, "schedule.begin_step", "begin_step should be >= 0"),
        ({"kind": "polynomial", "end_step": -5}, "schedule.end_step", "end_step can be -1 or >= 0"),
        ({"kind": "polynomial", "power": 0}, "schedule.power", "power must be a positive number"),
    ],
)
def test_schedule_fields_are_checked_with_tfmot_messages(schedule: dict, field: str, message: str) -> None:
    errors = errors_of({"schedule": schedule})
    assert message in errors[field]


def test_begin_not_before_end_is_refused() -> None:
    errors = errors_of({"schedule": {"kind": "constant", "begin_step": 50, "end_step": 50}})
    assert "begin_step (50) should be < end_step (50)" in errors["schedule"]


def test_unknown_dataset_and_model_name_the_choices() -> None:
    errors = errors_of({"dataset": "imagenet", "model": "resnet"})
    assert (
        errors["dataset"]
        == "Value error, unknown dataset 'imagenet'; choose one of: cifar10, digits, fashion_mnist, mnist"
    )
    assert (
        errors["model"] == "Value error, unknown model 'resnet'; choose one of: "
        "mlp, mnist_cnn, mobilenet_tiny, tutorial_cnn, tutorial_mnist_cnn"
    )


def test_unknown_fields_are_refused() -> None:
    assert "extra" in errors_of({"epoch": 3})["epoch"].lower()


def test_defaults_describe_an_offline_polynomial_run() -> None:
    spec = RunSpec()
    assert spec.dataset == "digits"
    assert isinstance(spec.schedule, PolynomialSchedule)
    assert (spec.schedule.begin_step, spec.schedule.end_step, spec.schedule.power, spec.schedule.frequency) == (
        0,
        -1,
        3,
        100,
    )


def test_split_matches_keras_validation_split() -> None:
    # keras: split_at = int(floor(n * (1 - validation_split)))
    assert split_sizes(DATASETS["digits"], 0.1) == (1293, 144)
    assert split_sizes(DATASETS["mnist"], 0.0) == (60000, 0)


def test_end_step_minus_one_resolves_to_the_last_step() -> None:
    spec = RunSpec(epochs=3, batch_size=100, schedule=ConstantSchedule(target_sparsity=0.5, frequency=13))
    plan = resolve_plan(spec)
    assert plan.steps_per_epoch == 13  # ceil(1293 / 100)
    assert plan.total_steps == 39
    assert plan.schedule.end_step == 39
    assert plan.last_pruning_step == 39
    assert plan.warnings == []


def test_schedule_that_cannot_reach_its_final_sparsity_is_warned_about() -> None:
    spec = RunSpec(epochs=2, schedule=PolynomialSchedule(final_sparsity=0.8, frequency=10))
    plan = resolve_plan(spec)  # 82 steps: the last pruning step is 80
    assert plan.last_pruning_step == 80
    assert "set end_step to 80" in plan.warnings[0]


@pytest.mark.parametrize(
    ("schedule", "field", "fragment"),
    [
        (ConstantSchedule(begin_step=500), ("schedule", "begin_step"), "at or after the last training step (82)"),
        (ConstantSchedule(end_step=83), ("schedule", "end_step"), "beyond the last training step (82)"),
        (
            PolynomialSchedule(begin_step=0, end_step=80, frequency=200),
            ("schedule", "frequency"),
            "larger than the pruning window [0, 80]",
        ),
    ],
)
def test_schedules_that_do_not_fit_the_run_are_refused(schedule, field, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidSpec) as caught:
        resolve_plan(RunSpec(epochs=2, schedule=schedule))
    assert caught.value.field == field
    assert fragment in caught.value.message
