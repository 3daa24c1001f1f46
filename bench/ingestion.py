"""Benchmark 3: metric ingestion through the worker's DatabaseReporter, and what logging costs a training step.

Throughput, before and after in one run (bench/ingestion_workload.py, run in a subprocess against each
tree): "before" is the code of BEFORE_COMMIT (main before issue 24's columnar writer) unpacked with
`git archive` into a temporary folder, "after" this tree. Each measures, on PostgreSQL and SQLite, the
worker's DatabaseReporter fed `steps` x 6 metrics as fast as the caller can log them (points/s from the
first `log` to the last commit), `record_points` with 50,000-point batches in one process, and 8 writer
processes (the sweep case) with each (run, key, step) checked stored exactly once. MLflow's log-batch
(its own server, SQLite store) is the peer, in the same run.
Per-step cost: PruningReporter.on_train_batch_end (the callback on the training thread)
timed over a run's steps with the database reporter behind it, against a training step
of the same model timed with model.fit. Beside it, the same for `prunelab.keras.PruneLabCallback`
(what a user's own script adds), logging into a live API through its sender thread and spool.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import mlflow_peer, workloads
from bench.ingestion_workload import RUN_PATH
from bench.report import Result, Table, median
from bench.stacks import database, deployment, queued_run
from harness.stack import REPO, shared_data_dir
from prunelab.core.plans import resolve_plan
from prunelab.core.specs import RunSpec

NAME = "ingestion"
METRICS = ("loss", "accuracy", "target_sparsity", "measured_sparsity", "val_loss", "val_accuracy")
# main before the columnar writer (issue 24): "before" in the table; PRUNELAB_BENCH_INGEST_BEFORE names another.
BEFORE_COMMIT = os.environ.get("PRUNELAB_BENCH_INGEST_BEFORE", "5c9ac2ae28ec6d124582c78abfb5a72c46816b8e")


@dataclass(frozen=True)
class Size:
    label: str
    steps: int  # steps x 6 metrics written per backend
    dataset: str
    model: str
    batch_size: int
    timed_steps: int  # training steps timed for the per-step fraction
    record_points: int  # through record_points in 50,000-point batches
    writer_steps: int  # per writer, x 6 metrics, 8 writers
    mlflow_points: int  # 0: MLflow left out (its server alone takes ~25 s to start)


SIZES = {
    "tiny": Size("2,000 steps; digits mlp", 2_000, "digits", "mlp", 32, 40, 20_000, 500, 0),
    "quick": Size(
        "20,000 steps; MNIST mnist_cnn, batch 128", 20_000, "mnist", "mnist_cnn", 128, 40, 100_000, 5_000, 30_000
    ),
    "full": Size(
        "100,000 steps; MNIST mnist_cnn, batch 128", 100_000, "mnist", "mnist_cnn", 128, 150, 600_000, 20_000, 60_000
    ),
}


@contextmanager
def tree_at(commit: str) -> Iterator[Path | None]:
    """The repository's files at `commit` in a temporary folder (None where git or the commit is missing)."""
    with tempfile.TemporaryDirectory(prefix="bench-before-") as folder:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True)
        if archive.returncode != 0:
            yield None
            return
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        yield Path(folder)


