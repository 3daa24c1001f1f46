"""Fractions, piecewise points, structure and scope: validated at the edge, resolved and checked in the plan."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from prunelab.core import schedule_math
from prunelab.core.errors import InvalidSpec
from prunelab.core.plans import resolve_plan
from prunelab.core.specs import PiecewiseSchedule, RunSpec

# digits, 1 epoch of 64: 21 steps.
BASE = {"dataset": "digits", "epochs": 1, "batch_size": 64}


def _error(payload: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        RunSpec.model_validate({**BASE, **payload})
    return caught.value.errors()[0]["msg"]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"kind": "constant", "begin_step": 3, "begin_fraction": 0.2}, "give begin_step or begin_fraction, not both"),
        ({"kind": "polynomial", "end_step": 9, "end_fraction": 0.5}, "give end_step or end_fraction, not both"),
        ({"kind": "constant", "begin_fraction": 1.0}, "begin_fraction must be in range [0,1)"),
        ({"kind": "constant", "end_fraction": 0}, "end_fraction must be in range (0,1]"),
        ({"kind": "constant", "begin_fraction": 0.6, "end_fraction": 0.5}, "should be < end_fraction"),
        ({"kind": "piecewise", "points": [[0, 0.1]]}, "points needs at least two"),
        ({"kind": "piecewise", "points": [[0, 0.1], [0.5, 1.0]]}, "points[1] sparsity must be in range [0,1)"),
        ({"kind": "piecewise", "points": [[0.5, 0.1], [0.5, 0.2]]}, "points steps should be strictly increasing"),
        ({"kind": "piecewise", "points": [[0, 0.1], [1.5, 0.2]]}, "must be a fraction in range [0,1]"),
        ({"kind": "piecewise", "points_unit": "steps", "points": [[0, 0.1], [2.5, 0.2]]}, "a whole number >= 0"),
    ],
)
def test_schedule_fields_are_refused_with_a_message_naming_them(schedule: dict, message: str) -> None:
    assert message in _error({"schedule": schedule})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"structure": {"kind": "m_by_n", "m": 4, "n": 4}}, "m_by_n needs 1 <= m < n"),
        ({"structure": {"kind": "block", "block_size": [0, 4]}}, "block_size dimensions should be >= 1"),
        ({"structure": {"kind": "block", "block_pooling_type": "MIN"}}, "'AVG' or 'MAX'"),
        ({"exports": []}, "exports needs at least one format"),
        ({"exports": ["onnx"]}, "'keras', 'h5', 'saved_model', 'tflite' or 'tflite_int8'"),
    ],
)
def test_structure_and_export_fields_are_checked(payload: dict, message: str) -> None:
    assert message in _error(payload)


def test_fractions_resolve_to_rounded_steps_stored_in_the_plan() -> None:
    spec = RunSpec.model_validate(
        {**BASE, "schedule": {"kind": "constant", "begin_fraction": 0.2, "end_fraction": 0.9, "frequency": 3}}
    )
    plan = resolve_plan(spec)
    assert (plan.schedule.begin_step, plan.schedule.end_step) == (4, 19)  # round(4.2), round(18.9)
    assert plan.pruning_steps() == [4, 7, 10, 13, 16, 19]
    assert spec.schedule.begin_fraction == 0.2  # the spec keeps what the user wrote


def test_piecewise_fraction_points_resolve_and_collisions_are_refused() -> None:
    spec = RunSpec.model_validate({**BASE, "schedule": {"kind": "piecewise", "points": [[0, 0], [0.5, 0.5], [1, 0.8]]}})
    spec = spec.model_copy(update={"schedule": spec.schedule.model_copy(update={"frequency": 7})})
    plan = resolve_plan(spec)
    assert plan.schedule.points == [(0, 0.0), (10, 0.5), (21, 0.8)]
    assert plan.target_sparsity == 0.8 and plan.warnings == []
    close = RunSpec.model_validate(
        {**BASE, "schedule": {"kind": "piecewise", "frequency": 5, "points": [[0, 0], [0.6, 0.5], [0.61, 0.8]]}}
    )
    with pytest.raises(InvalidSpec) as caught:
        resolve_plan(close)
    assert caught.value.field == ("schedule", "points")
    assert "both fall on step 13" in caught.value.message


def test_piecewise_arithmetic_by_hand() -> None:
    schedule = PiecewiseSchedule(points=[(10, 0.2), (20, 0.6), (40, 0.8)], points_unit="steps", end_step=50)
    assert schedule_math.schedule_sparsity(schedule, 5) == pytest.approx(0.2)
    assert schedule_math.schedule_sparsity(schedule, 15) == pytest.approx(0.4)
    assert schedule_math.schedule_sparsity(schedule, 30) == pytest.approx(0.7)
    assert schedule_math.schedule_sparsity(schedule, 45) == pytest.approx(0.8)
    assert schedule_math.final_target_sparsity(schedule) == 0.8


def test_m_by_n_plan_prunes_once_at_step_one_whatever_the_schedule() -> None:
    spec = RunSpec.model_validate(
        {
            **BASE,
            "structure": {"kind": "m_by_n"},
            "schedule": {"kind": "constant", "target_sparsity": 0.9, "frequency": 5},
        }
    )
    plan = resolve_plan(spec)
    assert plan.pruning_steps() == [1] and plan.last_pruning_step == 1
    assert plan.target_sparsity == 0.5
    assert plan.target_sparsity_series() == [0.5] * 21
    assert "ignores the schedule" in plan.warnings[0]


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"model": "mnist_cnn", "structure": {"kind": "block"}}, ("structure", "block_size"), "needs 2-D kernels"),
        ({"scope": {"layer_names": ["dense2"]}}, ("scope", "layer_names"), "no layer named 'dense2'"),
        ({"model": "mobilenet_tiny", "scope": {"layer_names": ["dw1"]}}, ("scope", "layer_names"), "not prunable"),
        ({"scope": {"layer_types": ["Conv2D"]}}, ("scope",), "selects no layer to prune"),
        (
            {"schedule": {"kind": "constant", "begin_step": 10, "end_step": 15, "frequency": 6}},
            ("schedule", "frequency"),
            "larger than the pruning window",
        ),
        (
            {"schedule": {"kind": "constant", "end_fraction": 0.01}},
            ("schedule", "end_fraction"),
            "should be > begin_step",
        ),
    ],
)
def test_plan_refuses_specs_that_cannot_run(payload: dict, field: tuple, fragment: str) -> None:
    payload.setdefault("schedule", {"kind": "constant", "frequency": 5})
    with pytest.raises(InvalidSpec) as caught:
        resolve_plan(RunSpec.model_validate({**BASE, **payload}))
    assert caught.value.field == field
    assert fragment in caught.value.message


def test_block_sparsity_on_dense_layers_of_a_cnn_is_accepted() -> None:
    spec = RunSpec.model_validate(
        {
            **BASE,
            "model": "mnist_cnn",
            "structure": {"kind": "block"},
            "scope": {"layer_types": ["Dense"]},
            "schedule": {"kind": "constant", "frequency": 5},
        }
    )
    assert resolve_plan(spec).total_steps == 21


def test_every_new_field_has_a_description_and_a_group() -> None:
    properties = RunSpec.model_json_schema()["properties"]
    groups = {"structure": "structure", "scope": "structure", "exports": "export", "int8_quantization": "export"}
    for name, group in groups.items():
        assert properties[name]["group"] == group
        assert properties[name]["description"]
