"""Live PruneLab stacks (API and Celery worker processes on SQLite) for the client's tests: `live` for the Keras
callback (its API can be stopped and restarted), `stack` for the client's own tests, with a run trained on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.stack import (
    Process,
    StackConfig,
    api_and_worker,
    migrate,
    sqlite_stack,
    start_api,
    start_worker,
    wait_for_run,
)
from prunelab import Client, Run


@dataclass
class LiveStack:
    config: StackConfig
    logs: Path
    api: Process

    @property
    def url(self) -> str:
        return self.config.base_url

    def stop_api(self) -> None:
        self.api.stop()

    def start_api(self) -> None:
        self.api = start_api(self.config, self.logs)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """An API and a worker on one SQLite home; open access (no users), as a fresh install is on loopback."""
    config = sqlite_stack(tmp_path_factory.mktemp("client-stack"))
    migrate(config)
    logs = config.home / "logs"
    stack = LiveStack(config, logs, start_api(config, logs))
    worker = start_worker(config, logs)
    try:
        yield stack
    finally:
        worker.stop()
        stack.api.stop()


@pytest.fixture(scope="module")
def api_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    """An API process on a fresh SQLite home, no worker: for external runs (logged by the test or its script)."""
    config = sqlite_stack(tmp_path_factory.mktemp("api-only"))
    migrate(config)
    api = start_api(config, config.home / "logs")
    try:
        yield config
    finally:
        api.stop()


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "spool"
    monkeypatch.setenv("PRUNELAB_SPOOL_DIR", str(folder))
    return folder


QUEUED_SPEC = {
    "name": "queued",
    "dataset": "digits",
    "model": "mlp",
    "epochs": 1,
    "batch_size": 64,
    "schedule": {"kind": "constant", "target_sparsity": 0.5, "begin_step": 0, "frequency": 5},
    "exports": ["keras"],
}


@pytest.fixture(scope="session")
def queued_run(live: LiveStack) -> int:
    """A run PruneLab's worker trained, to compare external runs with."""
    created = httpx.post(f"{live.url}/api/runs", json=QUEUED_SPEC, timeout=30)
    assert created.status_code == 201, created.text
    run_id = int(created.json()["id"])
    assert wait_for_run(live.url, run_id, {"succeeded", "failed"})["status"] == "succeeded"
    return run_id


def compare_overlays(url: str, external_id: int, queued_id: int) -> None:
    """The compare endpoint shows both runs, each with its measured and planned sparsity, and their differences."""
    compared = httpx.get(f"{url}/api/compare", params={"runs": f"{external_id},{queued_id}"}, timeout=30)
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert [run["id"] for run in body["runs"]] == [external_id, queued_id]
    for shown in (external_id, queued_id):
        assert body["series"][str(shown)]["measured_sparsity"]["steps"], shown
        assert body["planned"][str(shown)]["target_sparsity"], shown
    assert any(row["parameter"] == "model" for row in body["differences"])
    report = httpx.get(f"{url}/api/compare/report", params={"runs": f"{external_id},{queued_id}"}, timeout=60)
    assert report.status_code == 200


# 1 epoch of ceil(1293 / 64) = 21 steps; pruned to 50% at steps 0, 5, 10, ...
TINY: dict[str, Any] = {
    "name": "client tiny",
    "dataset": "digits",
    "model": "mlp",
    "epochs": 1,
    "batch_size": 64,
    "seed": 3,
    "schedule": {"kind": "constant", "target_sparsity": 0.5, "frequency": 5},
    "exports": ["keras", "tflite_int8"],
}
# Long enough to still be training (or queued) when a test cancels it.
LONG: dict[str, Any] = {"name": "client long", "dataset": "digits", "model": "mlp", "epochs": 300, "batch_size": 8}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    with api_and_worker(sqlite_stack(tmp_path_factory.mktemp("client-stack"))) as config:
        yield config


@pytest.fixture(scope="session")
def client(stack: StackConfig) -> Iterator[Client]:
    with Client(stack.base_url) as connected:
        yield connected


@pytest.fixture(scope="session")
def trained(client: Client) -> Run:
    """A tiny run that succeeded, with a Keras and an int8 TFLite model."""
    run = client.wait(client.create_run(TINY).id, timeout=300)
    assert run.status == "succeeded", run.error
    return run
