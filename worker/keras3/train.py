"""Train one keras-engine run (in its child process): the zoo's or an uploaded Keras 3 model, pruned by `Pruner`.

The same plan, data order, telemetry, checkpoint file, export checks and manifest as the tfmot engine
(`prunelab.worker.training`); only the Keras differs: Keras 3 on the run's backend, `prunelab.prune` for the
masks, and Keras 3's own files (`prunelab.keras3_export`). Imports Keras 3: run it in a process whose
KERAS_BACKEND is the run's backend (`prunelab.worker.keras3.process` starts one).
"""

from __future__ import annotations

import importlib.metadata
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from prunelab import keras3_export
from prunelab.core.exports import ARTIFACT_FILE_NAMES, export_sizes
from prunelab.core.plans import RunPlan
from prunelab.core.recipes import upload_id
from prunelab.core.specs import RunSpec
from prunelab.core.telemetry import Reporter
from prunelab.prune import Pruner
from prunelab.server.uploads.inspect_keras import inspect_keras, keras_major
from prunelab.telemetry_keras3 import Keras3TelemetryCallback, final_summary
from prunelab.worker.training import zoo
from prunelab.worker.training.checkpoint_file import Checkpointer, restore_checkpoint, write_checkpoint
from prunelab.worker.training.datasets import Dataset, load_dataset, split_validation
from prunelab.worker.training.epochs import epoch_arrays, steps_per_epoch
from prunelab.worker.training.plan_callback import HeldToPlan, TrainingStopped
from prunelab.worker.training.result import ModelNotUsable, TrainingResult, cancelled_result
from prunelab.worker.training.verify import ExportVerificationError, check_pruned_kernels, write_manifest

Data = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]


class Keras3PruningReporter(HeldToPlan, Keras3TelemetryCallback):
    """`Keras3TelemetryCallback` for a run the worker trains: held to the plan, stopped at once when asked."""


class EpochCheckpoint(keras.callbacks.Callback):
    """At each epoch end, the checkpoint file with the pruner's masks and step, handed to the checkpointer."""

    def __init__(self, checkpointer: Checkpointer, progress: Keras3PruningReporter, pruner: Pruner, scratch: Path):
        super().__init__()
        self.checkpointer, self.progress, self.pruner, self.scratch = checkpointer, progress, pruner, scratch

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        model = self.model  # on JAX this read syncs the trainer's state into the variables first
        self.scratch.mkdir(parents=True, exist_ok=True)
        path = self.scratch / f"epoch-{epoch + 1}.npz"
        write_checkpoint(path, model, self.progress, epoch + 1, None, extra=self.pruner.state())
        try:
            self.checkpointer.save(epoch + 1, self.progress.step, path)
        finally:
            path.unlink(missing_ok=True)


def compile_model(model: keras.Model, learning_rate: float) -> None:
    zoo.compile_model(model, learning_rate, keras)


def load_uploaded(path: Path) -> keras.Model:
    """An uploaded Keras 3 .keras file, checked again with the API's rules, loaded with safe_mode=True."""
    try:
        version = inspect_keras(path)["keras_version"]
        if (keras_major(version) or 2) < 3:
            raise ValueError(f"the model was saved by Keras {version}; the keras engine trains Keras 3 models only")
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # UploadRejected, or anything Keras raises on a file it cannot revive
        raise ModelNotUsable(f"the uploaded model cannot be loaded safely: {error}") from error


def starting_model(spec: RunSpec, dataset: Dataset, path: Path | None) -> keras.Model:
    """A fresh zoo model built with Keras 3, or the uploaded model the worker fetched."""
    if upload_id(spec.recipe) is None:
        return zoo.build_model(spec.model, dataset.info.input_shape, dataset.info.num_classes, keras=keras)
    if path is None:
        raise ModelNotUsable(f"the {spec.recipe.kind} recipe needs its starting model file")
    return load_uploaded(path)


