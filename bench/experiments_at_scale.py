"""Experiments at scale (issue 21): a grouped compare, a 1,000-point sweep and the grouped runs table.

Per database (PostgreSQL + Redis, SQLite + the embedded broker), one API process serves the real routes over
loopback HTTP, and each read is timed until its budget is spent (p50, p95):
- Grouped compare: 40 finished runs x 20,000 steps x 6 curve keys (+2 per-layer keys every 100 steps), tagged as
  8 groups (2 variants x 4 sparsities) x 5 seeds. The grouped read is what the compare page asks in group mode,
  `GET /api/groups/curves` (mean and band on one x grid, n per x), for one key and for all 8 keys one after
  another; the reference is the same 40 runs ungrouped, `GET /api/compare` with all keys, which takes 20 runs a
  request, so two requests. The series are written in their compacted form (finished runs are compacted;
  `store_compacted` is the compaction's own writer), as the series benchmark's 80 M scenario does.
- A 1,000-point sweep (`POST /api/sweeps`): accepted (the reply) and queued (all 1,000 messages in the broker),
  against the same 1,000 runs submitted one by one with `POST /api/runs` in the same run. No worker runs.
- The grouped runs table at 10,000 runs (`harness.seed_runs`): `GET /api/groups` as the runs page asks it
  (by schedule kind and a tag, the page's three metrics), against the ungrouped first page `GET /api/runs`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import redis

from bench.report import Result, Table, ratio, sample
from bench.series_store import CURVE_KEYS, LAYER_KEYS, api_stack, ms, new_run, run_series
from harness.seed_runs import insert_runs
from harness.stack import REDIS_URL, StackConfig
from prunelab.core.sweeps import SweepSpec, expand
from prunelab.server.db import session_scope
from prunelab.server.metrics.compaction import store_compacted
from prunelab.server.models import Run

NAME = "experiments_at_scale"
DATABASES = ("postgresql", "sqlite")
VARIANTS = ("constant", "polynomial")
SPARSITIES = ("0.5", "0.75", "0.875", "0.95")
GROUP_BY = "tag:variant,tag:sparsity"
ALL_KEYS = CURVE_KEYS + LAYER_KEYS
COMPARE_LIMIT = 20  # runs per GET /api/compare
COMPARE_POINTS = 1680  # what the compare page asks per series
TABLE_BY = "schedule.kind,tag:best"
TABLE_METRICS = "test_accuracy,measured_sparsity,keras_zip_bytes"  # what the runs page asks
GOALS_MS = {"grouped_compare": 200, "sweep_queued": 2000, "grouped_table": 150}


@dataclass(frozen=True)
class Size:
    label: str
    seeds: int
    steps: int
    sweep_points: int
    table_runs: int
    budget_s: float
    max_samples: int
    sweeps: int  # repetitions of the sweep POST


SIZES = {
    "tiny": Size("TINY: 8 groups x 2 seeds x 500 steps; a 40-point sweep; 200 runs", 2, 500, 40, 200, 0.2, 2, 1),
    "quick": Size("QUICK: 8 groups x 5 seeds x 4,000 steps; a 200-point sweep; 2,000 runs", 5, 4_000, 200, 2_000,
                  2.0, 8, 2),
    "full": Size("40 runs (8 groups x 5 seeds) x 20,000 steps x 8 keys; a 1,000-point sweep; 10,000 runs", 5,
                 20_000, 1_000, 10_000, 15.0, 15, 3),
}  # fmt: skip


def grouped_runs(size: Size) -> list[int]:
    """8 groups x `size.seeds` finished runs, each tagged variant:<v>, sparsity:<s>, seed:<n>, series compacted."""
    ids = []
    for variant_index, variant in enumerate(VARIANTS):
        for sparsity_index, sparsity in enumerate(SPARSITIES):
            for seed in range(size.seeds):
                index = (variant_index * len(SPARSITIES) + sparsity_index) * size.seeds + seed
                run_id = new_run(f"{variant} {sparsity} seed {seed}")
                with session_scope() as session:
                    store_compacted(session, run_id, run_series(index, size.steps, CURVE_KEYS, LAYER_KEYS))
                    run = session.get(Run, run_id)
                    assert run is not None
                    run.tags = [f"variant:{variant}", f"sparsity:{sparsity}", f"seed:{seed}"]
                ids.append(run_id)
    return ids


def sweep_body(points: int, name: str) -> dict[str, Any]:
    """`points` runs of the mlp on digits: 2 variants x 10 sparsities x points / 20 seeds."""
    return {
        "name": name,
        "base": {"dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64, "schedule": {"frequency": 7}},
        "variants": {
            "constant": {"schedule": {"kind": "constant"}},
            "polynomial": {"schedule": {"kind": "polynomial"}},
        },
        "axes": [{"path": "sparsity", "values": [round(0.05 + 0.09 * i, 2) for i in range(10)]}],
        "seeds": list(range(points // 20)),
    }


def broker_depth(config: StackConfig) -> Callable[[], int]:
    """Messages waiting in the run queue: a Redis list, or kombu's message table of the SQLite broker."""
    if config.broker_url.startswith("redis"):
        client = redis.Redis.from_url(REDIS_URL)
        return lambda: int(client.llen(config.queue))
    path = config.broker_url.removeprefix("sqla+sqlite:///")

    def count() -> int:
        with sqlite3.connect(path) as connection:
            try:
                return int(connection.execute("SELECT COUNT(*) FROM kombu_message WHERE visible = 1").fetchone()[0])
            except sqlite3.OperationalError:  # the broker's tables are made with the first message
                return 0

    return count


