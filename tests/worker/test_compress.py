"""Every compress stage combination on tiny runs: zeros kept exactly through clustering and QAT, at most k values,
the int8 file's own tensors keep the zeros, every export loads and predicts, each stage is a phase of the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prunelab.core.specs import QatStage, RunSpec
from prunelab.worker.training import export_tflite, qat
from prunelab.worker.training.compress import kernel_layers
from prunelab.worker.training.datasets import load_dataset
from prunelab.worker.training.tf import keras
from prunelab.worker.training.tflite_kernels import kernel_tensors, values_per_channel
from tests.worker.conftest import DATA_DIR, Run, run_training

CLUSTERS = 6
STAGES = {
    "cluster": {"kind": "cluster", "number_of_clusters": CLUSTERS, "epochs": 1, "learning_rate": 1e-4},
    "pcqat": {"kind": "qat", "scheme": "pcqat", "epochs": 1},
    "pqat": {"kind": "qat", "scheme": "pqat", "epochs": 1},
    "tflite_int8": {"kind": "tflite_int8", "calibration_examples": 20},
}
# Each combination tfmot supports; the full chain runs on the CNN so convolution kernels are checked too.
COMBINATIONS = {
    "cluster": ("mlp", ["cluster"]),
    "cluster+pcqat": ("mlp", ["cluster", "pcqat"]),
    "pqat": ("mlp", ["pqat"]),
    "cluster+tflite": ("mlp", ["cluster", "tflite_int8"]),
    "pqat+tflite": ("mlp", ["pqat", "tflite_int8"]),
    "tflite": ("mlp", ["tflite_int8"]),
    "cluster+pcqat+tflite": ("mnist_cnn", ["cluster", "pcqat", "tflite_int8"]),
}
# The files each stage adds to the run's exports: a combination holds exactly those of its stages.
STAGE_FILES = {
    "cluster": {"clustered_h5"},
    "pcqat": {"qat_h5"},
    "pqat": {"qat_h5"},
    "tflite_int8": {"tflite_int8_compressed", "tflite_int8_pruned", "tflite_sparse"},
}
_RUNS: dict[str, Run] = {}


def having(*stages: str, every: bool = False) -> list[str]:
    """The combinations with any (or `every`) of `stages`: a stage's tests run on these only, never skip."""
    match = all if every else any
    return sorted(name for name, (_, chain) in COMBINATIONS.items() if match(stage in chain for stage in stages))


@pytest.fixture
def compressed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The trained run of the combination the test is parametrized with (`indirect`), trained once per session."""
    name = request.param
    if name not in _RUNS:
        model, stages = COMBINATIONS[name]
        spec = RunSpec.model_validate(
            {
                "dataset": "digits",
                "model": model,
                "epochs": 1,
                "batch_size": 64,
                "learning_rate": 3e-3,
                "schedule": {"kind": "constant", "target_sparsity": 0.75, "begin_step": 0, "frequency": 5},
                "exports": ["h5"],
                "compress": [STAGES[stage] for stage in stages],
            }
        )
        _RUNS[name] = run_training(spec, tmp_path_factory.mktemp(name.replace("+", "-")))
    return _RUNS[name]


EVERY = pytest.mark.parametrize("compressed", sorted(COMBINATIONS), indirect=True)
CLUSTERED = pytest.mark.parametrize("compressed", having("cluster"), indirect=True)
QUANTIZATION_AWARE = pytest.mark.parametrize("compressed", having("pqat", "pcqat"), indirect=True)
INT8 = pytest.mark.parametrize("compressed", having("tflite_int8"), indirect=True)
CLUSTERED_INT8 = pytest.mark.parametrize("compressed", having("cluster", "tflite_int8", every=True), indirect=True)


def _pruned_kernels(run: Run) -> dict[str, np.ndarray]:
    return kernel_layers(keras.models.load_model(run.result.exports["h5"]))


def _rows(run: Run) -> dict[str, dict]:  # type: ignore[type-arg]
    return {row["stage"]: row for row in run.result.summary["compression"]["stages"]}


def _chain(run: Run) -> list[str]:
    """The run's stages by their names in STAGES."""
    return [stage.scheme if isinstance(stage, QatStage) else stage.kind for stage in run.spec.compress]


@EVERY
def test_the_exports_are_the_files_of_the_stages_run(compressed: Run) -> None:
    stage_files = set().union(*STAGE_FILES.values())
    expected = set().union(*(STAGE_FILES[stage] for stage in _chain(compressed)))
    assert "h5" in compressed.result.exports
    assert set(compressed.result.exports) & stage_files == expected
    assert all(path.is_file() for path in compressed.result.exports.values()), compressed.result.exports


@EVERY
def test_each_training_stage_is_a_phase_on_the_one_step_axis(compressed: Run) -> None:
    plan, reporter = compressed.plan, compressed.reporter
    training_stages = [stage for stage in compressed.spec.compress if stage.kind != "tflite_int8"]
    assert plan.phase_steps == [plan.steps_per_epoch] * (1 + len(training_stages))
    assert compressed.result.steps_completed == plan.total_steps
    assert sorted(reporter.series("loss")) == list(range(1, plan.total_steps + 1))  # steps continue after pruning
    phases = reporter.series("phase")
    ends = np.cumsum(plan.phase_steps)
    assert [phases.get(int(end)) for end in ends[1:]] == list(range(2, len(ends) + 1))


