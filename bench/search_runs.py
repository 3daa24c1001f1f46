"""Benchmark 8: MLflow's `search_runs` over 10,000 runs (issue 20 part 5), PruneLab on PostgreSQL and SQLite
beside MLflow's own server on the same runs.

Per database, `harness.seed_runs.insert_mlflow_runs` writes runs of MLflow's Default experiment (params `kind`
and `lr`, a `<tag>: yes` tag per PruneLab tag, latest metric values), then one API process answers:
MLflow's own client (`MlflowClient.search_runs`, run from MLflow's virtualenv) asking for the first page of a
filter, the same request over plain HTTP (`POST runs/search`, no client), a page sorted by a metric, and
PruneLab's own runs query with the equivalent filter (`GET /api/runs`). MLflow's server (`mlflow server`,
SQLite store, one worker) gets the same runs written straight into its tables and the same requests.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import mlflow_peer
from bench.report import Result, Table
from bench.runs_at_scale import Size, sample
from bench.series_store import api_stack, ms
from harness.seed_runs import SeededMlflowRun, insert_mlflow_runs
from prunelab.server.mlflow_api.service import TO_MLFLOW
from prunelab.server.models import RunStatus

NAME = "search_runs"
DATABASES = ("postgresql", "sqlite")
MLFLOW_FILTER = "metrics.accuracy > 0.98 and params.kind = 'polynomial' and tags.sweep = 'yes'"
PRUNELAB_FILTER = "accuracy > 0.98 kind:polynomial tag:sweep"  # the same runs in PruneLab's filter language
METRIC_ORDER = "metrics.accuracy DESC"
PAGE = 100  # MLflow's UI asks for 100 runs a page
GOAL_MS = 100
API = mlflow_peer.API


SIZES = {
    "tiny": Size("TINY: 120 runs", 120, 0.2, 3),
    "quick": Size("QUICK: 2,000 runs", 2_000, 3.0, 10),
    "full": Size("10,000 runs", 10_000, 10.0, 25),
}
# The smoke test's tiny size leaves MLflow's server out: it takes minutes to migrate its store on first start here.
MLFLOW_SERVER_FROM_RUNS = 1_000

# Run with MLflow's interpreter: time `MlflowClient.search_runs`'s first page; print the seconds per read as JSON.
CLIENT_SCRIPT = """
import json, sys, time
from mlflow.tracking import MlflowClient
url, experiment, filter_string, order_by, page, budget, max_samples = sys.argv[1:]
client = MlflowClient(tracking_uri=url)
orders = [order_by] if order_by else None
read = lambda: client.search_runs([experiment], filter_string, max_results=int(page), order_by=orders)
found = len(read())
durations = []
deadline = time.perf_counter() + float(budget)
while not durations or (time.perf_counter() < deadline and len(durations) < int(max_samples)):
    started = time.perf_counter()
    read()
    durations.append(time.perf_counter() - started)
