"""Schedules x structures (from scratch): tiny digits runs and the exact properties of their masks and exports.

Each run prunes digits' mlp for one epoch (21 steps of 64). The expected zero counts are
tfmot's own arithmetic: it keeps max(round(n * (1 - s)), 1) weights of a tensor (blocks for
block sparsity), with s the schedule's float32 sparsity at that pruning step.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from prunelab.core import schedule_math
from prunelab.core.specs import (
    BlockSparsity,
    ConstantSchedule,
    MByNSparsity,
    PiecewiseSchedule,
    PolynomialSchedule,
    RunSpec,
    UnstructuredSparsity,
)
from prunelab.worker.training.tf import PruneLowMagnitude, keras
from prunelab.worker.training.verify import blocks_are_whole, m_by_n_holds
from tests.worker.conftest import Run, run_training

SCHEDULES = {
    # begin_fraction 0.2 of 21 steps: step 4, as the ConstantSparsity tutorial starts at 20% of training.
    "constant_fractions": ConstantSchedule(target_sparsity=0.7, begin_fraction=0.2, end_fraction=1.0, frequency=4),
    "polynomial": PolynomialSchedule(initial_sparsity=0.1, final_sparsity=0.8, begin_step=0, end_step=20, frequency=5),
    "piecewise_fractions": PiecewiseSchedule(points=[(0, 0.0), (0.5, 0.6), (1.0, 0.8)], frequency=3),
}
STRUCTURES = {
    "unstructured": UnstructuredSparsity(),
    "block": BlockSparsity(block_size=(2, 4), block_pooling_type="MAX"),
    "2:4": MByNSparsity(m=2, n=4),
}
LAYERS = ("dense", "logits")
_runs: dict[tuple[str, str], Run] = {}


@pytest.fixture(params=[(s, t) for s in SCHEDULES for t in STRUCTURES], ids=lambda p: f"{p[0]}-{p[1]}")
def matrix_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    key = request.param
    if key not in _runs:
        spec = RunSpec(
            dataset="digits",
            model="mlp",
            epochs=1,
            batch_size=64,
            learning_rate=3e-3,
            schedule=SCHEDULES[key[0]],
            structure=STRUCTURES[key[1]],
            exports=["keras"],
        )
        _runs[key] = run_training(spec, tmp_path_factory.mktemp("-".join(key).replace(":", "by")))
    return _runs[key]


def _expected_zeros(run: Run, shape: tuple[int, ...], step: int) -> int | None:
    """Zeros tfmot leaves in a kernel after the mask update at `step`; None where block edges make it inexact."""
    structure, size = run.spec.structure, math.prod(shape)
    sparsity = schedule_math.pruning_sparsity(run.plan.schedule, step, structure)
    if isinstance(structure, MByNSparsity):
        return size * structure.m // structure.n
    if isinstance(structure, BlockSparsity):
        height, width = structure.block_size
        if shape[0] % height or shape[1] % width:
            return None
        blocks = (shape[0] // height) * (shape[1] // width)
        return (blocks - schedule_math.kept_count(blocks, sparsity)) * height * width
    return size - schedule_math.kept_count(size, sparsity)


def _kernels(path: Path) -> dict[str, np.ndarray]:
    model = keras.models.load_model(path)
    assert not any(isinstance(layer, PruneLowMagnitude) for layer in model.layers)
    return {name: model.get_layer(name).kernel.numpy() for name in LAYERS}


def test_plan_resolves_fractions_to_integer_steps(matrix_run: Run) -> None:
    plan = matrix_run.plan
    assert plan.total_steps == 21
    assert plan.schedule.begin_fraction is None and plan.schedule.end_fraction is None
    if isinstance(matrix_run.spec.structure, MByNSparsity):
        assert plan.pruning_steps() == [1] and plan.target_sparsity == 0.5
    elif isinstance(plan.schedule, ConstantSchedule):
        assert (plan.schedule.begin_step, plan.schedule.end_step) == (4, 21)  # round(0.2 * 21), 21
        assert plan.pruning_steps() == [4, 8, 12, 16, 20]
    elif isinstance(plan.schedule, PiecewiseSchedule):
        assert plan.schedule.points == [(0, 0.0), (10, 0.6), (21, 0.8)]  # round(0.5 * 21) = 10
        assert plan.pruning_steps() == list(range(3, 22, 3))


def test_logged_layer_sparsity_is_tfmots_exact_count_at_every_pruning_step(matrix_run: Run) -> None:
    reporter, plan = matrix_run.reporter, matrix_run.plan
    shapes = {"dense": (64, 128), "logits": (128, 10)}
    for layer, shape in shapes.items():
        logged = reporter.series(f"layer_sparsity/{layer}")
        assert sorted(logged) == plan.pruning_steps()
        for step, value in logged.items():
            zeros = _expected_zeros(matrix_run, shape, step)
            if zeros is not None:
                assert value * math.prod(shape) == pytest.approx(zeros, abs=1e-6), (layer, step)


def test_target_series_and_measured_sparsity(matrix_run: Run) -> None:
    plan, reporter = matrix_run.plan, matrix_run.reporter
    target = reporter.series("target_sparsity")
    assert [target[step] for step in range(1, plan.total_steps + 1)] == plan.target_sparsity_series()
    measured = reporter.series("measured_sparsity")
    last = plan.pruning_steps()[-1]
    if isinstance(matrix_run.spec.structure, MByNSparsity):
        assert measured[plan.total_steps] == 0.5  # 2 zeros in every 4, exactly
    elif isinstance(matrix_run.spec.structure, UnstructuredSparsity):
        assert abs(measured[last] - target[last]) <= 2 / (64 * 128 + 128 * 10)


def test_exported_kernels_keep_the_final_sparsity_and_structure(matrix_run: Run) -> None:
    structure = matrix_run.spec.structure
    last = matrix_run.plan.pruning_steps()[-1]
    for layer, kernel in _kernels(matrix_run.result.exports["keras"]).items():
        zeros = kernel.size - np.count_nonzero(kernel)
        expected = _expected_zeros(matrix_run, kernel.shape, last)
        if expected is not None:
            assert zeros == expected, layer
        logged = matrix_run.reporter.series(f"layer_sparsity/{layer}")[last]
        assert zeros / kernel.size == logged
        if isinstance(structure, MByNSparsity):
            assert m_by_n_holds(kernel, 2, 4)
            groups = kernel.T.reshape(-1, 4)  # tfmot groups 4 consecutive inputs of each output
            assert np.all(np.count_nonzero(groups, axis=1) == 2), layer
        if isinstance(structure, BlockSparsity):
            assert blocks_are_whole(kernel, structure.block_size), layer
            height, width = structure.block_size
            blocks = math.ceil(kernel.shape[0] / height) * math.ceil(kernel.shape[1] / width)
            sparsity = schedule_math.pruning_sparsity(matrix_run.plan.schedule, last)
            zero_blocks = sum(
                not np.any(kernel[row : row + height, col : col + width])
                for row in range(0, kernel.shape[0], height)
                for col in range(0, kernel.shape[1], width)
            )
            assert zero_blocks == blocks - schedule_math.kept_count(blocks, sparsity), layer


def test_exported_model_loads_and_predicts(matrix_run: Run) -> None:
    from prunelab.worker.training.datasets import load_dataset

    model = keras.models.load_model(matrix_run.result.exports["keras"])
    digits = load_dataset("digits", None)
    predictions = model.predict(digits.x_test[:32], verbose=0)
    assert predictions.shape == (32, 10) and np.all(np.isfinite(predictions))
    assert matrix_run.result.summary["test_accuracy"] > 0.1


def test_mask_churn_and_mask_pictures(matrix_run: Run) -> None:
    events = matrix_run.plan.pruning_steps()
    with np.load(matrix_run.result.exports["masks"]) as masks:
        assert set(masks.files) == {f"{layer}@{step}" for layer in LAYERS for step in events}
        picture = masks[f"dense@{events[-1]}"]
        assert picture.dtype == np.uint8 and picture.shape == (64, 128)
        kernel = _kernels(matrix_run.result.exports["keras"])["dense"]
        np.testing.assert_array_equal(picture, np.where(kernel != 0, 255, 0))
    for layer in LAYERS:
        churn = matrix_run.reporter.series(f"mask_churn/{layer}")
        assert sorted(churn) == events
        assert churn[events[0]] == 0.0
        assert all(0.0 <= value <= 1.0 for value in churn.values())
    sparsity = matrix_run.reporter.series("layer_sparsity/dense")
    churn = matrix_run.reporter.series("mask_churn/dense")
    for earlier, later in itertools.pairwise(events):
        # Each bit newly pruned flipped, so churn is at least the rise in sparsity.
        assert churn[later] >= sparsity[later] - sparsity[earlier] - 1e-12


def test_coverage_report(matrix_run: Run) -> None:
    coverage = matrix_run.result.summary["coverage"]
    assert [(layer["name"], layer["wrapped"], layer["reason"]) for layer in coverage["layers"]] == [
        ("flatten", False, "no weights"),
        ("dense", True, None),
        ("logits", True, None),
    ]
    kernels = _kernels(matrix_run.result.exports["keras"])
    for layer in coverage["layers"][1:]:
        assert layer["pruned_params"] == kernels[layer["name"]].size - np.count_nonzero(kernels[layer["name"]])
    assert coverage["sparsity_prunable"] == matrix_run.result.summary["measured_sparsity"]
    assert coverage["sparsity_total"] < coverage["sparsity_prunable"]  # biases are never pruned
