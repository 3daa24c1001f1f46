"""The tutorials' schedule window, resolved for a run's length: prune from 20% of training to its last step."""

from __future__ import annotations

import math
from typing import Any

from prunelab.core.catalog import DATASETS
from prunelab.core.plans import split_sizes
from prunelab.core.specs import ConstantSchedule, PolynomialSchedule

TUTORIAL_FREQUENCY = 100


def total_steps(dataset: str, epochs: int, batch_size: int, validation_split: float) -> int:
    train, _ = split_sizes(DATASETS[dataset], validation_split)
    return math.ceil(train / batch_size) * epochs


def tutorial_training(
    dataset: str, model: str, epochs: int, batch_size: int, validation_split: float
) -> tuple[int, dict[str, Any]]:
    """The run's total steps, and the spec fields every benchmarked run shares (learning rate 0.001, seed 0)."""
    base = {
        "dataset": dataset,
        "model": model,
        "epochs": epochs,
        "batch_size": batch_size,
        "validation_split": validation_split,
        "learning_rate": 0.001,
        "seed": 0,
    }
    return total_steps(dataset, epochs, batch_size, validation_split), base


def window(total: int) -> tuple[int, int]:
    """begin_step at 20% of training and a frequency of 100 steps, or a quarter of the window for short runs."""
    begin = int(0.2 * total)
    return begin, min(TUTORIAL_FREQUENCY, max(1, (total - begin) // 4))


def constant(total: int, target: float) -> ConstantSchedule:
    begin, frequency = window(total)
    return ConstantSchedule(target_sparsity=target, begin_step=begin, end_step=-1, frequency=frequency)


def polynomial(total: int, final: float) -> PolynomialSchedule:
    # Zhu & Gupta's setting as the tutorial follows it: 0% at begin_step, cubic rise to the final sparsity.
    begin, frequency = window(total)
    return PolynomialSchedule(
        initial_sparsity=0.0, final_sparsity=final, begin_step=begin, end_step=-1, power=3, frequency=frequency
    )
