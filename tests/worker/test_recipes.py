"""Recipes x structures: tiny digits runs of every recipe and the exact properties each promises.

Schedules x structures are covered from scratch by test_matrix.py; here every pruning recipe runs
with one schedule and both unstructured and 2:4 structure. Runs are cached per test session.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prunelab.core import schedule_math
from prunelab.core.plans import resolve_plan
from prunelab.core.proposals import propose
from prunelab.core.specs import MByNSparsity, RunSpec
from prunelab.worker.training import export
from prunelab.worker.training.datasets import load_dataset
from prunelab.worker.training.reporting import MemoryReporter
from prunelab.worker.training.tf import PruneLowMagnitude, keras
from prunelab.worker.training.train import prepare_model, train
from prunelab.worker.training.verify import m_by_n_holds
from prunelab.worker.training.zoo import build_model
from tests.worker.conftest import DATA_DIR, Run, run_training

# 21 steps of 64 per epoch; pruning every 5 steps from 10% to 80% by step 20.
POLYNOMIAL = {"kind": "polynomial", "initial_sparsity": 0.1, "final_sparsity": 0.8, "begin_step": 0, "end_step": 20}
BASE = {"dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64, "learning_rate": 3e-3, "exports": ["keras"]}
STRUCTURES = {"unstructured": {"kind": "unstructured"}, "2:4": {"kind": "m_by_n", "m": 2, "n": 4}}
RECIPES: dict[str, dict[str, Any]] = {
    "pretrained": {"recipe": {"kind": "pretrained", "base_run_id": 1}},
    "uploaded_model": {"recipe": {"kind": "uploaded_model", "upload_id": 1}},
    "lottery_init": {"recipe": {"kind": "lottery_ticket", "rewind_epoch": 0, "retrain_epochs": 1}},
    "lottery_epoch1": {
        "epochs": 2,
        "schedule": {**POLYNOMIAL, "end_step": -1, "frequency": 7},
        "recipe": {"kind": "lottery_ticket", "rewind_epoch": 1, "retrain_epochs": 1},
    },
    "layer_targets": {"layer_targets": {"dense": 0.9, "logits": 0.3}},
}
PRUNED = [(recipe, structure) for recipe in RECIPES for structure in STRUCTURES]
PRUNED = [
    key for key in PRUNED if key[1] == "unstructured" or key[0] in ("pretrained", "uploaded_model", "lottery_init")
]
LAYERS = ("dense", "logits")
_runs: dict[str, Run] = {}


def spec_of(**fields: Any) -> RunSpec:
    return RunSpec.model_validate({**BASE, "schedule": {**POLYNOMIAL, "frequency": 5}, **fields})


def cached(name: str, spec: RunSpec, root: Path, start_model: Path | None = None) -> Run:
    if name not in _runs:
        output = root / name.replace(":", "by")
        plan = resolve_plan(spec)
        reporter = MemoryReporter()
        result = train(spec, plan, reporter, data_dir=DATA_DIR, output_dir=output, start_model=start_model)
        _runs[name] = Run(spec, plan, reporter, result, output)
    return _runs[name]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recipes")


@pytest.fixture(scope="module")
def dense_run(root: Path) -> Run:
    return cached("dense", spec_of(epochs=2, recipe={"kind": "dense"}), root)


@pytest.fixture(params=PRUNED, ids=lambda key: f"{key[0]}-{key[1]}")
def recipe_run(request: pytest.FixtureRequest, root: Path, dense_run: Run) -> Run:
    recipe, structure = request.param
    fields = {"structure": STRUCTURES[structure], **RECIPES[recipe]}
    start = dense_run.result.exports["keras"] if recipe in ("pretrained", "uploaded_model") else None
    return cached(f"{recipe}-{structure}", spec_of(**fields), root, start)


def kernels(path: Path) -> dict[str, np.ndarray]:
    model = keras.models.load_model(path)
    assert not any(isinstance(layer, PruneLowMagnitude) for layer in model.layers)
    return {name: model.get_layer(name).kernel.numpy() for name in LAYERS}


def layer_schedule(run: Run, layer: str) -> Any:
    return run.plan.layer_schedules[layer].schedule if run.plan.layer_schedules else run.plan.schedule


def test_every_step_is_logged_once_and_the_run_ends_on_the_plan(recipe_run: Run) -> None:
    plan = recipe_run.plan
    assert recipe_run.result.steps_completed == plan.total_steps == sum(plan.phase_steps)
    for key in ("loss", "accuracy", "target_sparsity", "measured_sparsity"):
        assert sorted(recipe_run.reporter.series(key)) == list(range(1, plan.total_steps + 1)), key
    target = recipe_run.reporter.series("target_sparsity")
    assert [target[step] for step in range(1, plan.total_steps + 1)] == plan.target_sparsity_series()


def test_final_per_tensor_sparsity_is_tfmots_exact_count(recipe_run: Run) -> None:
    last = recipe_run.plan.pruning_steps()[-1]
    structure = recipe_run.spec.structure
    for layer, kernel in kernels(recipe_run.result.exports["keras"]).items():
        zeros = kernel.size - np.count_nonzero(kernel)
        if isinstance(structure, MByNSparsity):
            assert m_by_n_holds(kernel, 2, 4)
            assert np.all(np.count_nonzero(kernel.T.reshape(-1, 4), axis=1) == 2), layer  # 2 of every 4 inputs
        else:
            sparsity = schedule_math.pruning_sparsity(layer_schedule(recipe_run, layer), last)
            assert zeros == kernel.size - schedule_math.kept_count(kernel.size, sparsity), layer
        assert zeros / kernel.size == recipe_run.reporter.series(f"layer_sparsity/{layer}")[last]


def test_exported_model_loads_and_predicts(recipe_run: Run) -> None:
    model = keras.models.load_model(recipe_run.result.exports["keras"])
    predictions = model.predict(load_dataset("digits", None).x_test[:16], verbose=0)
    assert predictions.shape == (16, 10) and np.all(np.isfinite(predictions))
    assert recipe_run.result.summary["test_accuracy"] > 0.3


def test_dense_run_wraps_nothing_and_logs_no_sparsity(dense_run: Run) -> None:
    plan, reporter = dense_run.plan, dense_run.reporter
    assert not plan.prunes and plan.pruning_steps() == [] and plan.total_steps == 42
    assert "dense recipe" in plan.warnings[0]
    assert set(reporter.series("target_sparsity").values()) == {0.0}
    assert set(reporter.series("measured_sparsity").values()) == {0.0}
    reasons = {layer["name"]: layer["reason"] for layer in dense_run.result.summary["coverage"]["layers"]}
    assert reasons == {"flatten": "no weights", "dense": "dense run: nothing is pruned", "logits": reasons["logits"]}
    assert all(
        np.count_nonzero(kernel) == kernel.size for kernel in kernels(dense_run.result.exports["keras"]).values()
    )


@pytest.mark.parametrize("recipe", ["pretrained", "uploaded_model"])
def test_pretrained_and_uploaded_runs_start_from_the_given_weights(recipe: str, dense_run: Run) -> None:
    path = dense_run.result.exports["keras"]
    spec = spec_of(**RECIPES[recipe])
    dataset = load_dataset("digits", DATA_DIR)
    model, _ = prepare_model(spec, resolve_plan(spec), dataset, path)
    starting = [value for value in export.stripped_weight_arrays(model)]
    dense = keras.models.load_model(path).get_weights()
    assert len(starting) == len(dense)
    for before, trained in zip(starting, dense, strict=True):
        np.testing.assert_array_equal(before, trained)


def test_pretrained_run_begins_where_the_dense_run_ended(root: Path, dense_run: Run) -> None:
    pretrained = cached(
        "pretrained-unstructured", spec_of(**RECIPES["pretrained"]), root, dense_run.result.exports["keras"]
    )
    scratch = run_training(spec_of(), root / "scratch")
    # Step 1 of the pruned run is its own axis; its batch accuracy is the trained model's, not chance.
    assert pretrained.reporter.series("accuracy")[1] > 0.7 > scratch.reporter.series("accuracy")[1]


@pytest.mark.parametrize("key", ["lottery_init-unstructured", "lottery_init-2:4", "lottery_epoch1-unstructured"])
def test_lottery_ticket_rewinds_exactly_and_keeps_the_mask(key: str, root: Path) -> None:
    recipe, structure = key.split("-")
    run = cached(key, spec_of(structure=STRUCTURES[structure], **RECIPES[recipe]), root)
    record, plan, reporter = run.result.rewind, run.plan, run.reporter
    assert record is not None
    phase_one = plan.phase_steps[0]
    assert plan.total_steps == phase_one + plan.phase_steps[1] == (run.spec.epochs + 1) * 21
    for name, saved in record.saved.items():
        mask = record.masks.get(name)
        kept = np.ones(saved.shape, bool) if mask is None else mask != 0
        np.testing.assert_array_equal(record.rewound[name][kept], saved[kept])
        assert not np.any(record.rewound[name][~kept])
    with np.load(run.result.exports["rewind"]) as stored:
        for name, saved in record.saved.items():
            np.testing.assert_array_equal(stored[f"saved/{name.replace('/', '.')}"], saved)
    if run.spec.recipe.rewind_epoch == 0:  # the snapshot is the initialisation: rebuild it from the seed
        keras.utils.set_random_seed(run.spec.seed)
        initial = build_model("mlp", (8, 8, 1), 10).get_weights()
        for saved, value in zip(record.saved.values(), initial, strict=True):
            np.testing.assert_array_equal(saved, value)
    measured, target = reporter.series("measured_sparsity"), reporter.series("target_sparsity")
    assert {measured[step] for step in range(phase_one, plan.total_steps + 1)} == {measured[phase_one]}
    assert {target[step] for step in range(phase_one + 1, plan.total_steps + 1)} == {target[phase_one]}
    assert reporter.series("phase") == {
        21 * epoch: 1.0 if epoch <= run.spec.epochs else 2.0 for epoch in range(1, run.spec.epochs + 2)
    }
    exported = kernels(run.result.exports["keras"])
    for layer, kernel in exported.items():
        mask = record.masks[f"{layer}/kernel:0"]
        np.testing.assert_array_equal(kernel != 0, mask != 0)  # retrained under the fixed mask


def test_sensitivity_table_has_one_row_per_layer_and_sparsity(root: Path) -> None:
    spec = spec_of(recipe={"kind": "sensitivity", "sparsities": [0.9, 0.0, 0.5]})
    run = cached("sensitivity", spec, root)
    table = run.result.summary["sensitivity"]
    assert run.plan.phase_steps == [21, 6] and run.plan.sensitivity_layers == list(LAYERS)
    assert table["evaluated_on"] == "validation"
    assert table["params"] == {"dense": 64 * 128, "logits": 128 * 10}
    for layer in LAYERS:
        rows = table["layers"][layer]
        assert [sparsity for sparsity, _ in rows] == [0.0, 0.5, 0.9]
        assert rows[0][1] == table["baseline_accuracy"]  # pruning 0% changes nothing
        assert rows[2][1] < table["baseline_accuracy"]
        logged = run.reporter.series(f"sensitivity/{layer}")
        assert sorted(logged.values()) == sorted(accuracy for _, accuracy in rows)
    assert sorted(run.reporter.series("sensitivity_sparsity")) == list(range(22, 28))
    proposal = propose(table["layers"], table["baseline_accuracy"], table["params"], 0.6)
    weighted = sum(table["params"][name] * value for name, value in proposal.layer_sparsities.items()) / sum(
        table["params"].values()
    )
    assert math.isclose(weighted, 0.6, abs_tol=1e-12)
    assert all(
        count == size
        for count, size in [(np.count_nonzero(k), k.size) for k in kernels(run.result.exports["keras"]).values()]
    )  # the exported model is the dense one it swept


def test_an_uploaded_model_is_swept_over_the_layers_its_scope_prunes(root: Path, dense_run: Run) -> None:
    spec = spec_of(recipe={"kind": "sensitivity", "sparsities": [0.0, 0.75], "upload_id": 1})
    run = cached("sensitivity-upload", spec, root, dense_run.result.exports["keras"])
    assert run.plan.phase_steps == [0, 0]  # no training; the API could not know the layers
    table = run.result.summary["sensitivity"]
    assert list(table["layers"]) == list(LAYERS)
    assert sorted(run.reporter.series("sensitivity_sparsity")) == [1, 2, 3, 4]
    for rows in table["layers"].values():
        assert rows[0] == [0.0, table["baseline_accuracy"]]
    assert table["baseline_accuracy"] > 0.7  # the dense run's trained weights


def test_unsafe_or_unprunable_uploads_are_refused(tmp_path: Path, dense_run: Run) -> None:
    from prunelab.worker.training.recipes.start import ModelNotUsable, load_start_model

    lambda_model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Lambda(lambda x: x * 2)])
    lambda_model.save(tmp_path / "lambda.keras")
    uploaded = spec_of(**RECIPES["uploaded_model"])
    with pytest.raises(ModelNotUsable, match="cannot be loaded safely"):
        load_start_model(uploaded, tmp_path / "lambda.keras")
    bad_scope = spec_of(scope={"layer_names": ["nope"]}, **RECIPES["uploaded_model"])
    with pytest.raises(ModelNotUsable, match=re.escape("scope.layer_names: the model has no layer named 'nope'")):
        load_start_model(bad_scope, dense_run.result.exports["keras"])
