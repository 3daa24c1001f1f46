"""The planned target sparsity of a run, step by step, as a chart draws it.

Built from `resolve_plan` and the plan's `target_sparsity_series` and `pruning_steps`
(the event ticks), which account for the structure (2:4 ignores the schedule): pure
arithmetic, no TensorFlow, so whatever schedules those learn, the preview and the
compare page's planned curves show without changes here.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from prunelab.core.plans import RunPlan, resolve_plan
from prunelab.core.specs import RunSpec
from prunelab.server.metrics.downsample import downsample


class PlannedSparsity(BaseModel):
    """A step function: `target_sparsity[i]` holds from `steps[i]` until the next step (draw with shape 'hv')."""

    steps: list[int]
    target_sparsity: list[float]


class SchedulePreview(PlannedSparsity):
    pruning_steps: list[int] = Field(description="Steps at which masks are updated (downsampled when very many).")
    total_steps: int
    steps_per_epoch: int
    begin_step: int
    end_step: int
    final_sparsity: float
    warnings: list[str]


def planned_sparsity(plan: RunPlan, max_points: int) -> PlannedSparsity:
    """Target sparsity from step 0 to the last step, keeping only the steps where it changes."""
    series = [0.0, *plan.target_sparsity_series()]
    changes = [step for step in range(len(series)) if step == 0 or series[step] != series[step - 1]]
    if changes[-1] != plan.total_steps:
        changes.append(plan.total_steps)
    values: list[float | None] = [series[step] for step in changes]
    if len(changes) > max_points:
        changes, values, _ = downsample(changes, values, [0.0] * len(changes), max_points)
    return PlannedSparsity(steps=changes, target_sparsity=[float(v or 0.0) for v in values])


def preview(spec: RunSpec, max_points: int) -> SchedulePreview:
    """Resolve the spec (raising InvalidSpec as submitting would) and plan its target sparsity."""
    plan = resolve_plan(spec)
    planned = planned_sparsity(plan, max_points)
    events = plan.pruning_steps()
    if len(events) > max_points:  # evenly thinned: a tick per event would be a solid bar anyway
        events = events[:: -(-len(events) // max_points)]
    return SchedulePreview(
        steps=planned.steps,
        target_sparsity=planned.target_sparsity,
        pruning_steps=events,
        total_steps=plan.total_steps,
        steps_per_epoch=plan.steps_per_epoch,
        begin_step=plan.schedule.begin_step,
        end_step=plan.schedule.end_step,
        final_sparsity=plan.target_sparsity,
        warnings=plan.warnings,
    )
