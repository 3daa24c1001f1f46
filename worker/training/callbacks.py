"""The worker's pruning callback: the shared telemetry callback, held to the run's plan."""

from __future__ import annotations

from prunelab.telemetry_callback import TelemetryCallback
from prunelab.worker.training.plan_callback import HeldToPlan, TrainingStopped

__all__ = ["PruningReporter", "TrainingStopped"]


class PruningReporter(HeldToPlan, TelemetryCallback):
    """`TelemetryCallback` for a run the worker trains: the plan's targets and pruning steps, checked against fit.

    Goes after tfmot's `UpdatePruningStep` in the callback list. A cancelled run stops at once (no validation).
    """
