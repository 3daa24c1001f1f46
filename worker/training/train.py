"""Train one pruning run from its plan: the training library's entry point for the worker."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.plans import RunPlan, split_sizes
from backend.scope import LayerDecision
from backend.specs import RunSpec
from worker.training import export
from worker.training.callbacks import PruningReporter, TrainingStopped
from worker.training.datasets import Dataset, load_dataset
from worker.training.deliver import deliver
from worker.training.pruning import coverage_report, prune_model
from worker.training.reporting import Reporter
from worker.training.schedules import tfmot_schedule
from worker.training.tf import keras, tfmot
from worker.training.verify import verify_export
from worker.training.zoo import build_model

__all__ = ["TrainingResult", "build_pruned_model", "compile_model", "split_validation", "tfmot_schedule", "train"]


@dataclass
class TrainingResult:
    summary: dict[str, Any]
    exports: dict[str, Path]  # artifact format -> file (model formats, "masks", "manifest"); empty if cancelled
    cancelled: bool
    steps_completed: int


def compile_model(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def build_pruned_model(spec: RunSpec, plan: RunPlan, dataset: Dataset) -> keras.Model:
    """The spec's model with its scope's layers wrapped for pruning under the plan's schedule, compiled."""
    return build_pruned_model_with_coverage(spec, plan, dataset)[0]


def build_pruned_model_with_coverage(
    spec: RunSpec, plan: RunPlan, dataset: Dataset
) -> tuple[keras.Model, list[LayerDecision]]:
    model = build_model(spec.model, dataset.info.input_shape, dataset.info.num_classes)
    pruned, decisions = prune_model(model, spec, plan)
    compile_model(pruned, spec.learning_rate)
    return pruned, decisions


def split_validation(
    spec: RunSpec, plan: RunPlan, dataset: Dataset
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """Train on the first plan.train_examples examples and validate on the rest, as Keras would."""
    train_count, validation_count = split_sizes(dataset.info, spec.validation_split)
    if (train_count, validation_count) != (plan.train_examples, plan.validation_examples):
        raise ValueError(
            f"the plan splits {plan.train_examples}/{plan.validation_examples} examples, "
            f"the spec {train_count}/{validation_count}: resolve the plan from this spec"
        )
    train = (dataset.x_train[:train_count], dataset.y_train[:train_count])
    validation = (dataset.x_train[train_count:], dataset.y_train[train_count:]) if validation_count else None
    return train, validation


def train(
    spec: RunSpec, plan: RunPlan, reporter: Reporter, *, data_dir: Path | None, output_dir: Path
) -> TrainingResult:
    """Prune-train the spec's model, report through `reporter`, and export the stripped model."""
    started = time.monotonic()
    keras.utils.set_random_seed(spec.seed)
    dataset = load_dataset(spec.dataset, data_dir)
    (x_train, y_train), validation = split_validation(spec, plan, dataset)
    keras.utils.set_random_seed(spec.seed)
    dense = build_model(spec.model, dataset.info.input_shape, dataset.info.num_classes)  # the size baseline
    keras.utils.set_random_seed(spec.seed)
    model, decisions = build_pruned_model_with_coverage(spec, plan, dataset)
    progress = PruningReporter(reporter, plan, spec.batch_size)
    if reporter.stop_requested():
        return _cancelled(progress, started)
    try:
        model.fit(
            x_train,
            y_train,
            batch_size=spec.batch_size,
            epochs=spec.epochs,
            validation_data=validation,
            shuffle=True,
            verbose=0,
            callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), progress],
        )
    except TrainingStopped:
        pass
    finally:
        progress.close()
    if progress.cancelled:
        return _cancelled(progress, started)
    if progress.step != plan.total_steps:
        raise RuntimeError(f"training ran {progress.step} steps, the plan {plan.total_steps}")

    pruned = export.pruned_weights(model)
    prunable_param_count = sum(weight.variable.shape.num_elements() for weight in pruned)
    pruned_names = {weight.variable.name for weight in pruned}
    pruned_kernels: dict[str, list[str]] = {}
    for weight in pruned:
        pruned_kernels.setdefault(weight.layer_name, []).append(weight.variable.name)
    stripped = export.strip(model)
    measured_by_layer = verify_export(stripped, pruned_kernels, progress.layer_sparsity, spec)
    delivery = deliver(stripped, dense, spec, plan, dataset, output_dir, measured_by_layer, progress.masks)
    compile_model(stripped, spec.learning_rate)
    test_loss, test_accuracy = stripped.evaluate(dataset.x_test, dataset.y_test, batch_size=spec.batch_size, verbose=0)
    reporter.log(progress.step, {"test_loss": test_loss, "test_accuracy": test_accuracy}, progress.wall_time())

    weights = {variable.name: variable.numpy() for variable in stripped.weights}
    pruned_zeros = sum(weights[name].size - np.count_nonzero(weights[name]) for name in pruned_names)
    summary: dict[str, Any] = {
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "param_count": int(stripped.count_params()),
        "prunable_param_count": int(prunable_param_count),
        "nonzero_params": int(sum(np.count_nonzero(value) for value in weights.values())),
        "measured_sparsity": float(pruned_zeros / prunable_param_count) if prunable_param_count else 0.0,
        **delivery.summary,
        "coverage": coverage_report(decisions, stripped, model),
        "wall_time_s": time.monotonic() - started,
        "steps": progress.step,
    }
    return TrainingResult(summary=summary, exports=delivery.files, cancelled=False, steps_completed=progress.step)


def _cancelled(progress: PruningReporter, started: float) -> TrainingResult:
    summary: dict[str, Any] = {
        "steps": progress.step,
        "measured_sparsity": progress.measured_sparsity,
        "wall_time_s": time.monotonic() - started,
    }
    return TrainingResult(summary=summary, exports={}, cancelled=True, steps_completed=progress.step)
