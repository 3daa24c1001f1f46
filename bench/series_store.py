"""Benchmark 6: the metric history store (issue 14), before and after, on PostgreSQL and SQLite.

Per database, one API process (`bench.legacy_reads:app`: PruneLab's API plus today's read path
before the store under /legacy) serves both sides over loopback HTTP:
- The issue's table: runs x steps x 6 curve keys (+2 per-layer keys every 100 steps) loaded
  through `record_points` (timed: ingestion). "Before" reads go through /legacy (today's row scan
  and GROUP BY); then every run is compacted (timed) and "after" reads go through the real routes.
- The 80 M-point scenario: 100 runs x 100,000 steps x 8 keys, and one run with 100 layers
  (sparsity and churn every 100 steps). Loading 80 M points through hot rows would take hours, so
  these series are written straight into the compacted form by the compaction code's own writer
  (`store_compacted`, which `compact_run` uses too); the table says so.
MLflow's tracking server (SQLite backend) holds the issue-table data once, read as its UI does.
Values are float32, as Keras logs them. Every cell repeats until its budget is spent; p50 and p95.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import text

from bench import mlflow_peer, workloads
from bench.report import Result, Table, percentile, sample
from bench.stacks import pointed_at, queued_run
from harness.stack import (
    REDIS_URL,
    REPO,
    Process,
    StackConfig,
    free_port,
    healthy,
    migrate,
    postgres_database,
    sqlite_stack,
    wait_until,
)
from prunelab.core.specs import RunSpec
from prunelab.server.db import engine_for, session_scope
from prunelab.server.metrics.compaction import compact_run, store_compacted
from prunelab.server.metrics.points import Points
from prunelab.server.metrics.service import MetricPoint, record_points
from prunelab.server.models import Run, RunStatus, utcnow
from prunelab.server.settings import get_settings

NAME = "series"
CURVE_KEYS = ("loss", "accuracy", "target_sparsity", "measured_sparsity", "compressed_size_bytes", "val_accuracy")
LAYER_KEYS = ("layer_sparsity/dense_1", "mask_churn/dense_1")  # logged at each pruning step (every 100 steps)
BIG_KEYS = (*CURVE_KEYS, "layer_sparsity/dense_1", "mask_churn/dense_1")  # the 80 M scenario logs 8 keys per step
PRUNING_EVERY = 100
DATABASES = ("postgresql", "sqlite")
GOALS_MS = {"compare_small": 150, "compare_big": 300, "run_page_big": 100, "layered_big": 200, "zoom_big": 100}


@dataclass(frozen=True)
class Size:
    label: str
    runs: int
    steps: int
    big_runs: int
    big_steps: int
    layers: int
    max_points: int
    budget_s: float
    max_samples: int
    with_mlflow: bool = True
    writers: int = 8  # processes logging through DatabaseReporter while issue 24's reads are measured


SIZES = {
    "tiny": Size("TINY: 2 runs x 300 steps; 3 x 2,000 x 8 keys", 2, 300, 3, 2_000, 3, 200, 0.2, 2, with_mlflow=False,
                 writers=2),
    "quick": Size("QUICK: 20 runs x 2,000 steps; 10 x 10,000 x 8 keys", 20, 2_000, 10, 10_000, 20, 1680, 3.0, 8),
    "full": Size(
        "20 runs x 20,000 steps x 6 keys (+2 per-layer keys); 100 runs x 100,000 steps x 8 keys (80 M points)",
        20, 20_000, 100, 100_000, 100, 1680, 20.0, 15,
    ),
}  # fmt: skip


def curve(seed: int, steps: int, every: int = 1) -> Points:
    """A noisy training curve in float32 (what Keras logs); wall times 50 ms a step with jitter."""
    rng = np.random.default_rng(seed)
    step = np.arange(every, steps + 1, every, dtype=np.int64)
    values = np.exp(-step / (steps / 3)) + 0.05 * rng.standard_normal(step.size) + (seed % 7)
    walls = 1.7e9 + seed * 1e4 + step * 0.05 + rng.random(step.size) * 1e-3
    return Points(step, values.astype(np.float32).astype(np.float64), walls)


def run_series(run_index: int, steps: int, keys: tuple[str, ...], layer_keys: tuple[str, ...]) -> dict[str, Points]:
    series = {key: curve(run_index * 1000 + index, steps) for index, key in enumerate(keys)}
    for index, key in enumerate(layer_keys):
        series[key] = curve(run_index * 1000 + 500 + index, steps, PRUNING_EVERY)
    return series


def point_count(series: dict[str, Points]) -> int:
    return sum(len(points) for points in series.values())


def new_run(name: str, status: RunStatus = RunStatus.SUCCEEDED) -> int:
    run_id = queued_run(RunSpec(epochs=1, schedule=workloads.constant(41, 0.5)), name)
    with session_scope() as session:
        run = session.get(Run, run_id)
        assert run is not None
        run.status, run.finished_at = status, utcnow()
    return run_id


def load_hot(series: dict[str, Points]) -> tuple[int, float]:
    """A finished run whose points go through record_points (what DatabaseReporter calls); returns id, seconds."""
    run_id = new_run("hot")
    points = [
        MetricPoint(key, step, value, wall)
        for key, s in series.items()
        for step, value, wall in zip(s.steps.tolist(), s.values.tolist(), s.wall_times.tolist(), strict=True)
    ]
    started = time.perf_counter()
    for start in range(0, len(points), 20_000):  # the batches a reporter flushes are far smaller
        with session_scope() as session:
            record_points(session, run_id, points[start : start + 20_000])
    return run_id, time.perf_counter() - started


def table_bytes(tables: tuple[str, ...]) -> int:
    with engine_for(get_settings().database_url).connect() as connection:
        if connection.dialect.name == "postgresql":
            return sum(
                connection.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar_one() for table in tables
            )
        # Each table and its primary key's index (SQLite names it sqlite_autoindex_<table>_N).
        names = " OR ".join(f"name = '{table}' OR name LIKE 'sqlite_autoindex_{table}_%'" for table in tables)
        return int(connection.execute(text(f"SELECT SUM(pgsize) FROM dbstat WHERE {names}")).scalar_one() or 0)


def ms(durations: list[float] | None, fraction: float = 0.5) -> float | None:
    return percentile(durations, fraction) * 1e3 if durations else None


@contextmanager
def database_stack(backend: str) -> Iterator[StackConfig]:
    """A migrated database (PostgreSQL or SQLite) that this process's settings point at; no reaper."""
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-series-")))
        if backend == "postgresql":
            url = stack.enter_context(postgres_database("prunelab_bench"))
            config = StackConfig(home=home, database_url=url, broker_url=REDIS_URL)
        else:
            config = sqlite_stack(home)
        config.extra["PRUNELAB_REAPER_INTERVAL_S"] = "0"  # compaction is timed, not left to the reaper
        migrate(config)
        stack.enter_context(pointed_at(config.database_url, home))
        yield config