@CLUSTERED
def test_clustering_keeps_every_zero_and_at_most_k_values(compressed: Run) -> None:
    pruned = _pruned_kernels(compressed)
    clustered = kernel_layers(keras.models.load_model(compressed.result.exports["clustered_h5"]))
    row = _rows(compressed)["cluster"]
    for name, kernel in pruned.items():
        assert np.all(clustered[name][kernel == 0] == 0), name  # every pruned zero is still zero
        # ... and the only new zeros are kept weights tfmot put in its zero centroid, each one reported.
        assert np.count_nonzero((kernel != 0) & (clustered[name] == 0)) == row["extra_zeros"][name], name
        assert row["extra_zeros"][name] <= 0.05 * np.count_nonzero(kernel) + 1, name
        assert np.unique(clustered[name]).size <= CLUSTERS, name
    assert all(layer["unique_values"] <= CLUSTERS for layer in row["layers"].values())
    for name, layer in row["layers"].items():
        pruned_zeros = pruned[name].size - np.count_nonzero(pruned[name])
        assert layer["sparsity"] == (pruned_zeros + row["extra_zeros"][name]) / pruned[name].size, name


@INT8
def test_the_int8_files_own_tensors_keep_the_zeros(compressed: Run) -> None:
    pruned = _pruned_kernels(compressed)
    for file_format in ("tflite_int8_compressed", "tflite_int8_pruned"):
        tensors = kernel_tensors(compressed.result.exports[file_format], {n: k.shape for n, k in pruned.items()})
        for name, kernel in pruned.items():
            assert tensors[name].dtype == np.int8
            assert np.all(tensors[name][kernel == 0] == 0), (file_format, name)


@CLUSTERED_INT8
def test_the_int8_file_of_a_clustered_chain_keeps_at_most_k_values_per_channel(compressed: Run) -> None:
    pruned = _pruned_kernels(compressed)
    tensors = kernel_tensors(
        compressed.result.exports["tflite_int8_compressed"], {n: k.shape for n, k in pruned.items()}
    )
    for name in pruned:
        assert values_per_channel(tensors[name]) <= CLUSTERS, name


@QUANTIZATION_AWARE
def test_qat_preserves_the_zeros(compressed: Run) -> None:
    row = _rows(compressed)["qat"]
    pruned_row = _rows(compressed)["pruned"]
    for name, layer in row["layers"].items():
        assert layer["sparsity"] >= pruned_row["layers"][name]["sparsity"], name
    stage = next(stage for stage in compressed.spec.compress if isinstance(stage, QatStage))
    # A pcqat model is rebuilt from the clustered model it was trained from; a pqat model needs none.
    clustered = keras.models.load_model(compressed.result.exports["clustered_h5"]) if stage.scheme == "pcqat" else None
    model = qat.load(compressed.result.exports["qat_h5"], stage, clustered)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    dataset = load_dataset("digits", DATA_DIR)
    assert model.evaluate(dataset.x_test, dataset.y_test, verbose=0)[1] == pytest.approx(row["test_accuracy"], abs=1e-6)


@INT8
def test_the_int8_files_predict_as_measured(compressed: Run) -> None:
    dataset = load_dataset("digits", DATA_DIR)
    rows = _rows(compressed)
    for file_format, stage in (("tflite_int8_compressed", "tflite_int8"), ("tflite_int8_pruned", "pruned_int8")):
        outputs = export_tflite.predict(compressed.result.exports[file_format], dataset.x_test)
        assert np.mean(outputs.argmax(axis=1) == dataset.y_test) == pytest.approx(rows[stage]["test_accuracy"])


@INT8
def test_the_sparse_tflite_file_predicts_as_the_dense_one(compressed: Run) -> None:
    assert compressed.result.exports["tflite_sparse"].is_file()
    sparse = compressed.result.summary["compression"]["sparse_tflite"]
    assert sparse["same_predictions"] and sparse["densify_ops"] > 0
    assert set(sparse["xnnpack_sparse_inference"]) >= {"qualifies", "reasons"}
    assert not sparse["xnnpack_sparse_inference"]["qualifies"]  # no 3x3 stride-2 entry, no 1x1 convolutions


@CLUSTERED
def test_the_clustered_model_loads_and_predicts_as_measured(compressed: Run) -> None:
    dataset = load_dataset("digits", DATA_DIR)
    model = keras.models.load_model(compressed.result.exports["clustered_h5"])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    accuracy = model.evaluate(dataset.x_test, dataset.y_test, verbose=0)[1]
    assert accuracy == pytest.approx(_rows(compressed)["cluster"]["test_accuracy"], abs=1e-6)


@EVERY
def test_every_stage_reports_sizes_floor_and_ratio(compressed: Run) -> None:
    summary = compressed.result.summary
    for row in summary["compression"]["stages"]:
        path: Path = compressed.result.exports[row["export"]]
        if row["stage"] != "pruned":
            assert row["size_bytes"] == path.stat().st_size
        assert row["floor_bytes"] > 0 and row["zip_bytes"] > 0
        assert row["floors"]["int8"] < row["floors"]["float32"]
        if row["clusters"] is not None:  # a few shared values per layer: cheaper than storing each kept value
            assert row["floors"]["shared_int8"] <= row["floors"]["int8"]
        assert row["x_smaller_than_dense"] == pytest.approx(
            summary["compression"]["dense_h5_zip_bytes"] / row["zip_bytes"]
        )
    assert [row["stage"] for row in summary["compression"]["stages"] if not row["reference"]] == [
        "pruned",
        *[stage.kind for stage in compressed.spec.compress],
    ]
