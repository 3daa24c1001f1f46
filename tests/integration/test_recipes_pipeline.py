"""A pretrained run end to end on the embedded stack: the dense baseline trains first, then the pruned run."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from harness.stack import StackConfig, api_and_worker, sqlite_stack, wait_for_run

pytestmark = pytest.mark.integration

PRETRAINED = {
    "name": "pretrained on digits",
    "dataset": "digits",
    "model": "mlp",
    "epochs": 1,
    "batch_size": 64,  # 21 steps per epoch
    "learning_rate": 0.003,
    "schedule": {"kind": "constant", "target_sparsity": 0.75, "frequency": 7},
    "recipe": {"kind": "pretrained", "dense_epochs": 2},
    "exports": ["keras"],
}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    with api_and_worker(sqlite_stack(tmp_path_factory.mktemp("recipes-stack"))) as config:
        yield config


def test_pretrained_run_starts_after_its_dense_run_succeeds(running: StackConfig) -> None:
    base = running.base_url
    created = httpx.post(f"{base}/api/runs", json=PRETRAINED, timeout=10)
    assert created.status_code == 201, created.text
    pruned_id, dense_id = created.json()["id"], created.json()["parent_run_id"]
    pruned = wait_for_run(base, pruned_id, {"succeeded", "failed", "cancelled"})
    dense = httpx.get(f"{base}/api/runs/{dense_id}", timeout=10).json()
    assert dense["status"] == "succeeded", dense["error"]
    assert pruned["status"] == "succeeded", pruned["error"]
    assert pruned["started_at"] >= dense["finished_at"]
    assert pruned["plan"]["base_run_id"] == dense_id and dense["plan"]["total_steps"] == 42

    dense_series = httpx.get(f"{base}/api/runs/{dense_id}/metrics", params={"keys": "measured_sparsity"}).json()
    assert set(dense_series["series"]["measured_sparsity"]["values"]) == {0.0}
    series = httpx.get(f"{base}/api/runs/{pruned_id}/metrics", params={"keys": "accuracy,measured_sparsity"}).json()
    assert series["series"]["accuracy"]["steps"] == list(range(1, 22))  # its own step axis
    assert series["series"]["accuracy"]["values"][0] > 0.7  # step 1 already has the dense run's accuracy
    assert series["series"]["measured_sparsity"]["values"][-1] == pytest.approx(0.75, abs=1e-3)


def test_lottery_ticket_run_serves_its_rewind_file(running: StackConfig) -> None:
    base = running.base_url
    spec = {
        **PRETRAINED,
        "name": "lottery",
        "recipe": {"kind": "lottery_ticket", "rewind_epoch": 0, "retrain_epochs": 1},
    }
    run_id = httpx.post(f"{base}/api/runs", json=spec, timeout=10).json()["id"]
    run = wait_for_run(base, run_id, {"succeeded", "failed", "cancelled"})
    assert run["status"] == "succeeded", run["error"]
    assert run["plan"]["total_steps"] == 42 and run["plan"]["phase_steps"] == [21, 21]
    rewind = next(artifact for artifact in run["artifacts"] if artifact["format"] == "rewind")
    download = httpx.get(f"{base}{rewind['url']}", timeout=30)
    assert download.status_code == 200 and len(download.content) == rewind["size_bytes"]
    with np.load(io.BytesIO(download.content)) as arrays:
        assert {"saved/dense.kernel:0", "mask/dense.kernel:0", "saved/logits.bias:0"} <= set(arrays.files)
        kept = arrays["mask/dense.kernel:0"] != 0
        assert 0.2 < kept.mean() < 0.3  # 75% pruned
