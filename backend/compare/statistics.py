"""The statistics of groups of runs, all from scipy: summaries, Welch's comparison of two means, bands over seeds.

Every figure a page, the report or the client shows about a group comes from here, so that they agree:
`summarize` (n, mean, std with ddof=1, min, max), `welch` (difference of means, its 95% confidence interval
and p-value from `scipy.stats.ttest_ind(equal_var=False)`) and `band` (mean and a std, min-max or 95% CI
band per x, with the number of runs standing at that x).
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel

CONFIDENCE = 0.95
MIN_RESOLVING_N = 3  # below this a side's std (and so the interval) rests on too few seeds to trust
BandKind = Literal["std", "minmax", "ci95"]
BAND_KINDS: tuple[BandKind, ...] = ("std", "minmax", "ci95")


def _scipy_stats() -> types.ModuleType:
    """scipy.stats, imported when a figure is first computed: at the top it took a third of the API's start."""
    from scipy import stats

    return stats


class Summary(BaseModel):
    """One final metric over a group's runs (those that have it)."""

    n: int
    mean: float | None
    std: float | None  # sample std (ddof=1); None below two runs
    min: float | None
    max: float | None


def summarize(values: Sequence[float]) -> Summary:
    """n, mean, sample std (ddof=1), min and max of the finite values."""
    finite = np.asarray([value for value in values if value is not None and math.isfinite(value)], dtype=np.float64)
    if not finite.size:
        return Summary(n=0, mean=None, std=None, min=None, max=None)
    return Summary(
        n=int(finite.size),
        mean=float(np.mean(finite)),
        std=float(np.std(finite, ddof=1)) if finite.size > 1 else None,
        min=float(np.min(finite)),
        max=float(np.max(finite)),
    )


class Difference(BaseModel):
    """Mean of A minus mean of B on one final metric, with Welch's 95% interval and p-value."""

    a: str
    b: str
    metric: str
    n_a: int
    n_b: int
    failed_a: int
    failed_b: int
    mean_a: float | None
    mean_b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    resolved: bool  # the interval excludes zero
    sentence: str


def is_fraction(metric: str) -> bool:
    """Accuracies and sparsities are fractions: their differences read as percentage points."""
    return metric.endswith("accuracy") or metric.endswith("sparsity")


def _amount(value: float, metric: str, signed: bool = True) -> str:
    sign = "+" if signed else ""
    return f"{value * 100:{sign}.2f}" if is_fraction(metric) else f"{value:{sign}.4g}"


def _p(p_value: float) -> str:
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.2g}" if p_value < 0.095 else f"p = {p_value:.2f}"


def welch(
    a: Sequence[float],
    b: Sequence[float],
    metric: str,
    label_a: str = "A",
    label_b: str = "B",
    failed_a: int = 0,
    failed_b: int = 0,
    context: str = "",
) -> Difference:
    """A - B with `scipy.stats.ttest_ind(equal_var=False)` and its `confidence_interval(0.95)`, and a sentence saying
    it plainly: "not resolved" when the interval spans zero, and when n < 3 or runs failed."""
    first = [value for value in a if value is not None and math.isfinite(value)]
    second = [value for value in b if value is not None and math.isfinite(value)]
    mean_a = float(np.mean(first)) if first else None
    mean_b = float(np.mean(second)) if second else None
    difference = mean_a - mean_b if mean_a is not None and mean_b is not None else None
    ci_low = ci_high = p_value = None
    unit = " pt" if is_fraction(metric) else ""
    head = f"{label_a} - {label_b}{f' at {context}' if context else ''}"
    counts = f"n = {len(first)} / {len(second)}"
    if len(first) >= 2 and len(second) >= 2:
        stats = _scipy_stats()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # identical values: scipy returns NaN, said below
            result = stats.ttest_ind(first, second, equal_var=False)
            interval = result.confidence_interval(CONFIDENCE)
        if math.isfinite(result.pvalue):
            p_value = float(result.pvalue)
            ci_low, ci_high = float(interval.low), float(interval.high)
    if difference is None:
        sentence = f"{head}: no {metric} to compare, {counts}"
    elif p_value is None or ci_low is None or ci_high is None:
        why = "no spread within the groups" if len(first) >= 2 and len(second) >= 2 else "at least 2 runs per side"
        sentence = f"{head}: {_amount(difference, metric)}{unit}, {counts}: not resolved ({why} needed for a test)"
    else:
        resolved_text = (
            "not resolved at these seeds"
            if ci_low <= 0 <= ci_high
            else f"{label_a if difference > 0 else label_b} higher"
        )
        sentence = (
            f"{head}: {_amount(difference, metric)}{unit} [{_amount(ci_low, metric)}, {_amount(ci_high, metric)}], "
            f"{_p(p_value)}, {counts}: {resolved_text}"
        )
    notes = []
    if min(len(first), len(second)) < MIN_RESOLVING_N:
        notes.append(f"n < {MIN_RESOLVING_N} on a side: too few runs to trust the interval")
    for label, failed in ((label_a, failed_a), (label_b, failed_b)):
        if failed:
            notes.append(f"{failed} failed run{'s' if failed > 1 else ''} in {label} not counted")
    if notes:
        sentence += "; " + "; ".join(notes)
    resolved = ci_low is not None and ci_high is not None and not ci_low <= 0 <= ci_high
    return Difference(
        a=label_a,
        b=label_b,
        metric=metric,
        n_a=len(first),
        n_b=len(second),
        failed_a=failed_a,
        failed_b=failed_b,
        mean_a=mean_a,
        mean_b=mean_b,
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        resolved=resolved,
        sentence=sentence,
    )


class Band(BaseModel):
    """A group's curve on the shared x grid: mean, the band's edges and how many runs stand at each x."""

    mean: list[float | None]
    lower: list[float | None]
    upper: list[float | None]
    n: list[int]


def _listed(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(value) else float(value) for value in values.tolist()]


def band(columns: np.ndarray, kind: BandKind) -> Band:
    """Per column of `columns` (runs x grid, NaN where a run has no value): mean and a std, min-max or 95% CI band
    (Student's t over that column's n, from `scipy.stats.t.interval`); the edges are NaN below two runs."""
    present = ~np.isnan(columns)
    counts = present.sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an empty column, or one run: NaN, as meant
        mean = np.nanmean(columns, axis=0)
        std = np.nanstd(columns, axis=0, ddof=1)
    several = counts >= 2
    if kind == "std":
        lower, upper = mean - std, mean + std
    elif kind == "minmax":
        lower = np.where(present, columns, np.inf).min(axis=0)
        upper = np.where(present, columns, -np.inf).max(axis=0)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            sem = std / np.sqrt(counts)
        spread = np.nan_to_num(sem) > 0
        t = _scipy_stats().t
        low, high = t.interval(CONFIDENCE, np.maximum(counts - 1, 1), loc=mean, scale=np.where(spread, sem, 1.0))
        lower = np.where(spread, low, mean)
        upper = np.where(spread, high, mean)
    lower = np.where(several, lower, np.nan)
    upper = np.where(several, upper, np.nan)
    return Band(mean=_listed(mean), lower=_listed(lower), upper=_listed(upper), n=[int(c) for c in counts])
