"""Benchmark 3: metric ingestion through the worker's DatabaseReporter, and what logging costs a training step.

Throughput: a claimed run's reporter is fed `steps` x 6 metrics as fast as the caller can
log them, then closed; points per second count from the first `log` to the last commit.
Per-step cost: PruningReporter.on_train_batch_end (the callback on the training thread)
timed over a run's steps with the database reporter behind it, against a training step
of the same model timed with model.fit. Beside it, the same for `prunelab.keras.PruneLabCallback`
(what a user's own script adds), logging into a live API through its sender thread and spool.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench import workloads
from bench.report import Result, Table, median
from bench.stacks import database, deployment, queued_run
from harness.stack import shared_data_dir
from prunelab.core.plans import resolve_plan
from prunelab.core.specs import RunSpec

NAME = "ingestion"
METRICS = ("loss", "accuracy", "target_sparsity", "measured_sparsity", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class Size:
    label: str
    steps: int  # steps x 6 metrics written per backend
    dataset: str
    model: str
    batch_size: int
    timed_steps: int  # training steps timed for the per-step fraction


SIZES = {
    "tiny": Size("2,000 steps; digits mlp", 2_000, "digits", "mlp", 32, 40),
    "quick": Size("20,000 steps; MNIST mnist_cnn, batch 128", 20_000, "mnist", "mnist_cnn", 128, 40),
    "full": Size("100,000 steps; MNIST mnist_cnn, batch 128", 100_000, "mnist", "mnist_cnn", 128, 150),
}


def claimed_run(spec: RunSpec) -> tuple[int, int]:
    from prunelab.worker.executor import claim_run

    run_id = queued_run(spec, "ingest")
    claim = claim_run(run_id, "bench")
    assert claim is not None
    return run_id, claim.attempt


def reporter_throughput(steps: int) -> dict[str, float]:
    from prunelab.worker.db_reporter import DatabaseReporter

    run_id, attempt = claimed_run(RunSpec(epochs=1, schedule=workloads.constant(41, 0.5)))
    reporter = DatabaseReporter(run_id, attempt).start()
    log_seconds = []
    started = time.perf_counter()
    for step in range(1, steps + 1):
        values = {key: 1.0 / step for key in METRICS}
        before = time.perf_counter()
        reporter.log(step, values, wall_time=step * 0.01)
        log_seconds.append(time.perf_counter() - before)
    logged = time.perf_counter()
    reporter.close()
    finished = time.perf_counter()
    return {
        "points_per_s": steps * len(METRICS) / (finished - started),
        "drain_s": finished - logged,
        "log_us": median(log_seconds) * 1e6,
    }


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
    throughput = {}
    for backend in ("postgresql", "sqlite"):
        with database(backend):
            throughput[backend] = reporter_throughput(size.steps)
    with database("postgresql"):
        cost = callback_cost(size)
    fraction = cost["callback_mean_us"] / 1e3 / cost["step_ms"]
    script_fraction = cost["script_callback_mean_us"] / 1e3 / cost["step_ms"]
    ingest = Table(
        f"Metric ingestion: DatabaseReporter, {size.steps:,} steps x {len(METRICS)} metrics, batched every 0.5 s",
        ["backend", "points/s", "drain after last log s", "log() per step us (6 metrics)"],
        [[backend, t["points_per_s"], t["drain_s"], t["log_us"]] for backend, t in throughput.items()],
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
        "points_per_s_postgresql": throughput["postgresql"]["points_per_s"],
        "points_per_s_sqlite": throughput["sqlite"]["points_per_s"],
        "logging_fraction_of_step": fraction,
        "callback_fraction_of_step": script_fraction,
    }
    notes = [
        "`log()` only enqueues; a background thread writes each batch in one transaction (heartbeat, fenced on the "
        "attempt, ON CONFLICT DO NOTHING inserts as one executemany, latest values upserted).",
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
