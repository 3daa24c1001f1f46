"""Train one run from its plan, whatever its recipe: the training library's entry point for the worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from prunelab.core.exports import ARTIFACT_FILE_NAMES, zipped_size
from prunelab.core.plans import RunPlan
from prunelab.core.recipes import LotteryTicketRecipe, SensitivityRecipe
from prunelab.core.scope import DENSE_RUN, LayerDecision
from prunelab.core.specs import RunSpec
from prunelab.telemetry_callback import final_summary, pruned_refs
from prunelab.worker.training import compress, export, zoo
from prunelab.worker.training.callbacks import PruningReporter, TrainingStopped
from prunelab.worker.training.checkpoints import Checkpointer, EpochCheckpoint, resume_from
from prunelab.worker.training.datasets import Dataset, load_dataset, split_validation
from prunelab.worker.training.deliver import deliver
from prunelab.worker.training.epochs import epoch_batches, steps_per_epoch
from prunelab.worker.training.pruning import dense_decisions, prune_model
from prunelab.worker.training.recipes import lottery, sensitivity
from prunelab.worker.training.recipes.start import starting_model
from prunelab.worker.training.reporting import Reporter
from prunelab.worker.training.result import TrainingResult, cancelled_result
from prunelab.worker.training.tf import keras, tfmot
from prunelab.worker.training.tfmot_schedules import tfmot_schedule
from prunelab.worker.training.verify import verify_export

__all__ = ["TrainingResult", "build_pruned_model", "compile_model", "split_validation", "tfmot_schedule", "train"]


def compile_model(model: keras.Model, learning_rate: float) -> None:
    zoo.compile_model(model, learning_rate, keras)


def build_pruned_model(spec: RunSpec, plan: RunPlan, dataset: Dataset) -> keras.Model:
    """The spec's model with its scope's layers wrapped for pruning under the plan's schedule, compiled."""
    return prepare_model(spec, plan, dataset, None)[0]


def prepare_model(
    spec: RunSpec, plan: RunPlan, dataset: Dataset, start_model: Path | None
) -> tuple[keras.Model, list[LayerDecision]]:
    """The starting model, wrapped for pruning when the recipe prunes, compiled; with its coverage decisions."""
    info = dataset.info
    model = starting_model(spec, plan, info.input_shape, info.num_classes, start_model)
    if plan.prunes:
        model, decisions = prune_model(model, spec, plan)
    else:
        decisions = dense_decisions(model, spec)
    compile_model(model, spec.learning_rate)
    return model, decisions


def fit_epochs(
    model: keras.Model,
    progress: PruningReporter,
    spec: RunSpec,
    data: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None],
    epochs: tuple[int, int],
    callbacks: list[keras.callbacks.Callback] | None = None,
    checkpoint: keras.callbacks.Callback | None = None,
) -> bool:
    """Train epochs [first, last) with tfmot's step callback and the reporter; returns whether it was stopped.

    Each epoch reads the examples in the order (seed, epoch) gives (`epochs.epoch_order`), so a run resumed
    from a checkpoint reads what it would have read; `checkpoint` runs last at each epoch end.
    """
    (x_train, y_train), validation = data
    try:
        model.fit(
            epoch_batches(x_train, y_train, spec.batch_size, spec.seed, epochs),
            steps_per_epoch=steps_per_epoch(len(x_train), spec.batch_size),
            initial_epoch=epochs[0],
            epochs=epochs[1],
            validation_data=validation,
            validation_batch_size=spec.batch_size,
            verbose=0,
            callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), *(callbacks or []), progress, *_listed(checkpoint)],
        )
    except TrainingStopped:
        pass
    finally:
        progress.close()
    return progress.cancelled


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
    """Train the spec's recipe, report through `reporter`, and export the stripped model.

    `start_model` is the local file a pretrained, uploaded_model or sensitivity run starts from. With
    `checkpoints`, training continues after the latest checkpoint and stores one at each epoch end.
    """
    started = time.monotonic()
    keras.utils.set_random_seed(spec.seed)
    dataset = load_dataset(spec.dataset, data_dir)
    data = split_validation(spec, plan, dataset)
    keras.utils.set_random_seed(spec.seed)
    info = dataset.info
    dense = starting_model(spec, plan, info.input_shape, info.num_classes, start_model)  # the size baseline
    keras.utils.set_random_seed(spec.seed)
    model, decisions = prepare_model(spec, plan, dataset, start_model)
    progress = PruningReporter(reporter, plan, spec.batch_size)
    if reporter.stop_requested():
        return cancelled_result(progress, started)
    rewind_point = None
    if isinstance(spec.recipe, LotteryTicketRecipe):
        initial = lottery.weight_snapshot(model) if spec.recipe.rewind_epoch == 0 else None
        rewind_point = lottery.RewindSnapshot(spec.recipe.rewind_epoch, initial)
        progress.epoch_metrics = {"phase": 1}
    resumed = resume_from(checkpoints, model, progress, rewind_point)
    first_epoch = resumed.epoch if resumed is not None else 0
    saver = EpochCheckpoint(checkpoints, progress, output_dir, rewind_point) if checkpoints is not None else None
    if (
        plan.training_steps
        and first_epoch < spec.epochs
        and fit_epochs(model, progress, spec, data, (first_epoch, spec.epochs), _listed(rewind_point), saver)
    ):
        return cancelled_result(progress, started)
    if progress.step != plan.training_steps:
        raise RuntimeError(f"training ran {progress.step} steps, the plan {plan.training_steps}")
    extra: dict[str, Any] = {}
    record = None
    if isinstance(spec.recipe, LotteryTicketRecipe) and rewind_point is not None:
        assert rewind_point.snapshot is not None, "no weights were kept to rewind to"
        record = lottery.rewind(model, rewind_point.snapshot)
        compile_model(model, spec.learning_rate)  # a fresh optimizer: retraining starts over from rewound weights
        progress.epoch_metrics = {"phase": 2}
        if fit_epochs(model, progress, spec, data, (spec.epochs, spec.epochs + spec.recipe.retrain_epochs)):
            return cancelled_result(progress, started)
    if isinstance(spec.recipe, SensitivityRecipe):
        table = _sweep(model, spec, plan, dataset, data, progress, reporter, decisions)
        if table is None:
            return cancelled_result(progress, started)
        extra["sensitivity"] = table
    # An uploaded model's sweep learns its layers (and so its step count) only here.
    if progress.step != plan.total_steps and plan.sensitivity_layers is not None:
        raise RuntimeError(f"the run ended at step {progress.step}, the plan at {plan.total_steps}")
    result = _deliver(model, dense, decisions, progress, spec, plan, dataset, data, output_dir, reporter, started)
    if result.cancelled:
        return result
    result.summary.update(extra)
    if record is not None:
        result.rewind = record
        result.exports["rewind"] = record.save(output_dir / ARTIFACT_FILE_NAMES["rewind"])
    return result


