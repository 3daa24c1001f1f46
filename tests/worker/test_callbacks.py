"""The reporting callback: per-batch values recovered from Keras's running means."""

from __future__ import annotations

import numpy as np
import pytest

from prunelab.core.plans import resolve_plan
from prunelab.core.telemetry import BatchMetricRecovery
from prunelab.worker.training.callbacks import PruningReporter
from prunelab.worker.training.datasets import load_dataset
from prunelab.worker.training.reporting import MemoryReporter
from prunelab.worker.training.tf import keras, tfmot
from prunelab.worker.training.train import build_pruned_model, split_validation
from tests.worker.conftest import DATA_DIR, POLYNOMIAL_SPEC


def test_recovery_inverts_float32_running_means_with_a_short_last_batch() -> None:
    rng = np.random.default_rng(0)
    # 10 examples in batches of 4, 4 and 2
    losses = rng.uniform(0.1, 3.0, size=3)
    correct = [3, 4, 1]
    sizes = [4, 4, 2]
    recovery = BatchMetricRecovery()
    loss_total = correct_total = seen = 0.0
    for index, size in enumerate(sizes):
        loss_total += np.float32(losses[index] * size)
        correct_total += correct[index]
        seen += size
        running = {"loss": float(np.float32(loss_total / seen)), "accuracy": float(np.float32(correct_total / seen))}
        values = recovery.batch_values(index, running, seen_examples=seen)
        assert values["accuracy"] == correct[index] / size
        assert values["loss"] == pytest.approx(losses[index], rel=1e-5)
    recovery.start_epoch()
    assert recovery.batch_values(0, {"loss": 1.5, "accuracy": 0.25}, seen_examples=4) == {"loss": 1.5, "accuracy": 0.25}


def test_batch_values_average_to_the_epoch_values_keras_reports() -> None:
    spec, plan = POLYNOMIAL_SPEC, resolve_plan(POLYNOMIAL_SPEC)
    keras.utils.set_random_seed(spec.seed)
    dataset = load_dataset(spec.dataset, DATA_DIR)
    (x_train, y_train), validation = split_validation(spec, plan, dataset)
    model = build_pruned_model(spec, plan, dataset)
    reporter = MemoryReporter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=spec.batch_size,
        epochs=spec.epochs,
        validation_data=validation,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), PruningReporter(reporter, plan, spec.batch_size)],
    )
    batch_sizes = [spec.batch_size] * (plan.steps_per_epoch - 1)
    batch_sizes.append(plan.train_examples - spec.batch_size * (plan.steps_per_epoch - 1))
    assert batch_sizes[-1] < spec.batch_size  # the short last batch is part of what is checked
    for key in ("accuracy", "loss"):
        series = reporter.series(key)
        for epoch in range(spec.epochs):
            steps = range(epoch * plan.steps_per_epoch + 1, (epoch + 1) * plan.steps_per_epoch + 1)
            values = np.array([series[step] for step in steps])
            mean = float(np.dot(values, batch_sizes) / plan.train_examples)
            assert mean == pytest.approx(history.history[key][epoch], abs=1e-5), key
            if key == "accuracy":
                assert np.all((values >= 0) & (values <= 1))
                # Each batch's accuracy is a whole number of correct examples.
                np.testing.assert_allclose(values * batch_sizes, np.round(values * batch_sizes), atol=1e-9)
    val_accuracy = reporter.series("val_accuracy")
    assert list(val_accuracy.values()) == pytest.approx(history.history["val_accuracy"])
