"""Resolve a spec against its dataset into the exact plan the worker trains."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from prunelab.core import schedule_math
from prunelab.core.architectures import fits, model_layers
from prunelab.core.catalog import DATASETS, MODELS, DatasetInfo
from prunelab.core.errors import InvalidSpec
from prunelab.core.recipe_plans import LayerSchedule, RecipePlan, resolve_recipe
from prunelab.core.recipes import FromScratchRecipe, Recipe
from prunelab.core.scope import LayerFacts, decide_layers, scope_problems
from prunelab.core.specs import MByNSparsity, PiecewiseSchedule, RunSpec, Schedule, Structure, UnstructuredSparsity


class RunPlan(BaseModel):
    """A spec resolved against its dataset: exact example and step counts, integer schedule."""

    train_examples: int
    validation_examples: int
    test_examples: int
    steps_per_epoch: int
    total_steps: int = Field(description="Steps on the run's axis: every phase's steps together.")
    schedule: Schedule = Field(description="The spec's schedule with every step an integer (no fractions, no -1).")
    structure: Structure = Field(default_factory=UnstructuredSparsity)
    target_sparsity: float = Field(description="Sparsity the schedule (or an m-by-n structure) ends at.")
    last_pruning_step: int | None = Field(description="Last step at which masks are updated, if any.")
    warnings: list[str] = Field(default_factory=list)
    recipe: Recipe = Field(default_factory=FromScratchRecipe)
    phase_steps: list[int] = Field(
        default_factory=list,
        description="Steps of each phase: [training], lottery_ticket [pruning, retraining], "
        "then one per compress stage that trains (cluster, qat), "
        "sensitivity [dense training, evaluations]; empty in plans stored before recipes (one phase).",
    )
    layer_schedules: dict[str, LayerSchedule] | None = Field(
        None, description="Per-layer schedules from layer_targets, with each layer's prunable weight count."
    )
    base_run_id: int | None = Field(None, description="The dense run this run starts from (pretrained).")
    rewind_step: int | None = Field(None, description="lottery_ticket: the step whose weights are rewound to.")
    sensitivity_layers: list[str] | None = Field(
        None, description="sensitivity: the layers swept; null for an uploaded model (decided by the worker)."
    )

    @property
    def prunes(self) -> bool:
        """Whether training wraps layers for pruning (dense and sensitivity runs do not)."""
        return self.recipe.kind not in ("dense", "sensitivity")

    @property
    def training_steps(self) -> int:
        """Steps of Keras training before any rewinding: the window the schedule was resolved in."""
        return self.phase_steps[0] if self.phase_steps else self.total_steps

    def pruning_steps(self) -> list[int]:
        if not self.prunes:
            return []
        return list(schedule_math.pruning_steps(self.schedule, self.total_steps, self.structure))

    def target_sparsity_series(self) -> list[float]:
        if not self.prunes:
            return [0.0] * self.total_steps
        if self.layer_schedules:
            series = {
                name: schedule_math.target_sparsity_series(layer.schedule, self.total_steps, self.structure)
                for name, layer in self.layer_schedules.items()
            }
            params = {name: layer.prunable_params for name, layer in self.layer_schedules.items()}
            return schedule_math.weighted_series(series, params)
        return schedule_math.target_sparsity_series(self.schedule, self.total_steps, self.structure)


def split_sizes(dataset: DatasetInfo, validation_split: float) -> tuple[int, int]:
    """Train and validation counts, split as Keras `fit(validation_split=...)` splits."""
    train = math.floor(dataset.train_examples * (1.0 - validation_split))
    return train, dataset.train_examples - train


def fraction_to_step(fraction: float, total_steps: int) -> int:
    """A fraction of the run's steps as the nearest step (0.2 of 42 steps: step 8)."""
    return round(fraction * total_steps)


def _resolve_steps(schedule: Schedule, total_steps: int) -> tuple[Schedule, dict[str, str]]:
    """Integer begin/end steps (and piecewise points); also which spec field each value came from."""
    begin, end = schedule.begin_step, schedule.end_step
    fields = {"begin": "begin_step", "end": "end_step"}
    if schedule.begin_fraction is not None:
        begin, fields["begin"] = fraction_to_step(schedule.begin_fraction, total_steps), "begin_fraction"
    if schedule.end_fraction is not None:
        end, fields["end"] = fraction_to_step(schedule.end_fraction, total_steps), "end_fraction"
    update: dict[str, object] = {
        "begin_step": begin,
        "end_step": total_steps if end == -1 else end,
        "begin_fraction": None,
        "end_fraction": None,
    }
    if isinstance(schedule, PiecewiseSchedule):
        update["points"] = _resolve_points(schedule, total_steps)
        update["points_unit"] = "steps"
    return schedule.model_copy(update=update), fields


