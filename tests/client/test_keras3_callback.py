"""PruneLabCallback in a Keras 3 script pruned by `prunelab.prune.Pruner`, on the TensorFlow and JAX backends.

The script (tests/client/keras3_side.py) runs in a process of its own with KERAS_BACKEND set, logging into a
live API; then everything is read back over the API: the spec read from the pruner, the same series a tfmot
script logs (tests/client/test_keras_callback.py checks those on the same model and data), the coverage
report, and the stripped model's `.keras` and TFLite files.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest

from harness.stack import REPO, StackConfig, wait_for_run
from tests.client import keras3_side as side
from tests.client.test_keras_callback import pruned_functional_model, tf_modules

pytestmark = pytest.mark.integration

SECTION = re.search(r"\n## Log a Keras 3 script into PruneLab\n(.*?)\n## ", (REPO / "README.md").read_text(), re.S)
TOTAL = side.EPOCHS * side.EXAMPLES // side.BATCH
PRUNED = ("conv", "hidden", "skip")


@pytest.fixture(scope="module")
def api_url(api_only: StackConfig) -> str:
    """A script's run is trained by the script: an API without a worker."""
    return api_only.base_url


def script_env(backend: str, folder: Path, **extra: str) -> dict[str, str]:
    """A user's environment: Keras 3 on `backend` (tfmot's TF_USE_LEGACY_KERAS, which pytest's process has, unset)."""
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env.update({"PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "", "PRUNELAB_SPOOL_DIR": str(folder), **extra})
    return {**env, "KERAS_BACKEND": backend}


def run_script(backend: str, url: str, folder: Path, *mode: str) -> dict:
    out = folder / "facts.json"
    result = subprocess.run(
        [sys.executable, "-m", "tests.client.keras3_side", url, str(out), *mode],
        cwd=REPO,
        env=script_env(backend, folder),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_keras3_script_logs_like_a_tfmot_script(api_url: str, tmp_path: Path, backend: str) -> None:
    facts = run_script(backend, api_url, tmp_path)
    assert facts["backend"] == backend and facts["is_prunelab_callback"]
    run = wait_for_run(api_url, facts["run_id"], {"succeeded", "failed"}, timeout=60)
    assert run["status"] == "succeeded", run.get("error")

    # The spec, read from the pruner and fit.
    spec, plan = run["spec"], run["plan"]
    assert run["source"] == "keras_callback" and spec["model"] == "two_branch" and spec["dataset"] == "synthetic rows"
    assert spec["schedule"]["kind"] == "constant" and spec["schedule"]["target_sparsity"] == side.TARGET
    assert (spec["epochs"], spec["steps_per_epoch"]) == (side.EPOCHS, side.EXAMPLES // side.BATCH)
    assert {layer["name"] for layer in spec["layers"] if layer["wrapped"]} == set(PRUNED)
    assert spec["params"]["engine"] == "keras" and spec["params"]["backend"] == backend
    assert plan["total_steps"] == TOTAL and plan["target_sparsity"] == side.TARGET
    pruning_steps = list(range(side.BEGIN_STEP, TOTAL + 1, side.FREQUENCY))
    assert plan["last_pruning_step"] == pruning_steps[-1]

    # The series a tfmot script logs, at the same steps (test_keras_callback.py asserts the same of tfmot).
    series = httpx.get(f"{api_url}/api/runs/{facts['run_id']}/metrics", timeout=30).json()["series"]
    measured = series["measured_sparsity"]
    assert measured["steps"] == list(range(1, TOTAL + 1))
    assert measured["values"][side.BEGIN_STEP - 2] == 0.0
    assert measured["values"][-1] == pytest.approx(side.TARGET, abs=0.01)
    assert series["target_sparsity"]["values"][-1] == side.TARGET and series["target_sparsity"]["values"][0] == 0.0
    assert series["loss"]["steps"] == list(range(1, TOTAL + 1)) and series["accuracy"]["steps"][-1] == TOTAL
    for layer in PRUNED:
        assert series[f"layer_sparsity/{layer}"]["steps"] == pruning_steps
        assert series[f"layer_sparsity/{layer}"]["values"][-1] == pytest.approx(side.TARGET, abs=0.01)
        assert series[f"mask_churn/{layer}"]["steps"] == pruning_steps
        assert series[f"mask_churn/{layer}"]["values"][0] == 0.0
    assert "layer_sparsity/logits" not in series
    assert series["val_accuracy"]["steps"] == [16, 32, 48] and series["epoch"]["values"] == [1, 2, 3]
    assert series["compressed_size_bytes"]["steps"] == sorted(set(pruning_steps) | {16, 32, 48})
    keys = {key for key, _, _ in facts["logged"]}
    assert keys == set(series)
    expected = {"loss", "accuracy", "target_sparsity", "measured_sparsity", "compressed_size_bytes", "epoch"}
    expected |= {"val_loss", "val_accuracy"} | {
        f"{kind}/{layer}" for kind in ("layer_sparsity", "mask_churn") for layer in PRUNED
    }
    assert keys == expected
    # Each batch's own loss (not Keras's running mean): the epoch's mean of them is the running mean's last value.
    assert np.isfinite(series["loss"]["values"]).all()

    # The coverage report of the stripped model.
    summary = run["summary"]
    coverage = {layer["name"]: layer for layer in summary["coverage"]["layers"]}
    assert all(coverage[layer]["wrapped"] for layer in PRUNED)
    assert (
        not coverage["logits"]["wrapped"] and coverage["logits"]["pruned_params"] == 0 and coverage["logits"]["reason"]
    )
    assert not coverage["flatten"]["wrapped"]
    assert coverage["hidden"]["pruned_params"] == pytest.approx(side.TARGET * 6 * 6 * 8 * 32, abs=2)
    assert summary["coverage"]["sparsity_prunable"] == pytest.approx(side.TARGET, abs=0.01)
    assert summary["measured_sparsity"] == pytest.approx(side.TARGET, abs=0.01)
    assert summary["steps"] == TOTAL
    assert summary["prunable_param_count"] == 3 * 3 * 8 + 6 * 6 * 8 * 32 + 64 * 32

    # The stripped model: a plain Keras 3 file with no optimizer state, its kernels as sparse as measured; TFLite
    # float and int8 from Keras 3's own export (on JAX, converted in a TensorFlow-backend process).
    assert {artifact["format"] for artifact in run["artifacts"]} == set(side.EXPORTS)
    download = httpx.get(f"{api_url}/api/runs/{facts['run_id']}/model?format=keras", timeout=30)
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        config = json.loads(archive.read("config.json"))
        assert not any("optimizer" in name for name in archive.namelist() if name != "config.json")
        weights = archive.read("model.weights.h5")
    assert config["class_name"] == "Functional" and not config.get("compile_config")
    assert {layer["config"]["name"] for layer in config["config"]["layers"]} >= {"conv", "hidden", "logits"}
    assert b"optimizer" not in weights
    assert facts["hidden_sparsity"] == pytest.approx(side.TARGET, abs=0.01)
    for export_format in ("tflite", "tflite_int8"):
        model_file = httpx.get(f"{api_url}/api/runs/{facts['run_id']}/model?format={export_format}", timeout=30)
        assert model_file.status_code == 200 and model_file.content[4:8] == b"TFL3"
    assert summary["tflite_int8_size_bytes"] < summary["tflite_size_bytes"]
    assert not (tmp_path / "spool.sqlite").exists() or _spooled_points(tmp_path) == 0


def test_a_tfmot_script_from_the_same_weights_logs_the_same_series(api_url: str, tmp_path: Path) -> None:
    """The Keras 3 script on TensorFlow and the tfmot script of test_keras_callback.py, from the same starting
    weights on the same batches: tfmot's wrappers and the engine prune bit for bit alike (tests/prune), and both
    callbacks measure with the same code, so every key is logged at the same steps with equal values."""
    facts = run_script("tensorflow", api_url, tmp_path)
    keras3 = {(key, step): value for key, step, value in facts["logged"]}
    starting = np.load(tmp_path / "facts.npz")

    tf, tfmot, tf_keras = tf_modules()
    from prunelab.keras import PruneLabCallback

    model = pruned_functional_model(tf, tfmot, tf_keras)
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        count = len(inner.get_weights())
        if count:
            inner.set_weights([starting[f"{inner.name}/{index}"] for index in range(count)])
    callback = PruneLabCallback(name="tfmot, same weights", url=api_url, dataset="synthetic rows", flush_interval_s=0.1)
    tfmot_points = side.recorded_points(callback)
    x, y = side.images(side.EXAMPLES, 1)
    model.fit(
        x,
        y,
        batch_size=side.BATCH,
        epochs=side.EPOCHS,
        validation_data=side.images(64, 2),
        shuffle=False,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), callback],
    )
    # Every key at every step, equal to the bit (239 points: the losses and accuracies, sparsities, churn,
    # compressed sizes and validation metrics).
    assert sorted(tfmot_points) == sorted(keras3)
    assert tfmot_points == keras3
    assert wait_for_run(api_url, callback.run_id, {"succeeded", "failed"}, timeout=60)["status"] == "succeeded"


def test_a_fit_without_the_pruners_callback_stops_at_once_and_its_run_fails(api_url: str, tmp_path: Path) -> None:
    facts = run_script("jax", api_url, tmp_path, "forgotten")
    assert "pass pruner.callback() to model.fit's callbacks too" in facts["error"]
    run = wait_for_run(api_url, facts["run_id"], {"succeeded", "failed"}, timeout=60)
    assert run["status"] == "failed" and "before fit returned" in run["error"]


def test_the_readme_example_logs_a_keras3_run_on_jax(api_url: str, tmp_path: Path) -> None:
    assert SECTION is not None, "README has no 'Log a Keras 3 script into PruneLab' section"
    assert re.findall(r"^```(\w*)$", SECTION.group(1), re.M) == ["python", ""]  # the one block, executed here
    [example] = re.findall(r"```python\n(.*?)```", SECTION.group(1), re.S)
    env = script_env("jax", tmp_path, PRUNELAB_URL=api_url)
    env.pop("KERAS_BACKEND")  # the example chooses JAX itself
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    printed = re.fullmatch(r"run (\d+): jax, sparsity 0\.75", result.stdout.strip().splitlines()[-1])
    assert printed, result.stdout[-1000:]
    run = wait_for_run(api_url, int(printed.group(1)), {"succeeded", "failed"}, timeout=60)
    assert run["status"] == "succeeded", run.get("error")
    assert run["spec"]["params"]["backend"] == "jax" and run["summary"]["measured_sparsity"] == pytest.approx(
        0.75, abs=0.01
    )
    names = set(httpx.get(f"{api_url}/api/runs/{run['id']}/metrics", timeout=30).json()["series"])
    assert {
        "loss",
        "accuracy",
        "measured_sparsity",
        "target_sparsity",
        "compressed_size_bytes",
        "val_accuracy",
    } <= names
    assert {artifact["format"] for artifact in run["artifacts"]} == {"keras"}


def _spooled_points(folder: Path) -> int:
    from prunelab.spool import Spool

    return Spool(folder).point_count()
