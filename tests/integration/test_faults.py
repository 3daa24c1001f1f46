"""Fault injection with real processes: a worker killed mid-run, two workers on one queue, Redis restarted
mid-run, a run past its time limit. Each test prints what it injected and what it observed.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from harness.stack import (
    REDIS_URL,
    Process,
    StackConfig,
    free_port,
    migrate,
    postgres_database,
    sqlite_stack,
    start_api,
    start_worker,
    wait_for_run,
    wait_until,
)
from prunelab.server.queue.client import TRAIN_TASK, make_celery
from prunelab.server.settings import Settings

pytestmark = pytest.mark.integration

FINISHED = {"succeeded", "failed", "cancelled"}
SMALL = {"dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64, "seed": 3,
         "schedule": {"kind": "constant", "target_sparsity": 0.5, "frequency": 7}}  # fmt: skip
# 4 epochs of ceil(1293 / 8) = 162 steps: long enough to be caught mid-run, short enough to finish again.
LONG = {
    **SMALL,
    "epochs": 4,
    "batch_size": 8,
    "schedule": {"kind": "constant", "target_sparsity": 0.5, "frequency": 50},
}


@contextmanager
def running_stack(config: StackConfig, workers: int = 1) -> Iterator[tuple[Process, list[Process]]]:
    logs = config.home / "logs"
    api = start_api(config, logs)
    started = [start_worker(config, logs, name=f"worker{index}") for index in range(workers)]
    try:
        yield api, started
    finally:
        for process in started:
            process.stop()
        api.stop()


def submit(base: str, spec: dict, name: str) -> int:  # type: ignore[type-arg]
    response = httpx.post(f"{base}/api/runs", json={**spec, "name": name}, timeout=30)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def run_of(base: str, run_id: int) -> dict:  # type: ignore[type-arg]
    return httpx.get(f"{base}/api/runs/{run_id}", timeout=30).json()


def metric_rows(database_url: str, run_id: int) -> list[tuple[str, int, float | None]]:
    """Every stored point of the run, hot rows and compacted chunks alike (a finished run is compacted)."""
    from prunelab.server.db import session_scope
    from prunelab.server.metrics.service import read_series

    engine = create_engine(database_url)
    try:
        with session_scope(engine) as session:
            series = read_series(session, run_id, None)
        return [
            (key, step, value)
            for key in sorted(series)
            for step, value in zip(series[key].steps, series[key].values, strict=True)
        ]
    finally:
        engine.dispose()


def workers_of(database_url: str) -> dict[int, str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return dict(connection.execute(text("SELECT id, worker FROM runs")).all())  # type: ignore[arg-type]
    finally:
        engine.dispose()


def assert_every_step_once(base: str, run: dict) -> None:  # type: ignore[type-arg]
    series = httpx.get(f"{base}/api/runs/{run['id']}/metrics", params={"keys": "loss"}, timeout=30).json()
    assert series["series"]["loss"]["steps"] == list(range(1, run["plan"]["total_steps"] + 1))


@pytest.fixture
def postgres_redis(tmp_path: Path) -> Iterator[StackConfig]:
    with postgres_database() as url:
        config = StackConfig(home=tmp_path, database_url=url, broker_url=REDIS_URL)
        migrate(config)
        yield config


def test_a_killed_worker_run_is_requeued_within_90_s_and_finished_by_a_second_worker(
    postgres_redis: StackConfig,
) -> None:
    # A shorter heartbeat timeout than the default keeps the suite quick; that the defaults (60 s, a pass
    # every 10 s) also release a dead run within 90 s is checked in tests/backend/test_settings_defaults.py.
    config = postgres_redis
    config.extra = {"PRUNELAB_HEARTBEAT_TIMEOUT_S": "20", "PRUNELAB_REAPER_INTERVAL_S": "2"}
    with running_stack(config) as (_api, [first]):
        base = config.base_url
        long_id = submit(base, LONG, "killed mid-run")
        queued_ids = [submit(base, SMALL, f"waiting {index}") for index in range(2)]
        wait_until(lambda: (run_of(base, long_id)["step"] or 0) > 20, 240, "the long run to log 20 steps")
        before_kill = metric_rows(config.database_url, long_id)
        first.kill(signal.SIGKILL)  # the whole process group: Celery's main process and its pool
        killed_at = time.monotonic()
        after_kill = metric_rows(config.database_url, long_id)  # a flush may have landed while dying

        released = wait_until(
            lambda: (run := run_of(base, long_id))["status"] != "running" and run, 150, "the reaper to release it"
        )
        release_s = time.monotonic() - killed_at
        print(f"\nkill -9 at step {max(s for _, s, _ in before_kill)}: {len(after_kill)} metric rows; "
              f"run {long_id} {released['status']} after {release_s:.1f} s")  # fmt: skip
        assert released["status"] == "queued" and released["attempt"] == 1
        assert release_s < 90
        rows = metric_rows(config.database_url, long_id)
        assert rows == after_kill and set(before_kill) <= set(rows)  # nothing lost, nothing written twice

        second = start_worker(config, config.home / "logs", name="second")
        try:
            restarted = time.monotonic()
            finished = {run_id: wait_for_run(base, run_id, FINISHED, timeout=300) for run_id in [long_id, *queued_ids]}
            print(f"second worker finished runs {sorted(finished)} in {time.monotonic() - restarted:.1f} s")
            assert {run["status"] for run in finished.values()} == {"succeeded"}
            for run in finished.values():
                assert_every_step_once(base, run)
        finally:
            second.stop()
    assert finished[long_id]["attempt"] == 2
    assert [finished[run_id]["attempt"] for run_id in queued_ids] == [1, 1]
    final = {(key, step): value for key, step, value in metric_rows(config.database_url, long_id)}
    assert all(final[(key, step)] == value for key, step, value in after_kill)  # first write wins


def test_two_workers_run_ten_runs_exactly_once_despite_duplicate_messages(postgres_redis: StackConfig) -> None:
    config = postgres_redis
    with running_stack(config, workers=2) as (_api, _workers):
        base = config.base_url
        started = time.monotonic()
        run_ids = [submit(base, {**SMALL, "seed": index}, f"run {index}") for index in range(10)]
        celery = make_celery(Settings(broker_url=config.broker_url, queue=config.queue, database_url="sqlite://"))
        for run_id in run_ids:  # a duplicate delivery of every run, as a reconciliation race would send
            celery.send_task(TRAIN_TASK, args=[run_id], queue=config.queue)
        finished = [wait_for_run(base, run_id, FINISHED, timeout=420) for run_id in run_ids]
        elapsed = time.monotonic() - started
        for run in finished:
            assert run["status"] == "succeeded", run
            assert_every_step_once(base, run)
    held_by = workers_of(config.database_url)
    print(f"\n10 runs (20 messages) on 2 workers in {elapsed:.1f} s; runs per worker: "
          f"{ {name: list(held_by.values()).count(name) for name in set(held_by.values())} }")  # fmt: skip
    assert [run["status"] for run in finished] == ["succeeded"] * 10
    assert [run["attempt"] for run in finished] == [1] * 10
    for run in finished:
        rows = metric_rows(config.database_url, run["id"])
        assert len(rows) == len({(key, step) for key, step, _ in rows})
    assert len(set(held_by.values())) == 2  # both workers took runs


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A redis-server of this test alone (the shared one is never restarted)."""
    port = free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    command = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", str(folder), "--daemonize", "no"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    holder = {"server": server}
    wait_until(lambda: _pings(port), 30, "private redis")
    try:
        yield f"redis://127.0.0.1:{port}/0", port
    finally:
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, timeout=30)
        holder["server"].wait(timeout=30)


