"""The keras engine in the worker: a run trains in its own child process, and resumes from an epoch checkpoint exactly.

`prunelab.worker.keras3.process.train` is called as the executor calls it (a real child process with the run's
KERAS_BACKEND), with an in-memory reporter and a checkpointer that keeps its files in a folder.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from prunelab.core.plans import resolve_plan
from prunelab.core.registry import KERAS_ENGINE_WEIGHTS
from prunelab.core.specs import RunSpec
from prunelab.worker.keras3 import process
from prunelab.worker.keras3.process import BackendNotInstalled, EngineFailed
from prunelab.worker.training.reporting import MemoryReporter
from tests.worker.conftest import DATA_DIR

REPO = Path(__file__).resolve().parents[2]
# digits, validation_split 0.1: 1293 training examples, 21 steps of 64 an epoch; masks change in both epochs.
SPEC = RunSpec.model_validate(
    {
        "dataset": "digits",
        "model": "mlp",
        "epochs": 2,
        "batch_size": 64,
        "engine": "keras",
        "backend": "jax",
        "exports": ["keras"],
        "schedule": {"kind": "polynomial", "final_sparsity": 0.8, "begin_step": 0, "end_step": 40, "frequency": 5},
    }
)


class FolderCheckpointer:
    """A `Checkpointer` that keeps every checkpoint in a folder and resumes from `latest_path`."""

    def __init__(self, folder: Path, latest_path: Path | None = None) -> None:
        self.folder = folder
        self.latest_path = latest_path
        self.saved: list[tuple[int, int]] = []
        folder.mkdir(parents=True, exist_ok=True)

    def latest(self) -> Path | None:
        return self.latest_path

    def save(self, epoch: int, step: int, path: Path) -> None:
        shutil.copy(path, self.folder / f"epoch-{epoch}.npz")
        self.saved.append((epoch, step))


def model_weights(path: Path) -> dict[str, np.ndarray]:
    """Every array in a .keras file's model.weights.h5, by its path in the file."""
    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(io.BytesIO(data), "r") as weights:
        weights.visititems(
            lambda name, item: arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None
        )
    return arrays


