"""The telemetry callback for Keras 3 models pruned by `prunelab.prune.Pruner`, on any Keras backend.

`Keras3TelemetryCallback` is `prunelab.telemetry_loop.TelemetryLoop` (the same hooks, series and arithmetic
as the tfmot runs' `prunelab.telemetry_callback.TelemetryCallback`) reading a Keras 3 model: its own
variables, and the masks the `Pruner` holds beside it. On JAX the trainer keeps the model's state outside
its variables mid-epoch and syncs it back when a callback reads `self.model`, so every hook goes through it.

This module imports `keras` (Keras 3; set KERAS_BACKEND first), never TensorFlow, tf-keras or tfmot.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from prunelab.core.telemetry import Reporter
from prunelab.prune import Pruner
from prunelab.telemetry_loop import StrippedLayer, StrippedWeight, TelemetryLoop, summary_of


def stripped_weights(pruner: Pruner) -> list[StrippedWeight]:
    """Every variable of the pruner's model's top-level layers, with the pruner's mask of those it prunes."""
    masks = {id(weight.variable): weight.mask for weight in pruner.weights}
    return [
        StrippedWeight(variable, masks.get(id(variable)), layer.name)
        for layer in pruner.model.layers
        for variable in layer.weights
    ]


def read_variables(weights: Sequence[StrippedWeight]) -> list[np.ndarray]:
    """The weights' values followed by their masks', as numpy arrays."""
    variables = [weight.variable for weight in weights]
    variables += [weight.mask for weight in weights if weight.mask is not None]
    return [keras.ops.convert_to_numpy(variable.value) for variable in variables]


def final_summary(stripped: keras.Model, pruner: Pruner) -> dict[str, Any]:
    """The run's final counts and its coverage report, measured on `pruner.strip()`'s model."""
    pruned = {id(weight.variable) for weight in pruner.weights}
    layers = []
    for layer in stripped.layers:
        # strip() rebuilds the model from its config: the same layer names, each layer's variables in order.
        original = pruner.model.get_layer(layer.name)
        layers.append(
            StrippedLayer(
                name=layer.name,
                class_name=type(layer).__name__,
                params=int(layer.count_params()),
                arrays=[keras.ops.convert_to_numpy(variable.value) for variable in layer.weights],
                pruned=[id(variable) in pruned for variable in original.weights],
            )
        )
    return summary_of(layers, pruner.decisions)


class Keras3TelemetryCallback(TelemetryLoop, keras.callbacks.Callback):
    """`TelemetryLoop` on Keras 3, for a model that `pruner.callback()` prunes in the same `fit`."""

    def __init__(
        self,
        reporter: Reporter,
        target_sparsity: Sequence[float] = (),
        pruning_steps: Container[int] = frozenset(),
        *,
        pruner: Pruner,
        batch_size: int | None = None,
        examples_per_epoch: int | None = None,
    ) -> None:
        if not isinstance(pruner, Pruner):
            raise TypeError(f"pruner must be a prunelab.prune.Pruner, got {type(pruner).__name__}")
        super().__init__(
            reporter, target_sparsity, pruning_steps, batch_size=batch_size, examples_per_epoch=examples_per_epoch
        )
        self.pruner = pruner
        self._pruner_step_at_begin = 0

    def _synced_model(self) -> keras.Model:
        model = self.model  # on JAX this read syncs the trainer's state into the variables
        if model is not self.pruner.model:
            raise ValueError("the pruner given to this callback prunes another model than the one fit trains")
        return model

    def stripped_weights(self) -> list[StrippedWeight]:
        return stripped_weights(self.pruner)

    def read_variables(self, weights: Sequence[StrippedWeight]) -> list[np.ndarray]:
        return read_variables(weights)

    def loss_counter(self) -> Any | None:
        tracker = getattr(self._synced_model(), "_loss_tracker", None)
        return getattr(tracker, "count", None)

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._synced_model()
        self._pruner_step_at_begin = self.pruner.step
        super().on_train_begin(logs)

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._synced_model()
        super().on_epoch_begin(epoch, logs)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        self._synced_model()
        if self.pruner.step == self._pruner_step_at_begin:
            raise RuntimeError(
                "the pruner did not run in this fit: pass pruner.callback() to model.fit's callbacks too"
            )
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._synced_model()
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        self._synced_model()
        super().on_train_end(logs)
