"""One training of the keras3_engine section, in a process of its own: `python -m bench.keras3_side CONFIG.json`.

Which Keras this process loads is fixed before it starts (`harness.sides.start_side` sets the environment):
engine `tfmot` is tfmot 0.8.1 on tf-keras (TF_USE_LEGACY_KERAS=1) through the worker's own pieces
(`worker.training.pruning.prune_model`, `train.compile_model`, `export.strip`); engine `keras` is Keras 3 on
KERAS_BACKEND with `prunelab.prune.Pruner`. Both build the zoo's model from its one definition, load the dataset
with the worker's loader, read the batches in the worker's order (`epochs.epoch_order`, per seed and epoch) and,
given `initial_weights`, start from the same weights. `prune: false` is plain `model.fit` of the same model.

Writes `result.json` in the config's `out` folder (per-epoch seconds, test accuracy, per-kernel measured sparsity,
zipped .h5 size) and, when asked, the final weights and a digest of every weight tensor after every step (to find
the first step at which two engines part).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from prunelab.core.exports import zipped_size
from prunelab.core.plans import resolve_plan, split_sizes
from prunelab.core.specs import RunSpec
from prunelab.core.telemetry import weight_counts
from prunelab.worker.training.datasets import load_dataset
from prunelab.worker.training.epochs import epoch_order, steps_per_epoch

DIGEST_BYTES = 8


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, epochs: int) -> Iterator[tuple[Any, Any]]:
    """Every epoch's batches in the worker's order for (seed, epoch), the last one short, as numpy arrays."""
    for epoch in range(epochs):
        order = epoch_order(seed, epoch, len(x))
        for start in range(0, len(x), batch_size):
            indices = order[start : start + batch_size]
            yield x[indices], y[indices]


def digest(array: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=DIGEST_BYTES).digest()


def recorder(keras: Any, tensors: list[tuple[str, Any]], folder: Path, digests: bool) -> Any:
    """A callback of `keras` timing each epoch's training batches, and (if `digests`) hashing `tensors` per step.

    It goes last, so an epoch's time includes the other callbacks' epoch-end work (the engine's masking).
    """

    class Recorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch_seconds: list[float] = []
            self.step_digests: list[list[bytes]] = []
            self.epoch_weights: list[list[np.ndarray]] = []
            self._started = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._started = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if digests:
                _ = self.model  # on JAX this syncs the trainer's state into the variables
                self.step_digests.append([digest(np.asarray(var)) for _, var in tensors])

        def on_test_begin(self, logs: dict | None = None) -> None:
            if self._started:  # validation at the epoch's end: the training batches are done
                self.epoch_seconds.append(time.perf_counter() - self._started)
                self._started = 0.0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self._started:
                self.epoch_seconds.append(time.perf_counter() - self._started)
                self._started = 0.0
            if digests:
                self.epoch_weights.append([np.array(var) for _, var in tensors])

        def save(self) -> None:
            if digests:
                names = [name for name, _ in tensors]
                np.savez(
                    folder / "digests.npz",
                    names=np.array(names),
                    digests=np.frombuffer(b"".join(b"".join(row) for row in self.step_digests), dtype=np.uint8).reshape(
                        len(self.step_digests), len(names), DIGEST_BYTES
                    ),
                )
                np.savez(
                    folder / "epoch_weights.npz",
                    **{
                        f"{epoch}/{name}": value
                        for epoch, values in enumerate(self.epoch_weights)
                        for name, value in zip(names, values, strict=True)
                    },
                )

    return Recorder()


def _named(layers: list[Any], keras_weights: Any) -> list[tuple[str, Any]]:
    """(layer/variable, variable) for each weight of each layer, in the model's order."""
    return [(f"{layer.name}/{name}", variable) for layer in layers for name, variable in keras_weights(layer)]


def train_tfmot(config: dict[str, Any], spec: RunSpec, folder: Path) -> dict[str, Any]:
    """tfmot on tf-keras as the worker runs it: prune_model, UpdatePruningStep, fit, strip_pruning."""
    from prunelab.telemetry_callback import final_summary, pruned_refs
    from prunelab.worker.training import export
    from prunelab.worker.training.pruning import prune_model
    from prunelab.worker.training.tf import keras, tfmot
    from prunelab.worker.training.train import compile_model
    from prunelab.worker.training.zoo import build_model

    plan, dataset, model = _start(config, spec, keras, build_model)
    callbacks: list[Any] = []
    decisions: list[Any] = []
    if config.get("prune", True):
        model, decisions = prune_model(model, spec, plan)
        callbacks.append(tfmot.sparsity.keras.UpdatePruningStep())
    compile_model(model, spec.learning_rate)
    layers = [getattr(layer, "layer", layer) for layer in model.layers]  # a wrapped layer's own variables
    tensors = _named(layers, lambda layer: [(w.name.split("/")[-1].split(":")[0], w) for w in layer.weights])
    timer = _fit(config, spec, folder, keras, model, dataset, callbacks, tensors)
    refs = pruned_refs(model) if config.get("prune", True) else set()
    stripped = export.strip(model)
    summary = final_summary(stripped, refs, decisions) if config.get("prune", True) else {}
    pruned_kernels = [
        f"{layer.name}/{index}"
        for layer in stripped.layers
        for index, weight in enumerate(layer.weights)
        if weight.ref() in refs
    ]
    return {
        "epoch_seconds": timer.epoch_seconds,
        "steps_per_epoch": plan.steps_per_epoch,
        **_outcome(config, spec, folder, stripped, pruned_kernels, compile_model, dataset, summary),
    }


def train_keras(config: dict[str, Any], spec: RunSpec, folder: Path) -> dict[str, Any]:
    """PruneLab's engine on Keras 3 (this process's KERAS_BACKEND): Pruner with the plan's schedule, fit, strip."""
    import keras

    from prunelab.prune import Pruner
    from prunelab.telemetry_keras3 import final_summary
    from prunelab.worker.training.zoo import build_model

    def build(name: str, input_shape: tuple[int, ...], num_classes: int) -> Any:
        return build_model(name, input_shape, num_classes, keras=keras)

    def compile_model(model: Any, learning_rate: float) -> None:  # the worker's compile_model, in Keras 3
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )

    plan, dataset, model = _start(config, spec, keras, build)
    compile_model(model, spec.learning_rate)
    pruner = Pruner(model, plan.schedule, plan.structure, spec.scope) if config.get("prune", True) else None
    callbacks = [pruner.callback()] if pruner is not None else []
    tensors = _named(list(model.layers), lambda layer: [(w.name, w) for w in layer.weights])
    timer = _fit(config, spec, folder, keras, model, dataset, callbacks, tensors)
    stripped = pruner.strip() if pruner is not None else model
    summary = final_summary(stripped, pruner) if pruner is not None else {}
    pruned = {id(weight.variable) for weight in pruner.weights} if pruner is not None else set()
    pruned_kernels = [
        f"{layer.name}/{index}"
        for layer in model.layers
        for index, weight in enumerate(layer.weights)
        if id(weight) in pruned
    ]
    result = {
        "epoch_seconds": timer.epoch_seconds,
        "steps_per_epoch": plan.steps_per_epoch,
        "backend": keras.backend.backend(),
        **_outcome(config, spec, folder, stripped, pruned_kernels, compile_model, dataset, summary),
    }
    if pruner is not None:
        result["steps"] = pruner.step
    return result


