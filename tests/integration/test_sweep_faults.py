"""A worker killed during a sweep (kill -9, PostgreSQL + Redis): the sweep still finishes, each point run once."""

from __future__ import annotations

import signal

import httpx
import pytest
from sqlalchemy import create_engine, text

from harness.stack import StackConfig, start_worker, wait_until
from tests.integration.test_faults import assert_every_step_once, postgres_redis, run_of, running_stack

pytestmark = pytest.mark.integration
__all__ = ["postgres_redis"]  # the fixture, used here by name

# 2 epochs of ceil(1293 / 16) = 81 steps: long enough to be caught mid-run.
SWEEP = {
    "name": "killed worker",
    "base": {"dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 16, "exports": ["keras"],
             "schedule": {"kind": "constant", "frequency": 27}},
    "axes": [{"path": "sparsity", "values": [0.5, 0.7]}],
    "seeds": [0],
}  # fmt: skip


def run_count(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM runs")).scalar_one())
    finally:
        engine.dispose()


def test_a_sweep_outlives_a_killed_worker_and_runs_each_point_once(postgres_redis: StackConfig) -> None:
    config = postgres_redis
    config.extra = {"PRUNELAB_HEARTBEAT_TIMEOUT_S": "20", "PRUNELAB_REAPER_INTERVAL_S": "2"}
    with running_stack(config) as (_api, [first]):
        base = config.base_url
        created = httpx.post(f"{base}/api/sweeps", json=SWEEP, timeout=60)
        assert created.status_code == 201, created.text
        sweep_id, points = created.json()["id"], created.json()["points"]
        first_run = points[0]["run_id"]
        wait_until(lambda: (run_of(base, first_run)["step"] or 0) > 20, 240, "the first point's run to log 20 steps")
        first.kill(signal.SIGKILL)
        wait_until(lambda: run_of(base, first_run)["status"] == "queued", 150, "the reaper to requeue the run")

        second = start_worker(config, config.home / "logs", name="second")
        try:
            ended = wait_until(
                lambda: (
                    (sweep := httpx.get(f"{base}/api/sweeps/{sweep_id}", timeout=30).json())["status"] != "running"
                    and sweep
                ),
                400,
                "the sweep to finish",
                interval=1,
            )
            for run in ended["runs"]:
                assert_every_step_once(base, run)
        finally:
            second.stop()
        assert ended["progress"] == {"total": 2, "queued": 0, "running": 0, "succeeded": 2, "failed": 0, "cancelled": 0,
                                     "missing": 0}  # fmt: skip
        assert [point["run_id"] for point in ended["points"]] == [point["run_id"] for point in points]
        assert run_count(config.database_url) == 2  # no point was run as a second run
        assert [run["attempt"] for run in ended["runs"]] == [2, 1]
