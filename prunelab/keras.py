"""`PruneLabCallback`: log a pruning script into PruneLab by adding one callback to `model.fit`.

    import prunelab.keras
    # tfmot on tf-keras:
    model.fit(..., callbacks=[tfmot.sparsity.keras.UpdatePruningStep(),
                              prunelab.keras.PruneLabCallback(name="my run", url="http://prunelab:8000")])
    # Keras 3, any backend, pruned by prunelab.prune.Pruner:
    model.fit(..., callbacks=[pruner.callback(),
                              prunelab.keras.PruneLabCallback(name="my run", url=..., pruner=pruner)])

`PruneLabCallback(...)` builds the callback for the Keras it is given: with `pruner=`, a Keras 3 one
(`keras3_class()`, on `prunelab.telemetry_keras3`, which loads Keras 3 only); without, a tfmot one
(`tfmot_class()`, on `prunelab.telemetry_callback`). Both are `ExternalRunCallback`s over the same
`prunelab.telemetry_loop.TelemetryLoop`, so they create, feed and finish the run the same way and log
the same series. The rest of this note describes the tfmot one; the Keras 3 one reads its spec from the
pruner and strips with `pruner.strip()`.

At the start of training it reads the run's spec from the model (which layers the pruning
wrappers wrap, their schedule, block size and m-by-n) and from `fit` (epochs, steps per epoch)
and creates an external run. What it logs while training is measured by the callback the worker
trains with too (`prunelab.telemetry_callback.TelemetryCallback`, arithmetic in
`prunelab.core.telemetry`), so a script's run and a run PruneLab trained log the same series:
each batch's loss and metrics, target and measured sparsity, per-layer sparsity and mask churn
at pruning steps, the compressed size of the weights, validation metrics at each epoch end.
At the end it strips the wrappers (`strip_pruning`), uploads the stripped model (and any other
`exports`) with the coverage report and finishes the run.

Nothing here waits for the network while training: points go to a queue that a background
thread spools to a local file and sends in batches (prunelab/sender.py, prunelab/spool.py).
A server that is down only delays them. The run is cancelled from the dashboard: training stops
at the next step. TensorFlow is imported when a tfmot callback is first made (Keras 3 when a Keras 3 one is),
never by `import prunelab` or `import prunelab.keras`.
"""

from __future__ import annotations

import abc
import atexit
import functools
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prunelab.core.external import ExternalLayer, ExternalRunSpec, external_plan
from prunelab.core.schedule_math import pruning_steps, should_prune
from prunelab.core.scope import NO_WEIGHTS, LayerDecision
from prunelab.core.specs import (
    BlockSparsity,
    ConstantSchedule,
    MByNSparsity,
    PiecewiseSchedule,
    PolynomialSchedule,
    UnstructuredSparsity,
)
from prunelab.core.telemetry import MaskHistory
from prunelab.sender import Sender
from prunelab.spool import Spool
from prunelab.telemetry_loop import TelemetryLoop

log = logging.getLogger("prunelab")

TFMOT_EXPORTS = ("keras", "h5", "tflite", "tflite_int8")
DEFAULT_URL = "http://127.0.0.1:8000"


def schedule_from_tfmot(config: Mapping[str, Any]) -> ConstantSchedule | PolynomialSchedule | None:
    """PruneLab's schedule for a tfmot schedule's `get_config()`; None for a schedule PruneLab does not model."""
    kind, values = config.get("class_name"), dict(config.get("config", {}))
    window = {key: int(values[key]) for key in ("begin_step", "end_step", "frequency") if key in values}
    if kind == "ConstantSparsity":
        return ConstantSchedule(target_sparsity=float(values["target_sparsity"]), **window)
    if kind == "PolynomialDecay":
        return PolynomialSchedule(
            initial_sparsity=float(values["initial_sparsity"]),
            final_sparsity=float(values["final_sparsity"]),
            power=float(values.get("power", 3)),
            **window,
        )
    return None