def measure_sweeps(client: httpx.Client, config: StackConfig, size: Size) -> dict[str, Any]:
    depth = broker_depth(config)
    accepted, queued = [], []
    for repetition in range(size.sweeps):
        before = depth()
        started = time.perf_counter()
        reply = client.post("/api/sweeps", json=sweep_body(size.sweep_points, f"bench {repetition}"))
        reply.raise_for_status()
        accepted.append(time.perf_counter() - started)
        while depth() < before + size.sweep_points:
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"{depth() - before} of {size.sweep_points} messages queued after 600 s")
            time.sleep(0.005)
        queued.append(time.perf_counter() - started)
    # The reference: the sweep's own points (core's expansion, as the API does it), each POSTed as one run.
    body = sweep_body(size.sweep_points, "one by one")
    singles = [
        point.spec.model_dump(mode="json") for point in expand(SweepSpec.model_validate(body), size.sweep_points)
    ]
    started = time.perf_counter()
    for spec in singles:
        client.post("/api/runs", json=spec).raise_for_status()
    one_by_one = time.perf_counter() - started
    return {"sweep_accepted": accepted, "sweep_queued": queued, "one_by_one_s": one_by_one}


def measure_database(backend: str, size: Size) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with api_stack(backend) as (config, base), httpx.Client(base_url=base, timeout=600) as client:
        ids = grouped_runs(size)
        runs = ",".join(map(str, ids))

        def ungrouped() -> int:
            replies = [
                client.get(
                    "/api/compare",
                    params={"runs": ",".join(map(str, ids[start : start + COMPARE_LIMIT])),
                            "keys": ",".join(ALL_KEYS), "max_points": COMPARE_POINTS},
                ).raise_for_status()
                for start in range(0, len(ids), COMPARE_LIMIT)
            ]  # fmt: skip
            return sum(len(reply.content) for reply in replies)

        def grouped(key: str) -> int:
            reply = client.get("/api/groups/curves", params={"runs": runs, "by": GROUP_BY, "key": key})
            body = reply.raise_for_status().json()
            assert len(body["groups"]) == len(VARIANTS) * len(SPARSITIES), body["groups"]
            assert all(max(group["band"]["n"]) == size.seeds for group in body["groups"])
            return len(reply.content)

        figures["ungrouped"] = sample(ungrouped, size)
        figures["ungrouped_bytes"] = ungrouped()
        figures["grouped_one"] = sample(lambda: grouped("loss"), size)
        figures["grouped_one_bytes"] = grouped("loss")
        figures["grouped_all"] = sample(lambda: [grouped(key) for key in ALL_KEYS], size)
        figures["grouped_all_bytes"] = sum(grouped(key) for key in ALL_KEYS)
        figures |= measure_sweeps(client, config, size)

    with api_stack(backend) as (_config, base), httpx.Client(base_url=base, timeout=600) as client:
        insert_runs(size.table_runs, seed=8)

        def table() -> int:
            params = {"by": TABLE_BY, "metrics": TABLE_METRICS, "filter": ""}
            body = client.get("/api/groups", params=params).raise_for_status().json()
            return sum(len(group["run_ids"]) + len(group["failed_run_ids"]) + len(group["pending_run_ids"])
                       for group in body["groups"])  # fmt: skip

        def first_page() -> None:
            client.get("/api/runs", params={"limit": 50}).raise_for_status()

        figures["table_grouped_runs"] = table()
        figures["grouped_table"] = sample(table, size)
        figures["first_page"] = sample(first_page, size)
    return figures


