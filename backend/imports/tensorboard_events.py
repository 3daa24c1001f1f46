"""Scalars of a folder of TensorBoard event files, read without TensorFlow.

TensorBoard's own pieces do the reading: the record reader of its TensorFlow stub, its `Event`
protos, `data_compat` (TF1 `simple_value` summaries become TF2 scalar tensors) and `tensor_util`.
Its usual entry points (`event_file_loader`, `EventAccumulator`) import TensorFlow whenever it is
installed, which the API process must never do; these modules do not (tests/imports check it).

Keys: tfmot's `PruningSummaries` writes `<wrapper>/mask:0/sparsity` and `<wrapper>/threshold:0/threshold`
into `metrics/`; they become PruneLab's `layer_sparsity/<layer>` (the dashboard's per-layer table)
and `threshold/<layer>`, with the wrapper's `prune_low_magnitude_` prefix dropped. Every other
scalar keeps TensorBoard's name, prefixed by its folder as TensorBoard shows it: Keras' callback
writes `train/epoch_loss` and `validation/epoch_accuracy`. Steps are the files' own steps (Keras
writes epoch summaries at the epoch number, tfmot's at the optimizer's iteration). A step written
twice keeps its first value, as PruneLab's store does; a truncated last record (a file still being
written) ends that file's reading and is reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from prunelab.core.external import ExternalLayer, ExternalRunSpec
from prunelab.core.specs import ConstantSchedule, PolynomialSchedule, Schedule

EVENT_FILE = re.compile(r"events\.out\.tfevents\.")
WRAPPER_PREFIX = "prune_low_magnitude_"
PRUNING_TAG = re.compile(r"^(?P<wrapper>.+?)/(?P<variable>mask|threshold)(?::\d+)?/(?P<kind>sparsity|threshold)$")
MAX_KEY_LENGTH = 200


@dataclass
class EventScalars:
    """Per key, {step: (value, wall_time)}; what could not be read, said for people."""

    series: dict[str, dict[int, tuple[float, float]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    files: int = 0
    keras_model: dict[str, Any] | None = None  # the Keras callback's graph summary: the model's config

    def point_count(self) -> int:
        return sum(len(points) for points in self.series.values())

    def add(self, key: str, step: int, value: float, wall_time: float) -> None:
        self.series.setdefault(key, {}).setdefault(step, (value, wall_time))


def is_event_file(name: str) -> bool:
    return EVENT_FILE.match(PurePosixPath(name).name) is not None


def metric_key(folder: str, tag: str) -> str:
    """PruneLab's key for a scalar `tag` written into `folder` (relative, "" for the top folder)."""
    pruning = PRUNING_TAG.match(tag)
    if pruning is not None:
        layer = pruning["wrapper"].rsplit("/", 1)[-1].removeprefix(WRAPPER_PREFIX)
        key = f"layer_sparsity/{layer}" if pruning["kind"] == "sparsity" else f"threshold/{layer}"
    elif folder in ("", "."):
        key = tag
    else:
        key = f"{folder}/{tag}"
    return key[:MAX_KEY_LENGTH]


def _scalar(value: Any, make_ndarray: Any) -> float | None:
    """A summary value's number, or None when it is not a scalar (images, histograms, text)."""
    if value.metadata.plugin_data.plugin_name != "scalars" or not value.HasField("tensor"):
        return None
    array = make_ndarray(value.tensor)
    if array.size != 1 or array.dtype.kind not in "fiub":
        return None
    return float(array.reshape(()))


def _keras_model(value: Any, make_ndarray: Any) -> dict[str, Any] | None:
    if value.metadata.plugin_data.plugin_name != "graph_keras_model" or not value.HasField("tensor"):
        return None
    try:
        raw = make_ndarray(value.tensor).reshape(-1)[0]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (ValueError, IndexError, AttributeError):
        return None
    return config if isinstance(config, dict) else None


def read_file(path: Path, folder: str, into: EventScalars) -> None:
    """Add the scalars of one event file (its folder relative to the log root) to `into`."""
    # Imported here, not at the top: they took about a second of every API process's start, and few ever import.
    from tensorboard import data_compat
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub import errors as stub_errors
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New
    from tensorboard.util import tensor_util

    into.files += 1
    reader = PyRecordReader_New(str(path))
    while True:
        try:
            reader.GetNext()
        except stub_errors.OutOfRangeError:
            return
        except (stub_errors.DataLossError, OSError) as error:
            into.problems.append(f"{folder or '.'}/{path.name}: stopped at a damaged or unfinished record ({error})")
            return
        try:
            event = data_compat.migrate_event(event_pb2.Event.FromString(reader.record()))
        except Exception as error:  # noqa: BLE001 - a record that is not an Event: skip it, say so
            into.problems.append(f"{folder or '.'}/{path.name}: a record is not an event ({error})")
            continue
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            number = _scalar(value, tensor_util.make_ndarray)
            if number is not None:
                into.add(metric_key(folder, value.tag), int(event.step), number, float(event.wall_time))
            elif into.keras_model is None:
                into.keras_model = _keras_model(value, tensor_util.make_ndarray)


def read_folder(root: Path) -> EventScalars:
    """Every event file under `root`, each with its folder (relative to `root`) as TensorBoard's run name."""
    scalars = EventScalars()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and is_event_file(p.name)):
        folder = path.parent.relative_to(root).as_posix()
        read_file(path, "" if folder == "." else folder, scalars)
    return scalars


