"""The spec of an external run: one PruneLab did not train (a user's tfmot script, an MLflow client, an import).

PruneLab never trains it, so nothing here has to be buildable: dataset and model are free text,
the step counts are what the script's `fit` ran, and the schedule is what its pruning wrappers
carried (tfmot's `get_config`, in PruneLab's schedule models). `external_plan` turns it into the
same `RunPlan` a queued run has, so the planned-vs-measured chart, the compare page and the run
list treat both alike. Where the script's schedule does not fit its own steps (it prunes past the
end, say) the plan says so in `warnings` instead of refusing: the run happened as it happened.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prunelab.core import schedule_math
from prunelab.core.errors import InvalidSpec
from prunelab.core.plans import RunPlan, _check_window, _resolve_steps, planned_target_sparsity
from prunelab.core.recipe_plans import LayerSchedule
from prunelab.core.recipes import DenseRecipe, FromScratchRecipe
from prunelab.core.specs import ConstantSchedule, MByNSparsity, PlainText, Schedule, Structure, UnstructuredSparsity

# Who logged the run: the Keras callback, an MLflow client, an import, or a plain API client.
ExternalSource = Literal["keras_callback", "mlflow", "tensorboard", "import", "api"]
EXTERNAL_SOURCES: tuple[str, ...] = ("keras_callback", "mlflow", "tensorboard", "import", "api")
MAX_LAYERS = 10_000
MAX_STEPS = 2**40


class ExternalLayer(BaseModel):
    """One layer of the script's model: whether it was wrapped for pruning, and its weight counts."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: PlainText = Field(min_length=1, max_length=200)
    class_name: PlainText = Field("", max_length=200)
    params: int = Field(0, ge=0, le=2**50)
    prunable_params: int = Field(0, ge=0, le=2**50, description="Weights the pruning wrapper masks.")
    wrapped: bool = Field(False, description="Whether the layer was wrapped by prune_low_magnitude.")
    reason: PlainText | None = Field(None, max_length=500, description="Why it was not wrapped, if known.")
    schedule: Schedule | None = Field(None, description="This layer's schedule when it differs from the run's.")


