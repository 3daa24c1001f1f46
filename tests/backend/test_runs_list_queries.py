"""`GET /api/runs` costs a fixed number of queries, however many runs it lists."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from prunelab.server.db import engine_for
from prunelab.server.settings import get_settings
from tests.backend.seed import seeded_run


@pytest.fixture(autouse=True)
def no_reaper(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API's reaper shares the engine: its passes would be counted with the request's statements."""
    monkeypatch.setenv("PRUNELAB_REAPER_INTERVAL_S", "0")


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    statements: list[str] = []
    engine = engine_for(get_settings().database_url)

    def record(*args: object) -> None:
        statements.append(str(args[2]))  # (conn, cursor, statement, parameters, context, executemany)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def queries_to_list(client: TestClient) -> tuple[int, int]:
    with counted_statements() as statements:
        listed = client.get("/api/runs", params={"limit": 200}).json()["runs"]
    return len(listed), len(statements)


def test_listing_runs_costs_the_same_queries_for_10_and_100_runs(client: TestClient) -> None:
    for _ in range(10):
        seeded_run(client, steps=3)
    listed_10, queries_10 = queries_to_list(client)
    for _ in range(90):
        seeded_run(client, steps=3)
    listed_100, queries_100 = queries_to_list(client)
    print(f"GET /api/runs: {queries_10} queries for {listed_10} runs, {queries_100} for {listed_100}")
    assert (listed_10, listed_100) == (10, 100)
    assert queries_100 == queries_10 <= 4  # runs, their artifacts, their latest values (+ SQLite's BEGIN)
    assert all(run["latest"]["loss"] == 2.0 / 3 for run in client.get("/api/runs").json()["runs"])
