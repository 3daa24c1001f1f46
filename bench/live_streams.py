"""Benchmark 10: open live streams cost no steady database work (issue 23 part 4), on PostgreSQL + Redis.

One API process (`api_stack`: the real routes, no reaper) over a database of seeded runs. First idle:
`GET /api/runs` p50, and the database's committed transactions (`pg_stat_database.xact_commit`, read
from another database so the reads are not counted) over a quiet window. Then `streams` live streams
are opened (nine in ten follow one queued or running run, the rest the runs list), each waited on
until its first event arrived, and the same two are measured with every stream open. Before this
change each stream read the database twice a second for itself, `2 * streams` transactions a second;
now streams wait on LISTEN/NOTIFY and read only when a run they show changed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bench.report import Result, Table
from bench import runs_at_scale
from bench.series_store import api_stack, ms
from harness.seed_runs import insert_runs
from harness.stack import POSTGRES_ADMIN_URL
from prunelab.server.db import session_scope
from prunelab.server.models import Run, RunStatus

NAME = "live_streams"
GOAL_P50_RATIO = 1.2
RUNS_LIST_SHARE = 10  # one stream in ten follows the runs list
PAGE = 50


@dataclass(frozen=True)
class Size:
    label: str
    streams: int
    runs: int
    window_s: float
    budget_s: float
    max_samples: int


SIZES = {
    "tiny": Size("TINY: 20 streams", 20, 60, 2.0, 0.5, 5),
    "quick": Size("QUICK: 200 streams", 200, 400, 10.0, 3.0, 30),
    "full": Size("500 streams", 500, 1_000, 30.0, 10.0, 100),
}


def commits(database: str) -> int:
    """Transactions committed in `database` so far, read over a connection to another database."""
    url = make_url(POSTGRES_ADMIN_URL)
    with psycopg.connect(
        host=url.host, port=url.port or 5432, user=url.username, dbname=url.database, autocommit=True
    ) as admin:
        row = admin.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)).fetchone()
    assert row is not None
    return int(row[0])


def commits_per_s(database: str, window_s: float) -> float:
    """Committed transactions per second over a quiet window (statistics are flushed within a second)."""
    time.sleep(1.5)
    before = commits(database)
    time.sleep(window_s)
    time.sleep(1.5)  # let the window's last transactions reach the statistics
    return (commits(database) - before) / (window_s + 1.5)


async def open_streams(base: str, paths: list[str], opened: asyncio.Event, stop: asyncio.Event) -> list[int]:
    """Hold one stream per path; `opened` once each has had its first event. Returns events seen per stream."""
    limits = httpx.Limits(max_connections=len(paths) + 10, max_keepalive_connections=0)
    seen = [0] * len(paths)
    first = asyncio.Semaphore(0)

    async def follow(index: int, path: str, client: httpx.AsyncClient) -> None:
        async with client.stream("GET", path) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    seen[index] += 1
                    if seen[index] == 1:
                        first.release()

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(30, read=None)) as client:
        tasks = [asyncio.create_task(follow(index, path, client)) for index, path in enumerate(paths)]
        for _ in paths:
            await asyncio.wait_for(first.acquire(), timeout=300)
        opened.set()
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return seen


def stream_paths(size: Size) -> list[str]:
    with session_scope() as session:
        unfinished = session.scalars(
            select(Run.id).where(Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING])).order_by(Run.id)
        ).all()
    assert unfinished, "the seeded runs include queued and running ones"
    return [
        "/api/runs/events"
        if index % RUNS_LIST_SHARE == 0
        else f"/api/runs/{unfinished[index % len(unfinished)]}/events"
        for index in range(size.streams)
    ]


def measure(size: Size) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with api_stack("postgresql") as (config, base), httpx.Client(base_url=base, timeout=120) as client:
        database = make_url(config.database_url).database or ""
        insert_runs(size.runs, seed=23)

        def page() -> None:
            client.get("/api/runs", params={"limit": PAGE}).raise_for_status()

        figures["idle_commits_per_s"] = commits_per_s(database, size.window_s)
        sampling = runs_at_scale.Size(size.label, size.runs, size.budget_s, size.max_samples)
        figures["idle"] = runs_at_scale.sample(page, sampling)
        paths = stream_paths(size)

        async def with_streams() -> None:
            opened, stop = asyncio.Event(), asyncio.Event()
            holder = asyncio.create_task(open_streams(base, paths, opened, stop))
            started = time.perf_counter()
            await asyncio.wait_for(opened.wait(), timeout=600)
            figures["open_s"] = time.perf_counter() - started
            figures["streams_commits_per_s"] = await asyncio.to_thread(commits_per_s, database, size.window_s)
            figures["streams"] = await asyncio.to_thread(runs_at_scale.sample, page, sampling)
            stop.set()
            seen = await holder
            figures["events_per_stream"] = sum(seen) / len(seen)

        asyncio.run(with_streams())
    return figures


def run(size: Size) -> Result:
    started = time.monotonic()
    measured = measure(size)
    idle_p50, streams_p50 = ms(measured["idle"]) or 0.0, ms(measured["streams"]) or 0.0
    extra_commits = measured["streams_commits_per_s"] - measured["idle_commits_per_s"]
    table = Table(
        f"{size.streams} open live streams, one API process on PostgreSQL + Redis ({size.runs:,} runs)",
        ["", "idle", f"{size.streams} streams open", "ratio / difference", "goal"],
        [
            [f"GET /api/runs?limit={PAGE} p50 ms", idle_p50, streams_p50, streams_p50 / idle_p50,
             f"<= {GOAL_P50_RATIO}x"],
            [f"GET /api/runs?limit={PAGE} p95 ms", ms(measured["idle"], 0.95), ms(measured["streams"], 0.95), None, ""],
            [f"committed transactions / s over {size.window_s:g} s", measured["idle_commits_per_s"],
             measured["streams_commits_per_s"], extra_commits, "no steady queries (difference ~0)"],
            ["before: a read per stream every 0.5 s (transactions / s)", None, 2.0 * size.streams, None, ""],
            ["seconds to open every stream (first event each)", None, measured["open_s"], None, ""],
        ],
    )  # fmt: skip
    figures: dict[str, float | str] = {
        "idle_p50_ms": idle_p50,
        "streams_p50_ms": streams_p50,
        "p50_ratio": streams_p50 / idle_p50,
        "idle_commits_per_s": float(measured["idle_commits_per_s"]),
        "streams_commits_per_s": float(measured["streams_commits_per_s"]),
        "extra_commits_per_s": float(extra_commits),
        "open_s": float(measured["open_s"]),
        "streams": float(size.streams),
    }
    notes = [
        "Seeded runs from `harness.seed_runs`; about 4 in 10 are queued or running, so their streams stay open "
        "(nothing trains: the window is steady state). The API runs without its reaper, whose passes would add "
        "the same transactions to both columns.",
        "Transactions are `pg_stat_database.xact_commit` deltas of the API's database over the window, read from "
        "the admin database; each stream's first read (when it opens) happens before the window.",
        "`before` is what the polling streams did by construction (backend/runs/events.py until issue 23: one read "
        "transaction per stream every 0.5 s), not a measurement.",
    ]
    return Result(NAME, "10. Live streams", size.label, [table], figures, notes, elapsed_s=time.monotonic() - started)
