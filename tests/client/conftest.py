"""A live PruneLab (API and worker processes on SQLite) for the client's tests, and a spool folder per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.stack import Process, StackConfig, migrate, sqlite_stack, start_api, start_worker


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


@pytest.fixture(scope="module")
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


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "spool"
    monkeypatch.setenv("PRUNELAB_SPOOL_DIR", str(folder))
    return folder
