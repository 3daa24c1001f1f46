"""Pruning-schedule arithmetic, bit for bit as tfmot computes it, without TensorFlow.

Steps follow tfmot's own count: `UpdatePruningStep` sets the wrappers' step to 0
and each training batch increments it before the mask update, so the first
batch of training is step 1 and the last is `total_steps`. A mask update happens
at step s when `begin_step <= s <= end_step` and `(s - begin_step) % frequency == 0`.

The *target sparsity* at step s is the sparsity the schedule imposed at the most
recent pruning step <= s (0 before the first): the value the measured mask
sparsity tracks, up to tfmot's rounding of one element per tensor.

m-by-n structure (2:4) ignores the schedule: tfmot sets that mask once, at step 1,
to m zeros in every n weights, so its only pruning step is 1 and its target m/n.
Functions that take `structure` account for it; without it they describe the schedule alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from prunelab.core.specs import (
    BlockSparsity,
    ConstantSchedule,
    MByNSparsity,
    PiecewiseSchedule,
    PolynomialSchedule,
    ResolvedSchedule,
    UnstructuredSparsity,
)

AnyStructure = UnstructuredSparsity | BlockSparsity | MByNSparsity | None


def should_prune(schedule: ResolvedSchedule, step: int) -> bool:
    """tfmot's `PruningSchedule._should_prune_in_step`: an end_step of -1 prunes forever, as there."""
    in_range = schedule.begin_step <= step and (step <= schedule.end_step or schedule.end_step < 0)
    return in_range and (step - schedule.begin_step) % schedule.frequency == 0


def updates_mask(schedule: ResolvedSchedule, step: int, structure: AnyStructure = None) -> bool:
    """Whether tfmot recomputes the masks at `step`: the schedule says so, or step 1 for m-by-n structure."""
    if isinstance(structure, MByNSparsity):
        return step == 1
    return should_prune(schedule, step)


def _scaled_decay(span: np.float32, base: np.float32, power: float) -> np.float32:
    """`span * pow(base, power)` as Grappler rewrites it inside a tf.function.

    pow(x, 2) becomes Square(x), pow(x, 3) becomes x * Square(x) with the constant
    factor folded into the first product, pow(x, 0.5) becomes Sqrt(x); any other
    exponent is powf with the exponent as a float32 constant (correctly rounded,
    where numpy's float32 power is not).
    """
    if power == 1:
        return np.float32(span * base)
    if power == 2:
        return np.float32(span * np.float32(base * base))
    if power == 3:
        return np.float32(np.float32(span * base) * np.float32(base * base))
    return np.float32(span * np.float32(float(base) ** float(np.float32(power))))


def schedule_sparsity(schedule: ResolvedSchedule, step: int) -> float:
    """The sparsity tfmot's schedule returns at `step` inside `fit` (a tf.function), in float32.

    Grappler also turns `x / (end - begin)` into `x * (1 / (end - begin))`; mirroring
    its rewrites makes the result agree bit for bit (tests/worker/test_schedule_agreement.py).
    """
    if isinstance(schedule, ConstantSchedule):
        return float(np.float32(schedule.target_sparsity))
    if isinstance(schedule, PolynomialSchedule):
        window = np.float32(1) / np.float32(schedule.end_step - schedule.begin_step)
        progress = np.float32(np.float32(step - schedule.begin_step) * window)
        progress = min(np.float32(1.0), max(np.float32(0.0), progress))
        base = np.float32(np.float32(1) - progress)
        span = np.float32(schedule.initial_sparsity - schedule.final_sparsity)
        return float(np.float32(_scaled_decay(span, base, schedule.power) + np.float32(schedule.final_sparsity)))
    if isinstance(schedule, PiecewiseSchedule):
        return float(_piecewise_sparsity(schedule, step))
    raise TypeError(f"unknown schedule kind: {schedule!r}")


