"""What the worker adds to a telemetry callback, for either engine: held to the run's plan, stopped at once.

The tfmot engine mixes it into `prunelab.telemetry_callback.TelemetryCallback` (`callbacks.PruningReporter`),
the keras engine into `prunelab.telemetry_keras3.Keras3TelemetryCallback`; no Keras is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prunelab.core.plans import RunPlan
from prunelab.core.telemetry import Reporter


class TrainingStopped(Exception):
    """Raised from a batch end when the run should stop: `stop_training` would still run validation."""


class HeldToPlan:
    """Mixed in before a `TelemetryLoop` binding: the plan's targets and pruning steps, checked against fit."""

    params: dict[str, Any]
    step: int

    def __init__(self, reporter: Reporter, plan: RunPlan, batch_size: int, **binding: Any) -> None:
        super().__init__(  # type: ignore[call-arg]
            reporter,
            plan.target_sparsity_series(),
            frozenset(plan.pruning_steps()),
            batch_size=batch_size,
            examples_per_epoch=plan.train_examples,
            **binding,
        )
        self.plan = plan
        self.cancelled = False

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        steps = self.params.get("steps")
        if steps != self.plan.steps_per_epoch:
            raise RuntimeError(f"Keras runs {steps} steps per epoch, the plan {self.plan.steps_per_epoch}")
        super().on_train_begin(logs)  # type: ignore[misc]

    def on_stop_requested(self) -> None:
        self.cancelled = True
        raise TrainingStopped(f"stopped at step {self.step}")