def _resolve_points(schedule: PiecewiseSchedule, total_steps: int) -> list[tuple[int, float]]:
    if schedule.points_unit == "steps":
        return [(int(step), sparsity) for step, sparsity in schedule.points]
    points = [(fraction_to_step(step, total_steps), sparsity) for step, sparsity in schedule.points]
    for index in range(1, len(points)):
        if points[index][0] <= points[index - 1][0]:
            raise InvalidSpec(
                ("schedule", "points"),
                f"points[{index - 1}] and points[{index}] both fall on step {points[index][0]} of {total_steps}; "
                "space their fractions further apart or train longer",
            )
    return points


def _check_window(schedule: Schedule, fields: dict[str, str], total_steps: int, steps_per_epoch: int) -> None:
    begin, end = schedule.begin_step, schedule.end_step
    if begin >= total_steps:
        raise InvalidSpec(
            ("schedule", fields["begin"]),
            f"begin_step ({begin}) is at or after the last training step ({total_steps}); "
            f"lower begin_step or train longer ({steps_per_epoch} steps per epoch)",
        )
    if end > total_steps:
        raise InvalidSpec(
            ("schedule", fields["end"]),
            f"end_step ({end}) is beyond the last training step ({total_steps}); "
            f"use end_step -1 or at most {total_steps}, or train longer ({steps_per_epoch} steps per epoch)",
        )
    if end <= begin:
        raise InvalidSpec(("schedule", fields["end"]), f"end_step ({end}) should be > begin_step ({begin})")
    if schedule.frequency > end - begin:
        raise InvalidSpec(
            ("schedule", "frequency"),
            f"frequency ({schedule.frequency}) is larger than the pruning window [{begin}, {end}] "
            f"({end - begin} steps), so the schedule cannot finish; lower frequency to at most {end - begin}",
        )


def resolve_plan(spec: RunSpec, layers: list[LayerFacts] | None = None) -> RunPlan:
    """Resolve fractions and `end_step=-1`, and check the schedule, scope and recipe fit the run.

    `layers` are the model's layer facts: the zoo's by default; for an uploaded model, what its upload
    recorded, or None when unknown (the worker's pre-flight then checks the scope).
    """
    dataset = DATASETS[spec.dataset]
    train, validation = split_sizes(dataset, spec.validation_split)
    if train < 1:
        raise InvalidSpec(("validation_split",), "validation_split leaves no training examples; lower it")
    steps_per_epoch = math.ceil(train / spec.batch_size)
    if layers is None and spec.recipe.kind != "uploaded_model" and getattr(spec.recipe, "upload_id", None) is None:
        if not fits(spec.model, dataset.input_shape):
            side = MODELS[spec.model].min_input_size
            raise InvalidSpec(
                ("model",),
                f"{spec.model} needs images of at least {side}x{side}; {spec.dataset} has "
                f"{dataset.input_shape[0]}x{dataset.input_shape[1]}: choose a larger dataset or another model",
            )
        layers = model_layers(spec.model, dataset.input_shape, dataset.num_classes, spec.engine)
    recipe = resolve_recipe(spec, layers, steps_per_epoch)
    if not recipe.prunes:
        return _unpruned_plan(spec, recipe, train, validation, steps_per_epoch)
    total_steps = recipe.training_steps
    resolved, fields = _resolve_steps(spec.schedule, total_steps)
    _check_window(resolved, fields, total_steps, steps_per_epoch)
    for problem in scope_problems(layers, spec) if layers is not None else []:
        raise InvalidSpec(problem.field, problem.message)
    events = list(schedule_math.pruning_steps(resolved, total_steps))
    if not events:
        raise InvalidSpec(
            ("schedule", "frequency"),
            f"no pruning step falls in the window [{resolved.begin_step}, {resolved.end_step}] with frequency "
            f"{resolved.frequency}; lower frequency",
        )
    warnings: list[str] = []
    if isinstance(spec.structure, MByNSparsity):
        warnings.append(
            f"m_by_n structure ignores the schedule: tfmot sets the {spec.structure.m}:{spec.structure.n} mask "
            f"once, at step 1, to {spec.structure.target_sparsity:g} sparsity"
        )
        events = [1]
    else:
        target = schedule_math.final_target_sparsity(resolved)
        reached = schedule_math.schedule_sparsity(resolved, events[-1])
        if not math.isclose(reached, target, abs_tol=1e-6):
            warnings.append(
                f"the last pruning step is {events[-1]}, where the schedule's sparsity is {reached:.6f}, "
                f"not the final {target}; set end_step to {events[-1]} or make (end_step - begin_step) "
                f"a multiple of frequency ({resolved.frequency}) to reach it"
            )
    layer_schedules = resolve_layer_schedules(spec, resolved, layers)
    target = planned_target_sparsity(resolved, spec.structure, layer_schedules)
    return RunPlan(
        train_examples=train,
        validation_examples=validation,
        test_examples=dataset.test_examples,
        steps_per_epoch=steps_per_epoch,
        total_steps=sum(recipe.phase_steps),
        schedule=resolved,
        structure=spec.structure,
        target_sparsity=target,
        last_pruning_step=events[-1],
        warnings=warnings + recipe.warnings,
        recipe=spec.recipe,
        phase_steps=recipe.phase_steps,
        layer_schedules=layer_schedules,
        base_run_id=getattr(spec.recipe, "base_run_id", None),
        rewind_step=recipe.rewind_step,
    )