def _piecewise_sparsity(schedule: PiecewiseSchedule, step: int) -> np.float32:
    """`worker.training.tfmot_schedules.PiecewiseSparsity` in float32: the segment holding `step`, interpolated.

    Every operand is a run-time value there (gathered by the segment index), so Grappler
    folds nothing and plain IEEE float32 arithmetic is the reference.
    """
    steps = [int(point_step) for point_step, _ in schedule.points]
    values = [np.float32(sparsity) for _, sparsity in schedule.points]
    if step >= steps[-1]:
        return values[-1]
    at_or_before = sum(1 for point_step in steps if point_step <= step)
    index = min(max(at_or_before - 1, 0), len(steps) - 2)
    progress = np.float32(np.float32(step - steps[index]) / np.float32(steps[index + 1] - steps[index]))
    progress = min(np.float32(1.0), max(np.float32(0.0), progress))
    delta = np.float32(values[index + 1] - values[index])
    return np.float32(values[index] + np.float32(delta * progress))


def pruning_sparsity(schedule: ResolvedSchedule, step: int, structure: AnyStructure = None) -> float:
    """The sparsity a mask update at `step` imposes: the schedule's, or m/n for m-by-n structure."""
    if isinstance(structure, MByNSparsity):
        return structure.target_sparsity
    return schedule_sparsity(schedule, step)


def pruning_steps(schedule: ResolvedSchedule, total_steps: int, structure: AnyStructure = None) -> Iterator[int]:
    """Every step in 1..total_steps at which the masks are updated."""
    if isinstance(structure, MByNSparsity):
        return iter(range(1, min(1, total_steps) + 1))
    first = max(schedule.begin_step, 1)
    offset = (first - schedule.begin_step) % schedule.frequency
    if offset:
        first += schedule.frequency - offset
    return iter(range(first, min(schedule.end_step, total_steps) + 1, schedule.frequency))


def target_sparsity_series(schedule: ResolvedSchedule, total_steps: int, structure: AnyStructure = None) -> list[float]:
    """Target sparsity for steps 1..total_steps (index i holds step i + 1)."""
    series = [0.0] * total_steps
    events = list(pruning_steps(schedule, total_steps, structure))
    for index, step in enumerate(events):
        until = events[index + 1] if index + 1 < len(events) else total_steps + 1
        value = pruning_sparsity(schedule, step, structure)
        series[step - 1 : until - 1] = [value] * (until - step)
    return series


def final_target_sparsity(schedule: ResolvedSchedule, structure: AnyStructure = None) -> float:
    """The sparsity the schedule (or an m-by-n structure) is designed to end at."""
    if isinstance(structure, MByNSparsity):
        return structure.target_sparsity
    if isinstance(schedule, ConstantSchedule):
        return schedule.target_sparsity
    if isinstance(schedule, PiecewiseSchedule):
        return schedule.points[-1][1]
    return schedule.final_sparsity


def with_final_sparsity(schedule: ResolvedSchedule, sparsity: float) -> ResolvedSchedule:
    """The same schedule ending at `sparsity`: a layer's own target (`RunSpec.layer_targets`).

    Constant: target replaced; polynomial: final replaced (initial lowered to it if above);
    piecewise: the last point's sparsity replaced, the other points kept.
    """
    if isinstance(schedule, ConstantSchedule):
        return schedule.model_copy(update={"target_sparsity": sparsity})
    if isinstance(schedule, PolynomialSchedule):
        initial = min(schedule.initial_sparsity, sparsity)
        return schedule.model_copy(update={"final_sparsity": sparsity, "initial_sparsity": initial})
    points = [*schedule.points[:-1], (schedule.points[-1][0], sparsity)]
    return schedule.model_copy(update={"points": points})


def weighted_series(series_by_layer: dict[str, list[float]], params_by_layer: dict[str, int]) -> list[float]:
    """Step by step, the parameter-weighted mean of per-layer sparsities (what measured_sparsity measures)."""
    total = sum(params_by_layer[name] for name in series_by_layer)
    columns = [[params_by_layer[name] * value for value in series] for name, series in series_by_layer.items()]
    return [sum(values) / total for values in zip(*columns, strict=True)]


def kept_count(size: int, sparsity: float) -> int:
    """Weights (or blocks) tfmot keeps of `size` at `sparsity`: max(round(size * (1 - s)), 1) in float32."""
    kept = np.round(np.float32(np.float32(size) * np.float32(np.float32(1) - np.float32(sparsity))))
    return max(int(kept), 1)