def workload(tree: Path, size: Size) -> dict[str, Any]:
    """bench/ingestion_workload.py (this tree's) run against the code of `tree`, in a subprocess."""
    command = [sys.executable, "-c", RUN_PATH, str(REPO / "bench" / "ingestion_workload.py")]
    command += [str(size.steps), str(size.record_points), str(size.writer_steps)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    completed = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=7200)
    if completed.returncode != 0:
        raise RuntimeError(f"the ingestion workload failed on {tree}:\n{completed.stderr[-4000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def mlflow_log_batch(points: int) -> float | None:
    """MLflow's server taking `points` x (6 metrics per step) through log-batch requests of 1,000: points/s."""
    if not points or mlflow_peer.executable() is None:
        return None
    metrics = [(key, index // len(METRICS), 0.5, index * 0.001) for index, key in enumerate(METRICS * (points // 6))]
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as home, mlflow_peer.mlflow_server(Path(home)) as peer:
        run_id = peer.create_run(peer.create_experiment("ingest"), "ingest")
        started = time.perf_counter()
        peer.log_batch(run_id, metrics)
        return len(metrics) / (time.perf_counter() - started)


def claimed_run(spec: RunSpec) -> tuple[int, int]:
    from prunelab.worker.executor import claim_run

    run_id = queued_run(spec, "ingest")
    claim = claim_run(run_id, "bench")
    assert claim is not None
    return run_id, claim.attempt


def callback_cost(size: Size) -> dict[str, float]:
    """Median training step (model.fit) and the PruningReporter's per-step cost behind a DatabaseReporter."""
    from prunelab.worker.db_reporter import DatabaseReporter
    from prunelab.worker.training.callbacks import PruningReporter
    from prunelab.worker.training.datasets import load_dataset
    from prunelab.worker.training.tf import keras, tfmot
    from prunelab.worker.training.train import build_pruned_model

    total = workloads.total_steps(size.dataset, 1, size.batch_size, 0.1)
    spec = RunSpec(
        dataset=size.dataset,
        model=size.model,
        epochs=1,
        batch_size=size.batch_size,
        schedule=workloads.constant(total, 0.875),
    )
    plan = resolve_plan(spec)
    dataset = load_dataset(spec.dataset, shared_data_dir())
    model = build_pruned_model(spec, plan, dataset)
    examples = size.timed_steps * size.batch_size
    x, y = dataset.x_train[:examples], dataset.y_train[:examples]
    # A first fit traces the training function; the second is timed.
    keras.utils.set_random_seed(0)
    model.fit(
        x[: size.batch_size * 2],
        y[: size.batch_size * 2],
        batch_size=size.batch_size,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    started = time.perf_counter()
    model.fit(x, y, batch_size=size.batch_size, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    step_s = (time.perf_counter() - started) / size.timed_steps

    run_id, attempt = claimed_run(spec)
    reporter = DatabaseReporter(run_id, attempt).start()
    callback = PruningReporter(reporter, plan, spec.batch_size)
    callback.set_model(model)
    callback.set_params({"steps": plan.steps_per_epoch, "epochs": 1, "verbose": 0})
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    per_step = []
    logs = {"loss": 0.5, "accuracy": 0.75}
    for batch in range(plan.steps_per_epoch):
        before = time.perf_counter()
        callback.on_train_batch_end(batch, logs)
        per_step.append(time.perf_counter() - before)
    callback.on_train_end()
    reporter.close()
    pruning_steps = sorted(step for step in callback.pruning_steps if step <= len(per_step))
    pruning = [per_step[step - 1] for step in pruning_steps]
    script = script_callback_cost(model, plan.steps_per_epoch, logs, pruning_steps)
    return {
        "step_ms": step_s * 1e3,
        "callback_mean_us": sum(per_step) / len(per_step) * 1e6,
        "callback_median_us": median(per_step) * 1e6,
        "callback_pruning_step_us": (median(pruning) * 1e6) if pruning else 0.0,
        "steps": len(per_step),
        **script,
    }


def script_callback_cost(model: Any, steps: int, logs: dict[str, float], pruning_steps: list[int]) -> dict[str, float]:
    """PruneLabCallback's per-step cost on the training thread, logging into a live API (SQLite, no worker)."""
    from prunelab.keras import PruneLabCallback

    with deployment("sqlite+embedded", workers=0) as live, tempfile.TemporaryDirectory(prefix="bench-spool-") as spool:
        callback = PruneLabCallback(name="bench", url=live.base_url, spool_dir=spool)
        callback.set_model(model)
        callback.set_params({"steps": steps, "epochs": 1, "verbose": 0})
        callback.on_train_begin()
        callback.on_epoch_begin(0)
        per_step = []
        for batch in range(steps):
            before = time.perf_counter()
            callback.on_train_batch_end(batch, logs)
            per_step.append(time.perf_counter() - before)
        callback.on_epoch_end(0, {"val_loss": 0.5, "val_accuracy": 0.75})
        callback.on_train_end()  # strips, uploads the model and finishes the run, waiting for the sender
        run_id = callback.run_id
        assert run_id is not None, "the callback's run was never created"
        stored = httpx.get(f"{live.base_url}/api/runs/{run_id}/metrics", params={"keys": "loss"}, timeout=30)
        assert len(stored.json()["series"]["loss"]["steps"]) == steps, "the callback's points did not all arrive"
    pruning = [per_step[step - 1] for step in pruning_steps]
    return {
        "script_callback_mean_us": sum(per_step) / len(per_step) * 1e6,
        "script_callback_median_us": median(per_step) * 1e6,
        "script_callback_pruning_step_us": (median(pruning) * 1e6) if pruning else 0.0,
    }


def run(size: Size) -> Result:
    started = time.monotonic()
    measured: dict[str, dict[str, Any]] = {"after": workload(REPO, size)}
    with tree_at(BEFORE_COMMIT) as before:
        if before is not None:
            measured["before"] = workload(before, size)
    mlflow = mlflow_log_batch(size.mlflow_points)
    with database("postgresql"):
        cost = callback_cost(size)
    fraction = cost["callback_mean_us"] / 1e3 / cost["step_ms"]
    script_fraction = cost["script_callback_mean_us"] / 1e3 / cost["step_ms"]
    after = measured["after"]
    rows = []
    for backend in ("postgresql", "sqlite"):
        for path, label in (("reporter", "DatabaseReporter"), ("record", "record_points, 50,000-point batches")):
            row: list[Any] = [backend, label]
            for version in ("before", "after"):
                row.append(measured[version][backend][path] if version in measured else "not run")
            row.append(f"{row[3] / row[2]:.1f}x" if "before" in measured else "")
            row.append(f"{row[3] / mlflow:.1f}x" if mlflow else "not run")
            rows.append(row)
        writers_row: list[Any] = [backend, "8 writer processes (sweep), each point once"]
        for version in ("before", "after"):
            writers_row.append(
                measured[version][backend]["writers"]["points_per_s"] if version in measured else "not run"
            )
        writers_row.append(f"{writers_row[3] / writers_row[2]:.1f}x" if "before" in measured else "")
        writers_row.append(f"{writers_row[3] / mlflow:.1f}x" if mlflow else "not run")
        rows.append(writers_row)
    ingest = Table(
        f"Metric ingestion (points/s): DatabaseReporter {size.steps:,} steps x {len(METRICS)} metrics; record_points "
        f"{size.record_points:,} points; 8 writers x {size.writer_steps:,} steps x {len(METRICS)} metrics; "
        f"MLflow log-batch {size.mlflow_points:,} points: " + (f"{mlflow:,.0f} points/s" if mlflow else "not run"),
        ["backend", "path", f"before ({BEFORE_COMMIT[:9]})", "after", "after / before", "after / MLflow log-batch"],
        rows,
    )
    per_step = Table(
        f"Per-step cost of logging ({size.label}; PostgreSQL reporter; {cost['steps']:.0f} steps of one epoch)",
        [
            "callback",
            "training step ms (model.fit)",
            "callback mean us",
            "callback median us",
            "at pruning steps us",
            "logging / training step",
        ],
        [
            [
                "worker: PruningReporter + DatabaseReporter",
                cost["step_ms"],
                cost["callback_mean_us"],
                cost["callback_median_us"],
                cost["callback_pruning_step_us"],
                f"{fraction:.3%}",
            ],
            [
                "your script: prunelab.keras.PruneLabCallback + sender",
                cost["step_ms"],
                cost["script_callback_mean_us"],
                cost["script_callback_median_us"],
                cost["script_callback_pruning_step_us"],
                f"{script_fraction:.3%}",
            ],
        ],
    )
    figures: dict[str, float | str] = {
        "points_per_s_postgresql": after["postgresql"]["reporter"],
        "points_per_s_sqlite": after["sqlite"]["reporter"],
        "logging_fraction_of_step": fraction,
        "callback_fraction_of_step": script_fraction,
    }
    for backend in ("postgresql", "sqlite"):
        figures[f"record_points_per_s_{backend}"] = after[backend]["record"]
        figures[f"writers_points_per_s_{backend}"] = after[backend]["writers"]["points_per_s"]
        if "before" in measured:
            figures[f"before_points_per_s_{backend}"] = measured["before"][backend]["reporter"]
            figures[f"before_record_points_per_s_{backend}"] = measured["before"][backend]["record"]
            figures[f"before_writers_points_per_s_{backend}"] = measured["before"][backend]["writers"]["points_per_s"]
    if mlflow:
        figures["mlflow_log_batch_points_per_s"] = mlflow
    notes = [
        "`log()` only enqueues the step; a background thread turns what was logged into numpy columns and writes them "
        "in one transaction (heartbeat, fenced on the attempt; PostgreSQL: a binary COPY into a temporary table and "
        "one INSERT ... ON CONFLICT DO NOTHING; SQLite: one executemany; latest values upserted).",
        "Before and after run the same script (bench/ingestion_workload.py) in a subprocess, against "
        f"`git archive {BEFORE_COMMIT[:9]}` and this tree; the 8 writers flush each batch twice (a retry), and each "
        "(run, key, step) is checked stored exactly once at the end. MLflow: its own server (SQLite store), log-batch "
        "requests of 1,000 metrics.",
        "The callback's mean includes the pruning steps, where it reads weights and masks once (one "
        "`batch_get_value`) and hands their compression to a background thread.",
        "PruneLabCallback (a user's own tfmot script) does the same on the training thread and hands each step's "
        "dictionary to a queue; its sender thread writes the queue to a local SQLite spool and posts batches to "
        "`POST /api/runs/{id}/points` of a live API (SQLite deployment, no worker). Its mean includes those "
        "threads' share of the interpreter lock.",
    ]
    return Result(
        NAME,
        "3. Metric ingestion",
        size.label,
        [ingest, per_step],
        figures,
        notes,
        elapsed_s=time.monotonic() - started,
    )
