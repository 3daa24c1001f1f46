"""The telemetry callback for tf-keras and tfmot: the worker trains with it, and so does a tfmot script.

`TelemetryCallback` is `prunelab.telemetry_loop.TelemetryLoop` (when to measure what; the arithmetic is
`prunelab.core.telemetry`'s) reading what TensorFlow holds: the running metric means, the wrappers' masks,
the weights. What it measures goes out through a `Reporter`: the
worker's database reporter (`prunelab.worker.training.callbacks.PruningReporter` adds the plan's checks and
checkpoints) or a script's HTTP sender (`prunelab.keras.PruneLabCallback` adds the external run's lifecycle).

Per step (see `TelemetryLoop`): each batch's own metric values, the planned (`target_sparsity`) and achieved
(`measured_sparsity`) sparsity; at pruning steps each layer's mask sparsity (`layer_sparsity/<layer>`) and,
off the training thread, mask churn (`mask_churn/<layer>`) and the compressed size of the stripped weights, which
is also measured at each epoch end beside the validation metrics. Weights are read only at pruning steps and epoch ends.

This module imports TensorFlow, tf-keras and tfmot: the worker imports it after `prunelab.worker` has chosen
tf-keras, `prunelab.keras` only when its callback is first used.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tfmot prunes tf-keras models; set before TensorFlow loads

from collections.abc import Sequence
from typing import Any

import numpy as np
import tf_keras as keras
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

from prunelab.core.scope import LayerDecision
from prunelab.telemetry_loop import StrippedLayer, StrippedWeight, TelemetryLoop, stripped_arrays, summary_of

__all__ = [
    "StrippedWeight",
    "TelemetryCallback",
    "final_summary",
    "pruned_refs",
    "read_variables",
    "stripped_arrays",
    "stripped_weights",
]


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


def pruned_refs(model: keras.Model) -> set[Any]:
    """The variables a pruning wrapper masks; `strip_pruning` keeps them, so they name the stripped kernels."""
    return {weight.variable.ref() for weight in stripped_weights(model) if weight.mask is not None}


def final_summary(stripped: keras.Model, pruned: set[Any], decisions: Sequence[LayerDecision]) -> dict[str, Any]:
    """The run's final counts and its coverage report, measured on the stripped model."""
    layers = []
    for layer in stripped.layers:
        layers.append(
            StrippedLayer(
                name=layer.name,
                class_name=type(layer).__name__,
                params=int(layer.count_params()),
                arrays=[weight.numpy() for weight in layer.weights],
                pruned=[weight.ref() in pruned for weight in layer.weights],
            )
        )
    return summary_of(layers, decisions)


def _loss_counter(model: keras.Model) -> Any | None:
    """The loss tracker's example count (reset each epoch), or None for a model that has none."""
    for metric in getattr(getattr(model, "compiled_loss", None), "metrics", None) or []:
        counter = getattr(metric, "count", None)
        if counter is not None:
            return counter
    return None


class TelemetryCallback(TelemetryLoop, keras.callbacks.Callback):  # type: ignore[misc,name-defined]
    """`TelemetryLoop` on tf-keras: goes after tfmot's `UpdatePruningStep` in the callback list."""

    def stripped_weights(self) -> list[StrippedWeight]:
        return stripped_weights(self.model)

    def read_variables(self, weights: Sequence[StrippedWeight]) -> list[np.ndarray]:
        return read_variables(weights)

    def loss_counter(self) -> Any | None:
        return _loss_counter(self.model)