@contextmanager
def serve_api(
    config: StackConfig, app: str = "bench.legacy_reads:app", code: Path | None = None, name: str = "api"
) -> Iterator[tuple[Process, str]]:
    """One uvicorn process serving `app` from `code` (a checkout; this one when None) on the stack's database."""
    env = config.env()
    port = config.port if code is None else free_port()
    if code is not None:
        env["PYTHONPATH"] = str(code)
        env["PRUNELAB_PORT"] = str(port)
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    api = Process(name, command, env, config.home / "logs", cwd=code)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(base), timeout=120, what=f"the benchmark API ({name})", process=api)
        yield api, base
    finally:
        api.stop()


@contextmanager
def api_stack(backend: str) -> Iterator[tuple[StackConfig, str]]:
    """A migrated database and one API process serving the real routes and /legacy."""
    with database_stack(backend) as config, serve_api(config) as (_api, base):
        yield config, base


@dataclass
class Reader:
    client: httpx.Client
    base: str

    def get(self, path: str, **params: object) -> httpx.Response:
        response = self.client.get(f"{self.base}{path}", params=params)
        response.raise_for_status()
        return response

    def compare(self, run_ids: list[int], keys: tuple[str, ...], max_points: int, legacy: bool = False) -> int:
        prefix = "/legacy" if legacy else "/api"
        runs = ",".join(map(str, run_ids))
        return len(self.get(f"{prefix}/compare", runs=runs, keys=",".join(keys), max_points=max_points).content)

    def run_page(self, run_id: int, keys: tuple[str, ...] | None, max_points: int, legacy: bool = False) -> int:
        prefix = "/legacy" if legacy else "/api"
        params: dict[str, object] = {"max_points": max_points}
        if keys is not None:
            params["keys"] = ",".join(keys)
        return len(self.get(f"{prefix}/runs/{run_id}/metrics", **params).content)

    def zoom(self, run_id: int, keys: tuple[str, ...], first: int, max_points: int) -> dict[str, list[int]]:
        body = self.get(
            f"/api/runs/{run_id}/metrics",
            keys=",".join(keys),
            max_points=max_points,
            start_step=first,
            end_step=first + 999,
        ).json()
        return {key: series["steps"] for key, series in body["series"].items()}

    def delete(self, run_id: int) -> float:
        started = time.perf_counter()
        self.client.delete(f"{self.base}/api/runs/{run_id}").raise_for_status()
        return time.perf_counter() - started


