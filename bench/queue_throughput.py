"""Benchmark 5: the queue: submit-to-first-step latency with a warm worker, and runs per minute with 1 and 2 workers.

Real processes on loopback: the API, Celery workers, the broker and the database, on
PostgreSQL + Redis (production) and SQLite + kombu's SQLAlchemy broker (`make run`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from bench.report import Result, Table, median, percentile
from bench.stacks import Deployment, deployment
from harness.stack import wait_until

NAME = "queue_throughput"
# A tiny run: 1 epoch of ceil(1293 / 64) = 21 steps of the MLP on the bundled digits.
TINY_RUN = {
    "name": "queue",
    "dataset": "digits",
    "model": "mlp",
    "epochs": 1,
    "batch_size": 64,
    "seed": 0,
    "schedule": {"kind": "constant", "target_sparsity": 0.5, "begin_step": 0, "frequency": 7},
}


@dataclass(frozen=True)
class Size:
    label: str
    deployments: tuple[str, ...]
    latency_samples: int
    batch: int  # tiny runs submitted at once for the runs/minute figure


SIZES = {
    "tiny": Size("1 latency sample, 2 runs per batch, PostgreSQL + Redis", ("postgresql+redis",), 1, 2),
    "quick": Size("5 latency samples, 6 runs per batch", ("postgresql+redis", "sqlite+embedded"), 5, 6),
    "full": Size("20 latency samples, 20 runs per batch", ("postgresql+redis", "sqlite+embedded"), 20, 20),
}


def first_step_latency(stack: Deployment) -> float:
    """Seconds from POST /api/runs to the run reporting a step (polled every 10 ms)."""
    with httpx.Client(timeout=30) as client:
        started = time.perf_counter()
        response = client.post(f"{stack.base_url}/api/runs", json=TINY_RUN)
        response.raise_for_status()
        run_id = response.json()["id"]

        def stepped() -> bool:
            return client.get(f"{stack.base_url}/api/runs/{run_id}").json()["step"] is not None

        wait_until(stepped, timeout=300, what=f"run {run_id}'s first step", interval=0.01)
        latency = time.perf_counter() - started
    stack.finish(run_id)
    return latency


def runs_per_minute(stack: Deployment, count: int) -> float:
    started = time.perf_counter()
    ids = [stack.submit(TINY_RUN) for _ in range(count)]
    for run_id in ids:
        stack.finish(run_id, timeout=1800)
    return count / (time.perf_counter() - started) * 60


def warm_up(stack: Deployment, workers: int) -> None:
    """One run per worker process, so every pool process has imported TensorFlow before timing."""
    for run_id in [stack.submit(TINY_RUN) for _ in range(workers)]:
        stack.finish(run_id, timeout=600)


def run(size: Size) -> Result:
    started = time.monotonic()
    rows = []
    figures: dict[str, float | str] = {}
    for name in size.deployments:
        with deployment(name, workers=1) as stack:
            warm_up(stack, 1)
            latencies = [first_step_latency(stack) for _ in range(size.latency_samples)]
            one = runs_per_minute(stack, size.batch)
            stack.add_worker()
            warm_up(stack, 2)
            two = runs_per_minute(stack, size.batch)
        rows.append([name, median(latencies) * 1e3, percentile(latencies, 0.95) * 1e3, one, two, two / one])
        key = name.split("+")[0]
        figures[f"first_step_ms_{key}"] = median(latencies) * 1e3
        figures[f"runs_per_minute_1_worker_{key}"] = one
        figures[f"runs_per_minute_2_workers_{key}"] = two
    table = Table(
        f"Queue: {size.label}; tiny run = digits MLP, 1 epoch, 21 steps",
        [
            "deployment",
            "POST -> first step p50 ms",
            "p95 ms",
            "runs/min, 1 worker",
            "runs/min, 2 workers",
            "2 workers / 1",
        ],
        rows,
    )
    notes = [
        "Latency: from sending `POST /api/runs` to `GET /api/runs/{id}` reporting a step, with a warm worker (its "
        "pool process has trained a run, so TensorFlow is loaded); it includes the commit, the broker hop, the claim, "
        "building the model, the first batch and the reporter's first flush (every 0.5 s).",
        "Runs/minute: a batch of tiny runs submitted at once, until the last one succeeds. Each worker trains one run "
        "at a time (PRUNELAB_WORKER_CONCURRENCY=1); on a 2-core machine two workers share the same cores.",
    ]
    return Result(
        NAME, "5. Queue throughput", size.label, [table], figures, notes, elapsed_s=time.monotonic() - started
    )
