"""The ingestion workload, run in a subprocess against one tree of PruneLab's code: today's, or an older commit's.

bench/ingestion.py runs this file with PYTHONPATH (and the working directory) set to the tree it measures,
so "before" is the code of the commit this branch started from, measured in the same bench run, without a
second copy of the old writer in the repository. It only uses what both trees have (`bench.stacks`,
`DatabaseReporter`, `record_points`, `claim_run`) and prints one JSON object:

    cd <tree> && PYTHONPATH=<tree> python -c "$RUN_PATH" bench/ingestion_workload.py \
        <reporter_steps> <record_points> <writer_steps>

- reporter: a claimed run's DatabaseReporter fed `reporter_steps` x 6 metrics, points/s from first log to close;
- record: `record_points` in this process, 50,000-point batches (numpy columns where the tree takes them);
- writers: 8 processes (the sweep case), each a DatabaseReporter on its own run logging `writer_steps` x 6
  metrics, every batch delivered twice (a retried flush); at the end each (run, key, step) is checked stored once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

METRICS = ("loss", "accuracy", "target_sparsity", "measured_sparsity", "val_loss", "val_accuracy")
RECORD_BATCH = 50_000
RECORD_KEYS = 60  # per-layer keys, as a pruning run logs them
WRITERS = 8
# Runs a script file as __main__ with the working directory (the measured tree) first on sys.path.
RUN_PATH = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def claimed_run() -> tuple[int, int]:
    from bench.stacks import queued_run
    from prunelab.core.specs import ConstantSchedule, RunSpec
    from prunelab.worker.executor import claim_run

    run_id = queued_run(RunSpec(epochs=1, schedule=ConstantSchedule(frequency=10)), "ingest")
    claim = claim_run(run_id, "bench")
    assert claim is not None
    return run_id, claim.attempt


def reporter(steps: int) -> float:
    from prunelab.worker.db_reporter import DatabaseReporter

    run_id, attempt = claimed_run()
    logger = DatabaseReporter(run_id, attempt).start()
    started = time.perf_counter()
    for step in range(1, steps + 1):
        logger.log(step, {key: 1.0 / step for key in METRICS}, wall_time=step * 0.01)
    logger.close()
    return steps * len(METRICS) / (time.perf_counter() - started)


def record(points: int) -> float:
    import numpy as np

    from prunelab.server.db import session_scope
    from prunelab.server.metrics import service

    run_id, _ = claimed_run()
    keys = tuple(f"layer{index}/sparsity" for index in range(RECORD_KEYS))
    batches: list[Any] = []
    for start in range(0, points, RECORD_BATCH):
        index = np.arange(start, min(points, start + RECORD_BATCH))
        try:
            from prunelab.server.metrics.ingest import PointBatch  # the columnar writer, where the tree has it

            batches.append(
                PointBatch.of_columns(
                    keys,
                    np.full(index.size, run_id),
                    index % RECORD_KEYS,
                    index // RECORD_KEYS,
                    np.full(index.size, 0.5),
                    index * 0.001,
                )
            )
        except ImportError:
            batches.append(
                [service.MetricPoint(keys[i % RECORD_KEYS], i // RECORD_KEYS, 0.5, i * 0.001) for i in index.tolist()]
            )
    started = time.perf_counter()
    for batch in batches:
        with session_scope() as session:
            service.record_points(session, run_id, batch)
    return points / (time.perf_counter() - started)


def writer(run_id: int, attempt: int, steps: int) -> None:
    """One of the 8: logs its run's steps, each batch of 100 steps flushed twice (the second is a retry)."""
    from prunelab.worker.db_reporter import DatabaseReporter

    logger = DatabaseReporter(run_id, attempt, flush_interval=3600)
    print("ready", flush=True)
    sys.stdin.readline()  # the go: all 8 start together, their imports not timed
    for start in range(1, steps + 1, 100):
        for _delivery in range(2):
            for step in range(start, min(steps, start + 99) + 1):
                logger.log(step, {key: 1.0 / step for key in METRICS}, wall_time=step * 0.01)
            assert logger.flush(), "a flush failed"


def writers(steps: int) -> dict[str, float]:
    from sqlalchemy import func, select

    from prunelab.server.db import session_scope
    from prunelab.server.models import Metric

    claims = [claimed_run() for _ in range(WRITERS)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RUN_PATH, sys.argv[0], "writer", str(run_id), str(attempt), str(steps)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for run_id, attempt in claims
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready", "a writer did not start"
    started = time.perf_counter()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.close()
    failed = [process.args for process in processes if process.wait() != 0]
    elapsed = time.perf_counter() - started
    assert not failed, f"writers failed: {failed}"
    run_ids = [run_id for run_id, _ in claims]
    with session_scope() as session:
        stored = session.scalar(select(func.count()).select_from(Metric).where(Metric.run_id.in_(run_ids)))
        distinct = session.scalar(
            select(func.count()).select_from(
                select(Metric.run_id, Metric.key, Metric.step).where(Metric.run_id.in_(run_ids)).distinct().subquery()
            )
        )
    expected = WRITERS * steps * len(METRICS)
    assert stored == distinct == expected, f"{stored} rows, {distinct} distinct, {expected} expected"
    return {"points_per_s": expected / elapsed, "stored_once": float(stored == expected)}


def measure(reporter_steps: int, record_points: int, writer_steps: int) -> dict[str, Any]:
    from bench.stacks import database

    results: dict[str, Any] = {}
    for backend in ("postgresql", "sqlite"):
        with database(backend):
            results[backend] = {
                "reporter": reporter(reporter_steps),
                "record": record(record_points),
                "writers": writers(writer_steps),
            }
    return results


if __name__ == "__main__":
    if sys.argv[1] == "writer":
        writer(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
