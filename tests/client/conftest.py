"""One live stack for the client's tests (API and Celery worker processes on SQLite), and a run trained on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.stack import StackConfig, migrate, sqlite_stack, start_api, start_worker
from prunelab import Client, Run

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
    config = sqlite_stack(tmp_path_factory.mktemp("client-stack"))
    migrate(config)
    api = start_api(config, config.home / "logs")
    worker = start_worker(config, config.home / "logs")
    try:
        yield config
    finally:
        worker.stop()
        api.stop()


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
