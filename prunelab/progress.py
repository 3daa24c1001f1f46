"""Progress bars (tqdm): steps of a run with its latest sparsity and accuracy, bytes of a download."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from types import TracebackType
from typing import IO, Any

from tqdm.auto import tqdm

from prunelab.models import Run

# What a run's line shows, in this order, when logged: (metric key, label).
SHOWN = (
    ("measured_sparsity", "sparsity"),
    ("target_sparsity", "target"),
    ("accuracy", "acc"),
    ("loss", "loss"),
    ("val_accuracy", "val_acc"),
)


def wanted(enabled: bool | None, stream: IO[str]) -> bool:
    return stream.isatty() if enabled is None else enabled


def describe(latest: dict[str, float | None]) -> str:
    """`sparsity 0.800  target 0.800  acc 0.912  loss 0.301`: the latest values a run logged."""
    shown = []
    for key, label in SHOWN:
        value = latest.get(key)
        if value is not None:
            shown.append(f"{label} {value:.3f}")
    return "  ".join(shown)


class RunProgress(AbstractContextManager["RunProgress"]):
    """A bar of a run's steps, with its status and latest values; fed by `Client.wait` from the run's events."""

    def __init__(self, run: Run, enabled: bool | None = None, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.run = run
        self.latest: dict[str, float | None] = dict(run.latest)
        self.step = run.step or 0
        self.bar: Any = tqdm(
            total=run.total_steps,
            initial=self.step,
            desc=self._title(),
            unit="step",
            file=self.stream,
            disable=not wanted(enabled, self.stream),
            dynamic_ncols=True,
            leave=True,
        )
        self.bar.set_postfix_str(describe(self.latest), refresh=False)

    def _title(self) -> str:
        return f"run {self.run.id} {self.run.status}"

    def event(self, name: str, data: dict[str, Any]) -> None:
        """One event of the run's stream (`Client.events`), in whatever order the stream sends them."""
        if name == "metrics":
            self.points(data)
        elif name == "status":
            self.status(Run.model_validate(data))

    def points(self, series: dict[str, dict[str, list[Any]]]) -> None:
        """New points from a `metrics` event."""
        for key, points in series.items():
            if points["steps"]:
                self.latest[key] = points["values"][-1]
                self.step = max(self.step, points["steps"][-1])
        self._draw()

    def status(self, run: Run) -> None:
        """The run as a `status` event (or `GET /api/runs/{id}`) shows it, with its last stored step.

        The bar takes that step too: a finished run's last points may reach the stream after its final status, or
        never (once the worker compacted them), and the bar must still end where the run ended.
        """
        self.run = run
        if run.total_steps and self.bar.total != run.total_steps:
            self.bar.total = run.total_steps
        if run.step is not None and run.step >= self.step:
            self.step = run.step
            self.latest.update(run.latest)  # the server's values at a step no event has passed yet
        else:
            self.latest.update({key: value for key, value in run.latest.items() if key not in self.latest})
        self.bar.set_description_str(self._title(), refresh=False)
        self._draw()

    def _draw(self) -> None:
        self.bar.n = self.step
        self.bar.set_postfix_str(describe(self.latest), refresh=False)
        self.bar.refresh()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.bar.close()


def byte_bar(name: str, total: int | None, initial: int, enabled: bool | None) -> Any:
    """A bar of bytes written (a context manager with `update(n)`)."""
    stream = sys.stderr
    return tqdm(
        total=total,
        initial=initial,
        desc=name,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=stream,
        disable=not wanted(enabled, stream),
        dynamic_ncols=True,
    )
