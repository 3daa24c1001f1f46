"""backend.schedules against tfmot's own schedules, step by step, bit for bit.

Compared with the schedule as `fit` runs it: inside a tf.function, where Grappler
rewrites `x / c` into `x * (1 / c)` and `pow(x, 3)` into multiplications; eager
calls can differ from that by one float32 ulp, so they are not the reference.
"""

from __future__ import annotations

import pytest

from backend import schedules
from backend.specs import ConstantSchedule, PolynomialSchedule, ResolvedSchedule
from worker.training.tf import tf
from worker.training.train import tfmot_schedule

CONSTANT = [
    ConstantSchedule(target_sparsity=0.5, begin_step=0, end_step=40, frequency=5),
    ConstantSchedule(target_sparsity=0.75, begin_step=5, end_step=42, frequency=7),
    ConstantSchedule(target_sparsity=0.9, begin_step=3, end_step=30, frequency=1),
    ConstantSchedule(target_sparsity=0.0, begin_step=10, end_step=100, frequency=100),
    ConstantSchedule(target_sparsity=0.33, begin_step=1, end_step=64, frequency=9),
]
POLYNOMIAL = [
    PolynomialSchedule(
        initial_sparsity=init, final_sparsity=final, power=power, begin_step=begin, end_step=end, frequency=frequency
    )
    for init, final, power, begin, end, frequency in [
        (0.0, 0.9, 1, 0, 40, 5),
        (0.1, 0.8, 1, 3, 100, 7),
        (0.3, 0.97, 1, 0, 120, 1),
        (0.0, 0.5, 2, 2, 66, 4),
        (0.0, 0.9, 3, 0, 40, 5),
        (0.2, 0.95, 3, 10, 110, 3),
        (0.0, 0.8, 3, 0, 128, 1),
        (0.0, 0.9, 0.5, 0, 50, 2),
        (0.05, 0.9, 2.5, 4, 90, 1),
        (0.3, 0.97, 1.7, 0, 100, 1),
        (0.0, 0.6, 4, 7, 77, 10),
        (0.5, 0.5, 3, 0, 20, 2),
    ]
]


def _id(schedule: ResolvedSchedule) -> str:
    return "-".join(f"{value}" for value in schedule.model_dump().values())


def _cases(marks_for) -> list:
    return [pytest.param(schedule, id=_id(schedule), marks=marks_for(schedule)) for schedule in CONSTANT + POLYNOMIAL]


def _steps(schedule: ResolvedSchedule) -> range:
    return range(0, schedule.end_step + 6)


def _mismatches(schedule: ResolvedSchedule, call) -> list[tuple[int, float, float]]:
    found = []
    for step in _steps(schedule):
        should_prune, sparsity = call(tf.constant(step, dtype=tf.int64))
        ours = schedules.schedule_sparsity(schedule, step)
        assert bool(should_prune.numpy()) == schedules.should_prune(schedule, step), step
        if ours != float(sparsity.numpy()):
            found.append((step, ours, float(sparsity.numpy())))
    return found


@pytest.mark.parametrize("schedule", _cases(lambda schedule: []))
def test_should_prune_and_pruning_steps_match_tfmot(schedule: ResolvedSchedule) -> None:
    tfmot = tfmot_schedule(schedule)
    for step in _steps(schedule):
        expected = bool(
            tfmot._should_prune_in_step(
                tf.constant(step, tf.int64), schedule.begin_step, schedule.end_step, schedule.frequency
            ).numpy()
        )
        assert schedules.should_prune(schedule, step) == expected, step
    total_steps = schedule.end_step + 5
    expected_steps = [step for step in range(1, total_steps + 1) if schedules.should_prune(schedule, step)]
    assert list(schedules.pruning_steps(schedule, total_steps)) == expected_steps


@pytest.mark.parametrize("schedule", _cases(lambda schedule: []))
def test_schedule_sparsity_matches_tfmot_as_fit_runs_it(schedule: ResolvedSchedule) -> None:
    assert _mismatches(schedule, tf.function(tfmot_schedule(schedule).__call__)) == []
