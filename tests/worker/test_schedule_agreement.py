"""core.schedule_math against tfmot's own schedules, step by step, bit for bit.

Compared with the schedule as `fit` runs it: inside a tf.function, where Grappler
rewrites `x / c` into `x * (1 / c)` and `pow(x, 3)` into multiplications; eager
calls can differ from that by one float32 ulp, so they are not the reference.
"""

from __future__ import annotations

import pytest

from prunelab.core import schedule_math
from prunelab.core.specs import ConstantSchedule, PiecewiseSchedule, PolynomialSchedule, ResolvedSchedule
from prunelab.worker.training.tf import tf
from prunelab.worker.training.tfmot_schedules import PiecewiseSparsity, tfmot_schedule

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
        ours = schedule_math.schedule_sparsity(schedule, step)
        assert bool(should_prune.numpy()) == schedule_math.should_prune(schedule, step), step
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
        assert schedule_math.should_prune(schedule, step) == expected, step
    total_steps = schedule.end_step + 5
    expected_steps = [step for step in range(1, total_steps + 1) if schedule_math.should_prune(schedule, step)]
    assert list(schedule_math.pruning_steps(schedule, total_steps)) == expected_steps


@pytest.mark.parametrize("schedule", _cases(lambda schedule: []))
def test_schedule_sparsity_matches_tfmot_as_fit_runs_it(schedule: ResolvedSchedule) -> None:
    assert _mismatches(schedule, tf.function(tfmot_schedule(schedule).__call__)) == []


PIECEWISE = [
    PiecewiseSchedule(points=points, points_unit="steps", begin_step=begin, end_step=end, frequency=frequency)
    for points, begin, end, frequency in [
        ([(0, 0.0), (10, 0.6), (21, 0.8)], 0, 21, 3),
        ([(5, 0.1), (17, 0.33), (40, 0.97)], 2, 45, 1),
        ([(0, 0.9), (30, 0.2)], 0, 40, 7),  # sparsity may fall
        ([(3, 0.0), (4, 0.5), (100, 0.51), (128, 0.95)], 0, 130, 1),
    ]
]


@pytest.mark.parametrize("schedule", [pytest.param(s, id=_id(s)) for s in PIECEWISE])
def test_piecewise_matches_its_tfmot_schedule_bit_for_bit(schedule: PiecewiseSchedule) -> None:
    tfmot = tfmot_schedule(schedule)
    assert _mismatches(schedule, tf.function(tfmot.__call__)) == []
    total_steps = schedule.end_step + 5
    expected_steps = [step for step in range(1, total_steps + 1) if schedule_math.should_prune(schedule, step)]
    assert list(schedule_math.pruning_steps(schedule, total_steps)) == expected_steps


def test_piecewise_schedule_by_hand_and_through_its_config() -> None:
    schedule = PiecewiseSparsity([(10, 0.2), (20, 0.6), (40, 0.8)], begin_step=0, end_step=50, frequency=5)
    call = tf.function(schedule.__call__)
    expected = {0: 0.2, 10: 0.2, 15: 0.4, 20: 0.6, 30: 0.7, 40: 0.8, 50: 0.8}
    for step, sparsity in expected.items():
        should_prune, value = call(tf.constant(step, tf.int64))
        assert float(value.numpy()) == pytest.approx(sparsity, abs=1e-7), step
        assert bool(should_prune.numpy()) == (step % 5 == 0)
    assert not bool(call(tf.constant(55, tf.int64))[0].numpy())  # after end_step
    config = schedule.get_config()
    assert config["class_name"] == "PiecewiseSparsity"
    rebuilt = PiecewiseSparsity.from_config(config["config"])
    assert rebuilt.get_config() == config
    with pytest.raises(ValueError, match=r"points\[1\] sparsity must be in range \[0,1\)"):
        PiecewiseSparsity([(0, 0.1), (5, 1.0)])
