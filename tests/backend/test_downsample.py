"""Downsampling keeps what a chart must show: extrema, ends and gaps, within the point budget."""

from __future__ import annotations

import math
import random

import pytest

from prunelab.server.metrics.downsample import downsample, downsample_indices


def test_short_series_are_returned_whole() -> None:
    assert downsample_indices([1.0, 2.0, 3.0], 10) == [0, 1, 2]
    assert downsample([1, 2], [0.5, None], [0.1, 0.2], None) == ([1, 2], [0.5, None], [0.1, 0.2])


@pytest.mark.parametrize("max_points", [5, 6, 7, 10, 99, 100, 1000])
@pytest.mark.parametrize("length", [101, 1000, 20_000])
def test_budget_is_honoured_and_ends_and_extrema_are_kept(length: int, max_points: int) -> None:
    rng = random.Random(length * 7 + max_points)
    values = [rng.gauss(0, 1) for _ in range(length)]
    spike_low, spike_high = rng.randrange(1, length - 1), rng.randrange(1, length - 1)
    values[spike_low], values[spike_high] = -50.0, 50.0
    keep = downsample_indices(values, max_points)
    assert len(keep) <= max_points
    assert keep == sorted(set(keep))
    assert keep[0] == 0 and keep[-1] == length - 1
    kept_values = [values[i] for i in keep]
    assert min(kept_values) == -50.0 and max(kept_values) == 50.0
    if max_points >= 10:
        assert len(keep) >= min(length, max_points // 2)  # the budget is used, not wasted


def test_every_bucket_keeps_its_minimum_and_maximum() -> None:
    values = [math.sin(i / 30) + (3 if i % 250 == 0 else 0) for i in range(5000)]
    keep = set(downsample_indices(values, 500))
    spikes = [i for i in range(1, 4999) if i % 250 == 0]
    assert all(i in keep for i in spikes)


def test_gaps_survive_downsampling() -> None:
    values: list[float | None] = [float(i) for i in range(10_000)]
    for gap in (1234, 7777):
        values[gap] = None
    steps = list(range(1, 10_001))
    kept_steps, kept_values, kept_walls = downsample(steps, values, [s * 0.01 for s in steps], 300)
    assert len(kept_steps) <= 300
    assert {1235, 7778} <= {step for step, value in zip(kept_steps, kept_values, strict=True) if value is None}
    assert kept_walls == [s * 0.01 for s in kept_steps]
    assert kept_values[0] == 0.0 and kept_values[-1] == 9999.0


def test_all_null_series_keeps_a_gap() -> None:
    keep = downsample_indices([None] * 1000, 50)
    assert len(keep) <= 50 and keep[0] == 0 and keep[-1] == 999


def test_a_budget_below_five_is_refused() -> None:
    with pytest.raises(ValueError, match="max_points must be >= 5"):
        downsample_indices([1.0] * 10, 4)
