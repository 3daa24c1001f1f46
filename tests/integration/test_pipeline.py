"""End to end with real processes: HTTP API -> broker -> Celery worker -> database -> download.

Runs on both deployments: PostgreSQL + Redis (production) and SQLite + kombu's
SQLAlchemy broker (the embedded default of `make run`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from harness.stack import (
    REDIS_URL,
    StackConfig,
    migrate,
    postgres_database,
    sqlite_stack,
    start_api,
    start_worker,
    wait_for_run,
)

pytestmark = pytest.mark.integration

SPEC = {
    "name": "polynomial on digits",
    "dataset": "digits",
    "model": "mlp",
    "epochs": 2,
    "batch_size": 64,  # ceil(1293 / 64) = 21 steps per epoch, 42 in all
    "seed": 7,
    "schedule": {"kind": "polynomial", "initial_sparsity": 0.0, "final_sparsity": 0.8, "begin_step": 0, "frequency": 7},
}


@pytest.fixture(params=["postgresql+redis", "sqlite+embedded"], scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    home = tmp_path_factory.mktemp("stack")
    if request.param == "sqlite+embedded":
        config = sqlite_stack(home)
        migrate(config)
        yield config
        return
    with postgres_database() as url:
        config = StackConfig(home=home, database_url=url, broker_url=REDIS_URL)
        migrate(config)
        yield config


@pytest.fixture(scope="module")
def running(stack: StackConfig) -> Iterator[StackConfig]:
    logs = stack.home / "logs"
    api = start_api(stack, logs)
    worker = start_worker(stack, logs)
    try:
        yield stack
    finally:
        worker.stop()
        api.stop()


def test_submitted_run_trains_logs_every_step_and_serves_a_stripped_model(running: StackConfig, tmp_path: Path) -> None:
    base = running.base_url
    created = httpx.post(f"{base}/api/runs", json=SPEC, timeout=10)
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    run = wait_for_run(base, run_id, {"succeeded", "failed", "cancelled"})
    assert run["status"] == "succeeded", run["error"]
    assert run["attempt"] == 1
    total_steps = run["plan"]["total_steps"]
    assert total_steps == 42

    series = httpx.get(f"{base}/api/runs/{run_id}/metrics", timeout=10).json()["series"]
    for key in ("loss", "accuracy", "target_sparsity", "measured_sparsity"):
        assert series[key]["steps"] == list(range(1, total_steps + 1)), key  # every step once, none lost or doubled
    measured = series["measured_sparsity"]["values"]
    assert measured[0] == 0.0
    assert measured == sorted(measured)  # a polynomial schedule only ever raises sparsity
    assert measured[-1] == pytest.approx(0.8, abs=1e-3)
    assert len(series["val_accuracy"]["steps"]) == 2
    assert series["compressed_size_bytes"]["values"][-1] < series["compressed_size_bytes"]["values"][0]
    # The worker compacts the finished run's history; reads answer the same, point for point.
    wait_until_compacted(running.database_url, run_id)
    assert httpx.get(f"{base}/api/runs/{run_id}/metrics", timeout=10).json()["series"] == series

    summary = run["summary"]
    assert 0.5 < summary["test_accuracy"] <= 1.0
    formats = {artifact["format"]: artifact for artifact in run["artifacts"]}
    assert set(formats) == {"keras", "h5", "tflite", "tflite_int8", "masks", "manifest"}
    assert formats["masks"]["url"] == f"/api/runs/{run_id}/masks"
    assert summary["coverage"]["sparsity_prunable"] == pytest.approx(summary["measured_sparsity"])

    download = httpx.get(f"{base}/api/runs/{run_id}/model", params={"format": "keras"}, timeout=30)
    assert download.status_code == 200
    assert "prunelab-run" in download.headers["content-disposition"]
    assert download.headers["link"] == f'</api/runs/{run_id}/manifest>; rel="describedby"'
    manifest = httpx.get(f"{base}/api/runs/{run_id}/manifest", timeout=30).json()
    assert manifest["files"]["keras"]["sha256"] == formats["keras"]["sha256"]
    int8 = httpx.get(f"{base}/api/runs/{run_id}/model", params={"format": "tflite_int8"}, timeout=30)
    assert int8.status_code == 200 and "-int8.tflite" in int8.headers["content-disposition"]
    assert len(int8.content) == formats["tflite_int8"]["size_bytes"]
    assert len(download.content) == formats["keras"]["size_bytes"]
    path = tmp_path / "model.keras"
    path.write_bytes(download.content)
    assert_stripped_and_sparse(path, target=0.8)


def wait_until_compacted(database_url: str, run_id: int) -> None:
    from sqlalchemy import func, select

    from harness.stack import wait_until
    from prunelab.server.db import engine_for
    from prunelab.server.models import Metric, MetricSeries

    def compacted() -> bool:
        with engine_for(database_url).connect() as connection:
            hot = connection.scalar(select(func.count()).select_from(Metric).where(Metric.run_id == run_id))
            kept = connection.scalar(
                select(func.count()).select_from(MetricSeries).where(MetricSeries.run_id == run_id)
            )
        return hot == 0 and (kept or 0) > 0

    wait_until(compacted, timeout=120, what=f"the worker to compact run {run_id}")


def assert_stripped_and_sparse(path: Path, target: float) -> None:
    """Load with plain Keras: no pruning wrappers, and every kernel at the target sparsity (within one element)."""
    import tf_keras

    import prunelab.worker  # noqa: F401 - selects tf-keras

    model = tf_keras.models.load_model(path)
    assert all("PruneLowMagnitude" not in type(layer).__name__ for layer in model.layers)
    assert not [w.name for w in model.weights if any(s in w.name for s in ("mask", "threshold", "pruning_step"))]
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    assert kernels
    for kernel in kernels:
        kept = int(np.count_nonzero(kernel))
        expected_kept = max(round(kernel.size * (1 - np.float32(target))), 1)
        assert abs(kept - expected_kept) <= 1, (kernel.shape, kept, expected_kept)


def test_cancel_stops_a_running_run_and_keeps_its_metrics(running: StackConfig) -> None:
    base = running.base_url
    slow = {**SPEC, "name": "to cancel", "epochs": 200, "batch_size": 8}
    run_id = httpx.post(f"{base}/api/runs", json=slow, timeout=10).json()["id"]

    def has_steps() -> bool:
        return (httpx.get(f"{base}/api/runs/{run_id}", timeout=10).json()["step"] or 0) > 5

    from harness.stack import wait_until

    wait_until(has_steps, timeout=180, what=f"run {run_id} to log steps")
    assert httpx.post(f"{base}/api/runs/{run_id}/cancel", timeout=10).json()["cancel_requested"] is True
    run = wait_for_run(base, run_id, {"cancelled", "failed", "succeeded"}, timeout=60)
    assert run["status"] == "cancelled"
    steps = httpx.get(f"{base}/api/runs/{run_id}/metrics", params={"keys": "loss"}, timeout=10).json()
    logged = steps["series"]["loss"]["steps"]
    assert logged == list(range(1, len(logged) + 1))  # kept, no gaps, no duplicates
    assert len(logged) < run["plan"]["total_steps"]
