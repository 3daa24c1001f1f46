"""What a pruning run's Keras callback does at each hook, for either Keras: tf-keras with tfmot, or Keras 3.

`TelemetryLoop` is the callback's logic with no Keras in it: when to read the weights and masks, which
series to log at which step, the background thread that compresses weight snapshots. The arithmetic is
`prunelab.core.telemetry`'s. A binding supplies the three things that differ between the two Kerases
(which variables a stripped model keeps and which mask zeroes each, how to read them, Keras's example
counter) and the Callback base class:

- `prunelab.telemetry_callback.TelemetryCallback`: tf-keras, tfmot's wrappers (the worker's runs, tfmot scripts);
- `prunelab.telemetry_keras3.Keras3TelemetryCallback`: Keras 3, masks held by a `prunelab.prune.Pruner`.

So a tfmot run and a Keras 3 run log the same keys, computed by the same code.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Container, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    """A weight that the stripped model keeps, with the mask that zeroes it while training."""

    variable: Any  # a tf.Variable or a keras.Variable
    mask: Any | None  # the mask variable, None for weights that are not pruned
    layer_name: str  # the name of the layer that owns the weight (not its wrapper's)


def stripped_arrays(weights: Sequence[StrippedWeight], values: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The arrays the stripped model will hold, from a snapshot of the weights followed by their masks."""
    return apply_masks([weight.mask is not None for weight in weights], values)


@dataclass(frozen=True)
class StrippedLayer:
    """One layer of a stripped model as the final summary sees it: its arrays and which of them were pruned."""

    name: str
    class_name: str
    params: int
    arrays: Sequence[np.ndarray]
    pruned: Sequence[bool]


def summary_of(layers: Iterable[StrippedLayer], decisions: Sequence[LayerDecision]) -> dict[str, Any]:
    """The run's final counts and its coverage report, from the stripped model's layers."""
    by_name = {decision.name: decision for decision in decisions}
    rows: list[LayerWeights] = []
    arrays: list[np.ndarray] = []
    pruned_arrays: list[np.ndarray] = []
    for layer in layers:
        kernels = [array for array, pruned in zip(layer.arrays, layer.pruned, strict=True) if pruned]
        arrays.extend(layer.arrays)
        pruned_arrays.extend(kernels)
        decision = by_name.get(layer.name)
        wrapped = decision is not None and decision.wrapped
        rows.append(
            LayerWeights(
                name=layer.name,
                class_name=layer.class_name,
                wrapped=wrapped,
                reason=None if wrapped else (decision.reason if decision is not None else NOT_WRAPPED),
                params=layer.params,
                pruned=kernels,
            )
        )
    return {**weight_counts(arrays, pruned_arrays), "coverage": coverage_report(rows)}


def is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return np.ndim(value) == 0  # type: ignore[arg-type]


class TelemetryLoop:
    """Reports per-step metrics and sparsity, mask churn and sizes at pruning steps, validation per epoch.

    Mixed in before a Keras `Callback` class. `target_sparsity[step - 1]` is the planned sparsity of a step;
    `pruning_steps` holds the steps at which the masks change. With `batch_size` and `examples_per_epoch`
    (the worker's plan knows them) the examples each batch held are computed; without them (a script's
    pipeline) they are read from Keras's loss tracker, about 30 us a step.
    """

    model: Any  # the Keras Callback's model

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

    # What a binding supplies.
    def stripped_weights(self) -> list[StrippedWeight]:
        """Every weight of the model that its stripped copy keeps, with the mask of those that are pruned."""
        raise NotImplementedError

    def read_variables(self, weights: Sequence[StrippedWeight]) -> list[np.ndarray]:
        """The weights' values followed by their masks', as numpy arrays (see `core.telemetry.apply_masks`)."""
        raise NotImplementedError

    def loss_counter(self) -> Any | None:
        """Keras's count of the examples this epoch has seen (a variable), or None for a model without one."""
        raise NotImplementedError

    def wall_time(self) -> float:
        return time.monotonic() - self._started

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._weights = self.stripped_weights()
        self._counter = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prunelab-snapshots")
        if self.step == 0:  # a second fit that continues the run (lottery-ticket retraining) keeps its clock
            self._started = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self.batch_metrics.start_epoch()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        self.step += 1
        wall_time = self.wall_time()
        running = {key: float(value) for key, value in (logs or {}).items() if is_number(value)}
        metrics = self.batch_metrics.batch_values(batch, running, self._seen_examples(batch))
        if self.step <= len(self.target_sparsity):
            metrics["target_sparsity"] = self.target_sparsity[self.step - 1]
        if self.step in self.pruning_steps and any(weight.mask is not None for weight in self._weights):
            # Masks change only here, so only here are they read; churn and pictures wait for the background.
            values = self.read_variables(self._weights)
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
            self._in_background(self.read_variables(self._weights), wall_time)
        metrics: dict[str, float] = {"epoch": epoch + 1, **self.epoch_metrics}
        metrics.update(
            {key: float(value) for key, value in (logs or {}).items() if key.startswith("val_") and is_number(value)}
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
            self._counter = self.loss_counter()
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
