"""The worker's pruning callback: the shared telemetry callback, held to the run's plan."""

from __future__ import annotations

from collections.abc import Mapping

from prunelab.core.plans import RunPlan
from prunelab.core.telemetry import Reporter
from prunelab.telemetry_callback import TelemetryCallback


class TrainingStopped(Exception):
    """Raised from a batch end when the run should stop: `stop_training` would still run validation."""


class PruningReporter(TelemetryCallback):
    """`TelemetryCallback` for a run the worker trains: the plan's targets and pruning steps, checked against fit.

    Goes after tfmot's `UpdatePruningStep` in the callback list. A cancelled run stops at once (no validation).
    """

    def __init__(self, reporter: Reporter, plan: RunPlan, batch_size: int) -> None:
        super().__init__(
            reporter,
            plan.target_sparsity_series(),
            frozenset(plan.pruning_steps()),
            batch_size=batch_size,
            examples_per_epoch=plan.train_examples,
        )
        self.plan = plan
        self.cancelled = False

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        steps = self.params.get("steps")
        if steps != self.plan.steps_per_epoch:
            raise RuntimeError(f"Keras runs {steps} steps per epoch, the plan {self.plan.steps_per_epoch}")
        super().on_train_begin(logs)

    def on_stop_requested(self) -> None:
        self.cancelled = True
        raise TrainingStopped(f"stopped at step {self.step}")
