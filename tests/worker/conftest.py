"""Shared fixtures: the real dataset folder and two tiny training runs reused by many tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from prunelab.core.plans import RunPlan, resolve_plan
from prunelab.core.specs import ConstantSchedule, PolynomialSchedule, RunSpec
from prunelab.worker.training.reporting import MemoryReporter
from prunelab.worker.training.train import TrainingResult, train

# The shared datasets sit beside the repository (../shared/datasets) unless PRUNELAB_DATA_DIR says otherwise.
DATA_DIR = Path(
    os.environ.get("PRUNELAB_DATA_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
)

# digits with validation_split 0.1: 1293 training examples, 21 steps of 64 per epoch, 42 in all.
CONSTANT_SPEC = RunSpec(
    dataset="digits",
    model="mlp",
    epochs=2,
    batch_size=64,
    schedule=ConstantSchedule(target_sparsity=0.75, begin_step=5, end_step=-1, frequency=7),
    exports=["keras", "h5"],
)
POLYNOMIAL_SPEC = RunSpec(
    dataset="digits",
    model="mlp",
    epochs=2,
    batch_size=64,
    learning_rate=3e-3,
    schedule=PolynomialSchedule(initial_sparsity=0.0, final_sparsity=0.9, begin_step=0, end_step=40, frequency=5),
    exports=["keras", "h5"],
)


@dataclass
class Run:
    spec: RunSpec
    plan: RunPlan
    reporter: MemoryReporter
    result: TrainingResult
    output_dir: Path


def run_training(spec: RunSpec, output_dir: Path, reporter: MemoryReporter | None = None) -> Run:
    plan = resolve_plan(spec)
    reporter = reporter or MemoryReporter()
    result = train(spec, plan, reporter, data_dir=DATA_DIR, output_dir=output_dir)
    return Run(spec, plan, reporter, result, output_dir)


@pytest.fixture(scope="session")
def constant_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_training(CONSTANT_SPEC, tmp_path_factory.mktemp("constant"))


@pytest.fixture(scope="session")
def polynomial_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_training(POLYNOMIAL_SPEC, tmp_path_factory.mktemp("polynomial"))


@pytest.fixture(params=["constant_run", "polynomial_run"])
def finished_run(request: pytest.FixtureRequest) -> Run:
    return request.getfixturevalue(request.param)
