"""The Keras callback that reports a pruning run step by step through a `Reporter`."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from prunelab.core.plans import RunPlan
from prunelab.worker.training import export
from prunelab.worker.training.masks import MaskHistory
from prunelab.worker.training.reporting import Reporter
from prunelab.worker.training.tf import keras

# Metrics whose per-example values are 0 or 1, so an epoch's running total is a whole number.
COUNT_METRICS = frozenset({"accuracy"})
# Weight snapshots waiting for compression; training waits rather than queue more.
MAX_PENDING_SNAPSHOTS = 4


class TrainingStopped(Exception):
    """Raised from a batch end when the run should stop: `stop_training` would still run validation."""


class BatchMetricRecovery:
    """Each batch's own metric values, recovered from tf-keras's running epoch means.

    tf-keras reports mean_n = total_n / seen_n after batch n of an epoch, so batch n's
    value is (seen_n * mean_n - seen_{n-1} * mean_{n-1}) / size_n, computed in float64.
    For count metrics the running total is rounded to the whole number it is, which
    removes the float32 rounding of the mean.
    """

    def __init__(self, examples_per_epoch: int, batch_size: int, names: tuple[str, ...]) -> None:
        self.examples_per_epoch = examples_per_epoch
        self.batch_size = batch_size
        self.names = names
        self.start_epoch()

    def start_epoch(self) -> None:
        self._seen = 0
        self._totals = dict.fromkeys(self.names, 0.0)

    def batch_values(self, batch_index: int, running_means: Mapping[str, float]) -> dict[str, float]:
        seen = min((batch_index + 1) * self.batch_size, self.examples_per_epoch)
        size = seen - self._seen
        values = {}
        for name in self.names:
            total = seen * float(running_means[name])
            if name in COUNT_METRICS:
                total = float(round(total))
            values[name] = (total - self._totals[name]) / size
            self._totals[name] = total
        self._seen = seen
        return values


class PruningReporter(keras.callbacks.Callback):
    """Reports per-step loss, accuracy and sparsity, sizes at pruning steps, validation per epoch.

    Goes after tfmot's `UpdatePruningStep` in the callback list. Per step it costs the
    reporter call and a dictionary; weights are read only at pruning steps and epoch ends,
    and their compression runs on a background thread that logs the size itself.
    """

    def __init__(self, reporter: Reporter, plan: RunPlan, batch_size: int) -> None:
        super().__init__()
        self.reporter = reporter
        self.plan = plan
        self.target_sparsity = plan.target_sparsity_series()
        self.pruning_steps = frozenset(plan.pruning_steps())
        self.masks = MaskHistory()
        self.batch_metrics = BatchMetricRecovery(plan.train_examples, batch_size, ("loss", "accuracy"))
        self.step = 0
        self.measured_sparsity = 0.0
        self.layer_sparsity: dict[str, float] = {}  # at the latest pruning event
        self.cancelled = False
        self.epoch_metrics: dict[str, float] = {}  # logged at every epoch end too (lottery_ticket: phase)
        self._weights: list[export.StrippedWeight] = []
        self._last_size_step = -1
        self._pending: deque[Future[None]] = deque()
        self._executor: ThreadPoolExecutor | None = None
        self._started = time.monotonic()

    def wall_time(self) -> float:
        return time.monotonic() - self._started

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        steps = self.params.get("steps")
        if steps != self.plan.steps_per_epoch:
            raise RuntimeError(f"Keras runs {steps} steps per epoch, the plan {self.plan.steps_per_epoch}")
        self._weights = export.stripped_weights(self.model)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compressed-size")
        if self.step == 0:  # a second fit (lottery-ticket retraining) continues the run's clock
            self._started = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self.batch_metrics.start_epoch()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        self.step += 1
        wall_time = self.wall_time()
        metrics = self.batch_metrics.batch_values(batch, logs or {})
        metrics["target_sparsity"] = self.target_sparsity[self.step - 1]
        if self.step in self.pruning_steps:
            # Masks change only here, so only here are they read; churn and pictures wait for the background.
            values = export.read_variables(self._weights)
            layer_masks = self._layer_masks(values[len(self._weights) :])
            metrics.update(self._mask_sparsity(layer_masks))
            self._in_background(values, wall_time, layer_masks)
        metrics["measured_sparsity"] = self.measured_sparsity
        self.reporter.log(self.step, metrics, wall_time)
        if self.reporter.stop_requested():
            self.cancelled = True
            raise TrainingStopped(f"stopped at step {self.step}")

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        wall_time = self.wall_time()
        if self._last_size_step != self.step:
            self._in_background(export.read_variables(self._weights), wall_time)
        metrics: dict[str, float] = {"epoch": epoch + 1, **self.epoch_metrics}
        metrics.update({key: value for key, value in (logs or {}).items() if key.startswith("val_")})
        self.reporter.log(self.step, metrics, wall_time)

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        self.close()

    def drain(self) -> None:
        """Wait for the snapshots handed to the background (so the mask history is complete)."""
        while self._pending:
            self._pending.popleft().result()

    def resume(self, step: int, wall_time: float, measured_sparsity: float, layer_sparsity: dict[str, float]) -> None:
        """Continue a run a checkpoint stopped at `step`: the next step logged is step + 1, its clock runs on."""
        self.step = step
        self._last_size_step = step  # the checkpointed epoch end already logged its size
        self._started = time.monotonic() - wall_time
        self.measured_sparsity = measured_sparsity
        self.layer_sparsity = dict(layer_sparsity)

    def close(self) -> None:
        """Wait for the compressed sizes still being computed; re-raise any error of theirs."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        while self._pending:
            self._pending.popleft().result()

    def _in_background(
        self, values: list[np.ndarray], wall_time: float, layer_masks: dict[str, list[np.ndarray]] | None = None
    ) -> None:
        """Hand a snapshot to the background thread: compressed size, and at pruning events churn and pictures."""
        while len(self._pending) >= MAX_PENDING_SNAPSHOTS or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()
        assert self._executor is not None, "snapshot outside of training"
        self._pending.append(self._executor.submit(self._log_snapshot, self.step, values, wall_time, layer_masks))
        self._last_size_step = self.step

    def _log_snapshot(
        self, step: int, values: list[np.ndarray], wall_time: float, layer_masks: dict[str, list[np.ndarray]] | None
    ) -> None:
        # One worker thread runs these in submission order, so the mask history sees events in step order.
        size = export.compressed_weights_size(export.apply_masks(self._weights, values))
        metrics: dict[str, float] = {"compressed_size_bytes": size}
        if layer_masks is not None:
            metrics.update(
                {f"mask_churn/{name}": churn for name, churn in self.masks.record(step, layer_masks).items()}
            )
        self.reporter.log(step, metrics, wall_time)

    def _layer_masks(self, masks: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
        pruned = [weight for weight in self._weights if weight.mask is not None]
        layer_masks: dict[str, list[np.ndarray]] = {}
        for weight, mask in zip(pruned, masks, strict=True):
            layer_masks.setdefault(weight.layer_name, []).append(mask)
        return layer_masks

    def _mask_sparsity(self, layer_masks: dict[str, list[np.ndarray]]) -> dict[str, float]:
        """Zero fraction of all masks together (kept as measured_sparsity) and per layer."""
        zeros = {name: sum(m.size - int(np.count_nonzero(m)) for m in masks) for name, masks in layer_masks.items()}
        sizes = {name: sum(m.size for m in masks) for name, masks in layer_masks.items()}
        total = sum(sizes.values())
        self.measured_sparsity = sum(zeros.values()) / total if total else 0.0
        self.layer_sparsity = {name: zeros[name] / sizes[name] for name in sizes}
        return {f"layer_sparsity/{name}": value for name, value in self.layer_sparsity.items()}