# Issue 24's "before": the read path at the commit issue 24's reads work started from, served from a git worktree
# of it (PRUNELAB_BENCH_BEFORE names another commit).
BEFORE_COMMIT = os.environ.get("PRUNELAB_BENCH_BEFORE", "5c9ac2a")
COLUMNS = {"accept": "application/vnd.prunelab.columns"}
MIX_GOALS_MS = {"compare_small": 60, "compare_big": 300, "layered_big": 200, "zoom_big": 100}
MIX_GOAL_LOADED_MS = {"compare_small": 150}


@contextmanager
def before_checkout() -> Iterator[Path]:
    """A detached git worktree of BEFORE_COMMIT in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-before-") as folder:
        path = Path(folder) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), BEFORE_COMMIT],
                       check=True, capture_output=True)  # fmt: skip
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], capture_output=True)


def _write_until(stop: object, logged: object) -> None:
    """One writer: a claimed run logging 8 keys a step through DatabaseReporter (a worker's path) until `stop`."""
    from prunelab.worker.db_reporter import DatabaseReporter
    from prunelab.worker.executor import claim_run

    run_id = queued_run(RunSpec(epochs=1, schedule=workloads.constant(41, 0.5)), "writer")
    claim = claim_run(run_id, f"bench-writer-{os.getpid()}")
    assert claim is not None
    reporter = DatabaseReporter(run_id, claim.attempt).start()
    step = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        step += 1
        reporter.log(step, {key: 1.0 / step for key in BIG_KEYS}, wall_time=1.7e9 + step * 0.01)
    reporter.close()
    with logged.get_lock():  # type: ignore[attr-defined]
        logged.value += step * len(BIG_KEYS)  # type: ignore[attr-defined]


@contextmanager
def writers(count: int) -> Iterator[Callable[[], float]]:
    """`count` writer processes ingesting at full speed; yields a function giving points/s once they stop."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter each: no inherited connections
    stop, logged = context.Event(), context.Value("q", 0)
    processes = [context.Process(target=_write_until, args=(stop, logged)) for _ in range(count)]
    for process in processes:
        process.start()
    time.sleep(2.0)  # past the imports: writing
    started = time.perf_counter()
    rate: list[float] = []
    try:
        yield lambda: rate[0] if rate else float("nan")
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=120)
        rate.append(logged.value / (time.perf_counter() - started + 2.0))


def mix_reads(
    small: list[int], big: list[int], layered: int, size: Size
) -> dict[str, Callable[[int], tuple[str, dict[str, object]]]]:
    """Issue 24's reads: each gives (path, params) for its n-th sample (the zoom moves its window every time)."""
    windows = np.random.default_rng(1).integers(1, size.big_steps - 1000, size=100_000)
    all_keys = ",".join(CURVE_KEYS + LAYER_KEYS)
    big_keys = ",".join(BIG_KEYS)
    compared = ",".join(map(str, big[: min(20, len(big))]))
    return {
        "compare_small": lambda n: ("/api/compare", {"runs": ",".join(map(str, small)), "keys": all_keys}),
        "compare_big": lambda n: ("/api/compare", {"runs": compared, "keys": big_keys}),
        "layered_big": lambda n: (f"/api/runs/{layered}/metrics", {}),
        "zoom_big": lambda n: (f"/api/runs/{big[n % len(big)]}/metrics", {"keys": big_keys,
                               "start_step": int(windows[n]), "end_step": int(windows[n]) + 999}),
    }  # fmt: skip


def measure_mix(
    client: httpx.Client,
    before: str,
    after: str,
    reads: dict[str, Callable[[int], tuple[str, dict[str, object]]]],
    size: Size,
    condition: str,
) -> dict[str, object]:
    """Each read three ways: before (today's code, JSON), after as the dashboard asks (columns; repeated reads of a
    finished run are the LRU's), and after's first read (each sample a budget not read before: no cache)."""
    figures: dict[str, object] = {}
    for name, read in reads.items():
        counter = iter(range(1_000_000))

        def get(
            base: str,
            headers: dict[str, str],
            fresh: bool = False,
            counter: Iterator[int] = counter,
            read: Callable[[int], tuple[str, dict[str, object]]] = read,
        ) -> int:
            n = next(counter)
            path, params = read(n)
            budget = size.max_points - n % (size.max_points // 2) if fresh else size.max_points
            response = client.get(f"{base}{path}", params={**params, "max_points": budget}, headers=headers)
            response.raise_for_status()
            return len(response.content)

        figures[f"{name}_before_{condition}"] = sample(lambda: get(before, {}), size)
        figures[f"{name}_after_{condition}"] = sample(lambda: get(after, COLUMNS), size)
        figures[f"{name}_first_{condition}"] = sample(lambda: get(after, COLUMNS, fresh=True), size)
        if condition == "quiet":
            figures[f"{name}_bytes_before"] = get(before, {})
            figures[f"{name}_bytes_json"] = get(after, {})
            figures[f"{name}_bytes_after"] = get(after, COLUMNS)
    return figures


DECODE_IN_CHROMIUM = """async ([json, columns, repeats]) => {
  const { decodeColumns } = await import("/js/common.js");  // the dashboard's own decoder
  const read = async (url, headers) => (await fetch(url, { headers, cache: "no-store" })).arrayBuffer();
  const jsonBytes = await read(json, {});
  const columnBytes = await read(columns, { accept: "application/vnd.prunelab.columns" });
  const median = (run) => {
    const times = [];
    for (let i = 0; i < repeats; i++) { const t = performance.now(); run(); times.push(performance.now() - t); }
    return times.sort((a, b) => a - b)[Math.floor(repeats / 2)];
  };
  // What a chart needs before it draws: every series' steps and values (wall times stay lazy in both forms).
  const touch = (body) => { let n = 0; for (const run of Object.values(body.series)) for (const s of Object.values(run))
    n += s.steps.length + s.values.length; return n; };
  return {
    json_ms: median(() => touch(JSON.parse(new TextDecoder().decode(jsonBytes)))),
    columns_ms: median(() => touch(decodeColumns(columnBytes))),
  };
}"""


def decode_in_chromium(base: str, path: str, params: dict[str, object], repeats: int) -> dict[str, float]:
    """Chromium's time to turn the compare reply's bytes into what the charts draw: JSON against columns."""
    from playwright.sync_api import sync_playwright

    from harness.browser import launch_chromium

    url = str(httpx.URL(f"{base}{path}", params=params))
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(f"{base}/login.html")  # any page of the API's origin
            return page.evaluate(DECODE_IN_CHROMIUM, [url, url, repeats])  # type: ignore[no-any-return]
        finally:
            browser.close()


def measure_database(backend: str, size: Size, before_code: Path) -> dict[str, object]:
    figures: dict[str, object] = {}
    all_keys = CURVE_KEYS + LAYER_KEYS
    with api_stack(backend) as (config, base), httpx.Client(timeout=600) as client:
        reader = Reader(client, base)
        # The table: hot rows through record_points, read the old way, compacted, read the new way.
        ids, seconds, loaded = [], 0.0, []
        for index in range(size.runs + 1):  # one more run, deleted before compaction
            series = run_series(index, size.steps, CURVE_KEYS, LAYER_KEYS)
            run_id, took = load_hot(series)
            ids.append(run_id)
            seconds += took
            loaded.append(point_count(series))
        figures["ingest_points_per_s"] = sum(loaded) / seconds
        figures["bytes_per_point_before"] = table_bytes(("metrics",)) / sum(loaded)
        spare, points = ids.pop(), sum(loaded[:-1])
        figures["compare_before"] = sample(lambda: reader.compare(ids, all_keys, size.max_points, legacy=True), size)
        figures["compare_bytes_before"] = reader.compare(ids, all_keys, size.max_points, legacy=True)
        figures["run_page_before"] = sample(lambda: reader.run_page(ids[0], None, size.max_points, legacy=True), size)
        figures["delete_small_before_ms"] = reader.delete(spare) * 1e3
        started = time.perf_counter()
        for run_id in ids:
            compact_run(run_id)
        figures["compact_points_per_s"] = points / (time.perf_counter() - started)
        figures["bytes_per_point_after"] = table_bytes(("metric_chunks", "metric_series")) / points
        figures["compare_after"] = sample(lambda: reader.compare(ids, all_keys, size.max_points), size)
        figures["compare_bytes_after"] = reader.compare(ids, all_keys, size.max_points)
        figures["run_page_after"] = sample(lambda: reader.run_page(ids[0], None, size.max_points), size)
        small_bytes = table_bytes(("metric_chunks", "metric_series"))

        # 80 M points, written straight into the compacted form.
        big_ids, big_points, started = [], 0, time.perf_counter()
        for index in range(size.big_runs):
            series = run_series(10_000 + index, size.big_steps, BIG_KEYS, ())
            run_id = new_run(f"big {index}")
            with session_scope() as session:
                store_compacted(session, run_id, series)
            big_ids.append(run_id)
            big_points += point_count(series)
        figures["big_write_points_per_s"] = big_points / (time.perf_counter() - started)
        figures["big_points"] = big_points
        figures["bytes_per_point_big"] = (table_bytes(("metric_chunks", "metric_series")) - small_bytes) / big_points
        kinds = ("layer_sparsity", "mask_churn")
        layers = tuple(f"{kind}/conv_{index}" for index in range(size.layers) for kind in kinds)
        layered = new_run("100 layers")
        with session_scope() as session:
            store_compacted(session, layered, run_series(20_000, size.big_steps, BIG_KEYS, layers))
        compared = big_ids[: min(20, len(big_ids))]
        figures["compare_big"] = sample(lambda: reader.compare(compared, BIG_KEYS, size.max_points), size)
        figures["run_page_big"] = sample(lambda: reader.run_page(big_ids[0], BIG_KEYS, size.max_points), size)
        figures["layered_big"] = sample(lambda: reader.run_page(layered, None, size.max_points), size)
        rng = np.random.default_rng(0)
        windows = iter(rng.integers(1, size.big_steps - 1000, size=10_000).tolist())
        exact = []

        def zoom() -> None:
            first = next(windows)
            steps = reader.zoom(int(rng.choice(big_ids)), BIG_KEYS, first, size.max_points)
            exact.append(all(s == list(range(first, first + 1000)) for s in steps.values()) and len(steps) == 8)

        figures["zoom_big"] = sample(zoom, size)
        figures["zoom_every_point"] = all(exact)
        # Issue 24: the same reads, before (today's code, from a worktree) and after, quiet and under writers.
        reads = mix_reads(ids, big_ids, layered, size)
        with serve_api(config, code=before_code, name="api-before") as (_api, before):
            figures.update(measure_mix(client, before, base, reads, size, "quiet"))
            with writers(size.writers) as rate:
                figures.update(measure_mix(client, before, base, reads, size, "loaded"))
            figures["writers_points_per_s"] = rate()
        path, params = reads["compare_small"](0)
        figures["decode"] = decode_in_chromium(base, path, {**params, "max_points": size.max_points}, 9)
        # Deleting a run of big_steps x 8 keys: its points as hot rows (before) and compacted (after).
        hot_big, _ = load_hot(run_series(30_000, size.big_steps, BIG_KEYS, ()))
        figures["delete_big_before_ms"] = reader.delete(hot_big) * 1e3
        figures["delete_big_after_ms"] = reader.delete(big_ids[-1]) * 1e3
    return figures


def measure_mlflow(size: Size) -> dict[str, list[float]]:
    """MLflow's UI reads on the issue-table data (6 curve keys): get-history-bulk-interval per metric."""
    from bench.readback import load_mlflow

    with tempfile.TemporaryDirectory(prefix="bench-series-mlflow-") as folder:
        home = Path(folder)
        with mlflow_peer.mlflow_server(home / "mlflow") as peer:
            ids, _ = load_mlflow(peer, home / "mlflow" / "mlflow.sqlite", size.runs, size.steps)
            return {
                "compare": sample(lambda: [peer.history_sampled(ids, k, size.max_points) for k in CURVE_KEYS], size),
                "run_page": sample(
                    lambda: [peer.history_sampled(ids[:1], k, size.max_points) for k in CURVE_KEYS], size
                ),
            }


def run(size: Size) -> Result:
    started = time.monotonic()
    with before_checkout() as before_code:
        measured = {backend: measure_database(backend, size, before_code) for backend in DATABASES}
    mlflow = measure_mlflow(size) if size.with_mlflow and mlflow_peer.executable() is not None else None
    pg, lite = measured["postgresql"], measured["sqlite"]

    def both(name: str, scale: float = 1.0) -> list[object]:
        return [float(pg[name]) * scale, float(lite[name]) * scale]  # type: ignore[arg-type]

    small = Table(
        f"Issue 14's table ({size.runs} runs x {size.steps:,} steps x 6 keys + 2 per-layer keys every "
        f"{PRUNING_EVERY} steps, max_points={size.max_points}, all 8 keys; p50 ms over loopback HTTP)",
        ["read", "PostgreSQL before", "PostgreSQL after", "SQLite before", "SQLite after", "MLflow", "goal"],
        [
            [
                f"GET /api/compare?runs=<{size.runs}> (the compare page)",
                ms(pg["compare_before"]), ms(pg["compare_after"]),  # type: ignore[arg-type]
                ms(lite["compare_before"]), ms(lite["compare_after"]),  # type: ignore[arg-type]
                ms(mlflow["compare"]) if mlflow else None, f"<= {GOALS_MS['compare_small']}",
            ],
            [
                "  the same, p95",
                ms(pg["compare_before"], 0.95), ms(pg["compare_after"], 0.95),  # type: ignore[arg-type]
                ms(lite["compare_before"], 0.95), ms(lite["compare_after"], 0.95),  # type: ignore[arg-type]
                ms(mlflow["compare"], 0.95) if mlflow else None, "",
            ],
            [
                "  reply size (MB)",
                float(pg["compare_bytes_before"]) / 1e6, float(pg["compare_bytes_after"]) / 1e6,  # type: ignore[arg-type]
                float(lite["compare_bytes_before"]) / 1e6, float(lite["compare_bytes_after"]) / 1e6,  # type: ignore[arg-type]
                None, "",
            ],
            [
                "GET /api/runs/{id}/metrics (a run page, all keys)",
                ms(pg["run_page_before"]), ms(pg["run_page_after"]),  # type: ignore[arg-type]
                ms(lite["run_page_before"]), ms(lite["run_page_after"]),  # type: ignore[arg-type]
                ms(mlflow["run_page"]) if mlflow else None, "",
            ],
            [
                "database bytes per stored point",
                pg["bytes_per_point_before"], pg["bytes_per_point_after"],
                lite["bytes_per_point_before"], lite["bytes_per_point_after"], None, "<= 16 after",
            ],
            [
                "ingestion, record_points (points/s)",
                pg["ingest_points_per_s"], None, lite["ingest_points_per_s"], None, None,
                ">= 42,823 PG, 96,966 SQLite (docs/benchmarks.md)",
            ],
            ["compaction when a run ends (points/s)", None, pg["compact_points_per_s"], None,
             lite["compact_points_per_s"], None, ""],
            ["DELETE a run (ms): hot rows before, compacted after", pg["delete_small_before_ms"], None,
             lite["delete_small_before_ms"], None, None, ""],
        ],
    )  # fmt: skip
    big = Table(
        f"{size.big_runs} runs x {size.big_steps:,} steps x 8 keys ({int(pg['big_points']):,} points per database), "
        "written straight into the compacted form by `store_compacted` (not through hot rows), p50 / p95 ms",
        ["read", "PostgreSQL p50", "PostgreSQL p95", "SQLite p50", "SQLite p95", "goal (p50)"],
        [
            [f"compare of {min(20, size.big_runs)} runs, 8 keys", ms(pg["compare_big"]),  # type: ignore[arg-type]
             ms(pg["compare_big"], 0.95), ms(lite["compare_big"]), ms(lite["compare_big"], 0.95),  # type: ignore[arg-type]
             f"<= {GOALS_MS['compare_big']}"],
            ["a run page, 8 keys", ms(pg["run_page_big"]), ms(pg["run_page_big"], 0.95),  # type: ignore[arg-type]
             ms(lite["run_page_big"]), ms(lite["run_page_big"], 0.95), f"<= {GOALS_MS['run_page_big']}"],  # type: ignore[arg-type]
            [f"a run with {size.layers} layers (sparsity + churn per pruning step), all {8 + 2 * size.layers} keys",
             ms(pg["layered_big"]), ms(pg["layered_big"], 0.95), ms(lite["layered_big"]),  # type: ignore[arg-type]
             ms(lite["layered_big"], 0.95), f"<= {GOALS_MS['layered_big']}"],  # type: ignore[arg-type]
            ["a random 1,000-step zoom window, 8 keys (every raw point: "
             f"{'yes' if pg['zoom_every_point'] and lite['zoom_every_point'] else 'NO'})",
             ms(pg["zoom_big"]), ms(pg["zoom_big"], 0.95), ms(lite["zoom_big"]),  # type: ignore[arg-type]
             ms(lite["zoom_big"], 0.95), f"<= {GOALS_MS['zoom_big']}"],  # type: ignore[arg-type]
            ["database bytes per stored point", pg["bytes_per_point_big"], None, lite["bytes_per_point_big"], None,
             "<= 16"],
            ["compacted write (points/s)", pg["big_write_points_per_s"], None, lite["big_write_points_per_s"], None,
             ""],
            [f"DELETE a run of {size.big_steps * 8:,} points as hot rows (before)", pg["delete_big_before_ms"], None,
             lite["delete_big_before_ms"], None, ""],
            [f"DELETE a run of {size.big_steps * 8:,} points compacted (after)", pg["delete_big_after_ms"], None,
             lite["delete_big_after_ms"], None, ""],
        ],
    )  # fmt: skip
    labels = {
        "compare_small": f"compare {size.runs} runs x {size.steps:,} steps, 8 keys",
        "compare_big": f"{size.big_runs * size.big_steps * 8 // 1_000_000} M points: compare "
        f"{min(20, size.big_runs)} runs, 8 keys",
        "layered_big": f"a run with {size.layers} layers ({8 + 2 * size.layers} keys)",
        "zoom_big": "a random 1,000-step zoom, 8 keys",
    }
    mix_rows: list[list[object]] = []
    for name, label in labels.items():
        goal = f"<= {MIX_GOALS_MS[name]} quiet" + (
            f", <= {MIX_GOAL_LOADED_MS[name]} loaded" if name in MIX_GOAL_LOADED_MS else ""
        )
        for condition, said in (("quiet", "quiet"), ("loaded", f"{size.writers} writers")):
            mix_rows.append(
                [f"{label}, {said}" if condition == "quiet" else f"  the same, {said}",
                 *(ms(measured[db][f"{name}_{side}_{condition}"]) for db in DATABASES  # type: ignore[arg-type]
                   for side in ("before", "after", "first")), goal if condition == "quiet" else ""]
            )  # fmt: skip
        mix_rows.append(
            ["  reply MB: before (JSON) / after JSON / after columns",
             *(f"{float(measured[db][f'{name}_bytes_before']) / 1e6:.2f} / "  # type: ignore[arg-type]
               f"{float(measured[db][f'{name}_bytes_json']) / 1e6:.2f} / "  # type: ignore[arg-type]
               f"{float(measured[db][f'{name}_bytes_after']) / 1e6:.2f}" if side == "before" else None
               for db in DATABASES for side in ("before", "after", "first")),
             "<= 2.5 (compare)" if name == "compare_small" else ""]
        )  # fmt: skip
    mix_rows.append(
        ["compare reply decoded in Chromium (ms): JSON.parse / columns (decodeColumns)",
         *(f"{measured[db]['decode']['json_ms']:.1f} / {measured[db]['decode']['columns_ms']:.1f}"  # type: ignore[index]
           if side == "before" else None for db in DATABASES for side in ("before", "after", "first")), ""]
    )  # fmt: skip
    mix_rows.append(
        [f"ingestion by the {size.writers} writers while loaded (points/s)",
         *(float(measured[db]["writers_points_per_s"]) if side == "before" else None  # type: ignore[arg-type]
           for db in DATABASES for side in ("before", "after", "first")), ""]
    )  # fmt: skip
    mix = Table(
        f"Issue 24: reads quiet and while {size.writers} writer processes log through DatabaseReporter "
        f"(max_points={size.max_points}; p50 ms over loopback HTTP). Before = commit {BEFORE_COMMIT} from a git "
        "worktree, JSON; after = this code, the dashboard's columns form, repeated (a finished run's series come "
        "from the LRU); first = after with a budget not read before (no cache)",
        ["read", "PostgreSQL before", "PostgreSQL after", "PostgreSQL first", "SQLite before", "SQLite after",
         "SQLite first", "goal"],
        mix_rows,
    )  # fmt: skip
    figures: dict[str, float | str] = {}
    for backend, values in measured.items():
        for name in labels:
            for side in ("before", "after", "first"):
                for condition in ("quiet", "loaded"):
                    figures[f"mix_{name}_{side}_{condition}_ms_{backend}"] = (
                        ms(values[f"{name}_{side}_{condition}"]) or 0.0
                    )  # type: ignore[arg-type]
        for name in ("compare_after", "compare_before", "run_page_after", "compare_big", "run_page_big",
                     "layered_big", "zoom_big"):  # fmt: skip
            figures[f"{name}_ms_{backend}"] = ms(values[name]) or 0.0  # type: ignore[arg-type]
        for name in ("bytes_per_point_after", "bytes_per_point_big", "ingest_points_per_s"):
            figures[f"{name}_{backend}"] = float(values[name])  # type: ignore[arg-type]
    notes = [
        "Before = today's read path, served by the same API process under /legacy (bench/legacy_reads.py): the "
        "run page scans every row and downsamples in Python; the compare page reduces rows with one GROUP BY. "
        "After = the series store (backend/metrics/store.py) on the same data once every run is compacted.",
        "The 80 M-point runs are written with `store_compacted`, the writer `compact_run` uses, straight from "
        "numpy: loading them through hot rows first would take hours on this machine. Their reads are the same "
        "routes as any compacted run's.",
        "MLflow: its tracking server with a SQLite backend holds the issue-table data (6 curve keys); compare = "
        "one `get-history-bulk-interval` per metric for all runs, run page = the same for one run "
        f"(max_results={size.max_points}); it is not loaded with the 80 M points.",
    ]
    if mlflow is None:
        notes.append("MLflow was not run (not installed: `make mlflow-venv`, or left out at this size).")
    return Result(NAME, "6. Metric history store", size.label, [small, big, mix], figures, notes,
                  elapsed_s=time.monotonic() - started)  # fmt: skip