def make_pruner(model: keras.Model, spec: RunSpec, plan: RunPlan) -> Pruner:
    """The plan's schedule (and per-layer schedules), structure and the spec's scope on `model`."""
    layer_schedules = {name: layer.schedule for name, layer in (plan.layer_schedules or {}).items()}
    try:
        return Pruner(model, plan.schedule, plan.structure, spec.scope, layer_schedules=layer_schedules)
    except ValueError as error:  # the scope names a layer the engine cannot prune (an upload's, by name)
        raise ModelNotUsable(str(error)) from error


def train(
    spec: RunSpec,
    plan: RunPlan,
    reporter: Reporter,
    *,
    data_dir: Path | None,
    output_dir: Path,
    start_model: Path | None = None,
    checkpoints: Checkpointer | None = None,
) -> TrainingResult:
    """Train, strip, verify and export a keras-engine run; the tfmot engine's `train` with Keras 3 inside."""
    started = time.monotonic()
    keras.utils.set_random_seed(spec.seed)
    dataset = load_dataset(spec.dataset, data_dir)
    data = split_validation(spec, plan, dataset)
    keras.utils.set_random_seed(spec.seed)
    dense = starting_model(spec, dataset, start_model)  # the size baseline
    keras.utils.set_random_seed(spec.seed)
    model = starting_model(spec, dataset, start_model)
    pruner = make_pruner(model, spec, plan)
    compile_model(model, spec.learning_rate)
    progress = Keras3PruningReporter(reporter, plan, spec.batch_size, pruner=pruner)
    if reporter.stop_requested():
        return cancelled_result(progress, started)
    first_epoch = 0
    latest = checkpoints.latest() if checkpoints is not None else None
    if latest is not None:
        resumed = restore_checkpoint(latest, model, progress, None)
        pruner.load_state(resumed.extra)
        first_epoch = resumed.epoch
    callbacks: list[keras.callbacks.Callback] = [pruner.callback(), progress]
    if checkpoints is not None:
        callbacks.append(EpochCheckpoint(checkpoints, progress, pruner, output_dir / ".checkpoints"))
    if first_epoch < spec.epochs and fit_epochs(model, progress, spec, data, (first_epoch, spec.epochs), callbacks):
        return cancelled_result(progress, started)
    if progress.step != plan.training_steps:
        raise RuntimeError(f"training ran {progress.step} steps, the plan {plan.training_steps}")
    return deliver(pruner, dense, progress, spec, plan, dataset, output_dir, reporter, started)


def fit_epochs(
    model: keras.Model,
    progress: Keras3PruningReporter,
    spec: RunSpec,
    data: Data,
    epochs: tuple[int, int],
    callbacks: list[keras.callbacks.Callback],
) -> bool:
    """Train epochs [first, last) in the order (seed, epoch) gives; returns whether the run was stopped."""
    (x_train, y_train), validation = data
    try:
        model.fit(
            epoch_arrays(x_train, y_train, spec.batch_size, spec.seed, epochs),
            steps_per_epoch=steps_per_epoch(len(x_train), spec.batch_size),
            initial_epoch=epochs[0],
            epochs=epochs[1],
            validation_data=validation,
            validation_batch_size=spec.batch_size,
            shuffle=False,  # the batches come in the epoch's own order (`epochs.epoch_order`)
            verbose=0,
            callbacks=callbacks,
        )
    except TrainingStopped:
        pass
    finally:
        progress.close()
    return progress.cancelled


def library_versions() -> dict[str, str]:
    backend = keras.backend.backend()
    versions = {"keras": keras.__version__, "keras_backend": backend}
    package = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if package is not None:
        versions[package] = importlib.metadata.version(package)
    return versions