def planned_target_sparsity(
    schedule: Schedule, structure: Structure, layer_schedules: dict[str, LayerSchedule] | None
) -> float:
    """The sparsity a run is planned to end at: with per-layer schedules, their finals' parameter-weighted mean."""
    if not layer_schedules:
        return schedule_math.final_target_sparsity(schedule, structure)
    finals = {name: [schedule_math.final_target_sparsity(layer.schedule)] for name, layer in layer_schedules.items()}
    params = {name: layer.prunable_params for name, layer in layer_schedules.items()}
    return schedule_math.weighted_series(finals, params)[0]


def resolve_layer_schedules(
    spec: RunSpec, schedule: Schedule, layers: list[LayerFacts] | None
) -> dict[str, LayerSchedule] | None:
    """One schedule per pruned layer when the spec sets `layer_targets`; check every name is pruned."""
    if spec.layer_targets is None:
        return None
    if isinstance(spec.structure, MByNSparsity):
        raise InvalidSpec(("layer_targets",), "m_by_n structure has one sparsity (m/n); remove layer_targets")
    if layers is None:
        raise InvalidSpec(
            ("layer_targets",), "layer_targets need the model's layers, which this uploaded model did not record"
        )
    decisions = {decision.name: decision for decision in decide_layers(layers, spec)}
    for name in spec.layer_targets:
        decision = decisions.get(name)
        if decision is None or not decision.wrapped:
            pruned = ", ".join(d.name for d in decisions.values() if d.wrapped)
            why = "no such layer" if decision is None else decision.reason
            raise InvalidSpec(("layer_targets",), f"layer {name!r} is not pruned ({why}); pruned layers: {pruned}")
    facts = {layer.name: layer for layer in layers}
    return {
        name: LayerSchedule(
            schedule=schedule_math.with_final_sparsity(schedule, spec.layer_targets.get(name, _final(schedule))),
            prunable_params=facts[name].prunable_params,
        )
        for name, decision in decisions.items()
        if decision.wrapped
    }


def _final(schedule: Schedule) -> float:
    return schedule_math.final_target_sparsity(schedule)


def _unpruned_plan(spec: RunSpec, recipe: RecipePlan, train: int, validation: int, steps_per_epoch: int) -> RunPlan:
    """A dense or sensitivity run: its schedule is kept as given (steps resolved) but never applied."""
    total_steps = sum(recipe.phase_steps)
    return RunPlan(
        train_examples=train,
        validation_examples=validation,
        test_examples=DATASETS[spec.dataset].test_examples,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        schedule=spec.schedule,
        structure=spec.structure,
        target_sparsity=0.0,
        last_pruning_step=None,
        warnings=recipe.warnings,
        recipe=spec.recipe,
        phase_steps=recipe.phase_steps,
        base_run_id=getattr(spec.recipe, "base_run_id", None),
        sensitivity_layers=recipe.sensitivity_layers,
    )