def pruning_params(keras_model: dict[str, Any] | None) -> dict[str, str]:
    """The pruning schedule, block size and pooling of each tfmot wrapper in a Keras model config, as run params."""
    params: dict[str, str] = {}
    layers = ((keras_model or {}).get("config") or {}).get("layers") or []
    for layer in layers if isinstance(layers, list) else []:
        if not isinstance(layer, dict) or layer.get("class_name") != "PruneLowMagnitude":
            continue
        config = layer.get("config") or {}
        name = str((config.get("layer") or {}).get("config", {}).get("name") or config.get("name", "?"))
        schedule = config.get("pruning_schedule") or {}
        params[f"pruning_schedule/{name}"] = json.dumps(schedule, sort_keys=True)[:6000]
        if config.get("block_size") not in (None, [1, 1]):
            params[f"block_size/{name}"] = json.dumps(config.get("block_size"))
    return params


def _schedule(config: dict[str, Any]) -> Schedule | None:
    """PruneLab's model of a tfmot schedule config (ConstantSparsity, PolynomialDecay); None for others."""
    kind, values = config.get("class_name"), config.get("config") or {}
    window = {key: values[key] for key in ("begin_step", "end_step", "frequency") if key in values}
    try:
        if kind == "ConstantSparsity":
            return ConstantSchedule(target_sparsity=values["target_sparsity"], **window)
        if kind == "PolynomialDecay":
            return PolynomialSchedule(
                initial_sparsity=values["initial_sparsity"],
                final_sparsity=values["final_sparsity"],
                power=values.get("power", 3),
                **window,
            )
    except (KeyError, ValueError, TypeError):
        return None
    return None


def _weights(class_name: str, config: dict[str, Any], input_shape: Any) -> tuple[int, int]:
    """(all weights, prunable kernel weights) of a Dense or Conv2D layer from its config; (0, 0) when unknown."""
    try:
        channels = int(input_shape[-1])
        if class_name == "Dense":
            kernel = channels * int(config["units"])
            bias = int(config["units"]) if config.get("use_bias", True) else 0
        elif class_name == "Conv2D":
            height, width = config["kernel_size"]
            kernel = int(height) * int(width) * channels * int(config["filters"])
            bias = int(config["filters"]) if config.get("use_bias", True) else 0
        else:
            return 0, 0
    except (KeyError, TypeError, ValueError, IndexError):
        return 0, 0
    return kernel + bias, kernel


def external_spec(scalars: EventScalars, name: str) -> ExternalRunSpec:
    """What the files tell of the run: the wrappers' schedule and layers (Keras' model summary), epochs and steps."""
    layers: list[ExternalLayer] = []
    schedule = None
    model_layers = ((scalars.keras_model or {}).get("config") or {}).get("layers") or []
    for layer in model_layers if isinstance(model_layers, list) else []:
        if not isinstance(layer, dict) or layer.get("class_name") == "InputLayer":
            continue
        config = layer.get("config") or {}
        wrapped = layer.get("class_name") == "PruneLowMagnitude"
        inner = (config.get("layer") or {}) if wrapped else layer
        inner_config = inner.get("config") or {}
        input_shape = (layer.get("build_config") or {}).get("input_shape")
        params, prunable = _weights(str(inner.get("class_name", "")), inner_config, input_shape)
        layer_name = str(inner_config.get("name") or config.get("name") or f"layer{len(layers)}")
        if wrapped and schedule is None:
            schedule = _schedule(config.get("pruning_schedule") or {})
        if any(existing.name == layer_name for existing in layers):
            continue
        class_name = str(inner.get("class_name", ""))[:200]
        layers.append(
            ExternalLayer(name=layer_name[:200], class_name=class_name, params=params,
                          prunable_params=prunable if wrapped else 0, wrapped=wrapped)
        )  # fmt: skip
    pruning_steps = sorted({step for key, points in scalars.series.items() if key.startswith("layer_sparsity/")
                            for step in points})  # fmt: skip
    epoch_points = scalars.series.get("train/epoch_loss") or {}
    epochs = len(epoch_points) or None
    # PruningSummaries logs at each epoch's start, at the optimizer's iteration: the gap is an epoch's steps.
    steps_per_epoch = pruning_steps[1] - pruning_steps[0] if len(pruning_steps) >= 2 else None
    return ExternalRunSpec(
        source="tensorboard",
        name=name[:200],
        epochs=epochs if epochs and epochs <= 100_000 else None,
        steps_per_epoch=steps_per_epoch or None,
        schedule=schedule,
        layers=layers[:10_000],
    )


def measured_sparsity(scalars: EventScalars, spec: ExternalRunSpec) -> dict[int, tuple[float, float]]:
    """The prunable-weight-weighted mean of the layers' sparsity at each step all wrapped layers were logged."""
    weights = {layer.name: layer.prunable_params for layer in spec.layers if layer.wrapped and layer.prunable_params}
    series = [(scalars.series.get(f"layer_sparsity/{name}") or {}, weight) for name, weight in weights.items()]
    if not series or any(not points for points, _ in series):
        return {}
    total = sum(weights.values())
    shared = set.intersection(*(set(points) for points, _ in series))
    return {
        step: (sum(points[step][0] * weight for points, weight in series) / total,
               max(points[step][1] for points, _ in series))
        for step in sorted(shared)
    }  # fmt: skip
