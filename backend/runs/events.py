"""Server-Sent Events for live pages (sse-starlette), read from the database when a run changed.

A stream reads once when it opens, then waits for the process's one change feed
(backend/runs/live.py: PostgreSQL LISTEN/NOTIFY, or one shared poller on SQLite) to say a run it
shows changed, and reads again: an idle stream costs no query. Each read is a short synchronous
query run in the threadpool; sse-starlette sends a keepalive comment while it is quiet and stops
the generator when the client goes away.

Streams:
- one run: `metrics` (points newer than the client's step, per key), `status`
  (the run whenever its status, summary or files change), `end` once it finished;
- the runs list: `runs` (id, status, step of every run whose status or step changed).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from prunelab.server.db import session_scope
from prunelab.server.metrics import service as metrics
from prunelab.server.metrics.downsample import downsample
from prunelab.server.models import LatestMetric, Metric, Run, RunStatus
from prunelab.server.runs.live import feed_of
from prunelab.server.runs.presenters import run_detail
from prunelab.server.settings import get_settings

KEEPALIVE_S = 15
RETRY_MS = 2000
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# A client that connects far behind gets a downsampled catch-up, never a flood.
CATCH_UP_POINTS = 2000

Event = tuple[str, Any]


@dataclass
class RunCursor:
    """What one client has been sent so far."""

    run_id: int
    after_step: int
    key_steps: dict[str, int] = field(default_factory=dict)
    status_fingerprint: str | None = None


def _new_points(session: Session, cursor: RunCursor) -> dict[str, dict[str, list[Any]]]:
    latest = metrics.latest_values(session, cursor.run_id)
    behind = {
        key: cursor.key_steps.get(key, cursor.after_step)
        for key, (step, _) in latest.items()
        if step > cursor.key_steps.get(key, cursor.after_step)
    }
    if not behind:
        return {}
    query = (
        select(Metric.key, Metric.step, Metric.value, Metric.wall_time)
        .where(Metric.run_id == cursor.run_id)
        .where(or_(*(and_(Metric.key == key, Metric.step > step) for key, step in behind.items())))
        .order_by(Metric.key, Metric.step)
    )
    series: dict[str, metrics.Series] = {}
    for key, step, value, wall_time in session.execute(query):
        entry = series.setdefault(key, metrics.Series([], [], []))
        entry.steps.append(step)
        entry.values.append(value)
        entry.wall_times.append(wall_time)
    points: dict[str, dict[str, list[Any]]] = {}
    for key, entry in series.items():
        limit = CATCH_UP_POINTS if len(entry.steps) > CATCH_UP_POINTS else None
        steps, values, wall_times = downsample(entry.steps, entry.values, entry.wall_times, limit)
        points[key] = {"steps": steps, "values": values, "wall_times": wall_times}
        cursor.key_steps[key] = steps[-1]
    return points


def poll_run(cursor: RunCursor) -> tuple[list[Event], bool]:
    """Events since the cursor, and whether the stream is over."""
    with session_scope() as session:
        run = session.get(Run, cursor.run_id, options=[selectinload(Run.artifacts)])
        if run is None:
            return [("end", {"status": "deleted"})], True
        # The status is read before the points: a finished run's points are all committed by then.
        shown = run_detail(session, run).model_dump(mode="json")
        finished = RunStatus(run.status).finished
        events: list[Event] = []
        points = _new_points(session, cursor)
        if points:
            events.append(("metrics", points))
        fingerprint = json.dumps(
            {k: shown[k] for k in ("status", "summary", "error", "artifacts", "cancel_requested", "waiting")}
        )
        if fingerprint != cursor.status_fingerprint:
            cursor.status_fingerprint = fingerprint
            events.append(("status", shown))
        if finished:
            events.append(("end", {"status": run.status}))
        return events, finished


@dataclass
class RunsCursor:
    """The status and step last sent for each run the list watches."""

    only: frozenset[int] | None
    sent: dict[int, tuple[str, int | None]] = field(default_factory=dict)


def poll_runs(cursor: RunsCursor) -> tuple[list[Event], bool]:
    """Runs whose status or step changed since the last poll (every run on the first)."""
    with session_scope() as session:
        active = [RunStatus.QUEUED, RunStatus.RUNNING]
        watched = or_(Run.status.in_(active), Run.id.in_(list(cursor.sent)))
        if cursor.only is not None:
            watched = Run.id.in_(cursor.only)
        rows = session.execute(
            select(Run.id, Run.status, func.max(LatestMetric.step))
            .outerjoin(LatestMetric, LatestMetric.run_id == Run.id)
            .where(watched)
            .group_by(Run.id, Run.status)
        ).all()
    changed = []
    for run_id, status, step in rows:
        if cursor.sent.get(run_id) != (status, step):
            changed.append({"id": run_id, "status": status, "step": step})
        cursor.sent[run_id] = (status, step)
    if cursor.only is None:  # stop watching finished runs once their last change is sent
        cursor.sent = {run_id: sent for run_id, sent in cursor.sent.items() if not RunStatus(sent[0]).finished}
    return ([("runs", changed)] if changed else []), False


async def stream(
    state: Any, run_id: int | None, read: Callable[[], tuple[list[Event], bool]]
) -> AsyncIterator[ServerSentEvent]:
    """Read now and after each change of `run_id` (None: any run) until the stream is over."""
    feed = feed_of(state, get_settings())  # here, in the event loop: the route itself runs in a worker thread
    yield ServerSentEvent(retry=RETRY_MS)
    with feed.watch(run_id) as changed:
        while True:
            changed.clear()  # cleared before the read: a change during it wakes the next one
            events, finished = await run_in_threadpool(read)
            for name, data in events:
                yield ServerSentEvent(data=json.dumps(data, separators=(",", ":")), event=name)
            if finished:
                return
            await changed.wait()


def event_stream(
    request: Request, run_id: int | None, read: Callable[[], tuple[list[Event], bool]]
) -> EventSourceResponse:
    """The response of a live stream, woken by the app's change feed."""
    return EventSourceResponse(stream(request.app.state, run_id, read), ping=KEEPALIVE_S, sep="\n", headers=SSE_HEADERS)
