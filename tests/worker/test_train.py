"""End-to-end pruning runs on digits: exports, per-step reports, sizes and cancellation."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from prunelab.core import schedule_math
from prunelab.worker.training.reporting import MemoryReporter
from prunelab.worker.training.tf import PruneLowMagnitude, keras
from tests.worker.conftest import CONSTANT_SPEC, Run, run_training

PER_STEP_KEYS = ("loss", "accuracy", "target_sparsity", "measured_sparsity")


def _steps_of(reporter: MemoryReporter, key: str) -> list[int]:
    return sorted(step for name, step, _, _ in reporter.points if name == key)


def test_plans_end_on_a_pruning_step(finished_run: Run) -> None:
    assert finished_run.plan.warnings == []
    assert finished_run.plan.total_steps == 42
    assert finished_run.result.steps_completed == 42
    assert not finished_run.result.cancelled


@pytest.mark.parametrize("file_format", ["keras", "h5"])
def test_exports_reload_stripped_and_pruned_to_target(finished_run: Run, file_format: str) -> None:
    model = keras.models.load_model(finished_run.result.exports[file_format])
    assert not any(isinstance(layer, PruneLowMagnitude) for layer in model.layers)
    for weight in model.weights:
        assert not any(word in weight.name for word in ("mask", "threshold", "pruning_step")), weight.name
    target = finished_run.plan.target_sparsity
    kernels = [layer.kernel.numpy() for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(kernels) == 2
    for kernel in kernels:
        zeros = kernel.size - np.count_nonzero(kernel)
        # tfmot keeps k = max(round(n * (1 - s)), 1) weights of each tensor.
        assert abs(zeros - kernel.size * target) <= 1, (zeros, kernel.size, target)


def test_every_step_has_one_point_per_step_key(finished_run: Run) -> None:
    expected = list(range(1, finished_run.plan.total_steps + 1))
    for key in PER_STEP_KEYS:
        assert _steps_of(finished_run.reporter, key) == expected, key


def test_target_sparsity_is_the_schedule_series(finished_run: Run) -> None:
    plan = finished_run.plan
    series = finished_run.reporter.series("target_sparsity")
    assert [series[step] for step in range(1, plan.total_steps + 1)] == schedule_math.target_sparsity_series(
        plan.schedule, plan.total_steps
    )


def test_measured_sparsity_agrees_with_the_schedule(finished_run: Run) -> None:
    plan, reporter = finished_run.plan, finished_run.reporter
    pruned_weights = finished_run.result.summary["prunable_param_count"]
    measured = reporter.series("measured_sparsity")
    pruning_steps = list(schedule_math.pruning_steps(plan.schedule, plan.total_steps))
    for step in range(1, pruning_steps[0]):
        assert measured[step] == 0.0
    for index, step in enumerate(pruning_steps):
        target = schedule_math.schedule_sparsity(plan.schedule, step)
        assert abs(measured[step] - target) <= 1 / pruned_weights, (step, measured[step], target)
        until = pruning_steps[index + 1] if index + 1 < len(pruning_steps) else plan.total_steps + 1
        assert {measured[later] for later in range(step, until)} == {measured[step]}
    for layer in ("dense", "logits"):
        assert sorted(reporter.series(f"layer_sparsity/{layer}")) == pruning_steps


def test_batch_accuracy_is_a_fraction_and_loss_positive(finished_run: Run) -> None:
    accuracy = finished_run.reporter.series("accuracy")
    loss = finished_run.reporter.series("loss")
    assert all(0.0 <= value <= 1.0 for value in accuracy.values())
    assert all(np.isfinite(value) and value > 0 for value in loss.values())


def test_compressed_size_at_pruning_steps_and_epoch_ends(finished_run: Run) -> None:
    plan = finished_run.plan
    sizes = finished_run.reporter.series("compressed_size_bytes")
    pruning_steps = set(schedule_math.pruning_steps(plan.schedule, plan.total_steps))
    epoch_ends = {epoch * plan.steps_per_epoch for epoch in range(1, finished_run.spec.epochs + 1)}
    assert _steps_of(finished_run.reporter, "compressed_size_bytes") == sorted(pruning_steps | epoch_ends)
    assert all(size > 0 for size in sizes.values())


def test_compressed_size_falls_as_sparsity_rises(polynomial_run: Run) -> None:
    plan = polynomial_run.plan
    sizes = polynomial_run.reporter.series("compressed_size_bytes")
    pruning_steps = schedule_math.pruning_steps(plan.schedule, plan.total_steps)
    targets = [(step, schedule_math.schedule_sparsity(plan.schedule, step)) for step in pruning_steps]
    for (earlier, earlier_target), (later, later_target) in itertools.pairwise(targets):
        assert later_target > earlier_target
        assert sizes[later] < sizes[earlier], (earlier, sizes[earlier], later, sizes[later])


def test_epoch_points(finished_run: Run) -> None:
    reporter, plan = finished_run.reporter, finished_run.plan
    assert reporter.series("epoch") == {21: 1.0, 42: 2.0}
    for key in ("val_loss", "val_accuracy"):
        assert sorted(reporter.series(key)) == [plan.steps_per_epoch, plan.total_steps]


def test_summary_and_test_points(finished_run: Run) -> None:
    summary, reporter, plan = finished_run.result.summary, finished_run.reporter, finished_run.plan
    assert summary["steps"] == plan.total_steps
    assert summary["param_count"] == 8 * 8 * 128 + 128 + 128 * 10 + 10
    assert summary["prunable_param_count"] == 8 * 8 * 128 + 128 * 10
    assert abs(summary["measured_sparsity"] - plan.target_sparsity) <= 2 / summary["prunable_param_count"]
    exported = keras.models.load_model(finished_run.result.exports["keras"]).get_weights()
    assert summary["nonzero_params"] == sum(np.count_nonzero(array) for array in exported)
    kernels = [array for array in exported if array.ndim == 2]
    kernel_zeros = sum(array.size - np.count_nonzero(array) for array in kernels)
    assert summary["measured_sparsity"] == kernel_zeros / summary["prunable_param_count"]
    for file_format in ("keras", "h5"):
        path = finished_run.result.exports[file_format]
        assert path.parent == finished_run.output_dir
        assert summary[f"{file_format}_size_bytes"] == path.stat().st_size
        assert summary[f"{file_format}_zip_bytes"] < summary[f"{file_format}_size_bytes"]
    assert reporter.series("test_accuracy") == {plan.total_steps: pytest.approx(summary["test_accuracy"])}
    assert reporter.series("test_loss") == {plan.total_steps: pytest.approx(summary["test_loss"])}
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["wall_time_s"] > 0


class StopAtStep(MemoryReporter):
    def __init__(self, stop_step: int) -> None:
        super().__init__()
        self.stop_step = stop_step

    def log(self, step: int, metrics: Mapping[str, float], wall_time: float) -> None:
        super().log(step, metrics, wall_time)
        if step >= self.stop_step:
            self.stop.set()


def test_cancel_stops_at_the_step_it_is_seen_and_exports_nothing(tmp_path: Path) -> None:
    stop_step = 3
    run = run_training(CONSTANT_SPEC, tmp_path, StopAtStep(stop_step))
    assert run.result.cancelled
    assert run.result.steps_completed == stop_step
    assert run.reporter.series("val_loss") == {}  # no validation pass after the stop
    assert run.result.exports == {}
    assert not any(tmp_path.iterdir())
    assert max(_steps_of(run.reporter, "loss")) == run.result.steps_completed
