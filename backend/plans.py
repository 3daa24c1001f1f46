"""Resolve a spec against its dataset into the exact plan the worker trains."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from backend import schedules
from backend.catalog import DATASETS, DatasetInfo
from backend.errors import InvalidSpec
from backend.specs import ResolvedSchedule, RunSpec


class RunPlan(BaseModel):
    """A spec resolved against its dataset: exact example and step counts, integer schedule."""

    train_examples: int
    validation_examples: int
    test_examples: int
    steps_per_epoch: int
    total_steps: int
    schedule: ResolvedSchedule
    target_sparsity: float = Field(description="Sparsity the schedule ends at.")
    last_pruning_step: int | None = Field(description="Last step at which masks are updated, if any.")
    warnings: list[str] = Field(default_factory=list)


def split_sizes(dataset: DatasetInfo, validation_split: float) -> tuple[int, int]:
    """Train and validation counts, split as Keras `fit(validation_split=...)` splits."""
    train = math.floor(dataset.train_examples * (1.0 - validation_split))
    return train, dataset.train_examples - train


def resolve_plan(spec: RunSpec) -> RunPlan:
    """Resolve `end_step=-1` and check the schedule fits the run's steps."""
    dataset = DATASETS[spec.dataset]
    train, validation = split_sizes(dataset, spec.validation_split)
    if train < 1:
        raise InvalidSpec(("validation_split",), "validation_split leaves no training examples; lower it")
    steps_per_epoch = math.ceil(train / spec.batch_size)
    total_steps = steps_per_epoch * spec.epochs
    schedule = spec.schedule
    end_step = total_steps if schedule.end_step == -1 else schedule.end_step
    if schedule.begin_step >= total_steps:
        raise InvalidSpec(
            ("schedule", "begin_step"),
            f"begin_step ({schedule.begin_step}) is at or after the last training step ({total_steps}); "
            f"lower begin_step or train longer ({steps_per_epoch} steps per epoch)",
        )
    if end_step > total_steps:
        raise InvalidSpec(
            ("schedule", "end_step"),
            f"end_step ({end_step}) is beyond the last training step ({total_steps}); "
            f"use end_step -1 or at most {total_steps}, or train longer ({steps_per_epoch} steps per epoch)",
        )
    if end_step <= schedule.begin_step:
        raise InvalidSpec(
            ("schedule", "end_step"),
            f"end_step ({end_step}) should be > begin_step ({schedule.begin_step})",
        )
    resolved = schedule.model_copy(update={"end_step": end_step})
    events = list(schedules.pruning_steps(resolved, total_steps))
    target = schedules.final_target_sparsity(resolved)
    warnings: list[str] = []
    if not events:
        raise InvalidSpec(
            ("schedule", "frequency"),
            f"no pruning step falls in the window [{schedule.begin_step}, {end_step}] with frequency "
            f"{schedule.frequency}; lower frequency to at most {end_step - schedule.begin_step}",
        )
    reached = schedules.schedule_sparsity(resolved, events[-1])
    if not math.isclose(reached, target, abs_tol=1e-6):
        aligned_end = events[-1]
        warnings.append(
            f"the last pruning step is {aligned_end}, where the schedule's sparsity is {reached:.6f}, "
            f"not the final {target}; set end_step to {aligned_end} or make (end_step - begin_step) "
            f"a multiple of frequency ({schedule.frequency}) to reach it"
        )
    return RunPlan(
        train_examples=train,
        validation_examples=validation,
        test_examples=dataset.test_examples,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        schedule=resolved,
        target_sparsity=target,
        last_pruning_step=events[-1],
        warnings=warnings,
    )
