"""Where training reports to in tests, benchmarks and scripts; the `Reporter` interface itself is in core."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from prunelab.core.telemetry import Reporter

__all__ = ["MemoryReporter", "Reporter"]


@dataclass
class MemoryReporter:
    """Keeps every point in memory: for tests, benchmarks and scripts."""

    points: list[tuple[str, int, float, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self, step: int, metrics: Mapping[str, float], wall_time: float) -> None:
        with self._lock:
            self.points.extend((key, step, float(value), wall_time) for key, value in metrics.items())

    def stop_requested(self) -> bool:
        return self.stop.is_set()

    def series(self, key: str) -> dict[int, float]:
        with self._lock:
            return {step: value for name, step, value, _ in self.points if name == key}
