"""Benchmark 10: open live streams cost no steady database work (issue 23 part 4), on PostgreSQL + Redis.

One API process (`api_stack`: the real routes, no reaper) over a database of seeded runs. First idle:
`GET /api/runs` p50, and the database's committed transactions (`pg_stat_database.xact_commit`, read
from another database so the reads are not counted) over a quiet window. Then `streams` live streams
are opened by a process of their own (nine in ten follow one queued or running run, the rest the
runs list), each waited on until its first event arrived, and the same two are measured with every
stream open; then idle again, once the streams closed, since the machine's load drifts. Before this
change each stream read the database twice a second for itself, `2 * streams` transactions a second;
now streams wait on LISTEN/NOTIFY and read only when a run they show changed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bench import runs_at_scale
from bench.report import Result, Table
from bench.series_store import api_stack, ms
from harness.seed_runs import insert_runs
from harness.stack import POSTGRES_ADMIN_URL, REPO
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


# An idle PostgreSQL backend (15+) flushes its pending statistics within PGSTAT_IDLE_INTERVAL, 10 s: waiting longer
# first keeps the transactions made before a window (opening 500 streams) out of it.
STATS_SETTLE_S = 11.0


def commits_per_s(database: str, window_s: float, settle_s: float = STATS_SETTLE_S) -> float:
    """Committed transactions per second over a quiet window, each end read once earlier work was flushed."""
    time.sleep(settle_s)
    before = commits(database)
    time.sleep(window_s)
    return (commits(database) - before) / window_s


async def hold_streams(base: str, paths: list[str]) -> None:
    """In the holder process: open one stream per path, say `opened SECONDS` once each had its first event,
    keep them open until standard input closes, then say `events MEAN` (events received per stream)."""
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
        started = time.perf_counter()
        tasks = [asyncio.create_task(follow(index, path, client)) for index, path in enumerate(paths)]
        for _ in paths:
            await asyncio.wait_for(first.acquire(), timeout=300)
        print(f"opened {time.perf_counter() - started:.3f}", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our standard input
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(f"events {sum(seen) / len(seen):.3f}", flush=True)


@contextmanager
def streams_held(base: str, paths: list[str], folder: Path) -> Iterator[float]:
    """Open the streams from a process of their own (so the client shares no interpreter with the sampler)."""
    listing = folder / "stream-paths.json"
    listing.write_text(json.dumps(paths))
    holder = subprocess.Popen(
        [sys.executable, "-m", "bench.live_streams", base, str(listing)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdin is not None and holder.stdout is not None
    try:
        opened = holder.stdout.readline().split()
        assert opened[:1] == ["opened"], f"the stream holder failed (exit {holder.poll()})"
        yield float(opened[1])
    finally:
        holder.stdin.close()
        holder.wait(timeout=120)


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


def vacuum(database_url: str) -> None:
    """Analyze the seeded tables now, so autovacuum has nothing to do during the windows."""
    url = make_url(database_url)
    with psycopg.connect(
        host=url.host, port=url.port or 5432, user=url.username, dbname=url.database, autocommit=True
    ) as connection:
        connection.execute("VACUUM ANALYZE")


def measure(size: Size) -> dict[str, Any]:
    """Idle, then with every stream open, then idle again (the machine's load drifts: both idle reads count)."""
    figures: dict[str, Any] = {}
    with api_stack("postgresql") as (config, base), httpx.Client(base_url=base, timeout=120) as client:
        database = make_url(config.database_url).database or ""
        insert_runs(size.runs, seed=23)
        vacuum(config.database_url)
        sampling = runs_at_scale.Size(size.label, size.runs, size.budget_s, size.max_samples)
        settle_s = STATS_SETTLE_S if size.window_s >= 10 else 1.0  # the smoke test's size only checks it runs

        def page() -> None:
            client.get("/api/runs", params={"limit": PAGE}).raise_for_status()

        figures["idle_commits_per_s"] = commits_per_s(database, size.window_s, settle_s)
        idle = runs_at_scale.sample(page, sampling)
        with streams_held(base, stream_paths(size), config.home) as open_s:
            figures["open_s"] = open_s
            figures["streams_commits_per_s"] = commits_per_s(database, size.window_s, settle_s)
            figures["streams"] = runs_at_scale.sample(page, sampling)
        figures["idle"] = idle + runs_at_scale.sample(page, sampling)
    return figures


def run(size: Size) -> Result:
    started = time.monotonic()
    measured = measure(size)
    idle_p50, streams_p50 = ms(measured["idle"]) or 0.0, ms(measured["streams"]) or 0.0
    extra_commits = measured["streams_commits_per_s"] - measured["idle_commits_per_s"]
    table = Table(
        f"{size.streams} open live streams, one API process on PostgreSQL + Redis ({size.runs:,} runs)",
        ["", "idle (before and after)", f"{size.streams} streams open", "ratio / difference", "goal"],
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
        "the admin database, after a VACUUM ANALYZE of the seeded tables (else autovacuum's transactions land in a "
        "window); each stream's first read (when it opens) happens before the window.",
        "`before` is what the polling streams did by construction (backend/runs/events.py until issue 23: one read "
        "transaction per stream every 0.5 s), not a measurement.",
    ]
    return Result(NAME, "10. Live streams", size.label, [table], figures, notes, elapsed_s=time.monotonic() - started)


if __name__ == "__main__":  # the stream holder: python -m bench.live_streams BASE_URL PATHS.json
    asyncio.run(hold_streams(sys.argv[1], json.loads(Path(sys.argv[2]).read_text())))
