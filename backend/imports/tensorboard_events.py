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
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tensorboard import data_compat
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors as stub_errors
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New
from tensorboard.util import tensor_util

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


def _scalar(value: Any) -> float | None:
    """A summary value's number, or None when it is not a scalar (images, histograms, text)."""
    if value.metadata.plugin_data.plugin_name != "scalars" or not value.HasField("tensor"):
        return None
    array = tensor_util.make_ndarray(value.tensor)
    if array.size != 1 or array.dtype.kind not in "fiub":
        return None
    return float(array.reshape(()))


def _keras_model(value: Any) -> dict[str, Any] | None:
    if value.metadata.plugin_data.plugin_name != "graph_keras_model" or not value.HasField("tensor"):
        return None
    try:
        raw = tensor_util.make_ndarray(value.tensor).reshape(-1)[0]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (ValueError, IndexError, AttributeError):
        return None
    return config if isinstance(config, dict) else None


def read_file(path: Path, folder: str, into: EventScalars) -> None:
    """Add the scalars of one event file (its folder relative to the log root) to `into`."""
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
            number = _scalar(value)
            if number is not None:
                into.add(metric_key(folder, value.tag), int(event.step), number, float(event.wall_time))
            elif into.keras_model is None:
                into.keras_model = _keras_model(value)


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


def finite_or_nan(value: float) -> float:
    return value if math.isfinite(value) else math.nan