def keras3_facts(path: Path, backend: str) -> dict:  # type: ignore[type-arg]
    """What Keras 3 on `backend` reads in a .keras file (tests/worker/keras3_files.py, in a process of its own)."""
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env.update({"KERAS_BACKEND": backend, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"})
    script = REPO / "tests" / "worker" / "keras3_files.py"
    done = subprocess.run(
        [sys.executable, str(script), str(path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_run_resumed_from_its_epoch_checkpoint_ends_exactly_as_a_run_that_never_stopped(tmp_path: Path) -> None:
    plan = resolve_plan(SPEC)
    straight = MemoryReporter()
    first = FolderCheckpointer(tmp_path / "first")
    result = process.train(SPEC, plan, straight, data_dir=DATA_DIR, output_dir=tmp_path / "a", checkpoints=first)
    assert not result.cancelled and result.steps_completed == 42
    assert first.saved == [(1, 21), (2, 42)]

    resumed = MemoryReporter()
    again = FolderCheckpointer(tmp_path / "again", latest_path=first.folder / "epoch-1.npz")
    other = process.train(SPEC, plan, resumed, data_dir=DATA_DIR, output_dir=tmp_path / "b", checkpoints=again)
    assert again.saved == [(2, 42)]
    assert sorted(resumed.series("loss")) == list(range(22, 43))  # epoch 2 only: the step counter went on from 21
    for key in ("loss", "measured_sparsity", "target_sparsity", "layer_sparsity/dense"):
        later = {step: value for step, value in straight.series(key).items() if step > 21}
        assert resumed.series(key) == later, key
    assert model_weights(other.exports["keras"]).keys() == model_weights(result.exports["keras"]).keys()
    for name, value in model_weights(result.exports["keras"]).items():
        assert np.array_equal(model_weights(other.exports["keras"])[name], value), name  # bit for bit
    with np.load(result.exports["masks"]) as masks, np.load(other.exports["masks"]) as continued:
        assert masks.files == continued.files
        for name in masks.files:
            assert np.array_equal(masks[name], continued[name]), name
    assert other.summary["measured_sparsity"] == result.summary["measured_sparsity"]


def test_every_step_is_reported_once_and_the_keras_file_is_plain_and_sparse(tmp_path: Path) -> None:
    spec = SPEC.model_copy(update={"epochs": 1, "schedule": SPEC.schedule.model_copy(update={"end_step": 20})})
    reporter = MemoryReporter()
    result = process.train(spec, resolve_plan(spec), reporter, data_dir=DATA_DIR, output_dir=tmp_path / "run")
    logged = [(key, step) for key, step, _, _ in reporter.points]
    assert len(logged) == len(set(logged))  # one measurement, reported once
    assert sorted(reporter.series("loss")) == list(range(1, 22))
    assert set(result.exports) == {"keras", "masks", "manifest"}
    manifest = json.loads(result.exports["manifest"].read_text())
    assert manifest["versions"]["keras_backend"] == "jax" and manifest["spec"]["engine"] == "keras"
    assert set(manifest["files"]) == {"keras", "masks"}
    facts = keras3_facts(result.exports["keras"], "jax")
    assert facts["optimizer"] is False and facts["optimizer_variables"] == 0
    assert not [name for name in facts["variables"] if "mask" in name]
    for layer, (zeros, size) in facts["kernels"].items():
        kept = max(round(float(np.float32(size) * (1 - np.float32(0.8)))), 1)
        assert size - zeros == kept, layer  # tfmot's k, exactly
        assert manifest["measured_sparsity"][layer] == zeros / size


def test_a_backend_this_worker_lacks_is_named_with_the_extra_to_install() -> None:
    assert sys.modules.get("torch") is None
    with pytest.raises(BackendNotInstalled, match=r"the keras engine's torch backend is not installed on this worker"):
        process.check_backend("torch")
    process.check_backend("jax")
    process.check_backend("tensorflow")
    assert process.installed_backends() == ["tensorflow", "jax"]  # what this worker's presence row records


def test_a_failure_in_the_child_fails_the_run_with_the_child_s_own_error(tmp_path: Path) -> None:
    upload = tmp_path / "not-a-model.keras"
    upload.write_bytes(b"not a zip")
    spec = SPEC.model_copy(update={"recipe": {"kind": "uploaded_model", "upload_id": 1}})
    spec = RunSpec.model_validate(spec.model_dump())
    with pytest.raises(EngineFailed) as failed:
        process.train(spec, resolve_plan(spec), MemoryReporter(), data_dir=DATA_DIR, output_dir=tmp_path / "out",
                      start_model=upload)  # fmt: skip
    assert failed.value.run_error.startswith("ModelNotUsable: the uploaded model cannot be loaded safely")


# Each registered class built in Keras 3, with the names of the variables the engine would prune in it.
PRUNED_VARIABLES = """
import json, re, keras
from prunelab.prune import PRUNABLE_WEIGHTS
from prunelab.prune.layers import REGISTERED, prunable_variables
inputs = {1: keras.Input((8, 4)), 2: keras.Input((8, 8, 4)), 3: keras.Input((4, 4, 4, 4))}
def build(cls):
    name = cls.__name__
    if name == "Embedding":
        layer = cls(10, 3)
        layer.build((None, 5))
        return layer
    if name in ("Dense", "BatchNormalization", "LayerNormalization", "Normalization", "PReLU"):
        layer = cls(3) if name == "Dense" else cls()
        layer.build((None, 4))
        return layer
    rank = int(re.search(r"(\\d)D", name).group(1))
    layer = cls(kernel_size=3) if name.startswith("Depthwise") else cls(2, 3)
    layer(inputs[rank])
    return layer
print(json.dumps({
    "registered": {cls.__name__: list(names) for cls, names in REGISTERED.items()},
    "pruned": {cls.__name__: [v.name for v in prunable_variables(build(cls))] for cls in REGISTERED},
    "exact": all(cls is getattr(keras.layers, cls.__name__) for cls in PRUNABLE_WEIGHTS),
}))
"""


def test_prunelab_prune_s_registry_is_core_s_for_the_keras_engine() -> None:
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env.update({"KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"})
    done = subprocess.run(
        [sys.executable, "-c", PRUNED_VARIABLES], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    engine = json.loads(done.stdout.strip().splitlines()[-1])
    core = {name: list(weights) for name, weights in KERAS_ENGINE_WEIGHTS.items()}
    assert engine["registered"] == core
    # The variables it reads in a built layer are the ones the names say (a kernel, never a bias).
    assert engine["pruned"] == core
    assert engine["exact"]
