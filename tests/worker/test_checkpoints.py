"""Epoch-end checkpoints: a run stopped after epoch 2 of 4 and resumed ends exactly where an uninterrupted one does."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from prunelab.core.plans import resolve_plan
from prunelab.core.specs import PolynomialSchedule, RunSpec
from prunelab.worker.training.epochs import epoch_order
from prunelab.worker.training.reporting import MemoryReporter
from prunelab.worker.training.tf import keras
from prunelab.worker.training.train import train
from tests.worker.conftest import DATA_DIR

# 4 epochs of 21 steps; the schedule keeps pruning until the last step, so epochs 3 and 4 change masks.
SPEC = RunSpec(
    dataset="digits",
    model="mlp",
    epochs=4,
    batch_size=64,
    seed=5,
    schedule=PolynomialSchedule(initial_sparsity=0.0, final_sparsity=0.8, begin_step=0, end_step=-1, frequency=5),
    exports=["keras"],
)


class Stopped(Exception):
    """Stands for the worker dying right after a checkpoint was stored."""


class FolderCheckpoints:
    """Checkpoints in a folder; `stop_after` raises once that epoch's checkpoint is kept."""

    def __init__(self, folder: Path, stop_after: int | None = None) -> None:
        self.folder = folder
        self.stop_after = stop_after
        self.saved: list[tuple[int, int]] = []

    def latest(self) -> Path | None:
        kept = sorted(self.folder.glob("epoch-*.npz"))
        return kept[-1] if kept else None

    def save(self, epoch: int, step: int, path: Path) -> None:
        shutil.copy(path, self.folder / f"epoch-{epoch:03d}.npz")
        self.saved.append((epoch, step))
        if epoch == self.stop_after:
            raise Stopped(f"after epoch {epoch}")


def final_masks(path: Path) -> dict[str, np.ndarray]:
    model = keras.models.load_model(path, compile=False)
    return {weight.name: weight.numpy() != 0 for weight in model.weights if "kernel" in weight.name}


def test_each_epoch_reads_an_order_of_its_own_whatever_came_before() -> None:
    assert np.array_equal(epoch_order(5, 2, 100), epoch_order(5, 2, 100))
    assert not np.array_equal(epoch_order(5, 2, 100), epoch_order(5, 3, 100))
    assert sorted(epoch_order(5, 2, 100)) == list(range(100))


def test_a_run_resumed_after_epoch_2_ends_exactly_as_an_uninterrupted_one(tmp_path: Path) -> None:
    plan = resolve_plan(SPEC)
    straight_reporter = MemoryReporter()
    straight = train(SPEC, plan, straight_reporter, data_dir=DATA_DIR, output_dir=tmp_path / "straight")

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    first = FolderCheckpoints(folder, stop_after=2)
    first_reporter = MemoryReporter()
    with pytest.raises(Stopped):
        train(SPEC, plan, first_reporter, data_dir=DATA_DIR, output_dir=tmp_path / "first", checkpoints=first)
    second = FolderCheckpoints(folder)
    second_reporter = MemoryReporter()
    resumed = train(SPEC, plan, second_reporter, data_dir=DATA_DIR, output_dir=tmp_path / "second", checkpoints=second)

    loss_steps = sorted(step for key, step, _, _ in second_reporter.points if key == "loss")
    print(f"\nfirst attempt checkpoints {first.saved}; second attempt logged loss at steps "
          f"{loss_steps[0]}..{loss_steps[-1]}, checkpoints {second.saved}")  # fmt: skip
    assert first.saved == [(1, 21), (2, 42)]
    assert loss_steps == list(range(43, plan.total_steps + 1))  # continues at epoch 3, step 43
    assert second.saved == [(3, 63), (4, 84)]
    assert resumed.summary["steps"] == straight.summary["steps"] == 84
    assert resumed.summary["measured_sparsity"] == straight.summary["measured_sparsity"]
    straight_masks, resumed_masks = final_masks(straight.exports["keras"]), final_masks(resumed.exports["keras"])
    assert straight_masks.keys() == resumed_masks.keys()
    for name, mask in straight_masks.items():
        assert np.array_equal(mask, resumed_masks[name]), name
    # The second attempt's metrics equal the uninterrupted run's step for step.
    straight_loss = straight_reporter.series("loss")
    assert all(straight_loss[step] == value for step, value in second_reporter.series("loss").items())
