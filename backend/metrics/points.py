"""A series as three numpy columns: the unit the store compacts, reduces, merges and encodes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Points:
    """Points of one series in strictly increasing step order; a NaN value is a gap (a non-finite value)."""

    steps: np.ndarray  # int64
    values: np.ndarray  # float64
    wall_times: np.ndarray  # float64

    @staticmethod
    def empty() -> Points:
        return Points(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64))

    @staticmethod
    def from_rows(rows: Iterable[Sequence[object]]) -> Points:
        """(step, value or None, wall_time) rows in step order, as a database returns them."""
        listed = list(rows)
        if not listed:
            return Points.empty()
        steps, values, walls = zip(*listed, strict=True)
        return Points(
            np.fromiter(steps, np.int64, len(listed)),
            np.array([np.nan if value is None else value for value in values], dtype=np.float64),
            np.fromiter(walls, np.float64, len(listed)),
        )

    def __len__(self) -> int:
        return int(self.steps.size)

    @cached_property
    def shortest_values(self) -> np.ndarray:
        """The values as float32 when every value is one (what Keras logs), else as they are (float64).

        A reply writes these (float32's shortest decimal form in JSON, 4 B a value in columns). Kept with the
        series: a finished run's reduced series is read from the store's cache, and checking every value again
        on each reply was a tenth of a 20-run comparison."""
        with np.errstate(over="ignore"):
            narrow = self.values.astype(np.float32)
        return narrow if np.array_equal(narrow.astype(np.float64), self.values, equal_nan=True) else self.values

    def take(self, indices: np.ndarray) -> Points:
        return Points(self.steps[indices], self.values[indices], self.wall_times[indices])

    def between(self, first: int | None, last: int | None) -> Points:
        """The points with first <= step <= last (an open end when None)."""
        start = 0 if first is None else int(np.searchsorted(self.steps, first, side="left"))
        stop = len(self) if last is None else int(np.searchsorted(self.steps, last, side="right"))
        if start == 0 and stop == len(self):
            return self
        return Points(self.steps[start:stop], self.values[start:stop], self.wall_times[start:stop])

    @staticmethod
    def concat(parts: Sequence[Points]) -> Points:
        parts = [part for part in parts if len(part)]
        if not parts:
            return Points.empty()
        if len(parts) == 1:
            return parts[0]
        return Points(
            np.concatenate([p.steps for p in parts]),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.wall_times for p in parts]),
        )

    def merged_with(self, later: Points) -> Points:
        """Both series in step order, each step once; where both hold a step this one's point wins (first write)."""
        if not len(later):
            return self
        if not len(self):
            return later
        fresh = later.take(np.flatnonzero(~np.isin(later.steps, self.steps)))
        both = Points.concat([self, fresh])
        return both.take(np.argsort(both.steps, kind="stable"))
