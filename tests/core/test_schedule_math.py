"""Schedule arithmetic checked against hand-computed values (tfmot agreement is in tests/worker)."""

from __future__ import annotations

import numpy as np
import pytest

from prunelab.core import schedule_math
from prunelab.core.specs import ConstantSchedule, MByNSparsity, PolynomialSchedule


def test_pruning_steps_follow_begin_end_and_frequency() -> None:
    schedule = ConstantSchedule(target_sparsity=0.5, begin_step=5, end_step=30, frequency=10)
    assert list(schedule_math.pruning_steps(schedule, 100)) == [5, 15, 25]
    assert [s for s in range(0, 40) if schedule_math.should_prune(schedule, s)] == [5, 15, 25]


def test_an_end_step_of_minus_one_prunes_forever_as_in_tfmot() -> None:
    schedule = ConstantSchedule(target_sparsity=0.5, begin_step=4, end_step=-1, frequency=3)
    assert [s for s in range(0, 20) if schedule_math.should_prune(schedule, s)] == [4, 7, 10, 13, 16, 19]


def test_m_by_n_masks_are_updated_at_step_one_only() -> None:
    schedule = ConstantSchedule(target_sparsity=0.5, begin_step=0, end_step=-1, frequency=1)
    structure = MByNSparsity(m=2, n=4)
    assert [s for s in range(0, 10) if schedule_math.updates_mask(schedule, s, structure)] == [1]
    assert [s for s in range(0, 4) if schedule_math.updates_mask(schedule, s)] == [0, 1, 2, 3]


def test_step_zero_never_happens_in_training() -> None:
    schedule = ConstantSchedule(target_sparsity=0.5, begin_step=0, end_step=20, frequency=10)
    assert list(schedule_math.pruning_steps(schedule, 20)) == [10, 20]


def test_polynomial_values_by_hand() -> None:
    schedule = PolynomialSchedule(initial_sparsity=0.1, final_sparsity=0.9, begin_step=0, end_step=100, power=3)
    # 0.9 + (0.1 - 0.9) * (1 - 50/100)^3 = 0.9 - 0.8 * 0.125 = 0.8
    assert schedule_math.schedule_sparsity(schedule, 50) == pytest.approx(0.8, abs=1e-7)  # float32 arithmetic
    assert schedule_math.schedule_sparsity(schedule, 100) == float(np.float32(0.9))
    assert schedule_math.schedule_sparsity(schedule, 150) == float(np.float32(0.9))  # clipped after end
    assert schedule_math.schedule_sparsity(schedule, 0) == pytest.approx(0.1, abs=1e-7)


def test_target_series_holds_each_pruning_value_until_the_next() -> None:
    schedule = PolynomialSchedule(
        initial_sparsity=0.0, final_sparsity=0.8, begin_step=2, end_step=6, power=1, frequency=2
    )
    series = schedule_math.target_sparsity_series(schedule, 8)
    f = lambda v: float(np.float32(v))  # noqa: E731
    assert series == [0.0, f(0.0), f(0.0), f(0.4), f(0.4), f(0.8), f(0.8), f(0.8)]
