"""`PruneLabCallback`: log any tfmot pruning script into PruneLab by adding one callback to `model.fit`.

    import prunelab.keras
    model.fit(..., callbacks=[tfmot.sparsity.keras.UpdatePruningStep(),
                              prunelab.keras.PruneLabCallback(name="my run", url="http://prunelab:8000")])

At the start of training it reads the run's spec from the model (which layers the pruning
wrappers wrap, their schedule, block size and m-by-n) and from `fit` (epochs, steps per epoch)
and creates an external run. Every step it logs loss and the model's other metrics (each batch's
own value, recovered from Keras's running means), the target sparsity and the measured sparsity;
at each pruning step each layer's sparsity (`layer_sparsity/<layer>`), and, computed off the
training thread, mask churn (`mask_churn/<layer>`) and the compressed size of the weights; the
validation metrics at each epoch end. At the end it strips the wrappers (`strip_pruning`),
uploads the stripped model (and any other `exports`) and finishes the run.

Nothing here waits for the network while training: points go to a queue that a background
thread spools to a local file and sends in batches (prunelab/sender.py, prunelab/spool.py).
A server that is down only delays them. The run is cancelled from the dashboard: training stops
at the next step. TensorFlow is imported when the callback class is first used, never by
`import prunelab` or `import prunelab.keras`.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import time
import uuid
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prunelab.core.external import ExternalLayer, ExternalRunSpec, external_plan
from prunelab.core.schedule_math import pruning_steps, should_prune
from prunelab.core.specs import BlockSparsity, ConstantSchedule, MByNSparsity, PolynomialSchedule, UnstructuredSparsity
from prunelab.sender import Sender
from prunelab.spool import Spool

if TYPE_CHECKING:  # pragma: no cover
    PruneLabCallback: Any

log = logging.getLogger("prunelab")

EXPORTS = ("keras", "h5", "tflite", "tflite_int8")
COMPRESSION_LEVEL = 6  # zlib level of the compressed-size metric, as the worker measures it
MAX_PENDING_SNAPSHOTS = 4
DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Weight:
    """A weight that survives `strip_pruning`, with the wrapper's mask when it is pruned."""

    variable: Any
    mask: Any | None
    layer_name: str


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


def recover_batch_values(batch: int, means: Mapping[str, float], totals: dict[str, float]) -> dict[str, float]:
    """Each batch's own value from Keras's running epoch means (equal batches: total_n = n * mean_n)."""
    values = {}
    for key, mean in means.items():
        total = (batch + 1) * float(mean)
        values[key] = total - totals.get(key, 0.0) if batch else float(mean)
        totals[key] = total
    return values


