"""Real PruneLab processes for tests and benchmarks: databases, an API server, workers.

Everything runs on loopback against the real services: PostgreSQL and Redis as in
production, SQLite and kombu's SQLAlchemy broker as in `make run`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get(
    "PRUNELAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("PRUNELAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def shared_data_dir() -> Path:
    configured = os.environ.get("PRUNELAB_DATA_DIR")
    return Path(configured) if configured else REPO.parent / "shared" / "datasets"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _admin_connect() -> psycopg.Connection:
    url = make_url(POSTGRES_ADMIN_URL)
    return psycopg.connect(
        host=url.host, port=url.port or 5432, user=url.username, dbname=url.database, autocommit=True
    )


@contextmanager
def postgres_database(prefix: str = "prunelab_test") -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin_connect() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class StackConfig:
    """The PRUNELAB_* environment of one test stack."""

    home: Path
    database_url: str
    broker_url: str
    queue: str = field(default_factory=lambda: f"prunelab-test-{uuid.uuid4().hex[:8]}")
    port: int = field(default_factory=free_port)
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PRUNELAB_")}
        env.update(
            PRUNELAB_HOME=str(self.home),
            PRUNELAB_DATABASE_URL=self.database_url,
            PRUNELAB_BROKER_URL=self.broker_url,
            PRUNELAB_QUEUE=self.queue,
            PRUNELAB_PORT=str(self.port),
            PRUNELAB_DATA_DIR=str(shared_data_dir()),
            PYTHONUNBUFFERED="1",
            **self.extra,
        )
        return env

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Process:
    """A child process whose output goes to a log file, stopped with SIGTERM (SIGKILL if stuck)."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log_dir: Path, cwd: Path | None = None
    ) -> None:
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            command, env=env, cwd=cwd or REPO, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group (a Celery worker and its pool), as a crash would."""
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def prunelab(*args: str) -> list[str]:
    return [sys.executable, "-m", "prunelab.server.cli", *args]


def migrate(config: StackConfig) -> None:
    """Migrate `config`'s database and make its folders as `prunelab migrate` does, but in this process.

    The verb as a command is run by tests/packaging/test_wheel.py and the compose smoke; as a subprocess here, its
    interpreter start and server imports (~2 s) were paid again by every stack a test or benchmark starts.
    """
    from prunelab.server.cli import migrate as migrate_verb
    from prunelab.server.db import engine_for
    from prunelab.server.settings import Settings

    prefix = "PRUNELAB_"
    given: dict[str, Any] = {
        key.removeprefix(prefix).lower(): value for key, value in config.env().items() if key.startswith(prefix)
    }
    # Named here, so that no PRUNELAB_* of this process's own environment fills a setting the stack leaves unset.
    settings = Settings(**{"artifact_url": "", "artifact_dir": None, **given})
    migrate_verb(settings)
    engine_for(settings.database_url).dispose()  # no pooled connection into the stack's database stays open here


def start_api(config: StackConfig, log_dir: Path) -> Process:
    process = Process("api", prunelab("api"), config.env(), log_dir)
    wait_until(lambda: healthy(config.base_url), timeout=60, what=f"API on {config.base_url}", process=process)
    return process


def start_worker(config: StackConfig, log_dir: Path, name: str = "worker") -> Process:
    return Process(name, prunelab("worker", "--name", f"{name}-{uuid.uuid4().hex[:6]}@%h"), config.env(), log_dir)


@contextmanager
def api_and_worker(config: StackConfig) -> Iterator[StackConfig]:
    """Migrate `config`'s database, start its API and one worker (logs in its home), stop both on the way out."""
    migrate(config)
    api = start_api(config, config.home / "logs")
    worker = start_worker(config, config.home / "logs")
    try:
        yield config
    finally:
        worker.stop()
        api.stop()


def healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25, process: Process | None = None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        if process is not None and process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited while waiting for {what}:\n{process.log_tail()}")
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_run(base_url: str, run_id: int, statuses: set[str], timeout: float = 240) -> dict:  # type: ignore[type-arg]
    def finished() -> dict | None:  # type: ignore[type-arg]
        run = httpx.get(f"{base_url}/api/runs/{run_id}", timeout=10).json()
        return run if run["status"] in statuses else None

    return wait_until(finished, timeout, f"run {run_id} to reach {sorted(statuses)}", interval=0.5)


def sqlite_stack(home: Path) -> StackConfig:
    return StackConfig(
        home=home,
        database_url=f"sqlite:///{home / 'prunelab.sqlite'}",
        broker_url=f"sqla+sqlite:///{home / 'broker.sqlite'}",
    )


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
