"""Sensitivity sweep: prune one layer at a time by magnitude, without retraining, and evaluate.

Each (layer, sparsity) keeps the largest max(round(n * (1 - s)), 1) magnitudes of each
pruned tensor of the layer, as tfmot keeps them, zeroes the rest, evaluates, and restores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from prunelab.core.schedule_math import kept_count
from prunelab.worker.training.pruning import prunable_weights
from prunelab.worker.training.reporting import Reporter
from prunelab.worker.training.tf import keras


def magnitude_pruned(value: np.ndarray, sparsity: float) -> np.ndarray:
    """`value` with all but its kept_count largest magnitudes set to zero."""
    flat = value.reshape(-1)
    kept = kept_count(flat.size, sparsity)
    order = np.argsort(np.abs(flat), kind="stable")  # smallest magnitudes first
    pruned = flat.copy()
    pruned[order[: flat.size - kept]] = 0
    return pruned.reshape(value.shape)


def sweep(
    model: keras.Model,
    layers: Sequence[str],
    sparsities: Sequence[float],
    evaluate: Callable[[], float],
    reporter: Reporter,
    first_step: int,
    started: float,
) -> dict[str, object] | None:
    """summary["sensitivity"]: baseline and per-layer [[sparsity, accuracy], ...]; None if stopped."""
    baseline = evaluate()
    table: dict[str, list[list[float]]] = {}
    params: dict[str, int] = {}
    step = first_step
    for name in layers:
        variables = prunable_weights(model.get_layer(name))
        params[name] = int(sum(np.prod(variable.shape) for variable in variables))
        originals = [variable.numpy() for variable in variables]
        table[name] = []
        for sparsity in sparsities:
            for variable, original in zip(variables, originals, strict=True):
                variable.assign(magnitude_pruned(original, sparsity))
            accuracy = evaluate()
            for variable, original in zip(variables, originals, strict=True):
                variable.assign(original)
            table[name].append([sparsity, accuracy])
            step += 1
            metrics = {f"sensitivity/{name}": accuracy, "sensitivity_sparsity": sparsity}
            reporter.log(step, metrics, time.monotonic() - started)
            if reporter.stop_requested():
                return None
    return {"baseline_accuracy": baseline, "layers": table, "params": params}
