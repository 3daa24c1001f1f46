"""The plan of an external run: its steps as fit ran them, never a refusal of what already happened."""

from __future__ import annotations

import pytest

from prunelab.core.external import ExternalLayer, ExternalRunSpec, coverage_from_layers, external_plan
from prunelab.core.specs import ConstantSchedule

RUN = ConstantSchedule(target_sparsity=0.5, begin_step=0, end_step=-1, frequency=10)


def spec(**fields: object) -> ExternalRunSpec:
    base: dict[str, object] = {"source": "keras_callback", "epochs": 2, "steps_per_epoch": 50, "schedule": RUN}
    return ExternalRunSpec.model_validate({**base, **fields})


def test_the_plan_resolves_the_scripts_schedule_against_its_steps() -> None:
    plan = external_plan(spec())
    assert plan.total_steps == 100 and plan.schedule.end_step == 100 and plan.target_sparsity == 0.5
    assert plan.pruning_steps() == list(range(10, 101, 10)) and plan.warnings == []
    assert plan.target_sparsity_series()[9] == 0.5 and plan.target_sparsity_series()[8] == 0.0


def test_layers_with_their_own_schedule_weigh_into_the_target() -> None:
    layers = [
        ExternalLayer(name="a", prunable_params=300, wrapped=True),
        ExternalLayer(
            name="b",
            prunable_params=100,
            wrapped=True,
            schedule=ConstantSchedule(target_sparsity=0.9, begin_step=0, end_step=-1, frequency=25),
        ),
    ]
    plan = external_plan(spec(layers=layers))
    assert plan.layer_schedules is not None and set(plan.layer_schedules) == {"a", "b"}
    assert plan.target_sparsity == pytest.approx((300 * 0.5 + 100 * 0.9) / 400)


def test_a_schedule_that_does_not_fit_is_a_warning_not_a_refusal() -> None:
    sparse_window = ConstantSchedule(target_sparsity=0.5, begin_step=0, end_step=-1, frequency=500)
    plan = external_plan(spec(schedule=sparse_window))
    assert plan.warnings and "does not fit its 100 steps" in plan.warnings[0] and plan.prunes
    late = ConstantSchedule(target_sparsity=0.5, begin_step=500, end_step=-1, frequency=10)
    plan = external_plan(spec(schedule=late))  # pruning would begin after the script's last step
    assert not plan.prunes and "cannot be drawn over its 100 steps" in plan.warnings[0]


def test_without_a_schedule_or_steps_nothing_is_planned() -> None:
    dense = external_plan(ExternalRunSpec(source="mlflow", name="only a name"))
    assert dense.total_steps == 0 and not dense.prunes and dense.target_sparsity == 0.0
    unknown_steps = external_plan(spec(steps_per_epoch=None))
    assert unknown_steps.total_steps == 0 and unknown_steps.target_sparsity == 0.5 and unknown_steps.warnings


def test_coverage_from_the_layers_and_their_last_sparsity() -> None:
    layers = [
        ExternalLayer(name="conv", params=100, prunable_params=90, wrapped=True),
        ExternalLayer(name="head", params=20, wrapped=False),
    ]
    coverage = coverage_from_layers(spec(layers=layers), {"layer_sparsity/conv": 0.5})
    assert coverage is not None
    assert [layer["pruned_params"] for layer in coverage["layers"]] == [45, 0]
    assert coverage["layers"][1]["reason"] == "not wrapped by the script"
    assert coverage["sparsity_prunable"] == 0.5 and coverage["sparsity_total"] == pytest.approx(45 / 120)
    assert coverage_from_layers(spec(), {}) is None