def _start(config: dict[str, Any], spec: RunSpec, keras: Any, build_model: Any) -> tuple[Any, Any, Any]:
    """The plan, the dataset and the zoo's model, seeded as the worker seeds them, from the given initial weights."""
    plan = resolve_plan(spec)
    keras.utils.set_random_seed(spec.seed)
    dataset = load_dataset(spec.dataset, config.get("data_dir"))
    keras.utils.set_random_seed(spec.seed)
    model = build_model(spec.model, dataset.info.input_shape, dataset.info.num_classes)
    if config.get("initial_weights"):
        with np.load(config["initial_weights"]) as saved:
            model.set_weights([saved[str(index)] for index in range(len(saved.files))])
    return plan, dataset, model


def _fit(config: dict[str, Any], spec: RunSpec, folder: Path, keras: Any, model: Any, dataset: Any,
         callbacks: list[Any], tensors: list[tuple[str, Any]]) -> Any:  # fmt: skip
    """`model.fit` over the worker's batch order with the recorder last; the recorder, its records saved."""
    timer = recorder(keras, tensors, folder, bool(config.get("digests")))
    model.fit(**_fit_arguments(config, spec, dataset), callbacks=[*callbacks, timer])
    timer.save()
    return timer


def _fit_arguments(config: dict[str, Any], spec: RunSpec, dataset: Any) -> dict[str, Any]:
    train_count, validation_count = split_sizes(dataset.info, spec.validation_split)
    x, y = dataset.x_train[:train_count], dataset.y_train[:train_count]
    arguments: dict[str, Any] = {
        "x": batches(x, y, spec.batch_size, spec.seed, spec.epochs),
        "steps_per_epoch": steps_per_epoch(train_count, spec.batch_size),
        "epochs": spec.epochs,
        "verbose": 0,
    }
    if validation_count and config.get("validation", True):
        arguments["validation_data"] = (dataset.x_train[train_count:], dataset.y_train[train_count:])
        arguments["validation_batch_size"] = spec.batch_size
    return arguments


