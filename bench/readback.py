"""Benchmark 4: reading large experiments back, PruneLab's API against MLflow's tracking server.

The same runs (steps x 6 metrics each) go into PruneLab (PostgreSQL, through
`record_points`) and into MLflow (SQLite backend); then HTTP reads are timed on loopback.
Each cell repeats until its time budget is spent (at least once), and reports p50 and p95.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import plotly.graph_objects as go

from bench import mlflow_peer, workloads
from bench.report import NOT_AVAILABLE, Result, Table, percentile, ratio, sample
from bench.stacks import deployment, pointed_at
from prunelab.core.plans import resolve_plan
from prunelab.core.specs import RunSpec
from prunelab.server.db import session_scope
from prunelab.server.metrics.service import MetricPoint, record_points
from prunelab.server.models import Run, RunStatus

NAME = "readback"
METRICS = ("loss", "accuracy", "target_sparsity", "measured_sparsity", "compressed_size_bytes", "val_accuracy")


@dataclass(frozen=True)
class Size:
    label: str
    steps: int
    run_counts: tuple[int, ...]
    max_points: int
    budget_s: float  # time spent repeating one cell
    max_samples: int
    with_mlflow: bool = True


SIZES = {
    "tiny": Size("1 and 2 runs x 300 steps x 6 metrics", 300, (1, 2), 100, 0.2, 2, with_mlflow=False),
    # Quick: MLflow's get-history costs ~1 ms per point here, so quick reads 500-step runs.
    "quick": Size("QUICK: 1 and 10 runs x 500 steps x 6 metrics", 500, (1, 10), 100, 5.0, 10),
    "full": Size("1, 10 and 20 runs x 20,000 steps x 6 metrics", 20_000, (1, 10, 20), 1_000, 120.0, 30),
}


def series_points(run_index: int, steps: int) -> list[tuple[str, int, float, float]]:
    """Deterministic, non-constant values (a constant series would flatter any compression)."""
    return [
        (key, step, math.sin(step / 97.0 + run_index + offset) + 1.5, step * 0.05)
        for step in range(1, steps + 1)
        for offset, key in enumerate(METRICS)
    ]


def load_prunelab(database_url: str, home: Path, runs: int, steps: int) -> tuple[list[int], float]:
    spec = RunSpec(name="readback", epochs=1, schedule=workloads.constant(41, 0.5))
    plan = resolve_plan(spec).model_dump(mode="json")
    ids = []
    seconds = 0.0
    with pointed_at(database_url, home):
        for index in range(runs):
            points = [MetricPoint(*point) for point in series_points(index, steps)]
            started = time.perf_counter()
            with session_scope() as session:
                run = Run(
                    name=f"readback {index}", status=RunStatus.SUCCEEDED, spec=spec.model_dump(mode="json"), plan=plan
                )
                session.add(run)
                session.flush()
                record_points(session, run.id, points)
                ids.append(run.id)
            seconds += time.perf_counter() - started
    return ids, runs * steps * len(METRICS) / seconds


def load_mlflow(client: mlflow_peer.MlflowClient, database: Path, runs: int, steps: int) -> tuple[list[str], float]:
    """Run 1 through REST log-batch (timed: MLflow's ingestion rate); the rest straight into its tables.

    log-batch takes ~1 ms per point here, so loading every run through it would take longer
    than the reads it prepares; the rows written directly are the ones log-batch writes.
    """
    experiment = client.create_experiment(f"readback-{time.time_ns()}")
    ids = [client.create_run(experiment, f"readback {index}") for index in range(runs)]
    started = time.perf_counter()
    client.log_batch(ids[0], series_points(0, steps))
    points_per_s = steps * len(METRICS) / (time.perf_counter() - started)
    with sqlite3.connect(database) as connection:
        for index, run_id in enumerate(ids[1:], start=1):
            points = series_points(index, steps)
            connection.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
                [(key, value, int(wall * 1000), run_id, step) for key, step, value, wall in points],
            )
            connection.executemany(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, 0, ?)",
                [(key, value, int(wall * 1000), step, run_id) for key, step, value, wall in points[-len(METRICS) :]],
            )
    return ids, points_per_s


def checked(response: httpx.Response) -> httpx.Response:
    response.raise_for_status()
    return response


def has_max_points(client: httpx.Client, base: str, run_id: int, max_points: int) -> bool:
    """True when GET /metrics honours max_points (the dashboard's downsampling, added on another branch)."""
    response = client.get(f"{base}/api/runs/{run_id}/metrics", params={"keys": METRICS[0], "max_points": max_points})
    return response.status_code == 200 and len(response.json()["series"][METRICS[0]]["steps"]) <= max_points


def has_compare(client: httpx.Client, base: str, run_ids: Sequence[int]) -> bool:
    response = client.get(f"{base}/api/compare", params={"runs": ",".join(map(str, run_ids)), "keys": METRICS[0]})
    return response.status_code == 200


def latency_row(label: str, runs: int, prunelab: list[float] | None, mlflow: list[float] | None) -> list[object]:
    def p(values: list[float] | None, fraction: float) -> float | None:
        return percentile(values, fraction) * 1e3 if values else None

    return [
        label, runs,
        p(prunelab, 0.5), p(prunelab, 0.95), len(prunelab) if prunelab else NOT_AVAILABLE,
        p(mlflow, 0.5), p(mlflow, 0.95), len(mlflow) if mlflow else "-",
        ratio(p(prunelab, 0.5), p(mlflow, 0.5)),
    ]  # fmt: skip


def run(size: Size) -> Result:
    started = time.monotonic()
    total_runs = max(size.run_counts)
    keys = ",".join(METRICS)
    rows: list[list[object]] = []
    figures: dict[str, float | str] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-readback-") as folder:
        home = Path(folder)
        with deployment("postgresql+redis", workers=0) as stack, httpx.Client(timeout=600) as client:
            ids, prunelab_load = load_prunelab(stack.config.database_url, home, total_runs, size.steps)
            base = stack.base_url
            downsampling = has_max_points(client, base, ids[0], size.max_points)
            compare = has_compare(client, base, ids[:1])
            # The smoke test's tiny size leaves MLflow out: its server alone takes ~25 s to start here.
            mlflow = size.with_mlflow and mlflow_peer.executable() is not None
            with mlflow_peer.mlflow_server(home / "mlflow") if mlflow else _absent() as peer:
                if peer is not None:
                    mlflow_ids, mlflow_load = load_mlflow(
                        peer, home / "mlflow" / "mlflow.sqlite", total_runs, size.steps
                    )
                for runs in size.run_counts:
                    chosen = ids[:runs]
                    csv = ",".join(map(str, chosen))

                    def metrics_raw(chosen: list[int] = chosen) -> None:
                        for run_id in chosen:
                            checked(client.get(f"{base}/api/runs/{run_id}/metrics", params={"keys": keys}))

                    def metrics_sampled(chosen: list[int] = chosen) -> None:
                        for run_id in chosen:
                            params = {"keys": keys, "max_points": size.max_points}
                            checked(client.get(f"{base}/api/runs/{run_id}/metrics", params=params))

                    def compare_raw(csv: str = csv) -> None:
                        checked(client.get(f"{base}/api/compare", params={"runs": csv, "keys": keys}))

                    def compare_sampled(csv: str = csv) -> None:
                        params = {"runs": csv, "keys": keys, "max_points": size.max_points}
                        checked(client.get(f"{base}/api/compare", params=params))

                    mlflow_raw = mlflow_sampled = None
                    if peer is not None:
                        chosen_mlflow = mlflow_ids[:runs]
                        mlflow_raw = sample(
                            lambda c=chosen_mlflow: [peer.history(r, k) for r in c for k in METRICS], size, warm=False
                        )
                        mlflow_sampled = sample(
                            lambda c=chosen_mlflow: [peer.history_sampled(c, k, size.max_points) for k in METRICS],
                            size,
                            warm=False,
                        )
                    raw = sample(metrics_raw, size, warm=False)
                    rows.append(latency_row("metrics, raw (one GET per run)", runs, raw, mlflow_raw))
                    rows.append(
                        latency_row(
                            f"metrics, max_points={size.max_points}",
                            runs,
                            sample(metrics_sampled, size, warm=False) if downsampling else None,
                            mlflow_sampled,
                        )
                    )
                    rows.append(
                        latency_row(
                            "compare, raw (one GET)",
                            runs,
                            sample(compare_raw, size, warm=False) if compare else None,
                            mlflow_raw,
                        )
                    )
                    rows.append(
                        latency_row(
                            f"compare, max_points={size.max_points}",
                            runs,
                            sample(compare_sampled, size, warm=False) if compare and downsampling else None,
                            mlflow_sampled,
                        )
                    )
                    if mlflow_raw:
                        figures[f"raw_ratio_{runs}_runs"] = (
                            ratio(percentile(raw, 0.5), percentile(mlflow_raw, 0.5)) or 0
                        )
    figures["prunelab_load_points_per_s"] = prunelab_load
    latency = Table(
        f"Reading back: {size.label}, PruneLab on PostgreSQL vs MLflow {mlflow_peer.version()} (SQLite backend), "
        "latency in ms",
        [
            "read",
            "runs",
            "PruneLab p50",
            "PruneLab p95",
            "samples",
            "MLflow p50",
            "MLflow p95",
            "samples",
            "PruneLab / MLflow p50",
        ],
        rows,
    )
    load = Table(
        "Loading the same points (one process, loopback)",
        ["system", "path", "points/s"],
        [
            ["PruneLab", "record_points into PostgreSQL (what DatabaseReporter calls)", prunelab_load],
            ["MLflow", "REST runs/log-batch, 1,000 metrics per request, SQLite", mlflow_load if mlflow else None],
        ],
    )
    if mlflow:
        figures["mlflow_load_points_per_s"] = mlflow_load
    else:
        notes.append("MLflow was not run (not installed: `make mlflow-venv`, or left out at this size).")
    if not downsampling or not compare:
        notes.append(
            f"Rows marked '{NOT_AVAILABLE}': this build lacks "
            + " and ".join(
                name
                for name, present in (("`max_points` on GET /metrics", downsampling), ("GET /api/compare", compare))
                if not present
            )
            + " (issue 4, another branch); re-run after merging to fill them."
        )
    notes += [
        "MLflow raw = one `GET metrics/get-history` per run and metric (its only full-history read); MLflow "
        f"downsampled = one `GET metrics/get-history-bulk-interval` per metric for all the runs, max_results="
        f"{size.max_points} (the read its UI charts use). Both servers run one process on loopback.",
        "MLflow's first run is logged through REST log-batch (timed); the others are inserted into its own `metrics` "
        "and `latest_metrics` tables with the same rows, because log-batch alone would take hours at full size.",
    ]
    chart = go.Figure(
        [
            go.Bar(
                name="PruneLab p50 ms", x=[f"{row[0]}, {row[1]} run(s)" for row in rows], y=[row[2] for row in rows]
            ),
            go.Bar(name="MLflow p50 ms", x=[f"{row[0]}, {row[1]} run(s)" for row in rows], y=[row[5] for row in rows]),
        ],
        layout={"title": f"Read-back latency ({size.label})", "barmode": "group", "yaxis": {"type": "log"}},
    )
    return Result(
        NAME,
        "4. Reading back",
        size.label,
        [latency, load],
        figures,
        notes,
        charts={"readback": chart},
        elapsed_s=time.monotonic() - started,
    )


class _absent:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None