def _pings(port: int) -> bool:
    result = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, timeout=10)
    return result.stdout.strip() == "PONG"


def test_queued_runs_survive_a_redis_restart(tmp_path: Path, private_redis: tuple[str, int]) -> None:
    broker_url, port = private_redis
    with postgres_database() as url:
        config = StackConfig(
            home=tmp_path,
            database_url=url,
            broker_url=broker_url,
            extra={"PRUNELAB_REAPER_INTERVAL_S": "2", "PRUNELAB_RECONCILE_AFTER_S": "5"},
        )
        migrate(config)
        with running_stack(config) as (api, [_worker]):
            base = config.base_url
            running_id = submit(base, LONG, "running through the restart")
            waiting_ids = [submit(base, SMALL, f"queued {index}") for index in range(2)]
            wait_until(lambda: (run_of(base, running_id)["step"] or 0) > 5, 240, "the first run to train")
            subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, timeout=30)
            restarted_at = time.monotonic()
            # The private server exits; start an empty one on the same port, as a crashed Redis would come back.
            folder = tmp_path / "redis"
            command = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                       "--save", "", "--appendonly", "no", "--dir", str(folder), "--daemonize", "yes"]  # fmt: skip
            wait_until(lambda: not _pings(port), 30, "redis to stop")
            subprocess.run(command, check=True, capture_output=True, timeout=30)
            wait_until(lambda: _pings(port), 30, "redis to restart")
            finished = {
                run_id: wait_for_run(base, run_id, FINISHED, timeout=300) for run_id in [running_id, *waiting_ids]
            }
            recovered_s = time.monotonic() - restarted_at
            resent = "re-sent runs queued in the database but missing from the broker" in api.log_tail(200_000)
            for run in finished.values():
                assert_every_step_once(base, run)
        print(f"\nRedis restarted with runs {waiting_ids} queued: all finished {recovered_s:.1f} s later; "
              f"reconciliation re-sent them: {resent}")  # fmt: skip
        assert {run["status"] for run in finished.values()} == {"succeeded"}, finished
        assert [finished[run_id]["attempt"] for run_id in waiting_ids] == [1, 1]
        assert resent


def test_a_run_past_its_time_limit_fails_with_the_reason_and_the_worker_goes_on(tmp_path: Path) -> None:
    config = sqlite_stack(tmp_path)  # the embedded deployment: SQLite and kombu's SQLAlchemy broker
    config.extra = {"PRUNELAB_RUN_TIME_LIMIT_S": "25"}  # soft limit at 20 s
    migrate(config)
    with running_stack(config) as (_api, [_worker]):
        base = config.base_url
        slow_id = submit(base, {**SMALL, "epochs": 500, "batch_size": 8}, "too slow")
        next_id = submit(base, SMALL, "next in line")
        started = time.monotonic()
        slow = wait_for_run(base, slow_id, FINISHED, timeout=240)
        failed_after = time.monotonic() - started
        following = wait_for_run(base, next_id, FINISHED, timeout=240)
    print(f"\ntime limit 25 s (soft 20 s): run {slow_id} {slow['status']} after {failed_after:.1f} s at step "
          f"{slow['step']}: {slow['error']!r}; next run {following['status']}")  # fmt: skip
    assert slow["status"] == "failed" and "time limit" in slow["error"]
    assert (slow["step"] or 0) > 0  # its metrics are kept
    assert following["status"] == "succeeded"