print(json.dumps({"durations": durations, "found": found}))
"""


def client_sample(base_url: str, experiment: str, order_by: str, size: Size) -> tuple[list[float], int] | None:
    """MLflow's own client's first-page reads (its interpreter, its virtualenv); None when it is not installed."""
    mlflow = mlflow_peer.executable()
    if mlflow is None:
        return None
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PRUNELAB_", "MLFLOW_"))}
    arguments = [base_url, experiment, MLFLOW_FILTER, order_by, str(PAGE), str(size.budget_s), str(size.max_samples)]
    done = subprocess.run(
        [str(mlflow.with_name("python")), "-c", CLIENT_SCRIPT, *arguments],
        capture_output=True,
        text=True,
        timeout=900,
        env=environment,
        cwd="/",  # never the repository: its folders would shadow MLflow's modules
        check=True,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["durations"], int(answer["found"])


def measure(base_url: str, experiment: str, size: Size, prunelab: bool) -> dict[str, Any]:
    """The reads of one server: MLflow's client, plain `runs/search`, a metric sort, and PruneLab's runs query."""
    figures: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=600) as client:

        def search(filter_string: str = MLFLOW_FILTER, order_by: Sequence[str] = ()) -> list[Any]:
            body = {"experiment_ids": [experiment], "filter": filter_string, "max_results": PAGE, "order_by": order_by}
            response = client.post(f"{API}/runs/search", json=body)
            response.raise_for_status()
            return response.json().get("runs", [])  # type: ignore[no-any-return]

        figures["page_runs"] = len(search())
        figures["rest"] = sample(search, size)
        figures["sort"] = sample(lambda: search("", [METRIC_ORDER]), size)
        if prunelab:

            def runs_query() -> dict[str, Any]:
                response = client.get("/api/runs", params={"filter": PRUNELAB_FILTER, "limit": str(PAGE)})
                response.raise_for_status()
                return response.json()  # type: ignore[no-any-return]

            figures["runs_query_total"] = runs_query()["total"]
            figures["runs_query"] = sample(runs_query, size)
    measured = client_sample(base_url, experiment, "", size)
    if measured is not None:
        figures["client"], figures["client_runs"] = measured
    return figures


def load_mlflow(peer: mlflow_peer.MlflowClient, database: Path, seeded: Sequence[SeededMlflowRun]) -> str:
    """The seeded runs straight into MLflow's tables (rows as its REST API writes them); the experiment's id.

    One run made through the API is the template for the rest (MLflow's defaults for the columns the
    seed does not set) and is then removed; writing 10,000 runs through log-batch would take longer than the reads.
    """
    experiment = peer.create_experiment(f"search-runs-{time.time_ns()}")
    template_id = peer.create_run(experiment, "template")
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        template = dict(connection.execute("SELECT * FROM runs WHERE run_uuid = ?", (template_id,)).fetchone())
        connection.execute("DELETE FROM tags WHERE run_uuid = ?", (template_id,))
        connection.execute("DELETE FROM runs WHERE run_uuid = ?", (template_id,))
        runs, params, tags, latest, points = [], [], [], [], []
        for run in seeded:
            run_uuid = uuid.uuid4().hex
            status = TO_MLFLOW.get(RunStatus(run.run.status), "RUNNING")
            runs.append(
                template
                | {"run_uuid": run_uuid, "name": run.run.name, "status": status, "user_id": run.user_id,
                   "start_time": run.start_time_ms, "end_time": run.end_time_ms}
            )  # fmt: skip
            params += [(key, value, run_uuid) for key, value in run.params.items()]
            tags += [(key, value, run_uuid) for key, value in run.tags.items()]
            for key, value in run.run.latest.items():
                if value is not None:  # PruneLab keeps non-finite values as blanks; MLflow's filter skips NaN too
                    latest.append((key, value, run.start_time_ms, 42, 0, run_uuid))
                    points.append((key, value, run.start_time_ms, run_uuid, 42, 0))
        columns = list(template)
        connection.executemany(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [[row[column] for column in columns] for row in runs],
        )
        connection.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
        connection.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
        connection.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
            latest,
        )
        connection.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)", points
        )
    return experiment


def run(size: Size) -> Result:
    started = time.monotonic()
    measured: dict[str, dict[str, Any]] = {}
    seeded: list[SeededMlflowRun] = []
    for backend in DATABASES:
        with api_stack(backend) as (_config, base):
            seeded = insert_mlflow_runs(size.runs, experiment_id=0, seed=9)
            measured[backend] = measure(base, "0", size, prunelab=True)
    if size.runs >= MLFLOW_SERVER_FROM_RUNS and mlflow_peer.executable() is not None:
        with tempfile.TemporaryDirectory(prefix="bench-search-runs-") as folder:
            home = Path(folder)
            with mlflow_peer.mlflow_server(home / "mlflow") as peer:
                experiment = load_mlflow(peer, home / "mlflow" / "mlflow.sqlite", seeded)
                measured["mlflow"] = measure(peer.base_url, experiment, size, prunelab=False)
    servers = [("postgresql", "PruneLab, PostgreSQL"), ("sqlite", "PruneLab, SQLite")]
    if "mlflow" in measured:
        servers.append(("mlflow", f"MLflow {mlflow_peer.version()} server, SQLite"))

    def cells(name: str) -> list[object]:
        return [value for server, _ in servers for value in (ms(measured[server].get(name)),
                                                             ms(measured[server].get(name), 0.95))]  # fmt: skip

    pg = measured["postgresql"]
    headers = ["read"] + [f"{label} {stat}" for _, label in servers for stat in ("p50", "p95")] + ["goal (p50)"]
    reads = Table(
        f"MLflow's search_runs at {size.runs:,} runs (first page of {PAGE}; p50 / p95 ms over loopback HTTP)",
        headers,
        [
            [f"MlflowClient.search_runs, filter `{MLFLOW_FILTER}` ({pg.get('client_runs', 0)} runs on the page)",
             *cells("client"), f"<= {GOAL_MS}"],
            ["  the same request without the client: POST runs/search", *cells("rest"), ""],
            [f"POST runs/search, no filter, order_by `{METRIC_ORDER}`", *cells("sort"), ""],
            [f"PruneLab's runs query: GET /api/runs?filter={PRUNELAB_FILTER}&limit={PAGE} "
             f"({pg['runs_query_total']:,} match)", *cells("runs_query"), ""],
        ],
    )  # fmt: skip
    figures: dict[str, float | str] = {}
    for server, values in measured.items():
        for name in ("client", "rest", "sort", "runs_query"):
            if name in values:
                figures[f"{name}_ms_{server}"] = ms(values[name]) or 0.0
    notes = [
        "Runs come from `harness.seed_runs.insert_mlflow_runs` (seeded): params kind and lr, a `<tag>: yes` tag per "
        "PruneLab tag, latest values of loss, accuracy and measured sparsity (some blank), start times three a second.",
        "PruneLab compiles the MLflow filter into the runs filter's tree and SQL (backend/mlflow_api/search.py, "
        "backend/runs/filters.py) and pages with a keyset token; before, it read every run and filtered in Python.",
        "Each param, tag and metric a search names is one LEFT JOIN; the page's runs are built from four column-only "
        "queries (info, latest values, params, tags) and encoded with orjson. The seeder analyzes the tables after "
        "its bulk load, as autovacuum would on a server that runs it (this machine's PostgreSQL has it off).",
        "MLflow's client rows include its client-side parsing of the reply (it asks for the page with the filter, "
        "max_results and its default order); PruneLab's runs query answers in PruneLab's own JSON.",
    ]
    if "mlflow" not in measured:
        notes.append("MLflow's server was not run at this size (or is not installed: `make mlflow-venv`).")
    return Result(NAME, "8. MLflow search_runs at scale", size.label, [reads], figures, notes,
                  elapsed_s=time.monotonic() - started)  # fmt: skip
