"""The one Keras callback that measures a pruning run step by step: the worker trains with it, and so does a script.

`TelemetryCallback` reads what TensorFlow holds (the running metric means, the wrappers' masks, the weights)
and hands the arithmetic to `prunelab.core.telemetry`; what it measures goes out through a `Reporter`: the
worker's database reporter (`prunelab.worker.training.callbacks.PruningReporter` adds the plan's checks and
checkpoints) or a script's HTTP sender (`prunelab.keras.PruneLabCallback` adds the external run's lifecycle).

Per step: each batch's own metric values, the planned (`target_sparsity`) and achieved (`measured_sparsity`)
sparsity; at pruning steps each layer's mask sparsity (`layer_sparsity/<layer>`) and, off the training
thread, mask churn (`mask_churn/<layer>`) and the compressed size of the stripped weights, which is also
measured at each epoch end beside the validation metrics. Weights are read only at pruning steps and epoch ends.

This module imports TensorFlow, tf-keras and tfmot: the worker imports it after `prunelab.worker` has chosen
tf-keras, `prunelab.keras` only when its callback is first used.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tfmot prunes tf-keras models; set before TensorFlow loads

import time
from collections import deque
from collections.abc import Container, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import tf_keras as keras
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

from prunelab.core.scope import LayerDecision
from prunelab.core.telemetry import (
    BatchMetricRecovery,
    LayerWeights,
    MaskHistory,
    Reporter,
    apply_masks,
    compressed_size,
    coverage_report,
    layer_masks,
    mask_sparsity,
    weight_counts,
)

# Weight snapshots waiting for compression; training waits rather than queue more.
MAX_PENDING_SNAPSHOTS = 4
NOT_WRAPPED = "not wrapped"


@dataclass(frozen=True)
class StrippedWeight:
    """A weight that survives `strip_pruning`, with the mask that zeroes it while it is wrapped."""

    variable: Any  # a tf.Variable
    mask: Any | None  # the wrapper's mask variable, None for weights that are not pruned
    layer_name: str  # the name of the layer that owns the weight (not its wrapper's)


def stripped_weights(model: keras.Model) -> list[StrippedWeight]:
    """Every weight of `model` except tfmot's mask, threshold and pruning_step variables."""
    weights = []
    for layer in model.layers:
        if isinstance(layer, PruneLowMagnitude):
            masks = {weight.ref(): mask for weight, mask, _ in layer.pruning_vars}
            for variable in layer.layer.weights:
                weights.append(StrippedWeight(variable, masks.get(variable.ref()), layer.layer.name))
        else:
            weights.extend(StrippedWeight(variable, None, layer.name) for variable in layer.weights)
    return weights


def read_variables(weights: Sequence[StrippedWeight]) -> list[np.ndarray]:
    """One `batch_get_value` of the weights followed by their masks (see `core.telemetry.apply_masks`)."""
    variables = [weight.variable for weight in weights]
    variables += [weight.mask for weight in weights if weight.mask is not None]
    return keras.backend.batch_get_value(variables)


