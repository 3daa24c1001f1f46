"""Group statistics against scipy on known data: summaries, Welch's interval and p-value, the sentence, bands."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from prunelab.server.compare.statistics import band, summarize, welch

POLYNOMIAL = [0.9812, 0.9835, 0.9790, 0.9841, 0.9808]
CONSTANT = [0.9795, 0.9820, 0.9771, 0.9830, 0.9787]


def test_summary_is_numpys_mean_and_sample_std() -> None:
    summary = summarize([*POLYNOMIAL, float("nan")])
    assert summary.n == 5
    assert summary.mean == pytest.approx(np.mean(POLYNOMIAL), abs=1e-15)
    assert summary.std == pytest.approx(np.std(POLYNOMIAL, ddof=1), abs=1e-15)
    assert (summary.min, summary.max) == (0.9790, 0.9841)
    one = summarize([0.5])
    assert (one.n, one.mean, one.std) == (1, 0.5, None)
    assert summarize([]).n == 0


def test_welch_equals_scipys_interval_and_p_value() -> None:
    expected = stats.ttest_ind(POLYNOMIAL, CONSTANT, equal_var=False)
    interval = expected.confidence_interval(0.95)
    result = welch(POLYNOMIAL, CONSTANT, "test_accuracy", "polynomial", "constant", context="sparsity=0.875")
    assert result.difference == pytest.approx(np.mean(POLYNOMIAL) - np.mean(CONSTANT), abs=1e-15)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert (result.ci_low, result.ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert interval.low < 0 < interval.high and not result.resolved
    assert result.sentence == (
        f"polynomial - constant at sparsity=0.875: +0.17 pt [{interval.low * 100:+.2f}, {interval.high * 100:+.2f}], "
        f"p = {expected.pvalue:.2f}, n = 5 / 5: not resolved at these seeds"
    )


def test_a_clear_difference_is_resolved_and_names_the_higher_group() -> None:
    lower = [value - 0.01 for value in CONSTANT]
    result = welch(POLYNOMIAL, lower, "test_accuracy", "polynomial", "constant")
    assert result.resolved and result.ci_low is not None and result.ci_low > 0
    assert result.sentence.endswith("n = 5 / 5: polynomial higher")
    assert "p < 0.001" in result.sentence or "p = 0.00" in result.sentence


def test_sizes_are_not_points_but_their_own_unit() -> None:
    result = welch([1000.0, 1100.0, 1050.0], [2000.0, 2100.0, 2050.0], "keras_zip_bytes", "a", "b")
    assert result.sentence.startswith("a - b: -1000 [") and " pt" not in result.sentence


def test_few_runs_and_failed_runs_are_said_plainly() -> None:
    two = welch([0.9, 0.92], [0.91, 0.95, 0.93], "test_accuracy", "a", "b", failed_b=1)
    assert two.p_value is not None
    assert "n = 2 / 3" in two.sentence
    assert "n < 3 on a side: too few runs to trust the interval" in two.sentence
    assert "1 failed run in b not counted" in two.sentence
    one = welch([0.9], [0.91, 0.95], "test_accuracy", "a", "b")
    assert one.p_value is None and one.ci_low is None and not one.resolved
    assert one.sentence.startswith("a - b: -3.00 pt, n = 1 / 2: not resolved (at least 2 runs per side needed")


def test_band_counts_the_runs_standing_at_each_x() -> None:
    columns = np.array([[1.0, 2.0, 3.0, 4.0], [3.0, 4.0, np.nan, np.nan], [2.0, 6.0, 5.0, np.nan]])
    std = band(columns, "std")
    assert std.n == [3, 3, 2, 1]
    assert std.mean == [2.0, 4.0, 4.0, 4.0]
    assert std.upper[0] == pytest.approx(2.0 + np.std([1, 3, 2], ddof=1))
    assert std.lower[3] is None and std.upper[3] is None  # one run: no spread to draw
    minmax = band(columns, "minmax")
    assert minmax.lower[:3] == [1.0, 2.0, 3.0] and minmax.upper[:3] == [3.0, 6.0, 5.0]
    ci = band(columns, "ci95")
    low, high = stats.t.interval(0.95, 2, loc=4.0, scale=stats.sem([2.0, 4.0, 6.0]))
    assert (ci.lower[1], ci.upper[1]) == (pytest.approx(low), pytest.approx(high))
    assert ci.mean[2] == pytest.approx(4.0)