class ExternalRunSpec(BaseModel):
    """What is known of a run trained outside PruneLab; every field may be left out."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # stored as JSON, which has no NaN

    source: ExternalSource = Field("api", description="What logged the run.")
    name: PlainText = Field("", max_length=200)
    dataset: PlainText = Field("external", max_length=200, description="Free text: the data the script trained on.")
    model: PlainText = Field("external", max_length=200, description="Free text: the script's model.")
    epochs: int | None = Field(None, ge=1, le=100_000)
    batch_size: int | None = Field(None, ge=1, le=2**31)
    steps_per_epoch: int | None = Field(None, ge=1, le=MAX_STEPS)
    train_examples: int | None = Field(None, ge=0, le=2**50)
    validation_examples: int | None = Field(None, ge=0, le=2**50)
    schedule: Schedule | None = Field(None, description="The wrappers' schedule; null when the run was not pruned.")
    structure: Structure = Field(default_factory=UnstructuredSparsity)
    layers: list[ExternalLayer] = Field(default_factory=list, max_length=MAX_LAYERS)
    params: dict[PlainText, str | float | int | bool | None] = Field(
        default_factory=dict, max_length=1000, description="Other settings of the script, shown as they are."
    )

    @field_validator("layers")
    @classmethod
    def _unique_layers(cls, layers: list[ExternalLayer]) -> list[ExternalLayer]:
        seen: set[str] = set()
        for index, layer in enumerate(layers):
            if layer.name in seen:
                raise ValueError(f"layers[{index}]: layer name {layer.name!r} appears twice")
            seen.add(layer.name)
        return layers

    @property
    def total_steps(self) -> int:
        if self.epochs is None or self.steps_per_epoch is None:
            return 0
        return self.epochs * self.steps_per_epoch

    def display_name(self) -> str:
        if self.name:
            return self.name
        kind = self.schedule.kind if self.schedule is not None else "dense"
        return f"{kind} {self.model} on {self.dataset} ({self.source.replace('_', ' ')})"


def external_plan(spec: ExternalRunSpec) -> RunPlan:
    """The plan of an external run: its steps as `fit` ran them, its schedule resolved, never a refusal."""
    total_steps = spec.total_steps
    steps_per_epoch = spec.steps_per_epoch or 1
    train = spec.train_examples
    if train is None:
        train = total_steps // spec.epochs * (spec.batch_size or 1) if spec.epochs else 0
    common = {
        "train_examples": train,
        "validation_examples": spec.validation_examples or 0,
        "test_examples": 0,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "structure": spec.structure,
        "phase_steps": [total_steps],
    }
    if spec.schedule is None or total_steps == 0:
        # Not pruned, or no step count to resolve a schedule against: nothing is planned.
        schedule = spec.schedule or ConstantSchedule(target_sparsity=0.0)
        warnings = [] if spec.schedule is None else ["the step count is unknown, so the schedule is not drawn"]
        return RunPlan(
            **common,
            schedule=schedule,
            target_sparsity=0.0 if spec.schedule is None else _final(spec),
            last_pruning_step=None,
            warnings=warnings,
            recipe=DenseRecipe() if spec.schedule is None else FromScratchRecipe(),
        )
    try:
        return _pruned_plan(spec, common, total_steps, steps_per_epoch)
    except (InvalidSpec, ValueError) as problem:  # pydantic's ValidationError is a ValueError
        message = problem.message if isinstance(problem, InvalidSpec) else str(problem).splitlines()[-1].strip()
        return RunPlan(
            **common,
            schedule=ConstantSchedule(target_sparsity=0.0),
            target_sparsity=0.0,
            last_pruning_step=None,
            warnings=[f"the script's schedule cannot be drawn over its {total_steps} steps: {message}"],
            recipe=DenseRecipe(),
        )


def _pruned_plan(spec: ExternalRunSpec, common: dict[str, Any], total_steps: int, steps_per_epoch: int) -> RunPlan:
    assert spec.schedule is not None
    resolved, fields = _resolve_steps(spec.schedule, total_steps)
    warnings = []
    try:
        _check_window(resolved, fields, total_steps, steps_per_epoch)
    except InvalidSpec as problem:
        warnings.append(f"the script's schedule does not fit its {total_steps} steps: {problem.message}")
    events = (
        [1] if isinstance(spec.structure, MByNSparsity) else list(schedule_math.pruning_steps(resolved, total_steps))
    )
    layer_schedules = _layer_schedules(spec, total_steps)
    target = planned_target_sparsity(resolved, spec.structure, layer_schedules)
    return RunPlan(
        **common,
        schedule=resolved,
        target_sparsity=target if math.isfinite(target) else 0.0,
        last_pruning_step=events[-1] if events else None,
        warnings=warnings,
        recipe=FromScratchRecipe(),
        layer_schedules=layer_schedules,
    )


def _final(spec: ExternalRunSpec) -> float:
    assert spec.schedule is not None
    resolved, _ = _resolve_steps(spec.schedule, max(spec.schedule.begin_step + 1, spec.schedule.end_step, 1))
    return schedule_math.final_target_sparsity(resolved, spec.structure)


def _layer_schedules(spec: ExternalRunSpec, total_steps: int) -> dict[str, LayerSchedule] | None:
    """Per-layer schedules when some wrapped layer had its own; None when every layer followed the run's."""
    wrapped = [layer for layer in spec.layers if layer.wrapped]
    if not any(layer.schedule is not None and layer.schedule != spec.schedule for layer in wrapped):
        return None
    assert spec.schedule is not None
    return {
        layer.name: LayerSchedule(
            schedule=_resolve_steps(layer.schedule or spec.schedule, total_steps)[0],
            prunable_params=layer.prunable_params,
        )
        for layer in wrapped
    }


def coverage_from_layers(spec: ExternalRunSpec, latest: dict[str, float | None]) -> dict[str, Any] | None:
    """summary["coverage"] as the worker writes it, from the spec's layers and each layer's latest sparsity.

    A wrapped layer's pruned weights are its prunable weights times its last `layer_sparsity/<name>`
    (0 when never logged); None when the client sent no layers.
    """
    if not spec.layers:
        return None
    layers: list[dict[str, Any]] = []
    for layer in spec.layers:
        sparsity = latest.get(f"layer_sparsity/{layer.name}") if layer.wrapped else None
        pruned = round(layer.prunable_params * sparsity) if sparsity is not None and math.isfinite(sparsity) else 0
        layers.append(
            {
                "name": layer.name,
                "class_name": layer.class_name,
                "wrapped": layer.wrapped,
                "reason": None if layer.wrapped else (layer.reason or "not wrapped by the script"),
                "params": layer.params,
                "pruned_params": pruned,
            }
        )
    pruned_total = sum(layer["pruned_params"] for layer in layers)
    prunable_total = sum(layer.prunable_params for layer in spec.layers if layer.wrapped)
    params_total = sum(layer["params"] for layer in layers)
    return {
        "layers": layers,
        "sparsity_prunable": pruned_total / prunable_total if prunable_total else 0.0,
        "sparsity_total": pruned_total / params_total if params_total else 0.0,
    }
