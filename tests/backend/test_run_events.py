"""Server-Sent Events: a page catches up from its last step and the stream ends with the run."""

from __future__ import annotations

import json
import queue
import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from prunelab.server.db import session_scope
from prunelab.server.metrics.service import MetricPoint, record_points
from prunelab.server.models import Run, RunStatus, utcnow
from tests.backend.seed import seeded_run


def read_events(client: TestClient, url: str, until: str | None = None) -> list[tuple[str, object]]:
    events: list[tuple[str, object]] = []
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name:
                events.append((name, json.loads(line.removeprefix("data: "))))
                if name == until:
                    break
    return events


def test_run_stream_sends_points_after_the_clients_step_then_status_then_ends(client: TestClient) -> None:
    run_id = seeded_run(client, steps=42)
    events = read_events(client, f"/api/runs/{run_id}/events?after_step=40")
    names = [name for name, _ in events]
    assert names == ["metrics", "status", "end"]
    metrics = events[0][1]
    assert isinstance(metrics, dict) and metrics["loss"]["steps"] == [41, 42]
    assert events[1][1]["status"] == "succeeded"  # type: ignore[index]


def test_runs_stream_reports_status_and_step(client: TestClient) -> None:
    run_id = seeded_run(client, steps=5, status=RunStatus.RUNNING)
    events = read_events(client, "/api/runs/events", until="runs")
    assert events == [("runs", [{"id": run_id, "status": "running", "step": 5}])]


def test_unknown_run_or_bad_step_is_refused(client: TestClient) -> None:
    assert client.get("/api/runs/9999/events").status_code == 404
    run_id = seeded_run(client, steps=1)
    assert client.get(f"/api/runs/{run_id}/events", params={"after_step": -1}).status_code == 422
    assert client.get(f"/api/runs/{run_id}/masks").json() == {"layers": []}
    assert client.get("/api/runs/events", params={"ids": "a"}).status_code == 422


def test_an_open_stream_is_woken_by_each_change_written_after_it_opened(client: TestClient) -> None:
    """Points and the end written by another writer reach an open stream: NOTIFY on PostgreSQL, the poller on SQLite."""
    run_id = seeded_run(client, steps=3, status=RunStatus.RUNNING)
    received: queue.Queue[tuple[str, Any]] = queue.Queue()

    def follow() -> None:
        with client.stream("GET", f"/api/runs/{run_id}/events?after_step=3") as response:
            name = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: ") and name:
                    received.put((name, json.loads(line.removeprefix("data: "))))
                    if name == "end":
                        return

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert received.get(timeout=60)[0] == "status"  # the first read: nothing after step 3 yet
    # A second stream of the same app, while the first is open, shares its change feed.
    assert read_events(client, "/api/runs/events", until="runs") == [
        ("runs", [{"id": run_id, "status": "running", "step": 3}])
    ]
    with session_scope() as session:
        record_points(session, run_id, [MetricPoint("loss", 4, 0.5, 0.4), MetricPoint("loss", 5, 0.4, 0.5)])
    name, points = received.get(timeout=60)
    assert name == "metrics" and points["loss"]["steps"] == [4, 5]
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == run_id).values(status=RunStatus.SUCCEEDED, finished_at=utcnow()))
    assert [received.get(timeout=60)[0] for _ in range(2)] == ["status", "end"]
    reader.join(timeout=60)
    assert not reader.is_alive()
