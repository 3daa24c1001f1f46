"""Benchmark 7: the runs table at 10,000 runs (issue 14 part 5), on PostgreSQL and SQLite.

Per database, runs with summaries, tags, owners and latest metrics are bulk-inserted
(`harness.seed_runs`, the latest values through `record_points`), then one API process
(`bench.legacy_reads:app`) answers the dashboard's reads over loopback HTTP: its first page, the
issue's filter, a sort by a final metric and the page after it, each p50 over repetitions.
"Before" is the runs table's read until now, served by the same process: `GET /legacy/runs?limit=1000`,
the 1,000 newest runs that the browser then filtered and sorted (runs past the 1,000th could not be found).
Issue 24's before: the sort by a metric served by a second API process running the code of
`series_store.BEFORE_COMMIT` (a git worktree) on the same database, quiet and under the same writers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.report import Result, Table, sample
from bench.series_store import BEFORE_COMMIT, api_stack, before_checkout, ms, serve_api, writers
from harness.seed_runs import insert_runs

NAME = "runs_at_scale"
DATABASES = ("postgresql", "sqlite")
ISSUE_FILTER = "accuracy > 0.98 kind:polynomial tag:sweep"
METRIC_SORT = "test_accuracy"
PAGE = 50  # what the dashboard asks for
GOAL_MS = 100


@dataclass(frozen=True)
class Size:
    label: str
    runs: int
    budget_s: float
    max_samples: int
    writers: int = 8  # processes logging through DatabaseReporter while the sort is measured again (issue 24)


SIZES = {
    "tiny": Size("TINY: 120 runs", 120, 0.2, 3, writers=2),
    "quick": Size("QUICK: 2,000 runs", 2_000, 3.0, 10),
    "full": Size("10,000 runs", 10_000, 10.0, 25),
}


def measure_database(backend: str, size: Size, before_code: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with (
        api_stack(backend) as (config, base),
        httpx.Client(base_url=base, timeout=120) as client,
        serve_api(config, code=before_code, name="api-before") as (_api, before_base),
        httpx.Client(base_url=before_base, timeout=120) as before_client,
    ):
        started = time.perf_counter()
        insert_runs(size.runs, seed=8)
        figures["insert_runs_per_s"] = size.runs / (time.perf_counter() - started)

        def page(served_by: httpx.Client = client, **params: str) -> dict[str, Any]:
            response = served_by.get("/api/runs", params={"limit": str(PAGE), **params})
            response.raise_for_status()
            return response.json()  # type: ignore[no-any-return]

        def before() -> int:
            response = client.get("/legacy/runs", params={"limit": 1000})
            response.raise_for_status()
            return len(response.json())

        first = page()
        filtered = page(filter=ISSUE_FILTER)
        sorted_page = page(sort=METRIC_SORT, order="desc")
        figures["total"] = first["total"]
        figures["filter_total"] = filtered["total"]
        figures["first_page"] = sample(page, size)
        figures["filter"] = sample(lambda: page(filter=ISSUE_FILTER), size)
        figures["sort"] = sample(lambda: page(sort=METRIC_SORT, order="desc"), size)
        cursor = sorted_page["next_cursor"]
        figures["next_page"] = sample(lambda: page(sort=METRIC_SORT, order="desc", cursor=cursor), size)
        before_sorted = page(before_client, sort=METRIC_SORT, order="desc")
        figures["before24_same_page"] = [run["id"] for run in before_sorted["runs"]] == [
            run["id"] for run in sorted_page["runs"]
        ]
        figures["sort_before24"] = sample(lambda: page(before_client, sort=METRIC_SORT, order="desc"), size)
        with writers(size.writers):
            figures["sort_loaded"] = sample(lambda: page(sort=METRIC_SORT, order="desc"), size)
            figures["sort_before24_loaded"] = sample(lambda: page(before_client, sort=METRIC_SORT, order="desc"), size)
        figures["before_seen"] = before()
        figures["before"] = sample(before, size)
        figures["page_bytes"] = len(client.get("/api/runs", params={"limit": PAGE}).content)
        figures["before_bytes"] = len(client.get("/legacy/runs", params={"limit": 1000}).content)
    return figures


def run(size: Size) -> Result:
    started = time.monotonic()
    with before_checkout() as before_code:
        measured = {backend: measure_database(backend, size, before_code) for backend in DATABASES}
    pg, lite = measured["postgresql"], measured["sqlite"]
    seen = f"sees {pg['before_seen']:,} of {size.runs:,} runs"

    def row(label: str, name: str) -> list[object]:
        return [label, ms(pg[name]), ms(pg[name], 0.95), ms(lite[name]), ms(lite[name], 0.95), f"<= {GOAL_MS}"]

    reads = Table(
        f"The runs table at {size.runs:,} runs ({PAGE} per page; p50 / p95 ms over loopback HTTP)",
        ["read", "PostgreSQL p50", "PostgreSQL p95", "SQLite p50", "SQLite p95", "goal (p50)"],
        [
            row(f"first page: GET /api/runs?limit={PAGE} (of {pg['total']:,})", "first_page"),
            row(f"filter `{ISSUE_FILTER}` ({pg['filter_total']:,} match)", "filter"),
            row(f"sort by {METRIC_SORT}, descending", "sort"),
            row(f"  the same while {size.writers} writers log through DatabaseReporter", "sort_loaded"),
            row(f"  issue 24's before (commit {BEFORE_COMMIT}), quiet", "sort_before24"),
            row(f"  issue 24's before, while {size.writers} writers log", "sort_before24_loaded"),
            row("  its next page (cursor)", "next_page"),
            [f"before: GET /api/runs?limit=1000, filtered in the browser ({seen})",
             ms(pg["before"]), ms(pg["before"], 0.95), ms(lite["before"]), ms(lite["before"], 0.95), ""],
            ["reply bytes: a page / before", f"{pg['page_bytes']:,} / {pg['before_bytes']:,}", None,
             f"{lite['page_bytes']:,} / {lite['before_bytes']:,}", None, ""],
            ["bulk insert (runs/s, with latest values)", pg["insert_runs_per_s"], None,
             lite["insert_runs_per_s"], None, ""],
        ],
    )  # fmt: skip
    figures: dict[str, float | str] = {}
    for backend, values in measured.items():
        sorts = ("sort", "sort_loaded", "sort_before24", "sort_before24_loaded")
        for name in ("first_page", "filter", *sorts, "next_page", "before"):
            figures[f"{name}_ms_{backend}"] = ms(values[name]) or 0.0
        figures[f"insert_runs_per_s_{backend}"] = float(values["insert_runs_per_s"])
    notes = [
        "Runs come from `harness.seed_runs` (seeded): succeeded runs have a summary (test accuracy, sparsity, sizes, a "
        "coverage object); every run has latest values of loss, accuracy and measured sparsity, 0 to 2 tags and no "
        "owner; half are polynomial schedules.",
        "Before = the runs table's read until issue 14 part 5 (bench/legacy_reads.py, same process): the newest 1,000 "
        "runs, filtered and sorted in the browser; the browser's own filtering is not in the figure, and runs past the "
        "1,000th could not be found. After = the server filters, sorts and pages (backend/runs/listing.py).",
        f"Issue 24's before: commit {BEFORE_COMMIT}'s API (a git worktree) on the same database; its first sorted page "
        + ("is" if pg["before24_same_page"] and lite["before24_same_page"] else "is NOT")
        + " the same runs as this code's.",
    ]
    return Result(NAME, "7. Runs at scale", size.label, [reads], figures, notes, elapsed_s=time.monotonic() - started)
