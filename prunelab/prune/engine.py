"""The Keras 3 pruning engine: masks kept beside the model, applied by a callback, tfmot's step rules.

tfmot wraps each layer and, inside the training graph, per batch: increments the step, recomputes
the masks when the schedule says, assigns w = w * mask, then runs the forward and backward pass
(gradients unmasked, so pruned weights regrow for one step until the next batch masks them again);
`UpdatePruningStep` masks once more at each epoch end. `Pruner` does the same from a callback's
`on_train_batch_begin` and `on_epoch_end`, with the step counted on the host and the schedule's
float32 value from `core.schedule_math`. The model's layers are never touched, so the model keeps
exactly its own variables and `strip()` has nothing to unwrap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from prunelab.core import schedule_math
from prunelab.core.scope import LayerDecision, decide_layers, scope_problems
from prunelab.core.specs import (
    PolynomialSchedule,
    ResolvedSchedule,
    RunSpec,
    Scope,
    UnstructuredSparsity,
)
from prunelab.prune.layers import layer_facts, prunable_variables
from prunelab.prune.masks import AnyStructure, apply_mask, compute_mask

STEP_KEY = "step"


@dataclass
class PrunedWeight:
    """One pruned variable of the model, its mask (a Keras variable the model does not track) and schedule."""

    layer_name: str
    variable: keras.Variable
    mask: keras.Variable
    schedule: ResolvedSchedule

    @property
    def key(self) -> str:
        """Its name in `Pruner.state()`: layer and variable names, not the model's (a reloaded model may differ)."""
        return f"mask/{self.layer_name}/{self.variable.name}"


def _checked_schedule(schedule: ResolvedSchedule, field: str) -> ResolvedSchedule:
    if schedule.uses_fractions():
        raise ValueError(
            f"{field}: begin_fraction/end_fraction need the run's step count; give begin_step and end_step instead"
        )
    if isinstance(schedule, PolynomialSchedule) and schedule.end_step < 0:
        raise ValueError(
            f"{field}.end_step must be set (> begin_step) for a polynomial schedule: the decay needs an end"
        )
    if getattr(schedule, "points_unit", "steps") != "steps":
        raise ValueError(f"{field}.points_unit must be 'steps' here: fractions need the run's step count")
    return schedule


