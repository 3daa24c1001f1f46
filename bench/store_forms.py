"""`python -m bench.store_forms`: the measurement behind docs/metric-store.md (which compacted form to keep).

The same compacted histories (20 runs x 8 keys x 20,000 steps, every pyramid level) are stored
two ways and read as the compare page and a zoom read them, in-process, median of 7:
- chunk blobs in the database (backend/metrics: the form PruneLab keeps), on PostgreSQL and SQLite;
- one Parquet file per run (columns key, level, step, value, wall_time; row groups of 4,096 rows,
  zstd) in a folder, as the artifact store would hold it, read with pyarrow's row-group filters.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import text

from bench import workloads
from bench.stacks import database, queued_run
from prunelab.core.specs import RunSpec
from prunelab.server.db import engine_for, session_scope
from prunelab.server.metrics.compaction import store_compacted
from prunelab.server.metrics.points import Points
from prunelab.server.metrics.pyramid import build_levels, choose_level, shape_for
from prunelab.server.metrics.store import Window, read_points
from prunelab.server.settings import get_settings

RUNS, KEYS, STEPS, BUDGET = 20, 8, 20_000, 1680


def synthetic(run_index: int, key_index: int, steps: int) -> Points:
    """A noisy training curve in float32 (what Keras logs), wall times 50 ms apart with jitter."""
    rng = np.random.default_rng(run_index * 100 + key_index)
    step = np.arange(1, steps + 1, dtype=np.int64)
    curve = np.exp(-step / (steps / 3)) + 0.05 * rng.standard_normal(steps) + key_index
    walls = 1.7e9 + run_index * 1e4 + step * 0.05 + rng.random(steps) * 1e-3
    return Points(step, curve.astype(np.float32).astype(np.float64), walls)


def median_ms(read: Callable[[], object], repeats: int = 7) -> float:
    read()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        read()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def measure_database(backend: str) -> dict[str, float]:
    with database(backend) as url:
        run_ids = []
        started = time.perf_counter()
        for run_index in range(RUNS):
            run_id = queued_run(RunSpec(epochs=1, schedule=workloads.constant(41, 0.5)), f"forms {run_index}")
            with session_scope() as session:
                store_compacted(session, run_id, {f"key{k}": synthetic(run_index, k, STEPS) for k in range(KEYS)})
            run_ids.append(run_id)
        write_s = time.perf_counter() - started
        keys = [f"key{k}" for k in range(KEYS)]

        def compare() -> None:
            with session_scope() as session:
                read_points(session, run_ids, keys, max_points=BUDGET)

        def zoom() -> None:
            with session_scope() as session:
                read_points(session, run_ids[:1], keys, Window(10_000, 10_999), BUDGET)

        with engine_for(get_settings().database_url).connect() as connection:
            if backend == "postgresql":
                size = connection.execute(text("SELECT pg_total_relation_size('metric_chunks')")).scalar_one()
            else:
                connection.execute(text("VACUUM"))
                size = Path(url.removeprefix("sqlite:///")).stat().st_size
        return {
            "write_points_per_s": RUNS * KEYS * STEPS / write_s,
            "bytes_per_point": size / (RUNS * KEYS * STEPS),
            "compare_ms": median_ms(compare),
            "zoom_ms": median_ms(zoom),
        }


def measure_parquet() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-forms-") as folder:
        paths = []
        started = time.perf_counter()
        for run_index in range(RUNS):
            tables = []
            for k in range(KEYS):
                points = synthetic(run_index, k, STEPS)
                for level, level_points in enumerate(build_levels(points, shape_for(points))):
                    n = len(level_points)
                    tables.append(
                        pa.table(
                            {
                                "key": pa.array([f"key{k}"] * n).dictionary_encode(),
                                "level": pa.array(np.full(n, level, np.int8)),
                                "step": pa.array(level_points.steps),
                                "value": pa.array(level_points.values.astype(np.float32)),
                                "wall_time": pa.array(level_points.wall_times),
                            }
                        )
                    )
            path = Path(folder) / f"run-{run_index}.parquet"
            pq.write_table(pa.concat_tables(tables), path, row_group_size=4096, compression="zstd")
            paths.append(path)
        write_s = time.perf_counter() - started
        size = sum(path.stat().st_size for path in paths)
        shape = shape_for(synthetic(0, 0, STEPS))
        level = choose_level(shape, STEPS, BUDGET)
        keys = [f"key{k}" for k in range(KEYS)]

        def compare() -> None:
            for path in paths:
                pq.read_table(path, filters=[("key", "in", keys), ("level", "=", level)])

        def zoom() -> None:
            pq.read_table(
                paths[0],
                filters=[("key", "in", keys), ("level", "=", 0), ("step", ">=", 10_000), ("step", "<=", 10_999)],
            )

        return {
            "write_points_per_s": RUNS * KEYS * STEPS / write_s,
            "bytes_per_point": size / (RUNS * KEYS * STEPS),
            "compare_ms": median_ms(compare),
            "zoom_ms": median_ms(zoom),
        }


def main() -> None:
    results = {
        "chunk blobs, PostgreSQL": measure_database("postgresql"),
        "chunk blobs, SQLite": measure_database("sqlite"),
        "Parquet files (pyarrow)": measure_parquet(),
    }
    print(f"{RUNS} runs x {KEYS} keys x {STEPS:,} steps, compare at max_points={BUDGET}, zoom = 1,000 steps x 8 keys")
    print("| form | write (points/s) | bytes/point | compare read (ms) | zoom read (ms) |")
    print("|---|---|---|---|---|")
    for name, row in results.items():
        print(
            f"| {name} | {row['write_points_per_s']:,.0f} | {row['bytes_per_point']:.2f} | "
            f"{row['compare_ms']:.1f} | {row['zoom_ms']:.1f} |"
        )


if __name__ == "__main__":
    main()