def _build_class() -> type:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tfmot prunes tf-keras models
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

    class PruneLabCallback(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        """Logs a tfmot pruning run to PruneLab as an external run; put it beside `UpdatePruningStep`."""

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
        ) -> None:
            super().__init__()
            unknown = set(exports) - set(EXPORTS)
            if unknown:
                raise ValueError(f"exports {sorted(unknown)} are not known; choose from {', '.join(EXPORTS)}")
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
            self.step = 0
            self.measured_sparsity = 0.0
            self.layer_sparsity: dict[str, float] = {}
            self._target: list[float] = []
            self._pruning_steps: frozenset[int] | None = None
            self._schedule: Any = None
            self._weights: list[Weight] = []
            self._totals: dict[str, float] = {}
            self._previous_masks: dict[str, list[np.ndarray]] = {}
            self._executor: ThreadPoolExecutor | None = None
            self._pending: list[Future[None]] = []
            self._started = time.monotonic()
            self._finished = False
            atexit.register(self._at_exit)

        @property
        def run_id(self) -> int | None:
            """The run's id once the server has created it (None while it is unreachable)."""
            return self.sender.run_id(self.run_key) if self.run_key else None

        def wait_for_run_id(self, timeout: float = 30.0) -> int | None:
            deadline = time.monotonic() + timeout
            while self.run_id is None and time.monotonic() < deadline:
                time.sleep(0.05)
            return self.run_id

        # What the run is, read from the model and from fit.
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
                            reason="not wrapped by the script" if inner.weights else "no weights to prune",
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
            params = self.params or {}
            fit = {"epochs": params.get("epochs"), "steps_per_epoch": params.get("steps")}
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
                source="keras_callback",
                name=self.name[:200],
                dataset=(self.dataset or "external")[:200],
                model=(self.model.name or type(self.model).__name__)[:200],
                epochs=fit["epochs"] if isinstance(fit["epochs"], int) and fit["epochs"] >= 1 else None,
                steps_per_epoch=fit["steps_per_epoch"] if isinstance(fit["steps_per_epoch"], int) else None,
                batch_size=self.batch_size,
                schedule=run_schedule,
                structure=structure or UnstructuredSparsity(),
                layers=layers,
                params=extra,
            )

        def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
            self._weights = _stripped_weights(self.model, PruneLowMagnitude)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prunelab-snapshots")
            if self.run_key is not None and not self._finished:
                return  # a fit inside a fit (none in Keras today): the same run goes on
            # Each fit is a run of its own: a second fit with this callback starts a new one.
            self.run_key, self._finished, self.step, self.measured_sparsity = None, False, 0, 0.0
            self._previous_masks = {}
            self._started = time.monotonic()
            try:
                self.spec = self._read_spec()
            except Exception:  # a model this callback cannot read is still logged, without its spec
                log.warning("PruneLab: could not read the pruning spec from the model", exc_info=True)
                self.spec = ExternalRunSpec(source="keras_callback", name=self.name[:200])
            plan = external_plan(self.spec)
            self._target = plan.target_sparsity_series() if plan.prunes else []
            if self.spec.schedule is not None and plan.total_steps:
                # Masks are read where any wrapper updates its own: layers may carry schedules of their own.
                steps = set(plan.pruning_steps())
                for layer in (plan.layer_schedules or {}).values():
                    steps.update(pruning_steps(layer.schedule, plan.total_steps, self.spec.structure))
                self._pruning_steps = frozenset(steps)
            self._schedule = self.spec.schedule
            self.run_key = uuid.uuid4().hex
            self.sender.open_run(self.run_key, self.spec.model_dump(mode="json"))

        def _is_pruning_step(self, step: int) -> bool:
            if self._pruning_steps is not None:
                return step in self._pruning_steps
            schedule = self._schedule
            if schedule is None or not self._weights:
                return False
            end = schedule.end_step if schedule.end_step != -1 else 2**62
            return should_prune(schedule.model_copy(update={"end_step": end}), step)

        def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            self._totals = {}

        def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
            self.step += 1
            wall_time = time.monotonic() - self._started
            numeric = {key: value for key, value in (logs or {}).items() if _is_number(value)}
            metrics = recover_batch_values(batch, numeric, self._totals)
            if self.step <= len(self._target):
                metrics["target_sparsity"] = self._target[self.step - 1]
            if self._is_pruning_step(self.step):
                values = keras.backend.batch_get_value(_variables(self._weights))
                masks = _layer_masks(self._weights, values)
                metrics.update(self._mask_sparsity(masks))
                self._in_background(values, wall_time, masks)
            metrics["measured_sparsity"] = self.measured_sparsity
            assert self.run_key is not None
            self.sender.log(self.run_key, self.step, metrics, wall_time)
            if self.sender.run_ended(self.run_key) and not self.model.stop_training:
                # Cancelled on the dashboard (or deleted): the run takes nothing more. Any other refusal (a bad
                # token, say) leaves training alone.
                log.warning(
                    "PruneLab: the run ended on the server (%s); training stops", self.sender.refusal(self.run_key)
                )
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            wall_time = time.monotonic() - self._started
            metrics = {
                key: value for key, value in (logs or {}).items() if key.startswith("val_") and _is_number(value)
            }
            metrics["epoch"] = epoch + 1
            assert self.run_key is not None
            self.sender.log(self.run_key, self.step, metrics, wall_time)
            self._in_background(keras.backend.batch_get_value(_variables(self._weights)), wall_time, None)

        def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
            self._drain()
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
            summary.update({"steps": self.step, "wall_time_s": time.monotonic() - self._started})
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

        # Weights, masks and what they measure.
        def _mask_sparsity(self, masks: dict[str, list[np.ndarray]]) -> dict[str, float]:
            zeros = {name: sum(m.size - int(np.count_nonzero(m)) for m in ms) for name, ms in masks.items()}
            sizes = {name: sum(m.size for m in ms) for name, ms in masks.items()}
            total = sum(sizes.values())
            self.measured_sparsity = sum(zeros.values()) / total if total else 0.0
            self.layer_sparsity = {name: zeros[name] / sizes[name] for name in sizes if sizes[name]}
            return {f"layer_sparsity/{name}": value for name, value in self.layer_sparsity.items()}

        def _in_background(
            self, values: list[np.ndarray], wall_time: float, masks: dict[str, list[np.ndarray]] | None
        ) -> None:
            self._pending = [future for future in self._pending if not future.done()]
            while len(self._pending) >= MAX_PENDING_SNAPSHOTS:  # training waits rather than queue more copies
                self._pending.pop(0).result()
            if self._executor is not None:
                self._pending.append(self._executor.submit(self._snapshot, self.step, values, wall_time, masks))

        def _snapshot(
            self, step: int, values: list[np.ndarray], wall_time: float, masks: dict[str, list[np.ndarray]] | None
        ) -> None:
            arrays = _apply_masks(self._weights, values)
            size = len(zlib.compress(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays), COMPRESSION_LEVEL))
            metrics: dict[str, float] = {"compressed_size_bytes": float(size)}
            for name, layer_masks in (masks or {}).items():
                binary = [mask != 0 for mask in layer_masks]
                previous = self._previous_masks.get(name)
                flipped = (
                    sum(int(np.count_nonzero(a != b)) for a, b in zip(previous, binary, strict=True)) if previous else 0
                )
                metrics[f"mask_churn/{name}"] = flipped / max(1, sum(mask.size for mask in binary))
                self._previous_masks[name] = binary
            assert self.run_key is not None
            self.sender.log(self.run_key, step, metrics, wall_time)

        def _drain(self) -> None:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            for future in self._pending:
                try:
                    future.result()
                except Exception:
                    log.warning("PruneLab: a weight snapshot failed", exc_info=True)
            self._pending = []

        def _deliver_model(self) -> dict[str, Any]:
            """Strip the wrappers, measure what was pruned, save and hand each export to the sender."""
            assert self.run_key is not None
            pruned_refs = {w.variable.ref() for w in self._weights if w.mask is not None}
            wrapped = any(isinstance(layer, PruneLowMagnitude) for layer in self.model.layers)
            stripped = tfmot.sparsity.keras.strip_pruning(self.model) if wrapped else self.model
            coverage, summary = _coverage(stripped, self.spec, pruned_refs)
            folder = self.spool.folder / "files" / self.run_key
            folder.mkdir(parents=True, exist_ok=True)
            for export_format in self.exports:
                try:
                    path = _save(stripped, export_format, folder, tf)
                except Exception:
                    if export_format == "keras":
                        raise
                    log.warning("PruneLab: the %s export failed; it is not uploaded", export_format, exc_info=True)
                    continue
                self.sender.add_artifact(self.run_key, export_format, path, _sha256(path))
            return {**summary, "coverage": coverage}

    return PruneLabCallback


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


