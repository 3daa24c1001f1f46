"""Workers and the queue in headless Chromium (SQLite, the embedded default, with no worker started): a queued
run's page says why it waits, and the Workers page shows the queue with the run's position."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from harness.stack import StackConfig, migrate, sqlite_stack, start_api

pytestmark = pytest.mark.integration

SPEC = {"name": "nobody takes me", "dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64,
        "schedule": {"kind": "constant", "target_sparsity": 0.5, "frequency": 7}}  # fmt: skip


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[StackConfig, int]]:
    config = sqlite_stack(tmp_path)
    migrate(config)
    api = start_api(config, tmp_path / "logs")
    try:
        run_id = httpx.post(f"{config.base_url}/api/runs", json=SPEC, timeout=30).json()["id"]
        yield config, run_id
    finally:
        api.stop()


def test_a_queued_run_without_a_worker_says_so_and_the_workers_page_shows_the_queue(
    page: Page, stack: tuple[StackConfig, int]
) -> None:
    config, run_id = stack
    message = f"no worker is listening on queue `{config.queue}`: start one with `prunelab worker`"
    page.goto(f"{config.base_url}/run.html?id={run_id}")
    expect(page.locator("#waiting")).to_have_text(f"Waiting: {message}", timeout=30_000)
    expect(page.locator("#facts")).to_contain_text("#1 in line")

    page.get_by_role("link", name="Workers").click()
    expect(page.locator("#queue-length")).to_have_text(f"Queue {config.queue}: 1 run(s) waiting", timeout=30_000)
    expect(page.locator(f'#queue tr[data-run="{run_id}"]')).to_contain_text("nobody takes me")
    expect(page.locator("#waiting")).to_have_text(f"Waiting: {message}")
    expect(page.locator("#workers tbody")).to_contain_text("No worker has been seen")


def test_the_workers_page_shows_each_worker_s_keras_backends(page: Page, stack: tuple[StackConfig, int]) -> None:
    from prunelab.server.db import engine_for, session_scope
    from prunelab.server.models import Worker, utcnow

    config, _ = stack
    now = utcnow()
    with session_scope(engine_for(config.database_url)) as session:
        for name, backends in (("keras@h", ["tensorflow", "jax"]), ("bare@h", []), ("older@h", None)):
            session.add(
                Worker(name=name, host="h", pid=1, queues=[config.queue], concurrency=1, started_at=now,
                       heartbeat_at=now, keras_backends=backends)
            )  # fmt: skip
    page.goto(f"{config.base_url}/workers.html")
    expect(page.locator("#workers thead")).to_contain_text("Keras backends", timeout=30_000)
    expect(page.locator('#workers tr[data-worker="keras@h"]')).to_contain_text("tensorflow, jax")
    expect(page.locator('#workers tr[data-worker="bare@h"]')).to_contain_text("none (no Keras 3)")
    expect(page.locator('#workers tr[data-worker="older@h"]')).to_contain_text("not recorded")