def run(size: Size) -> Result:
    started = time.monotonic()
    measured = {backend: measure_database(backend, size) for backend in DATABASES}
    pg, lite = measured["postgresql"], measured["sqlite"]
    runs = 8 * size.seeds

    def row(label: str, name: str, goal: str = "", reference: str | None = None) -> list[object]:
        cells: list[object] = [label]
        for values in (pg, lite):
            cells += [ms(values[name]), ms(values[name], 0.95)]
            cells.append(ratio(ms(values[name]), ms(values[reference])) if reference else None)
        return [*cells, goal]

    reads = Table(
        f"Reads of experiments ({size.label}; p50 / p95 ms over loopback HTTP; ratio: p50 against the reference "
        "row above it, same run)",
        ["read", "PostgreSQL p50", "p95", "ratio", "SQLite p50", "p95", "ratio", "goal (p50)"],
        [
            row(f"reference: ungrouped compare of the {runs} runs, all {len(ALL_KEYS)} keys "
                f"({-(-runs // COMPARE_LIMIT)} x GET /api/compare)", "ungrouped"),
            row(f"grouped compare, one key (GET /api/groups/curves?by={GROUP_BY})", "grouped_one", "",
                "ungrouped"),
            row(f"grouped compare, all {len(ALL_KEYS)} keys (one request per key, in sequence)", "grouped_all",
                f"<= {GOALS_MS['grouped_compare']}", "ungrouped"),
            row(f"reference: ungrouped runs table, first page (of {size.table_runs:,})", "first_page"),
            row(f"grouped runs table at {size.table_runs:,} runs (GET /api/groups?by={TABLE_BY})", "grouped_table",
                f"<= {GOALS_MS['grouped_table']}", "first_page"),
        ],
    )  # fmt: skip
    sweeps = Table(
        f"A {size.sweep_points:,}-point sweep, POST /api/sweeps (ms; {size.sweeps} repetition(s), p50)",
        ["", "PostgreSQL + Redis", "SQLite + embedded broker", "goal"],
        [
            ["accepted (the reply)", ms(pg["sweep_accepted"]), ms(lite["sweep_accepted"]), ""],
            [f"queued (all {size.sweep_points:,} messages in the broker)", ms(pg["sweep_queued"]),
             ms(lite["sweep_queued"]), f"<= {GOALS_MS['sweep_queued']}"],
            [f"reference: the same {size.sweep_points:,} runs one by one (POST /api/runs)", pg["one_by_one_s"] * 1e3,
             lite["one_by_one_s"] * 1e3, ""],
            ["queued sweep / one by one", ratio(ms(pg["sweep_queued"]), pg["one_by_one_s"] * 1e3),
             ratio(ms(lite["sweep_queued"]), lite["one_by_one_s"] * 1e3), ""],
        ],
    )  # fmt: skip
    sizes = Table(
        "Reply bytes",
        ["read", "PostgreSQL", "SQLite"],
        [
            ["ungrouped compare, all keys", pg["ungrouped_bytes"], lite["ungrouped_bytes"]],
            ["grouped compare, one key", pg["grouped_one_bytes"], lite["grouped_one_bytes"]],
            ["grouped compare, all keys", pg["grouped_all_bytes"], lite["grouped_all_bytes"]],
        ],
    )
    figures: dict[str, float | str] = {}
    for backend, values in measured.items():
        for name in ("ungrouped", "grouped_one", "grouped_all", "grouped_table", "first_page", "sweep_accepted",
                     "sweep_queued"):  # fmt: skip
            figures[f"{name}_ms_{backend}"] = ms(values[name]) or 0.0
        figures[f"one_by_one_ms_{backend}"] = values["one_by_one_s"] * 1e3
        figures[f"table_grouped_runs_{backend}"] = float(values["table_grouped_runs"])
    notes = [
        "Group curves: the server reads each run's series from the store's levels (up to 2,000 points a run), "
        "interpolates them onto one 300-point x grid and returns mean, band (std) and n per x for each group; each "
        "timed read checks that it returned 8 groups with n = the seeds at some x.",
        "The sweep's runs are queued by a thread after the reply (`enqueue_runs_in_background`); 'queued' is timed "
        "from the POST until the broker holds every message (Redis LLEN of the run queue; the SQLite broker's "
        "visible rows in kombu_message). No worker consumes them.",
        "The grouped runs table counts every one of the 10,000 runs (the groups' run ids add up to the table's "
        "size, checked); the runs come from `harness.seed_runs` as in the runs-at-scale section.",
    ]
    return Result(
        NAME,
        "12. Experiments at scale",
        size.label,
        [reads, sweeps, sizes],
        figures,
        notes,
        elapsed_s=time.monotonic() - started,
    )