def _outcome(
    config: dict[str, Any],
    spec: RunSpec,
    folder: Path,
    stripped: Any,
    pruned_kernels: list[str],
    compile_model: Any,
    dataset: Any,
    summary: dict[str, Any],
) -> dict[str, Any]:
    """Test accuracy, each pruned kernel's measured sparsity and the zipped .h5, measured on the stripped model."""
    weights = {
        f"{layer.name}/{index}": np.asarray(value)
        for layer in stripped.layers
        for index, value in enumerate(layer.get_weights())
    }
    if config.get("save_weights"):
        np.savez(folder / "final_weights.npz", **weights)  # type: ignore[arg-type]
    result: dict[str, Any] = {
        "kernel_sparsity": {
            name: float(weight_counts([weights[name]], [weights[name]])["measured_sparsity"]) for name in pruned_kernels
        },
        "measured_sparsity": summary.get("measured_sparsity"),
    }
    if config.get("evaluate", True):
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "model.h5"
            stripped.save(path, include_optimizer=False) if config["engine"] == "tfmot" else stripped.save(path)
            result["h5_zip_bytes"] = zipped_size(path)
        compile_model(stripped, spec.learning_rate)
        _, accuracy = stripped.evaluate(dataset.x_test, dataset.y_test, batch_size=spec.batch_size, verbose=0)
        result["test_accuracy"] = float(accuracy)
    return result


def initial_weights(config: dict[str, Any], spec: RunSpec, folder: Path) -> dict[str, Any]:
    """The zoo model's initial weights for `spec.seed`, built in Keras 3, saved for both engines."""
    import keras

    from prunelab.worker.training.zoo import build_model

    info = load_dataset(spec.dataset, config.get("data_dir")).info
    keras.utils.set_random_seed(spec.seed)
    model = build_model(spec.model, info.input_shape, info.num_classes, keras=keras)
    np.savez(folder / "initial_weights.npz", **{str(index): value for index, value in enumerate(model.get_weights())})
    return {"tensors": len(model.get_weights())}


def main(config_path: Path) -> None:
    config = json.loads(config_path.read_text())
    spec = RunSpec.model_validate(config["spec"])
    folder = Path(config["out"])
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_at_start = " ".join(f"{value:.2f}" for value in os.getloadavg())
    if config["engine"] == "initial_weights":
        result = initial_weights(config, spec, folder)
    elif config["engine"] == "tfmot":
        result = train_tfmot(config, spec, folder)
    else:
        result = train_keras(config, spec, folder)
    result["wall_s"] = time.perf_counter() - started
    # The machine's load while this run trained: a later stored-only read of the section reports it, not its own.
    result["load_average"] = [load_at_start, " ".join(f"{value:.2f}" for value in os.getloadavg())]
    (folder / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
