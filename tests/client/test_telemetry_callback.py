"""One telemetry: the worker's training and a user's script with PruneLabCallback log the same series.

The same tiny model is trained on the same batches twice: once through the worker's `train` (its
`PruningReporter` reporting to memory) and once by a script's `model.fit` with `PruneLabCallback` logging
into a live API. digits with validation_split 0.1 holds 1293 training examples: 21 batches of 64 per
epoch, the last one of 13, so every epoch ends on a short batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.stack import wait_for_run
from prunelab.core.plans import resolve_plan
from tests.client.conftest import LiveStack
from tests.worker.conftest import CONSTANT_SPEC, DATA_DIR

pytestmark = pytest.mark.integration

SPEC = CONSTANT_SPEC  # digits, mlp, 2 epochs of 21 batches of 64; 75 % from step 5, every 7 steps
AFTER_TRAINING = {"test_loss", "test_accuracy"}  # the worker evaluates the stripped model; a script does not
SUMMARY_KEYS = ("param_count", "prunable_param_count", "nonzero_params", "measured_sparsity", "coverage")


def test_the_worker_and_a_script_log_equal_series(live: LiveStack, spool_dir: Path, tmp_path: Path) -> None:
    from prunelab.keras import PruneLabCallback
    from prunelab.worker.training.datasets import load_dataset
    from prunelab.worker.training.epochs import epoch_batches, steps_per_epoch
    from prunelab.worker.training.reporting import MemoryReporter
    from prunelab.worker.training.tf import keras, tfmot
    from prunelab.worker.training.train import build_pruned_model, split_validation, train

    plan = resolve_plan(SPEC)
    assert plan.train_examples % SPEC.batch_size != 0  # the short last batch is part of what is compared

    # The worker's path: its training entry point, reporting to memory.
    reporter = MemoryReporter()
    result = train(SPEC, plan, reporter, data_dir=DATA_DIR, output_dir=tmp_path / "worker")
    worker_points = {(key, step): value for key, step, value, _ in reporter.points}

    # A script: the same model on the same batches, with tfmot's step callback and PruneLabCallback.
    dataset = load_dataset(SPEC.dataset, DATA_DIR)
    (x_train, y_train), validation = split_validation(SPEC, plan, dataset)
    keras.utils.set_random_seed(SPEC.seed)
    model = build_pruned_model(SPEC, plan, dataset)
    callback = PruneLabCallback(name="same batches", url=live.url, dataset="digits", flush_interval_s=0.1)
    script_points: dict[tuple[str, int], float] = {}
    finished: dict[str, Any] = {}
    log, finish = callback.sender.log, callback.sender.finish

    def record(run_key: str, step: int, metrics: dict[str, float], wall_time: float) -> None:
        script_points.update({(key, step): float(value) for key, value in metrics.items()})
        log(run_key, step, metrics, wall_time)

    def record_finish(run_key: str, status: str, summary: dict[str, Any], error: str | None) -> None:
        finished.update(status=status, summary=summary)
        finish(run_key, status, summary, error)

    callback.sender.log, callback.sender.finish = record, record_finish
    model.fit(
        epoch_batches(x_train, y_train, SPEC.batch_size, SPEC.seed, (0, SPEC.epochs)),
        steps_per_epoch=steps_per_epoch(len(x_train), SPEC.batch_size),
        epochs=SPEC.epochs,
        validation_data=validation,
        validation_batch_size=SPEC.batch_size,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), callback],
    )

    # Every key at every step, the short last batches (steps 21 and 42) included, with equal values.
    trained = {point: value for point, value in worker_points.items() if point[0] not in AFTER_TRAINING}
    assert {key for key, _ in worker_points} - {key for key, _ in trained} == AFTER_TRAINING
    assert sorted(script_points) == sorted(trained)
    assert script_points == trained
    keys = {key for key, _ in trained}
    assert {"loss", "accuracy", "target_sparsity", "measured_sparsity", "compressed_size_bytes", "epoch"} <= keys
    assert {"layer_sparsity/dense", "mask_churn/dense", "val_loss", "val_accuracy"} <= keys
    short_batches = {plan.steps_per_epoch, 2 * plan.steps_per_epoch}
    assert short_batches <= {step for key, step in trained if key == "loss"}
    assert trained[("measured_sparsity", plan.total_steps)] == pytest.approx(0.75, abs=0.01)

    # The final counts and the coverage report of the stripped model agree too; the server took the run.
    assert finished["status"] == "succeeded"
    assert {key: finished["summary"][key] for key in SUMMARY_KEYS} == {key: result.summary[key] for key in SUMMARY_KEYS}
    run_id = callback.wait_for_run_id(30)
    assert run_id is not None
    assert wait_for_run(live.url, run_id, {"succeeded", "failed"}, timeout=60)["status"] == "succeeded"