def _stripped_weights(model: Any, wrapper_class: type) -> list[Weight]:
    weights = []
    for layer in model.layers:
        if isinstance(layer, wrapper_class):
            masks = {weight.ref(): mask for weight, mask, _ in layer.pruning_vars}  # type: ignore[attr-defined]
            for variable in layer.layer.weights:  # type: ignore[attr-defined]
                weights.append(Weight(variable, masks.get(variable.ref()), layer.layer.name))  # type: ignore[attr-defined]
        else:
            weights.extend(Weight(variable, None, layer.name) for variable in layer.weights)
    return weights


def _variables(weights: list[Weight]) -> list[Any]:
    return [w.variable for w in weights] + [w.mask for w in weights if w.mask is not None]


def _layer_masks(weights: list[Weight], values: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    masks = iter(values[len(weights) :])
    by_layer: dict[str, list[np.ndarray]] = {}
    for weight in weights:
        if weight.mask is not None:
            by_layer.setdefault(weight.layer_name, []).append(next(masks))
    return by_layer


def _apply_masks(weights: list[Weight], values: list[np.ndarray]) -> list[np.ndarray]:
    masks = iter(values[len(weights) :])
    return [
        value * next(masks) if weight.mask is not None else value
        for weight, value in zip(weights, values[: len(weights)], strict=True)
    ]


def _coverage(
    stripped: Any, spec: ExternalRunSpec | None, pruned_refs: set[Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """summary["coverage"] as the worker writes it, and the run's final counts, from the stripped model."""
    decisions = {layer.name: layer for layer in (spec.layers if spec else [])}
    layers, prunable_total, zeros_total, nonzero = [], 0, 0, 0
    for layer in stripped.layers:
        zeros = 0
        for weight in layer.weights:
            value = weight.numpy()
            nonzero += int(np.count_nonzero(value))
            if weight.ref() in pruned_refs:
                zeros += int(value.size - np.count_nonzero(value))
                prunable_total += int(value.size)
        zeros_total += zeros
        decision = decisions.get(layer.name)
        layers.append(
            {
                "name": layer.name,
                "class_name": type(layer).__name__,
                "wrapped": bool(decision and decision.wrapped),
                "reason": None if decision and decision.wrapped else (decision.reason if decision else "not wrapped"),
                "params": int(layer.count_params()),
                "pruned_params": zeros,
            }
        )
    params_total = int(stripped.count_params())
    coverage = {
        "layers": layers,
        "sparsity_prunable": zeros_total / prunable_total if prunable_total else 0.0,
        "sparsity_total": zeros_total / params_total if params_total else 0.0,
    }
    summary = {
        "measured_sparsity": coverage["sparsity_prunable"],
        "param_count": params_total,
        "prunable_param_count": prunable_total,
        "nonzero_params": nonzero,
    }
    return coverage, summary


def _save(model: Any, export_format: str, folder: Path, tf: Any) -> Path:
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


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return np.ndim(value) == 0  # type: ignore[arg-type]


def _plain(value: object) -> str | float | int | bool | None:
    return value if value is None or isinstance(value, str | float | int | bool) else str(value)


def __getattr__(name: str) -> Any:
    # The class is built, and TensorFlow imported, on first use: `import prunelab.keras` stays light.
    if name == "PruneLabCallback":
        cls = _build_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