def stripped_arrays(weights: Sequence[StrippedWeight], values: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The arrays `strip_pruning` would leave, from a `read_variables` snapshot."""
    return apply_masks([weight.mask is not None for weight in weights], values)


def pruned_refs(model: keras.Model) -> set[Any]:
    """The variables a pruning wrapper masks; `strip_pruning` keeps them, so they name the stripped kernels."""
    return {weight.variable.ref() for weight in stripped_weights(model) if weight.mask is not None}


def final_summary(stripped: keras.Model, pruned: set[Any], decisions: Sequence[LayerDecision]) -> dict[str, Any]:
    """The run's final counts and its coverage report, measured on the stripped model."""
    by_name = {decision.name: decision for decision in decisions}
    layers: list[LayerWeights] = []
    arrays: list[np.ndarray] = []
    pruned_arrays: list[np.ndarray] = []
    for layer in stripped.layers:
        values = {weight.ref(): weight.numpy() for weight in layer.weights}
        kernels = [value for ref, value in values.items() if ref in pruned]
        arrays.extend(values.values())
        pruned_arrays.extend(kernels)
        decision = by_name.get(layer.name)
        wrapped = decision is not None and decision.wrapped
        layers.append(
            LayerWeights(
                name=layer.name,
                class_name=type(layer).__name__,
                wrapped=wrapped,
                reason=None if wrapped else (decision.reason if decision is not None else NOT_WRAPPED),
                params=int(layer.count_params()),
                pruned=kernels,
            )
        )
    return {**weight_counts(arrays, pruned_arrays), "coverage": coverage_report(layers)}


def _loss_counter(model: keras.Model) -> Any | None:
    """The loss tracker's example count (reset each epoch), or None for a model that has none."""
    for metric in getattr(getattr(model, "compiled_loss", None), "metrics", None) or []:
        counter = getattr(metric, "count", None)
        if counter is not None:
            return counter
    return None


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return np.ndim(value) == 0  # type: ignore[arg-type]


class TelemetryCallback(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
    """Reports per-step metrics and sparsity, mask churn and sizes at pruning steps, validation per epoch.

    Goes after tfmot's `UpdatePruningStep` in the callback list. `target_sparsity[step - 1]` is the planned
    sparsity of a step; `pruning_steps` holds the steps at which the wrappers update their masks. With
    `batch_size` and `examples_per_epoch` (the worker's plan knows them) the examples each batch held are
    computed; without them (a script's pipeline) they are read from Keras's loss tracker, about 30 us a step.
    """

    def __init__(
        self,
        reporter: Reporter,
        target_sparsity: Sequence[float] = (),
        pruning_steps: Container[int] = frozenset(),
        *,
        batch_size: int | None = None,
        examples_per_epoch: int | None = None,
    ) -> None:
        super().__init__()
        self.reporter = reporter
        self._batch_size = batch_size
        self._examples_per_epoch = examples_per_epoch
        self.target_sparsity = target_sparsity
        self.pruning_steps = pruning_steps
        self.masks = MaskHistory()
        self.batch_metrics = BatchMetricRecovery()
        self.step = 0
        self.measured_sparsity = 0.0
        self.layer_sparsity: dict[str, float] = {}  # at the latest pruning event
        self.epoch_metrics: dict[str, float] = {}  # logged at every epoch end too (lottery_ticket: phase)
        self._weights: list[StrippedWeight] = []
        self._counter: Any | None = None
        self._last_size_step = -1
        self._pending: deque[Future[None]] = deque()
        self._executor: ThreadPoolExecutor | None = None
        self._started = time.monotonic()

    def wall_time(self) -> float:
        return time.monotonic() - self._started

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._weights = stripped_weights(self.model)
        self._counter = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prunelab-snapshots")
        if self.step == 0:  # a second fit that continues the run (lottery-ticket retraining) keeps its clock
            self._started = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self.batch_metrics.start_epoch()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        self.step += 1
        wall_time = self.wall_time()
        running = {key: float(value) for key, value in (logs or {}).items() if _is_number(value)}
        metrics = self.batch_metrics.batch_values(batch, running, self._seen_examples(batch))
        if self.step <= len(self.target_sparsity):
            metrics["target_sparsity"] = self.target_sparsity[self.step - 1]
        if self.step in self.pruning_steps and any(weight.mask is not None for weight in self._weights):
            # Masks change only here, so only here are they read; churn and pictures wait for the background.
            values = read_variables(self._weights)
            names = [weight.layer_name for weight in self._weights if weight.mask is not None]
            masks = layer_masks(names, values[len(self._weights) :])
            sparsity = mask_sparsity(masks)
            self.measured_sparsity, self.layer_sparsity = sparsity.overall, sparsity.by_layer
            metrics.update(sparsity.metrics())
            self._in_background(values, wall_time, masks)
        metrics["measured_sparsity"] = self.measured_sparsity
        self.reporter.log(self.step, metrics, wall_time)
        if self.reporter.stop_requested():
            self.on_stop_requested()

    def on_stop_requested(self) -> None:
        """The run was cancelled: Keras stops after this batch (the worker raises instead)."""
        self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        wall_time = self.wall_time()
        if self._last_size_step != self.step:
            self._in_background(read_variables(self._weights), wall_time)
        metrics: dict[str, float] = {"epoch": epoch + 1, **self.epoch_metrics}
        metrics.update(
            {key: float(value) for key, value in (logs or {}).items() if key.startswith("val_") and _is_number(value)}
        )
        self.reporter.log(self.step, metrics, wall_time)

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        self.close()

    def resume(self, step: int, wall_time: float, measured_sparsity: float, layer_sparsity: dict[str, float]) -> None:
        """Continue a run stopped at `step`: the next step logged is step + 1, its clock runs on."""
        self.step = step
        self._last_size_step = step  # the stopped epoch's end already logged its size
        self._started = time.monotonic() - wall_time
        self.measured_sparsity = measured_sparsity
        self.layer_sparsity = dict(layer_sparsity)

    def drain(self) -> None:
        """Wait for the snapshots handed to the background (so the mask history is complete)."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        """Wait for the compressed sizes still being computed; re-raise any error of theirs."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.drain()

    def _seen_examples(self, batch: int) -> float | None:
        """Examples this epoch has seen after `batch`; only the last batch of an epoch can be short."""
        if self._batch_size is not None and self._examples_per_epoch is not None:
            return float(min((batch + 1) * self._batch_size, self._examples_per_epoch))
        if self._counter is None:
            self._counter = _loss_counter(self.model)
        return float(self._counter) if self._counter is not None else None

    def _in_background(
        self, values: list[np.ndarray], wall_time: float, masks: dict[str, list[np.ndarray]] | None = None
    ) -> None:
        """Hand a snapshot to the background thread: compressed size, and at pruning events churn and pictures."""
        while len(self._pending) >= MAX_PENDING_SNAPSHOTS or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()
        assert self._executor is not None, "snapshot outside of training"
        self._pending.append(self._executor.submit(self._log_snapshot, self.step, values, wall_time, masks))
        self._last_size_step = self.step

    def _log_snapshot(
        self, step: int, values: list[np.ndarray], wall_time: float, masks: dict[str, list[np.ndarray]] | None
    ) -> None:
        # One worker thread runs these in submission order, so the mask history sees events in step order.
        metrics: dict[str, float] = {"compressed_size_bytes": compressed_size(stripped_arrays(self._weights, values))}
        if masks is not None:
            metrics.update({f"mask_churn/{name}": churn for name, churn in self.masks.record(step, masks).items()})
        self.reporter.log(step, metrics, wall_time)
