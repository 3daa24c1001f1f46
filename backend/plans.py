"""Resolve a spec against its dataset into the exact plan the worker trains."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from backend import schedules
from backend.architectures import model_layers
from backend.catalog import DATASETS, DatasetInfo
from backend.errors import InvalidSpec
from backend.scope import scope_problems
from backend.specs import MByNSparsity, PiecewiseSchedule, RunSpec, Schedule, Structure, UnstructuredSparsity


class RunPlan(BaseModel):
    """A spec resolved against its dataset: exact example and step counts, integer schedule."""

    train_examples: int
    validation_examples: int
    test_examples: int
    steps_per_epoch: int
    total_steps: int
    schedule: Schedule = Field(description="The spec's schedule with every step an integer (no fractions, no -1).")
    structure: Structure = Field(default_factory=UnstructuredSparsity)
    target_sparsity: float = Field(description="Sparsity the schedule (or an m-by-n structure) ends at.")
    last_pruning_step: int | None = Field(description="Last step at which masks are updated, if any.")
    warnings: list[str] = Field(default_factory=list)

    def pruning_steps(self) -> list[int]:
        return list(schedules.pruning_steps(self.schedule, self.total_steps, self.structure))

    def target_sparsity_series(self) -> list[float]:
        return schedules.target_sparsity_series(self.schedule, self.total_steps, self.structure)


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


def resolve_plan(spec: RunSpec) -> RunPlan:
    """Resolve fractions and `end_step=-1`, and check the schedule and scope fit the run."""
    dataset = DATASETS[spec.dataset]
    train, validation = split_sizes(dataset, spec.validation_split)
    if train < 1:
        raise InvalidSpec(("validation_split",), "validation_split leaves no training examples; lower it")
    steps_per_epoch = math.ceil(train / spec.batch_size)
    total_steps = steps_per_epoch * spec.epochs
    resolved, fields = _resolve_steps(spec.schedule, total_steps)
    _check_window(resolved, fields, total_steps, steps_per_epoch)
    for problem in scope_problems(model_layers(spec.model, dataset.input_shape, dataset.num_classes), spec):
        raise InvalidSpec(problem.field, problem.message)
    events = list(schedules.pruning_steps(resolved, total_steps))
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
        target = schedules.final_target_sparsity(resolved)
        reached = schedules.schedule_sparsity(resolved, events[-1])
        if not math.isclose(reached, target, abs_tol=1e-6):
            warnings.append(
                f"the last pruning step is {events[-1]}, where the schedule's sparsity is {reached:.6f}, "
                f"not the final {target}; set end_step to {events[-1]} or make (end_step - begin_step) "
                f"a multiple of frequency ({resolved.frequency}) to reach it"
            )
    return RunPlan(
        train_examples=train,
        validation_examples=validation,
        test_examples=dataset.test_examples,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        schedule=resolved,
        structure=spec.structure,
        target_sparsity=schedules.final_target_sparsity(resolved, spec.structure),
        last_pruning_step=events[-1],
        warnings=warnings,
    )
