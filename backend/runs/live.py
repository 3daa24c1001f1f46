"""What wakes live pages: one change feed per API process, shared by every open stream.

A stream (backend/runs/events.py) reads the database when a run it shows changed, never on a timer.
The feed learns of changes from the cheapest source the installation has:

- PostgreSQL: `LISTEN prunelab_runs`. Triggers on `runs`, `latest_metrics` and `artifacts`
  (migrations/versions/liveops_workers_notify.py) send the run id with every commit that touches it,
  whoever wrote it (the worker, the API, the reaper); one listening connection per API process.
- SQLite, the embedded default, where the worker is a process of its own: one shared poller reads
  the active and watched runs' status, flags and newest steps (one grouped query) twice a second,
  and only while some stream is open; never a query per stream.

A listener that loses its connection wakes every stream (each reads once, so nothing is missed) and
connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from starlette.concurrency import run_in_threadpool

from prunelab.server.db import session_scope
from prunelab.server.models import LatestMetric, Run, RunStatus
from prunelab.server.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "prunelab_runs"  # the migration's triggers NOTIFY on this channel
POLL_INTERVAL_S = 0.5
RECONNECT_S = 2.0
EVERY_RUN = None  # what the runs list watches

Snapshot = dict[int, tuple[Any, ...]]


class ChangeFeed:
    """Wakes the streams watching a run (or every run) when it changes; its source starts with the first stream."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.watchers: dict[int | None, set[asyncio.Event]] = {}
        self.source: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @contextlib.contextmanager
    def watch(self, run_id: int | None) -> Iterator[asyncio.Event]:
        """An event set whenever `run_id` (None: any run) changes; the caller clears it before it reads."""
        changed = asyncio.Event()
        self.watchers.setdefault(run_id, set()).add(changed)
        self._start()
        try:
            yield changed
        finally:
            self.watchers[run_id].discard(changed)
            if not self.watchers[run_id]:
                del self.watchers[run_id]

    def changed(self, run_ids: Iterable[int]) -> None:
        run_ids = list(run_ids)
        if not run_ids:
            return
        for run_id in run_ids:
            for event in self.watchers.get(run_id, ()):
                event.set()
        for event in self.watchers.get(EVERY_RUN, ()):
            event.set()

    def changed_all(self) -> None:
        for events in self.watchers.values():
            for event in events:
                event.set()

    def _start(self) -> None:
        if self.source is not None and not self.source.done():
            return
        self.loop = asyncio.get_running_loop()
        if self.settings.database_url.startswith("postgresql"):
            self.source = asyncio.create_task(self._listen_postgres(), name="prunelab-live-listen")
        else:
            self.source = asyncio.create_task(self._poll(), name="prunelab-live-poll")

    async def stop(self) -> None:
        if self.source is not None:
            self.source.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.source

    # PostgreSQL ---------------------------------------------------------------------------------
    async def _listen_postgres(self) -> None:
        import psycopg

        conninfo = make_url(self.settings.database_url).set(drivername="postgresql").render_as_string(False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self.changed_all()  # whatever changed while this connection was not listening
                    async for notice in connection.notifies():
                        self.changed([int(notice.payload)])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("live pages: LISTEN %s failed; reconnecting in %s s", CHANNEL, RECONNECT_S, exc_info=True)
                self.changed_all()
                await asyncio.sleep(RECONNECT_S)

    # the embedded default -------------------------------------------------------------------------
    async def _poll(self) -> None:
        last: Snapshot | None = None  # None: no snapshot yet, so the first one wakes every stream
        while True:
            if self.watchers:
                try:
                    watched = frozenset(run_id for run_id in self.watchers if run_id is not None)
                    seen = await run_in_threadpool(read_snapshot, watched)
                    if last is None:
                        self.changed_all()
                    else:
                        self.changed(changed_runs(last, seen))
                    last = seen
                except Exception:
                    log.warning("live pages: reading run changes failed; retrying", exc_info=True)
            else:
                last = None
            await asyncio.sleep(POLL_INTERVAL_S)


def read_snapshot(watched: frozenset[int]) -> Snapshot:
    """What any change to an active or watched run moves: its status and flags, and its newest step per key."""
    with session_scope() as session:
        rows = session.execute(
            select(
                Run.id,
                Run.status,
                Run.heartbeat_at,
                Run.cancel_requested,
                Run.finished_at,
                func.max(LatestMetric.step),
                func.count(LatestMetric.key),
                func.sum(LatestMetric.step),
            )
            .outerjoin(LatestMetric, LatestMetric.run_id == Run.id)
            .where(Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]) | Run.id.in_(watched))
            .group_by(Run.id, Run.status, Run.heartbeat_at, Run.cancel_requested, Run.finished_at)
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def changed_runs(before: Snapshot, after: Snapshot) -> set[int]:
    """Runs added, removed or changed between two snapshots."""
    return {run_id for run_id in before.keys() | after.keys() if before.get(run_id) != after.get(run_id)}


def feed_of(state: Any, settings: Settings) -> ChangeFeed:
    """The app's one feed, made on first use in the app's event loop (a test client runs a loop per client)."""
    feed: ChangeFeed | None = getattr(state, "live_feed", None)
    if feed is None or (feed.loop is not None and feed.loop is not asyncio.get_running_loop()):
        feed = ChangeFeed(settings)
        state.live_feed = feed
    return feed
