"""Workers and the queue you can see, with real processes on PostgreSQL and Redis.

A run queued while no worker listens says so (its page, `GET /api/runs/{id}`, `prunelab workers`);
a started Celery worker appears online with the run it trains; killed, it is shown gone once two
heartbeats are missed; `/metrics` parses with prometheus-client's own parser and has every series.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from harness.stack import (
    REDIS_URL,
    REPO,
    StackConfig,
    migrate,
    postgres_database,
    start_api,
    start_worker,
    wait_until,
)
from prunelab.cli import cli

pytestmark = pytest.mark.integration

HEARTBEAT_S = 1.0
# 20 epochs of ceil(1293 / 8) = 162 steps: it is still training when we look, and it is cancelled then.
LONG = {"name": "waits-for-a-worker", "dataset": "digits", "model": "mlp", "epochs": 20, "batch_size": 8, "seed": 3,
        "schedule": {"kind": "constant", "target_sparsity": 0.5, "frequency": 50}}  # fmt: skip


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[StackConfig]:
    with postgres_database() as database_url:
        config = StackConfig(
            home=tmp_path,
            database_url=database_url,
            broker_url=REDIS_URL,
            extra={"PRUNELAB_WORKER_HEARTBEAT_S": str(HEARTBEAT_S), "PRUNELAB_REAPER_INTERVAL_S": "0"},
        )
        migrate(config)
        api = start_api(config, tmp_path / "logs")
        try:
            yield config
        finally:
            api.stop()


def metric_samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{base}/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_a_queued_run_without_a_worker_says_so_then_a_worker_takes_it_and_dies(stack: StackConfig) -> None:
    base = stack.base_url
    expected = f"no worker is listening on queue `{stack.queue}`: start one with `prunelab worker`"
    run_id = httpx.post(f"{base}/api/runs", json=LONG, timeout=30).json()["id"]

    queued = httpx.get(f"{base}/api/runs/{run_id}", timeout=30).json()
    assert (queued["status"], queued["queue_position"], queued["waiting"]) == ("queued", 1, expected)
    listed = CliRunner().invoke(cli, ["--url", base, "workers"])
    assert listed.exit_code == 0, listed.output
    assert f"1. run {run_id}\twaits-for-a-worker" in listed.output and expected in listed.output
    samples = metric_samples(base)
    assert samples[("prunelab_queue_depth", ())] == 1
    assert samples[("prunelab_workers_online", ())] == 0
    assert samples[("prunelab_runs", (("status", "queued"),))] == 1

    worker = start_worker(stack, stack.home / "logs")
    try:

        def online_with_the_run() -> dict | None:  # type: ignore[type-arg]
            seen = httpx.get(f"{base}/api/workers", timeout=30).json()
            training = [w for w in seen["workers"] if w["state"] == "online" and w["running"] == [run_id]]
            return training[0] if training else None

        shown = wait_until(online_with_the_run, 180, f"a worker online training run {run_id}", process=worker)
        assert shown["queues"] == [stack.queue] and shown["concurrency"] == 1 and shown["name"].startswith("worker-")
        assert shown["keras_backends"] == ["tensorflow", "jax"]  # this machine's worker install (no torch)
        running = httpx.get(f"{base}/api/runs/{run_id}", timeout=30).json()
        assert (running["status"], running["queue_position"], running["waiting"]) == ("running", None, None)
        samples = metric_samples(base)
        assert samples[("prunelab_workers_online", ())] == 1
        assert samples[("prunelab_runs", (("status", "running"),))] == 1
        assert samples[("prunelab_queue_depth", ())] == 0
        assert ("prunelab_training_steps_per_second", ()) in samples
        assert samples[("prunelab_request_duration_seconds_count", (("method", "GET"), ("route", "/api/workers")))] >= 1

        listed = CliRunner().invoke(cli, ["--url", base, "workers"])
        assert f"{shown['name']}\tonline\t" in listed.output and f"\t{run_id}\t" in listed.output
        assert f"\t1\ttensorflow,jax\t{run_id}\t" in listed.output  # concurrency, Keras backends, running

        worker.kill(signal.SIGKILL)  # the whole process group, as a crash or a lost machine would

        def gone() -> dict | None:  # type: ignore[type-arg]
            seen = httpx.get(f"{base}/api/workers", timeout=30).json()["workers"]
            return next((w for w in seen if w["name"] == shown["name"] and w["state"] == "gone"), None)

        dead = wait_until(gone, 30, f"worker {shown['name']} shown gone")
        assert dead["running"] == []
        assert metric_samples(base)[("prunelab_workers_online", ())] == 0
    finally:
        worker.stop()


def test_metrics_need_a_token_when_auth_is_on(tmp_path: Path) -> None:
    with postgres_database() as database_url:
        config = StackConfig(
            home=tmp_path, database_url=database_url, broker_url=REDIS_URL, extra={"PRUNELAB_API_TOKEN": "s3cret"}
        )
        migrate(config)
        api = start_api(config, tmp_path / "logs")
        try:
            assert httpx.get(f"{config.base_url}/metrics", timeout=30).status_code == 401
            response = httpx.get(f"{config.base_url}/metrics", headers={"Authorization": "Bearer s3cret"}, timeout=30)
            names = {family.name for family in text_string_to_metric_families(response.text)}
            assert {"prunelab_runs", "prunelab_queue_depth", "prunelab_workers_online"} <= names
        finally:
            api.stop()


README_SECTION = re.search(
    r"\n## Workers, the queue and monitoring\n(.*?)\n## ", (REPO / "README.md").read_text(), re.S
)


def test_the_readme_example_runs_as_written(stack: StackConfig, tmp_path: Path) -> None:
    assert README_SECTION is not None, "README has no 'Workers, the queue and monitoring' section"
    [shell] = re.findall(r"```bash\n(.*?)```", README_SECTION.group(1), re.S)
    assert re.findall(r"^```(\w*)$", README_SECTION.group(1), re.M) == ["bash", ""]  # the one block, run here
    httpx.post(f"{stack.base_url}/api/runs", json=LONG, timeout=30).raise_for_status()
    shim = tmp_path / "bin" / "prunelab"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m prunelab.cli "$@"\n')
    shim.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRUNELAB_")}
    env |= {"PATH": f"{shim.parent}:{env['PATH']}", "PYTHONPATH": str(REPO), "PRUNELAB_URL": stack.base_url}
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", shell.replace("http://127.0.0.1:8000", stack.base_url)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "queue " + stack.queue + ": 1 run(s) waiting" in ran.stdout
    assert f"no worker is listening on queue `{stack.queue}`" in ran.stderr
    assert "prunelab_queue_depth 1.0" in ran.stdout and "prunelab_workers_online 0.0" in ran.stdout