def write_model_files(model: keras.Model, formats: list[str], folder: Path) -> dict[str, Path]:
    """The spec's formats through Keras 3's own saving and LiteRT export (`prunelab.keras3_export`)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {name: keras3_export.save(model, name, folder) for name in formats}


def verify_files(stripped: keras.Model, files: dict[str, Path], x_test: np.ndarray) -> dict[str, float]:
    """The .keras file holds the stripped weights and no optimizer; each TFLite file runs. Returns TFLite latency."""
    if "keras" in files:
        loaded = keras.saving.load_model(files["keras"])  # compiled (with its optimizer) if the file keeps one
        if getattr(loaded, "optimizer", None) is not None:
            raise ExportVerificationError("the exported .keras model carries an optimizer")
        for saved, kept in zip(loaded.get_weights(), stripped.get_weights(), strict=True):
            if not np.array_equal(saved, kept):
                raise ExportVerificationError("the exported .keras model's weights differ from the stripped model's")
    latency: dict[str, float] = {}
    tflite = [name for name in ("tflite", "tflite_int8") if name in files]
    if tflite:
        # TFLite's interpreter is TensorFlow's: loaded after training, only to run the files.
        from prunelab.worker.training import export_tflite

        for name in tflite:
            latency[f"{name}_latency_ms"] = export_tflite.latency_ms(files[name], x_test)
    return latency


def pruned_kernels(pruner: Pruner, stripped: keras.Model) -> dict[str, list[np.ndarray]]:
    """Each pruned layer's pruned kernels as `strip()` exported them (same layer names, variables in order)."""
    kernels: dict[str, list[np.ndarray]] = {}
    for weight in pruner.weights:
        position = [id(variable) for variable in pruner.model.get_layer(weight.layer_name).weights].index(
            id(weight.variable)
        )
        exported = stripped.get_layer(weight.layer_name).weights[position]
        kernels.setdefault(weight.layer_name, []).append(keras.ops.convert_to_numpy(exported.value))
    return kernels


def deliver(
    pruner: Pruner,
    dense: keras.Model,
    progress: Keras3PruningReporter,
    spec: RunSpec,
    plan: RunPlan,
    dataset: Dataset,
    output_dir: Path,
    reporter: Reporter,
    started: float,
) -> TrainingResult:
    """Strip, verify and export the trained model, evaluate it on the test set, sizes against the dense model."""
    progress.drain()
    stripped = pruner.strip()
    measured = check_pruned_kernels(pruned_kernels(pruner, stripped), progress.layer_sparsity, spec)
    files = write_model_files(stripped, list(spec.exports), output_dir)
    summary: dict[str, Any] = verify_files(stripped, files, dataset.x_test)
    files["masks"] = progress.masks.save(output_dir / ARTIFACT_FILE_NAMES["masks"])
    files["manifest"] = write_manifest(
        output_dir / ARTIFACT_FILE_NAMES["manifest"], spec, plan, measured, files, versions=library_versions()
    )
    summary.update(export_sizes(files))
    with tempfile.TemporaryDirectory(prefix=".dense-", dir=output_dir) as scratch:
        dense_sizes = export_sizes(write_model_files(dense, list(spec.exports), Path(scratch)), prefix="dense_")
    summary.update(dense_sizes)
    for name in spec.exports:
        summary[f"{name}_zip_ratio"] = dense_sizes[f"dense_{name}_zip_bytes"] / summary[f"{name}_zip_bytes"]
    compile_model(stripped, spec.learning_rate)
    test_loss, test_accuracy = stripped.evaluate(dataset.x_test, dataset.y_test, batch_size=spec.batch_size, verbose=0)
    reporter.log(progress.step, {"test_loss": test_loss, "test_accuracy": test_accuracy}, progress.wall_time())
    summary.update(
        {
            "test_loss": float(test_loss),
            "test_accuracy": float(test_accuracy),
            **final_summary(stripped, pruner),
            "wall_time_s": time.monotonic() - started,
            "steps": progress.step,
        }
    )
    return TrainingResult(summary=summary, exports=files, cancelled=False, steps_completed=progress.step)
