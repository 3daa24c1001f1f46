"""Keras-engine runs end to end: HTTP API -> Redis -> a real Celery worker -> its child process on the run's Keras
backend -> PostgreSQL -> downloads, on JAX (a zoo model) and on TensorFlow (an uploaded Keras 3 model)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from harness.stack import REDIS_URL, StackConfig, api_and_worker, postgres_database, wait_for_run, wait_until
from prunelab.core.exports import file_digest
from tests.worker.test_keras3_engine import keras3_facts

pytestmark = pytest.mark.integration

SPEC = {
    "dataset": "digits",
    "model": "mlp",
    "epochs": 1,
    "batch_size": 64,  # ceil(1293 / 64) = 21 steps
    "engine": "keras",
    "schedule": {"kind": "constant", "target_sparsity": 0.75, "begin_step": 0, "frequency": 5},
}
TARGET = 0.75
# A user's Keras 3 model for 8x8 digits, saved by Keras 3 itself (run with KERAS_BACKEND=tensorflow).
SAVE_UPLOAD = """
import sys, keras
model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(32, activation="relu",
    name="hidden"), keras.layers.Dense(10, name="out")], name="mine")
model.save(sys.argv[1])
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    home = tmp_path_factory.mktemp("keras3-stack")
    with (
        postgres_database() as url,
        api_and_worker(StackConfig(home=home, database_url=url, broker_url=REDIS_URL)) as config,
    ):
        yield config


def keras3_upload(base: str, folder: Path) -> int:
    path = folder / "mine.keras"
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env["KERAS_BACKEND"] = "tensorflow"
    done = subprocess.run([sys.executable, "-c", SAVE_UPLOAD, str(path)], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    response = httpx.post(f"{base}/api/models", files={"file": ("mine.keras", path.read_bytes())}, timeout=30)
    assert response.status_code == 201, response.text
    assert response.json()["meta"]["keras_version"].startswith("3.")
    return int(response.json()["id"])


def check_run(base: str, run_id: int, backend: str, folder: Path) -> None:
    """Every step stored once, per-layer sparsity at the target, files listed, downloaded, verified and run."""
    run = wait_for_run(base, run_id, {"succeeded", "failed", "cancelled"}, timeout=900)
    assert run["status"] == "succeeded", run["error"]
    series = httpx.get(f"{base}/api/runs/{run_id}/metrics", timeout=10).json()["series"]
    for key in ("loss", "accuracy", "target_sparsity", "measured_sparsity"):
        assert series[key]["steps"] == list(range(1, 22)), key  # every step once, none lost or doubled
    assert series["measured_sparsity"]["values"][-1] == TARGET
    formats = {artifact["format"]: artifact for artifact in run["artifacts"]}
    assert set(formats) == {"keras", "tflite", "tflite_int8", "masks", "manifest"}
    manifest = httpx.get(f"{base}/api/runs/{run_id}/manifest", timeout=30).json()
    assert manifest["versions"]["keras_backend"] == backend
    assert set(manifest["files"]) == {"keras", "tflite", "tflite_int8", "masks"}
    files = {}
    for name in ("keras", "tflite", "tflite_int8"):
        download = httpx.get(f"{base}/api/runs/{run_id}/model", params={"format": name}, timeout=60)
        assert download.status_code == 200, download.text
        files[name] = folder / f"{run_id}-{name}{'.keras' if name == 'keras' else '.tflite'}"
        files[name].write_bytes(download.content)
        assert file_digest(files[name]) == manifest["files"][name]["sha256"] == formats[name]["sha256"]
    facts = keras3_facts(files["keras"], backend)
    assert facts["optimizer"] is False and facts["optimizer_variables"] == 0
    assert not [name for name in facts["variables"] if "mask" in name]
    assert facts["kernels"]
    for layer, (zeros, size) in facts["kernels"].items():
        kept = max(round(float(np.float32(size) * (1 - np.float32(TARGET)))), 1)
        assert size - zeros == kept, layer  # tfmot's k: exactly the target per pruned kernel
        assert manifest["measured_sparsity"][layer] == zeros / size
    from prunelab.worker.training.export_tflite import predict

    images = np.zeros((3, 8, 8, 1), dtype=np.float32)
    for name in ("tflite", "tflite_int8"):
        outputs = predict(files[name], images)
        assert outputs.shape == (3, 10) and np.isfinite(outputs).all(), name
    assert run["summary"]["measured_sparsity"] == pytest.approx(TARGET, abs=1e-12)
    assert run["summary"]["tflite_latency_ms"] > 0


def test_keras_engine_runs_train_on_jax_and_on_tensorflow_through_the_worker(
    running: StackConfig, tmp_path: Path
) -> None:
    base = running.base_url
    on_jax = httpx.post(f"{base}/api/runs", json={**SPEC, "backend": "jax"}, timeout=10)
    assert on_jax.status_code == 201, on_jax.text
    upload = keras3_upload(base, tmp_path)
    uploaded = {**SPEC, "backend": "tensorflow", "recipe": {"kind": "uploaded_model", "upload_id": upload}}
    on_tensorflow = httpx.post(f"{base}/api/runs", json=uploaded, timeout=10)
    assert on_tensorflow.status_code == 201, on_tensorflow.text
    check_run(base, on_jax.json()["id"], "jax", tmp_path)
    check_run(base, on_tensorflow.json()["id"], "tensorflow", tmp_path)


def test_a_keras_run_is_cancelled_in_its_child_and_keeps_its_steps(running: StackConfig) -> None:
    base = running.base_url
    slow = {**SPEC, "backend": "jax", "epochs": 200, "batch_size": 8, "exports": ["keras"]}
    run_id = httpx.post(f"{base}/api/runs", json=slow, timeout=10).json()["id"]

    def has_steps() -> bool:
        return (httpx.get(f"{base}/api/runs/{run_id}", timeout=10).json()["step"] or 0) > 5

    wait_until(has_steps, timeout=600, what=f"keras run {run_id} to log steps")
    assert httpx.post(f"{base}/api/runs/{run_id}/cancel", timeout=10).json()["cancel_requested"] is True
    run = wait_for_run(base, run_id, {"cancelled", "failed", "succeeded"}, timeout=120)
    assert run["status"] == "cancelled", run["error"]
    logged = httpx.get(f"{base}/api/runs/{run_id}/metrics", params={"keys": "loss"}, timeout=10).json()
    steps = logged["series"]["loss"]["steps"]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) < run["plan"]["total_steps"]
    assert run["artifacts"] == []


def test_a_backend_no_live_worker_offers_is_refused_at_submit_with_what_to_install(running: StackConfig) -> None:
    base = running.base_url

    def presence_recorded() -> bool:
        seen = httpx.get(f"{base}/api/workers", timeout=10).json()["workers"]
        return any(worker["state"] == "online" and worker["keras_backends"] is not None for worker in seen)

    wait_until(presence_recorded, timeout=120, what="the worker's presence row with its Keras backends")
    answer = httpx.post(f"{base}/api/runs", json={**SPEC, "backend": "torch"}, timeout=10)
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "backend"
    # The worker here has Keras 3 with TensorFlow and JAX, not PyTorch (its run-time refusal: tests/worker).
    assert problem["msg"] == (
        "backend 'torch': no live worker can run the keras engine on torch (the live workers' Keras backends: "
        "jax, tensorflow); choose one of those, or install it on a worker with "
        "pip install 'prunelab[worker,keras3]' torch (PyTorch's CPU or CUDA build) and restart the worker"
    )
