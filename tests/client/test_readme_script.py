"""README's "Log your own script" example, run as written against a live stack (on a slice of MNIST, one epoch),
then checked over the API: measured sparsity per step reaching the target, coverage, stripped model, compare."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from harness.stack import REPO, shared_data_dir, wait_for_run
from tests.client.conftest import LiveStack, compare_overlays
from tests.client.test_keras_callback import tf_modules

pytestmark = pytest.mark.integration

README = (REPO / "README.md").read_text()
EXAMPLE = re.compile(r"<!-- readme-example: keras-callback -->\n```python\n(.*?)```", re.S)
README_URL = 'url="http://127.0.0.1:8000"'
README_TRAINING = "batch_size, epochs, validation_split = 250, 2, 0.1"
TRAIN_SLICE, TEST_SLICE = 2_500, 500  # 2,250 training images: 9 steps of 250 in the one epoch


def readme_script() -> str:
    found = EXAMPLE.findall(README)
    assert len(found) == 1, "README has one marked Keras-callback example"
    return found[0]


def test_the_example_is_the_tutorial_script_with_two_added_lines() -> None:
    script = readme_script()
    added = [line for line in script.splitlines() if "prunelab" in line]
    assert len(added) == 2 and all("added line" in line for line in added)
    assert "ConstantSparsity" in script and "target_sparsity=0.875" in script and "int(0.2 * end_step)" in script
    assert README_TRAINING in script and README_URL in script


def mnist_slice() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    with np.load(shared_data_dir() / "mnist.npz") as data:
        return (data["x_train"][:TRAIN_SLICE], data["y_train"][:TRAIN_SLICE]), (
            data["x_test"][:TEST_SLICE],
            data["y_test"][:TEST_SLICE],
        )


def test_the_readme_script_logs_an_external_run(
    live: LiveStack, spool_dir: Path, queued_run: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, keras = tf_modules()
    monkeypatch.setattr(keras.datasets.mnist, "load_data", mnist_slice)  # no download, a small slice
    script = readme_script().replace(README_URL, f'url="{live.url}"')
    script = script.replace(README_TRAINING, "batch_size, epochs, validation_split = 250, 1, 0.1")
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(script, "README.md (Log your own script)", "exec"), namespace)

    runs = httpx.get(f"{live.url}/api/runs", timeout=30).json()["runs"]
    run_id = next(run["id"] for run in runs if run["name"] == "constant 87.5%" and run["source"] == "keras_callback")
    run = wait_for_run(live.url, run_id, {"succeeded", "failed"}, timeout=60)
    assert run["status"] == "succeeded", run.get("error")
    steps = 9
    assert run["plan"]["total_steps"] == steps and run["plan"]["target_sparsity"] == 0.875
    begin = int(0.2 * steps)
    assert run["spec"]["schedule"]["begin_step"] == begin and run["spec"]["schedule"]["end_step"] == steps

    series = httpx.get(f"{live.url}/api/runs/{run_id}/metrics", timeout=30).json()["series"]
    measured = series["measured_sparsity"]
    assert measured["steps"] == list(range(1, steps + 1))
    assert all(value == 0.0 for value in measured["values"][: begin - 1])  # dense before the first pruning step
    assert measured["values"][begin - 1 :] == pytest.approx([0.875] * (steps - begin + 1), abs=0.01)
    assert series["target_sparsity"]["values"][-1] == 0.875
    assert series["val_accuracy"]["steps"] == [steps]

    coverage = {layer["name"]: layer for layer in run["summary"]["coverage"]["layers"]}
    assert coverage["conv2d"]["wrapped"] and coverage["dense"]["wrapped"]
    assert not coverage["flatten"]["wrapped"] and coverage["flatten"]["reason"] == "no weights"
    assert run["summary"]["coverage"]["sparsity_prunable"] == pytest.approx(0.875, abs=0.01)

    download = httpx.get(f"{live.url}/api/runs/{run_id}/model?format=keras", timeout=30)
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert "PruneLowMagnitude" not in archive.read("config.json").decode()

    compare_overlays(live.url, run_id, queued_run)
