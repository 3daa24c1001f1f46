"""PruneLab deployments for benchmarks, built from the process helpers the tests use too (harness/stack.py)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.stack import (
    REDIS_URL,
    Process,
    StackConfig,
    migrate,
    postgres_database,
    sqlite_stack,
    start_api,
    start_worker,
    wait_for_run,
)
from prunelab.core.specs import RunSpec
from prunelab.server.migrate import upgrade_to_head
from prunelab.server.settings import get_settings

DEPLOYMENTS = ("postgresql+redis", "sqlite+embedded")


@dataclass
class Deployment:
    name: str
    config: StackConfig
    api: Process
    workers: list[Process] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.config.base_url

    def add_worker(self) -> Process:
        worker = start_worker(self.config, self.config.home / "logs", name=f"worker{len(self.workers) + 1}")
        self.workers.append(worker)
        return worker

    def submit(self, spec: dict) -> int:  # type: ignore[type-arg]
        created = httpx.post(f"{self.base_url}/api/runs", json=spec, timeout=30)
        created.raise_for_status()
        return int(created.json()["id"])

    def finish(self, run_id: int, timeout: float = 7200) -> dict:  # type: ignore[type-arg]
        run = wait_for_run(self.base_url, run_id, {"succeeded", "failed", "cancelled"}, timeout=timeout)
        if run["status"] != "succeeded":
            tail = self.workers[0].log_tail() if self.workers else ""
            raise RuntimeError(f"run {run_id} ended {run['status']}: {run['error']}\n{tail}")
        return run


@contextmanager
def deployment(name: str = "postgresql+redis", workers: int = 1) -> Iterator[Deployment]:
    """A migrated database, the API and `workers` Celery workers; everything is removed afterwards."""
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stack-")))
        if name == "postgresql+redis":
            url = stack.enter_context(postgres_database("prunelab_bench"))
            config = StackConfig(home=home, database_url=url, broker_url=REDIS_URL)
        elif name == "sqlite+embedded":
            config = sqlite_stack(home)
        else:
            raise ValueError(f"unknown deployment {name!r}; choose one of {DEPLOYMENTS}")
        migrate(config)
        api = start_api(config, home / "logs")
        stack.callback(api.stop)
        running = Deployment(name, config, api)
        # Stopped before the API and the database, in reverse order of start.
        stack.callback(lambda: [worker.stop() for worker in reversed(running.workers)])
        for _ in range(workers):
            running.add_worker()
        yield running


@contextmanager
def pointed_at(url: str, home: Path) -> Iterator[str]:
    """Point this process's settings (and so the worker's `session_scope()`) at a migrated database."""
    upgrade_to_head(url)
    saved = {key: os.environ.get(key) for key in ("PRUNELAB_DATABASE_URL", "PRUNELAB_HOME")}
    os.environ.update(PRUNELAB_DATABASE_URL=url, PRUNELAB_HOME=str(home))
    get_settings.cache_clear()
    try:
        yield url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh migrated PostgreSQL or SQLite database that this process's settings point at."""
    with tempfile.TemporaryDirectory(prefix="bench-db-") as folder:
        home = Path(folder)
        if backend == "postgresql":
            with postgres_database("prunelab_bench") as url, pointed_at(url, home):
                yield url
        else:
            with pointed_at(f"sqlite:///{home / 'bench.sqlite'}", home) as url:
                yield url


def queued_run(spec: RunSpec, name: str) -> int:
    """A run row as POST /api/runs stores it (queued, with its resolved plan), without enqueueing it."""
    from harness.seed_runs import stored_spec
    from prunelab.core.plans import resolve_plan
    from prunelab.server.db import session_scope
    from prunelab.server.models import Run, RunStatus

    with session_scope() as session:
        run = Run(
            name=name,
            status=RunStatus.QUEUED,
            spec=stored_spec(spec),
            plan=resolve_plan(spec).model_dump(mode="json"),
        )
        session.add(run)
        session.flush()
        return run.id
