"""Shared fixtures: migrated PostgreSQL and SQLite databases, an in-process API client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from harness.stack import REDIS_URL, postgres_database, shared_data_dir

os.environ.setdefault("PRUNELAB_DATA_DIR", str(shared_data_dir()))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# Users last: runs and uploads point at them. A user left behind would close PruneLab for the next test.
TABLES = (
    "sweep_points", "sweeps", "metrics", "latest_metrics", "metric_chunks", "metric_series", "artifacts",
    "mlflow_runs", "run_params", "run_tag_values", "mlflow_experiments", "runs", "uploads",
    "api_tokens", "user_sessions", "users", "workers",
)  # fmt: skip


def _clear_caches() -> None:
    from prunelab.server.queue.client import get_celery
    from prunelab.server.settings import get_settings

    get_settings.cache_clear()
    get_celery.cache_clear()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    from prunelab.server.migrate import upgrade_to_head

    with postgres_database() as url:
        upgrade_to_head(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    from prunelab.server.migrate import upgrade_to_head

    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'prunelab.sqlite'}"
    upgrade_to_head(url)
    return url


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("postgres_url" if request.param == "postgresql" else "sqlite_url")


@pytest.fixture
def settings(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """PRUNELAB_* pointing at a migrated database, Redis on a queue no worker consumes, and tmp folders."""
    from prunelab.server.db import engine_for
    from prunelab.server.settings import get_settings

    monkeypatch.setenv("PRUNELAB_HOME", str(tmp_path))
    monkeypatch.setenv("PRUNELAB_DATABASE_URL", database_url)
    monkeypatch.setenv("PRUNELAB_BROKER_URL", REDIS_URL)
    monkeypatch.setenv("PRUNELAB_QUEUE", f"prunelab-unit-{os.getpid()}")
    _clear_caches()
    yield get_settings()
    with engine_for(database_url).begin() as connection:
        for table in TABLES:
            connection.execute(text(f"DELETE FROM {table}"))
    _clear_caches()


@pytest.fixture
def client(settings: object) -> Iterator[TestClient]:
    from prunelab.server.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client
