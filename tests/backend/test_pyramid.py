"""The min/max pyramid and the chunk encoding, against brute force on random series with gaps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from prunelab.server.metrics import chunks
from prunelab.server.metrics.points import Points
from prunelab.server.metrics.pyramid import bucket_extremes, build_levels, reduce_to_budget, shape_for

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False, width=32)
value_or_gap = st.one_of(finite, finite, finite, st.just(float("nan")))


@st.composite
def series(draw: st.DrawFn, max_size: int = 3000) -> Points:
    steps = np.unique(np.array(draw(st.lists(st.integers(0, 50_000), min_size=1, max_size=max_size)), np.int64))
    values = np.array(draw(st.lists(value_or_gap, min_size=steps.size, max_size=steps.size)), np.float64)
    walls = 1.7e9 + steps * 0.05 + np.array(draw(st.lists(finite, min_size=steps.size, max_size=steps.size))) * 1e-9
    return Points(steps, values, walls)


def brute_force(points: Points, width: int) -> dict[int, dict[str, object]]:
    """Per bucket, from every raw point: first and last step, min and max value, first gap step."""
    buckets: dict[int, dict[str, object]] = {}
    for step, value in zip(points.steps.tolist(), points.values.tolist(), strict=True):
        entry = buckets.setdefault(step // width, {"first": step, "last": step, "min": None, "max": None, "gap": None})
        entry["last"] = step
        if np.isnan(value):
            entry["gap"] = step if entry["gap"] is None else entry["gap"]
        else:
            entry["min"] = value if entry["min"] is None else min(entry["min"], value)  # type: ignore[type-var]
            entry["max"] = value if entry["max"] is None else max(entry["max"], value)  # type: ignore[type-var]
    return buckets


@settings(max_examples=80, deadline=None)
@given(points=series())
def test_every_level_keeps_each_buckets_ends_extremes_and_first_gap(points: Points) -> None:
    shape = shape_for(points)
    levels = build_levels(points, shape)
    assert np.array_equal(levels[0].steps, points.steps)
    for level in range(1, shape.level_count):
        width = shape.width(level)
        kept = levels[level]
        # Every kept point is a real point, unchanged.
        index = np.searchsorted(points.steps, kept.steps)
        assert np.array_equal(points.steps[index], kept.steps)
        assert np.array_equal(points.values[index], kept.values, equal_nan=True)
        # Reduced per bucket, the level says exactly what the raw series says.
        assert brute_force(kept, width) == brute_force(points, width)


@settings(max_examples=60, deadline=None)
@given(points=series(), budget=st.integers(8, 400), width=st.sampled_from([1, 16, 256]))
def test_a_read_reduction_fits_the_budget_and_keeps_both_ends(points: Points, budget: int, width: int) -> None:
    span = int(points.steps[-1] - points.steps[0] + 1)
    start = bucket_extremes(points, width)
    reduced = reduce_to_budget(start, span, budget)
    assert len(reduced) <= budget
    assert reduced.steps[0] == points.steps[0] and reduced.steps[-1] == points.steps[-1]
    assert np.all(np.diff(reduced.steps) > 0)
    finite_values = points.values[~np.isnan(points.values)]
    if finite_values.size and len(start) > budget:
        # The overall extremes survive any reduction.
        assert np.nanmin(reduced.values) == finite_values.min()
        assert np.nanmax(reduced.values) == finite_values.max()


def test_a_staircase_keeps_the_exact_step_of_every_jump() -> None:
    steps = np.arange(1, 100_001, dtype=np.int64)
    values = np.minimum(0.8, (steps // 1000) * 0.01)  # pruning every 1,000 steps
    points = Points(steps, values, steps * 0.1)
    shape = shape_for(points)
    level = build_levels(points, shape)[2]
    reduced = reduce_to_budget(level, 100_000, 1600)
    jumps = steps[1:][np.diff(values) != 0]
    assert set(jumps.tolist()) <= set(reduced.steps.tolist())


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=200, unique=True),
    data=st.data(),
)
def test_chunks_decode_to_exactly_the_points_encoded(steps: list[int], data: st.DataObject) -> None:
    count = len(steps)
    values = data.draw(
        st.lists(
            st.one_of(st.floats(allow_infinity=False), st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0])),
            min_size=count,
            max_size=count,
        )
    )
    walls = data.draw(st.lists(st.floats(min_value=0, max_value=1e10), min_size=count, max_size=count))
    points = Points(np.sort(np.array(steps, np.int64)), np.array(values), np.array(walls))
    decoded = chunks.decode(chunks.encode(points))
    assert np.array_equal(decoded.steps, points.steps)
    assert np.array_equal(decoded.values, points.values, equal_nan=True)
    assert np.array_equal(np.signbit(decoded.values), np.signbit(points.values)) or np.isnan(points.values).any()
    assert decoded.wall_times.tobytes() == points.wall_times.tobytes()