class Pruner:
    """Magnitude pruning of a built Keras 3 model by tfmot's rules, on any Keras backend.

    `model.fit(..., callbacks=[pruner.callback()])` prunes while training; `pruner.strip()` gives
    the plain model with the pruned weights zeroed. `state()` / `load_state()` carry the masks and
    the step counter across a resumed run.
    """

    def __init__(
        self,
        model: keras.Model,
        schedule: ResolvedSchedule,
        structure: AnyStructure | None = None,
        scope: Scope | None = None,
        layer_schedules: dict[str, ResolvedSchedule] | None = None,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise TypeError(f"expected a Keras 3 keras.Model, got {type(model).__module__}.{type(model).__name__}")
        if not model.built:
            raise ValueError("the model is not built: give it a keras.Input, or call it once on a batch, first")
        structure = structure or UnstructuredSparsity()
        spec = RunSpec(schedule=_checked_schedule(schedule, "schedule"), structure=structure, scope=scope or Scope())
        layer_schedules = {
            name: _checked_schedule(layer_schedule, f"layer_schedules[{name!r}]")
            for name, layer_schedule in (layer_schedules or {}).items()
        }
        facts = layer_facts(model)
        problems = scope_problems(facts, spec)
        if problems:
            raise ValueError("; ".join(f"{'.'.join(problem.field)}: {problem.message}" for problem in problems))
        self.model = model
        self.schedule: ResolvedSchedule = spec.schedule
        self.layer_schedules: dict[str, ResolvedSchedule] = layer_schedules  # the layers with a schedule of their own
        self.structure = spec.structure
        self.step = 0  # tfmot's pruning_step after UpdatePruningStep.on_train_begin; the first batch is step 1
        self.decisions: list[LayerDecision] = decide_layers(facts, spec)
        unknown = set(layer_schedules) - {decision.name for decision in self.decisions if decision.wrapped}
        if unknown:
            raise ValueError(f"layer_schedules names layers the scope does not prune: {', '.join(sorted(unknown))}")
        self.weights: list[PrunedWeight] = []
        for decision in self.decisions:
            if not decision.wrapped:
                continue
            for variable in prunable_variables(model.get_layer(decision.name)):
                mask = keras.Variable(
                    np.ones(tuple(variable.shape)), dtype=variable.dtype, trainable=False, name=f"{variable.name}_mask"
                )
                chosen = layer_schedules.get(decision.name, spec.schedule)
                self.weights.append(PrunedWeight(decision.name, variable, mask, chosen))

    def callback(self) -> PruningCallback:
        """The callback that prunes `model` while it trains (give it to `fit`)."""
        return PruningCallback(self)

    def begin_step(self) -> None:
        """One training batch begins: count it, recompute the masks the schedule asks for, mask the weights."""
        self.step += 1
        for weight in self.weights:
            if schedule_math.updates_mask(weight.schedule, self.step, self.structure):
                sparsity = schedule_math.pruning_sparsity(weight.schedule, self.step, self.structure)
                weight.mask.assign(compute_mask(weight.variable.value, sparsity, self.structure))
        self.apply_masks()

    def apply_masks(self) -> None:
        """w = w * mask for every pruned weight."""
        for weight in self.weights:
            apply_mask(weight.variable, weight.mask.value)

    def layer_masks(self) -> dict[str, list[np.ndarray]]:
        """Per pruned layer, its masks as numpy arrays (what PruneLab's callback measures sparsity and churn from)."""
        masks: dict[str, list[np.ndarray]] = {}
        for weight in self.weights:
            masks.setdefault(weight.layer_name, []).append(keras.ops.convert_to_numpy(weight.mask.value))
        return masks

    def state(self) -> dict[str, np.ndarray]:
        """The step counter and every mask, as numpy arrays (save them beside an epoch checkpoint)."""
        arrays = {STEP_KEY: np.asarray(self.step, dtype=np.int64)}
        for weight in self.weights:
            arrays[weight.key] = keras.ops.convert_to_numpy(weight.mask.value)
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Continue from `state()` of the same model and scope: the step counter and the masks."""
        expected = {STEP_KEY} | {weight.key for weight in self.weights}
        if set(arrays) != expected:
            missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
            raise ValueError(
                f"pruning state does not match this model's pruned weights: missing {missing}, extra {extra}"
            )
        self.step = int(arrays[STEP_KEY])
        for weight in self.weights:
            mask = np.asarray(arrays[weight.key])
            if mask.shape != tuple(weight.mask.shape):
                raise ValueError(
                    f"{weight.key}: saved mask has shape {mask.shape}, the weight {tuple(weight.mask.shape)}"
                )
            weight.mask.assign(mask)

    def save_state(self, path: str | Path) -> Path:
        """`state()` written to one .npz file."""
        path = Path(path)
        with path.open("wb") as handle:
            np.savez(handle, **self.state())  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        return path

    def restore_state(self, path: str | Path) -> None:
        """`load_state()` from a file `save_state()` wrote."""
        with np.load(Path(path)) as saved:
            self.load_state({key: saved[key] for key in saved.files})

    def strip(self) -> keras.Model:
        """A plain copy of the model (its own variables only, no optimizer) with the pruned weights zeroed."""
        self.apply_masks()
        # From the config, not clone_model: a clone of a compiled model is compiled, with a built optimizer
        # whose slots `save()` would then write (the size of the model again for Adam).
        stripped = type(self.model).from_config(self.model.get_config())
        if not stripped.built:
            raise ValueError(
                f"{type(self.model).__name__}.from_config() gives an unbuilt model: give the model a keras.Input "
                "(Sequential or functional), or build it in its constructor, to strip it"
            )
        stripped.set_weights(self.model.get_weights())
        return stripped


class PruningCallback(keras.callbacks.Callback):
    """Runs a `Pruner` inside `fit`: tfmot's per-batch step and masking, and the epoch-end mask.

    On JAX the trainer keeps the model's state outside its variables mid-epoch; reading `self.model`
    syncs it back (and makes the trainer re-read what the hook assigns), so every hook goes through it.
    """

    def __init__(self, pruner: Pruner) -> None:
        super().__init__()
        self.pruner = pruner

    def _synced_model(self) -> keras.Model:
        model = self.model
        if model is not self.pruner.model:
            raise ValueError("this PruningCallback belongs to another model: make one with pruner.callback()")
        return model

    def on_train_begin(self, logs: dict | None = None) -> None:
        steps_per_execution = int(getattr(self._synced_model(), "steps_per_execution", 1) or 1)
        if steps_per_execution > 1:
            raise ValueError(
                f"steps_per_execution={steps_per_execution}: Keras runs the batch hooks only once every "
                f"{steps_per_execution} batches, so the pruning step and masks would fall behind tfmot's; "
                "compile the model with steps_per_execution=1 to prune it"
            )

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._synced_model()
        self.pruner.begin_step()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._synced_model()
        self.pruner.apply_masks()

    def on_test_begin(self, logs: dict | None = None) -> None:
        # tfmot's wrappers assign w * mask in every call, inference included: validation sees masked weights.
        self._synced_model()
        self.pruner.apply_masks()

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._synced_model()
        self.pruner.apply_masks()