@dataclass(frozen=True)
class ScheduledSteps:
    """The steps at which a schedule prunes, when fit does not say how many steps there will be."""

    schedule: ConstantSchedule | PolynomialSchedule | PiecewiseSchedule | None

    def __contains__(self, step: object) -> bool:
        if self.schedule is None or not isinstance(step, int):
            return False
        end = self.schedule.end_step if self.schedule.end_step != -1 else 2**62
        return should_prune(self.schedule.model_copy(update={"end_step": end}), step)


class SenderReporter:
    """The telemetry callback's `Reporter` for a script: points go to the sender, under the callback's run."""

    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def log(self, step: int, metrics: Mapping[str, float], wall_time: float) -> None:
        self.callback.sender.log(self.callback.run_key, step, metrics, wall_time)

    def stop_requested(self) -> bool:
        run_key = self.callback.run_key
        return run_key is not None and self.callback.sender.run_ended(run_key)


class ExternalRunCallback(TelemetryLoop):
    """The external run around a telemetry callback: created at `fit`'s start, fed by it, finished with its files.

    Mixed in before a telemetry callback class (tfmot's or Keras 3's, each a `TelemetryLoop`); a binding reads
    the run's spec from its model (`_read_spec`) and strips and saves the model (`_stripped_model`, `_save`).
    """

    EXPORTS: tuple[str, ...] = ()
    params: Any  # the Keras Callback's: what fit was given

    def __init__(
        self,
        name: str = "",
        url: str | None = None,
        token: str | None = None,
        *,
        exports: Sequence[str] = ("keras",),
        dataset: str = "",
        batch_size: int | None = None,
        params: Mapping[str, Any] | None = None,
        spool_dir: str | Path | None = None,
        finish_timeout_s: float = 60.0,
        flush_interval_s: float = 0.5,
        **telemetry: Any,
    ) -> None:
        unknown = set(exports) - set(self.EXPORTS)
        if unknown:
            raise ValueError(f"exports {sorted(unknown)} are not known; choose from {', '.join(self.EXPORTS)}")
        super().__init__(SenderReporter(self), **telemetry)  # type: ignore[call-arg]  # the binding's own (pruner=)
        self.name = name
        self.url = (url or os.environ.get("PRUNELAB_URL") or DEFAULT_URL).rstrip("/")
        self.exports = tuple(dict.fromkeys(["keras", *exports]))
        self.dataset = dataset
        self.batch_size = batch_size
        self.extra_params = dict(params or {})
        self.finish_timeout_s = finish_timeout_s
        self.spool = Spool(Path(spool_dir) if spool_dir else None)
        self.sender = Sender(self.url, token or os.environ.get("PRUNELAB_TOKEN"), self.spool, flush_interval_s)
        self.sender.start()
        self.run_key: str | None = None
        self.spec: ExternalRunSpec | None = None
        self._finished = False
        atexit.register(self._at_exit)

    # What a binding supplies.
    def _read_spec(self) -> ExternalRunSpec:
        """What the run is, read from the model and from fit."""
        raise NotImplementedError

    def _stripped_model(self) -> tuple[Any, dict[str, Any]]:
        """The model as it will be exported, and the run's final counts and coverage measured on it."""
        raise NotImplementedError

    def _save(self, model: Any, export_format: str, folder: Path) -> Path:
        raise NotImplementedError

    @property
    def run_id(self) -> int | None:
        """The run's id once the server has created it (None while it is unreachable)."""
        return self.sender.run_id(self.run_key) if self.run_key else None

    def wait_for_run_id(self, timeout: float = 30.0) -> int | None:
        deadline = time.monotonic() + timeout
        while self.run_id is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.run_id

    def _fit_fields(self) -> dict[str, Any]:
        """The spec's fields that `fit` and the callback's arguments give, whatever the model."""
        params = self.params or {}
        epochs, steps = params.get("epochs"), params.get("steps")
        return {
            "source": "keras_callback",
            "name": self.name[:200],
            "dataset": (self.dataset or "external")[:200],
            "model": (self.model.name or type(self.model).__name__)[:200],
            "epochs": epochs if isinstance(epochs, int) and epochs >= 1 else None,
            "steps_per_epoch": steps if isinstance(steps, int) else None,
            "batch_size": self.batch_size,
        }

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        if self.run_key is not None and not self._finished:
            super().on_train_begin(logs)
            return  # a fit inside a fit (none in Keras today): the same run goes on
        # Each fit is a run of its own: a second fit with this callback starts a new one.
        self.run_key, self._finished = None, False
        self.resume(0, 0.0, 0.0, {})
        self.masks = MaskHistory()
        try:
            self.spec = self._read_spec()
        except Exception:  # a model this callback cannot read is still logged, without its spec
            log.warning("PruneLab: could not read the pruning spec from the model", exc_info=True)
            self.spec = ExternalRunSpec(source="keras_callback", name=self.name[:200])
        plan = external_plan(self.spec)
        self.target_sparsity = plan.target_sparsity_series() if plan.prunes else []
        self.pruning_steps = ScheduledSteps(self.spec.schedule)
        if self.spec.schedule is not None and plan.total_steps:
            # Masks are read where any layer updates its own: layers may carry schedules of their own.
            steps = set(plan.pruning_steps())
            for layer in (plan.layer_schedules or {}).values():
                steps.update(pruning_steps(layer.schedule, plan.total_steps, self.spec.structure))
            self.pruning_steps = frozenset(steps)
        super().on_train_begin(logs)
        self.run_key = uuid.uuid4().hex
        self.sender.open_run(self.run_key, self.spec.model_dump(mode="json"))

    def on_stop_requested(self) -> None:
        # Cancelled on the dashboard (or deleted): the run takes nothing more. Any other refusal (a bad
        # token, say) leaves training alone.
        if not self.model.stop_training:
            assert self.run_key is not None
            log.warning("PruneLab: the run ended on the server (%s); training stops", self.sender.refusal(self.run_key))
        super().on_stop_requested()

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        try:
            self.close()
        except Exception:
            log.warning("PruneLab: a weight snapshot failed", exc_info=True)
        if self.run_key is None or self._finished:
            return
        if self.sender.run_ended(self.run_key):
            self._finished = True  # cancelled on the dashboard: nothing more is taken
            return
        try:
            summary = self._deliver_model()
            status, error = "succeeded", None
        except Exception as failure:  # training is over and fine: only its files are missing
            log.warning("PruneLab: the model could not be exported", exc_info=True)
            summary, status, error = {}, "failed", f"exporting the model failed: {failure}"
        summary.update({"steps": self.step, "wall_time_s": self.wall_time()})
        self.sender.finish(self.run_key, status, summary, error)
        self._finished = True
        if not self.sender.wait_for(self.run_key, self.finish_timeout_s):
            log.warning(
                "PruneLab: %s did not take everything within %.0f s; the rest waits in %s and is sent by the "
                "next PruneLabCallback for this server",
                self.url,
                self.finish_timeout_s,
                self.spool.path,
            )

    def _at_exit(self) -> None:
        if self.run_key is not None and not self._finished:
            self._finished = True
            self.sender.finish(self.run_key, "failed", {"steps": self.step}, "the script ended before fit returned")
            self.sender.wait_for(self.run_key, 5.0)

    def _deliver_model(self) -> dict[str, Any]:
        """Strip the model, measure what was pruned, save and hand each export to the sender."""
        assert self.run_key is not None
        stripped, summary = self._stripped_model()
        folder = self.spool.folder / "files" / self.run_key
        folder.mkdir(parents=True, exist_ok=True)
        for export_format in self.exports:
            try:
                path = self._save(stripped, export_format, folder)
            except Exception:
                if export_format == "keras":
                    raise
                log.warning("PruneLab: the %s export failed; it is not uploaded", export_format, exc_info=True)
                continue
            self.sender.add_artifact(self.run_key, export_format, path, _sha256(path))
        return summary