def _listed(callback: keras.callbacks.Callback | None) -> list[keras.callbacks.Callback]:
    return [callback] if callback is not None else []


def _sweep(
    model: keras.Model,
    spec: RunSpec,
    plan: RunPlan,
    dataset: Dataset,
    data: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None],
    progress: PruningReporter,
    reporter: Reporter,
    decisions: list[LayerDecision],
) -> dict[str, Any] | None:
    """The sensitivity table on the validation set (the test set when the spec keeps no validation split)."""
    assert isinstance(spec.recipe, SensitivityRecipe)
    x, y = data[1] if data[1] is not None else (dataset.x_test, dataset.y_test)
    layers = plan.sensitivity_layers
    if layers is None:  # an uploaded model: every layer its scope prunes
        layers = [decision.name for decision in decisions if decision.reason == DENSE_RUN]

    def evaluate() -> float:
        return float(model.evaluate(x, y, batch_size=spec.batch_size, verbose=0)[1])

    table = sensitivity.sweep(
        model, layers, spec.recipe.sparsities, evaluate, reporter, progress.step, progress.wall_time()
    )
    if table is None:
        return None
    progress.step += len(layers) * len(spec.recipe.sparsities)
    return {**table, "evaluated_on": "validation" if data[1] is not None else "test"}


def _deliver(
    model: keras.Model,
    dense: keras.Model,
    decisions: list[LayerDecision],
    progress: PruningReporter,
    spec: RunSpec,
    plan: RunPlan,
    dataset: Dataset,
    data: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None],
    output_dir: Path,
    reporter: Reporter,
    started: float,
) -> TrainingResult:
    """Strip, verify and export the trained model; evaluate it on the test set; run the compress stages."""
    pruned_kernels: dict[str, list[str]] = {}
    for weight in export.pruned_weights(model):
        pruned_kernels.setdefault(weight.layer_name, []).append(weight.variable.name)
    refs = pruned_refs(model)
    stripped = export.strip(model)
    measured_by_layer = verify_export(stripped, pruned_kernels, progress.layer_sparsity, spec)
    delivery = deliver(stripped, dense, spec, plan, dataset, output_dir, measured_by_layer, progress.masks)
    compile_model(stripped, spec.learning_rate)
    test_loss, test_accuracy = stripped.evaluate(dataset.x_test, dataset.y_test, batch_size=spec.batch_size, verbose=0)
    reporter.log(progress.step, {"test_loss": test_loss, "test_accuracy": test_accuracy}, progress.wall_time())

    summary: dict[str, Any] = {
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        **final_summary(stripped, refs, decisions),
        **delivery.summary,
        "wall_time_s": time.monotonic() - started,
        "steps": progress.step,
    }
    files = delivery.files
    if spec.compress:
        compressed = _compress(stripped, dense, progress, spec, plan, dataset, data, output_dir, reporter, summary)
        if compressed.cancelled:
            return cancelled_result(progress, started)
        summary.update(compressed.summary)
        files = {**files, **compressed.files}
        summary.update(export.export_sizes(compressed.files))
        summary["wall_time_s"], summary["steps"] = time.monotonic() - started, progress.step
    return TrainingResult(summary=summary, exports=files, cancelled=False, steps_completed=progress.step)


def _compress(
    stripped: keras.Model,
    dense: keras.Model,
    progress: PruningReporter,
    spec: RunSpec,
    plan: RunPlan,
    dataset: Dataset,
    data: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None],
    output_dir: Path,
    reporter: Reporter,
    summary: dict[str, Any],
) -> compress.Compressed:
    """The compress stages, measured against the pruned model's .h5 and the dense model's zipped .h5."""
    scratch = export.scratch_folder(output_dir, "baselines")
    try:
        pruned_h5 = export.save_exports(stripped, scratch / "pruned", ["h5"])["h5"]
        dense_zip = summary.get("dense_h5_zip_bytes") or zipped_size(
            export.save_exports(dense, scratch / "dense", ["h5"])["h5"]
        )
        return compress.compress(
            stripped,
            spec,
            plan,
            dataset,
            data,
            progress,
            reporter,
            output_dir,
            pruned_file=pruned_h5,
            pruned_accuracy=summary["test_accuracy"],
            dense_zip_bytes=int(dense_zip),
            fit_epochs=fit_epochs,
            compile_model=compile_model,
        )
    finally:
        export.remove_folder(scratch)
