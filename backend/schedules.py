"""Pruning-schedule arithmetic, bit for bit as tfmot computes it, without TensorFlow.

Steps follow tfmot's own count: `UpdatePruningStep` sets the wrappers' step to 0
and each training batch increments it before the mask update, so the first
batch of training is step 1 and the last is `total_steps`. A mask update happens
at step s when `begin_step <= s <= end_step` and `(s - begin_step) % frequency == 0`.

The *target sparsity* at step s is the sparsity the schedule imposed at the most
recent pruning step <= s (0 before the first): the value the measured mask
sparsity tracks, up to tfmot's rounding of one element per tensor.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from backend.specs import ConstantSchedule, PolynomialSchedule, ResolvedSchedule


def should_prune(schedule: ResolvedSchedule, step: int) -> bool:
    """tfmot's `PruningSchedule._should_prune_in_step` for a resolved schedule."""
    in_range = schedule.begin_step <= step <= schedule.end_step
    return in_range and (step - schedule.begin_step) % schedule.frequency == 0


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
    raise TypeError(f"unknown schedule kind: {schedule!r}")


def pruning_steps(schedule: ResolvedSchedule, total_steps: int) -> Iterator[int]:
    """Every step in 1..total_steps at which the masks are updated."""
    first = max(schedule.begin_step, 1)
    offset = (first - schedule.begin_step) % schedule.frequency
    if offset:
        first += schedule.frequency - offset
    return iter(range(first, min(schedule.end_step, total_steps) + 1, schedule.frequency))


def target_sparsity_series(schedule: ResolvedSchedule, total_steps: int) -> list[float]:
    """Target sparsity for steps 1..total_steps (index i holds step i + 1)."""
    series = [0.0] * total_steps
    events = list(pruning_steps(schedule, total_steps))
    for index, step in enumerate(events):
        until = events[index + 1] if index + 1 < len(events) else total_steps + 1
        value = schedule_sparsity(schedule, step)
        series[step - 1 : until - 1] = [value] * (until - step)
    return series


def final_target_sparsity(schedule: ResolvedSchedule) -> float:
    """The sparsity the schedule is designed to end at."""
    if isinstance(schedule, ConstantSchedule):
        return schedule.target_sparsity
    return schedule.final_sparsity