@functools.cache
def tfmot_class() -> type:
    """`PruneLabCallback` for tfmot on tf-keras (imports TensorFlow and tfmot)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tfmot prunes tf-keras models
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

    from prunelab.telemetry_callback import TelemetryCallback, final_summary, pruned_refs

    class TfmotPruneLabCallback(ExternalRunCallback, TelemetryCallback):  # type: ignore[misc,valid-type]
        """Logs a tfmot pruning run to PruneLab as an external run; put it beside `UpdatePruningStep`."""

        EXPORTS = TFMOT_EXPORTS

        def _read_spec(self) -> ExternalRunSpec:
            layers, schedules, structure = [], {}, None
            for layer in self.model.layers:
                if isinstance(layer, PruneLowMagnitude) and layer.pruning_vars:
                    inner = layer.layer
                    schedule = schedule_from_tfmot(
                        {"class_name": type(layer.pruning_schedule).__name__, **_config(layer.pruning_schedule)}
                    )
                    schedules[inner.name] = schedule
                    structure = structure or _structure(layer)
                    layers.append(
                        ExternalLayer(
                            name=inner.name,
                            class_name=type(inner).__name__,
                            params=int(inner.count_params()),
                            prunable_params=int(sum(int(np.prod(w.shape)) for w, _, _ in layer.pruning_vars)),
                            wrapped=True,
                        )
                    )
                else:
                    # A wrapper around a layer without prunable weights (Flatten, pooling) prunes nothing.
                    inner = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
                    layers.append(
                        ExternalLayer(
                            name=inner.name,
                            class_name=type(inner).__name__,
                            params=int(inner.count_params()),
                            wrapped=False,
                            reason="not wrapped by the script" if inner.weights else NO_WEIGHTS,
                        )
                    )
            known = [s for s in schedules.values() if s is not None]
            # The run's schedule is the one most wrapped layers share; a layer with another keeps its own.
            run_schedule = max(known, key=known.count) if known else None
            if run_schedule is not None:
                layers = [
                    layer.model_copy(update={"schedule": schedules[layer.name]})
                    if layer.wrapped and schedules.get(layer.name) not in (None, run_schedule)
                    else layer
                    for layer in layers
                ]
            extra = {key: _plain(value) for key, value in self.extra_params.items()}
            unknown_schedules = sorted(
                {
                    type(lay.pruning_schedule).__name__
                    for lay in self.model.layers
                    if isinstance(lay, PruneLowMagnitude)
                    and lay.layer.name in schedules
                    and schedules[lay.layer.name] is None
                }
            )
            if unknown_schedules:
                extra["schedule_class"] = ", ".join(unknown_schedules)
            return ExternalRunSpec(
                **self._fit_fields(),
                schedule=run_schedule,
                structure=structure or UnstructuredSparsity(),
                layers=layers,
                params=extra,
            )

        def _stripped_model(self) -> tuple[Any, dict[str, Any]]:
            refs = pruned_refs(self.model)
            wrapped = any(isinstance(layer, PruneLowMagnitude) for layer in self.model.layers)
            stripped = tfmot.sparsity.keras.strip_pruning(self.model) if wrapped else self.model
            decisions = [
                LayerDecision(layer.name, layer.class_name, layer.wrapped, None if layer.wrapped else layer.reason)
                for layer in (self.spec.layers if self.spec else [])
            ]
            return stripped, final_summary(stripped, refs, decisions)

        def _save(self, model: Any, export_format: str, folder: Path) -> Path:
            return _save_tf_keras(model, export_format, folder, tf)

    PruneLabCallback.register(TfmotPruneLabCallback)
    return TfmotPruneLabCallback


@functools.cache
def keras3_class() -> type:
    """`PruneLabCallback` for a Keras 3 model pruned by `prunelab.prune.Pruner` (imports Keras 3, on its backend)."""
    import keras

    from prunelab import keras3_export
    from prunelab.telemetry_keras3 import Keras3TelemetryCallback, final_summary

    class Keras3PruneLabCallback(ExternalRunCallback, Keras3TelemetryCallback):
        """Logs a Keras 3 pruning run (`prunelab.prune.Pruner`) to PruneLab as an external run."""

        EXPORTS = keras3_export.EXPORTS

        def _read_spec(self) -> ExternalRunSpec:
            pruner = self.pruner
            prunable: dict[str, int] = {}
            for weight in pruner.weights:
                prunable[weight.layer_name] = prunable.get(weight.layer_name, 0) + int(np.prod(weight.variable.shape))
            layers = [
                ExternalLayer(
                    name=decision.name,
                    class_name=decision.class_name,
                    params=int(pruner.model.get_layer(decision.name).count_params()),
                    prunable_params=prunable.get(decision.name, 0),
                    wrapped=decision.wrapped,
                    reason=None if decision.wrapped else decision.reason,
                    schedule=pruner.layer_schedules.get(decision.name),
                )
                for decision in pruner.decisions
            ]
            extra = {key: _plain(value) for key, value in self.extra_params.items()}
            extra.update({"engine": "keras", "backend": keras.backend.backend(), "keras_version": keras.__version__})
            return ExternalRunSpec(
                **self._fit_fields(), schedule=pruner.schedule, structure=pruner.structure, layers=layers, params=extra
            )

        def _stripped_model(self) -> tuple[Any, dict[str, Any]]:
            stripped = self.pruner.strip()
            return stripped, final_summary(stripped, self.pruner)

        def _save(self, model: Any, export_format: str, folder: Path) -> Path:
            return keras3_export.save(model, export_format, folder)

    PruneLabCallback.register(Keras3PruneLabCallback)
    return Keras3PruneLabCallback


class PruneLabCallback(metaclass=abc.ABCMeta):  # noqa: B024  # an ABC for register(): isinstance holds for both
    """Logs a pruning run into PruneLab as an external run: add it to `model.fit`'s callbacks.

    `PruneLabCallback(name, url, ...)` for a tfmot script (beside `UpdatePruningStep`);
    `PruneLabCallback(name, url, ..., pruner=pruner)` for a Keras 3 model pruned by `prunelab.prune.Pruner`
    (beside `pruner.callback()`), on any Keras backend. Both log the same series. Calling it builds the
    callback for that Keras; `isinstance(callback, PruneLabCallback)` holds for either.
    """

    def __new__(cls, *args: Any, pruner: Any = None, **kwargs: Any) -> Any:
        if pruner is not None:
            return keras3_class()(*args, pruner=pruner, **kwargs)
        return tfmot_class()(*args, **kwargs)


def _config(schedule: Any) -> dict[str, Any]:
    try:
        return {"config": dict(schedule.get_config().get("config", {}))}
    except (AttributeError, NotImplementedError, TypeError, ValueError):  # a custom schedule without a config
        return {"config": {}}


def _structure(wrapper: Any) -> BlockSparsity | MByNSparsity | UnstructuredSparsity:
    m_by_n = getattr(wrapper, "sparsity_m_by_n", None)
    if m_by_n:
        return MByNSparsity(m=int(m_by_n[0]), n=int(m_by_n[1]))
    block = tuple(int(side) for side in getattr(wrapper, "block_size", (1, 1)))
    if block != (1, 1):
        pooling = str(getattr(wrapper, "block_pooling_type", "AVG")).upper()
        return BlockSparsity(block_size=(block[0], block[1]), block_pooling_type="MAX" if pooling == "MAX" else "AVG")
    return UnstructuredSparsity()


def _save_tf_keras(model: Any, export_format: str, folder: Path, tf: Any) -> Path:
    if export_format == "keras":
        path = folder / "model.keras"
        model.save(path)
    elif export_format == "h5":
        path = folder / "model.h5"
        model.save(path, include_optimizer=False)
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if export_format == "tflite_int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        path = folder / ("model_int8.tflite" if export_format == "tflite_int8" else "model.tflite")
        path.write_bytes(converter.convert())
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _plain(value: object) -> str | float | int | bool | None:
    return value if value is None or isinstance(value, str | float | int | bool) else str(value)
