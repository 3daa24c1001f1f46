"""`prunelab run` (what `make run` starts): embedded defaults, and Ctrl-C stops everything cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from harness.stack import REPO, StackConfig, healthy, prunelab, wait_until

pytestmark = pytest.mark.integration


def test_run_starts_api_and_worker_on_sqlite_and_ctrl_c_interrupts_training(tmp_path: Path) -> None:
    config = StackConfig(home=tmp_path, database_url="", broker_url="")  # empty: the embedded defaults
    env = {
        key: value for key, value in config.env().items() if key not in ("PRUNELAB_DATABASE_URL", "PRUNELAB_BROKER_URL")
    }
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(prunelab("run"), env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: healthy(config.base_url), timeout=90, what="prunelab run to answer")
        assert (tmp_path / "prunelab.sqlite").is_file()
        long_run = {"epochs": 300, "batch_size": 8, "schedule": {"kind": "constant", "frequency": 50}}
        run_id = httpx.post(f"{config.base_url}/api/runs", json=long_run, timeout=10).json()["id"]
        wait_until(
            lambda: (httpx.get(f"{config.base_url}/api/runs/{run_id}", timeout=10).json()["step"] or 0) > 10,
            timeout=180,
            what="the run to train",
        )
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
        started = time.monotonic()
        assert process.wait(timeout=90) == 0
        print(f"prunelab run stopped {time.monotonic() - started:.1f} s after Ctrl-C")
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert "PruneLab is stopping" in (tmp_path / "run.log").read_text()
    assert not healthy(config.base_url)

    import sqlite3

    with sqlite3.connect(tmp_path / "prunelab.sqlite") as db:
        status, error = db.execute("SELECT status, error FROM runs WHERE id = ?", (run_id,)).fetchone()
    from prunelab.server.db import engine_for, session_scope
    from prunelab.server.metrics.service import read_series

    # Read through the store: the worker compacts the interrupted run's rows into chunks as it stops.
    with session_scope(engine_for(f"sqlite:///{tmp_path / 'prunelab.sqlite'}")) as session:
        loss = read_series(session, run_id, ["loss"])["loss"]
    logged, last = len(loss.steps), max(loss.steps, default=None)
    assert (status, error) == ("failed", "interrupted: the worker was shut down during training")
    assert logged == last > 10  # the metrics before the interruption are kept, each step once
    leftovers = subprocess.run(["pgrep", "-f", f"--port {config.port}"], capture_output=True, text=True).stdout
    assert leftovers.strip() == ""


def test_run_restarts_a_killed_worker_with_backoff_and_the_api_stays_up(tmp_path: Path) -> None:
    config = StackConfig(home=tmp_path, database_url="", broker_url="")  # the embedded defaults
    env = {
        key: value for key, value in config.env().items() if key not in ("PRUNELAB_DATABASE_URL", "PRUNELAB_BROKER_URL")
    }
    log_path = tmp_path / "run.log"
    log = log_path.open("wb")
    process = subprocess.Popen(prunelab("run"), env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    def worker_pids() -> list[int]:
        return [int(pid) for pid in re.findall(r"PruneLab worker started \(pid (\d+)\)", log_path.read_text())]

    try:
        wait_until(lambda: healthy(config.base_url) and worker_pids(), timeout=90, what="prunelab run to answer")
        for kill in range(2):  # twice: the second restart waits twice as long
            os.killpg(worker_pids()[-1], signal.SIGKILL)  # the worker's own session: Celery's main process and pool
            wait_until(lambda count=kill: len(worker_pids()) == count + 2, 60, "the worker to be started again")
            assert healthy(config.base_url) and process.poll() is None  # the API never went down
        spec = {"epochs": 1, "batch_size": 64, "schedule": {"kind": "constant", "frequency": 7}}
        run_id = httpx.post(f"{config.base_url}/api/runs", json=spec, timeout=10).json()["id"]
        run = wait_until(
            lambda: (
                (r := httpx.get(f"{config.base_url}/api/runs/{run_id}", timeout=10).json())["status"]
                in ("succeeded", "failed")
                and r
            ),
            timeout=240,
            what="a run on the restarted worker",
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=90) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    restarts = [line for line in log_path.read_text().splitlines() if "restarting it in" in line]
    print("\n" + "\n".join(restarts) + f"\nrun {run_id} on the restarted worker: {run['status']}")
    assert run["status"] == "succeeded"
    assert len(restarts) == 2 and "in 1 s (restart 1)" in restarts[0] and "in 2 s (restart 2)" in restarts[1]
