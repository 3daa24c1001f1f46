"""Flame graphs of issue 24's reads: py-spy samples the API process while a client repeats one read.

    python -m bench.profile_reads [--out docs/profiles] [--seconds 8] [--code PATH]

Per database (PostgreSQL, SQLite): the issue table's 20 runs x 20,000 steps x 8 keys, the 80 M-point
scenario's 20 compared runs (100,000 steps x 8 keys) and its run with 100 layers, all written into
the compacted form with `store_compacted` (what `compact_run` writes for the same points), and 10,000
seeded runs for the runs table. Each read is profiled on its own: `<read>-<database>.svg`. With
`--code`, the API is served from that checkout (a `git worktree` of an older commit: "before").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.series_store import BIG_KEYS, CURVE_KEYS, LAYER_KEYS, database_stack, new_run, run_series, serve_api
from harness.seed_runs import insert_runs
from prunelab.server.db import session_scope
from prunelab.server.metrics.compaction import store_compacted
from prunelab.server.metrics.replies import COLUMNS_MEDIA_TYPE

DATABASES = ("postgresql", "sqlite")


def load(runs: int, steps: int, big_runs: int, big_steps: int, layers: int) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {"small": [], "big": [], "layered": []}
    for index in range(runs):
        run_id = new_run(f"small {index}")
        with session_scope() as session:
            store_compacted(session, run_id, run_series(index, steps, CURVE_KEYS, LAYER_KEYS))
        ids["small"].append(run_id)
    for index in range(big_runs):
        run_id = new_run(f"big {index}")
        with session_scope() as session:
            store_compacted(session, run_id, run_series(10_000 + index, big_steps, BIG_KEYS, ()))
        ids["big"].append(run_id)
    kinds = ("layer_sparsity", "mask_churn")
    layer_keys = tuple(f"{kind}/conv_{index}" for index in range(layers) for kind in kinds)
    run_id = new_run("100 layers")
    with session_scope() as session:
        store_compacted(session, run_id, run_series(20_000, big_steps, BIG_KEYS, layer_keys))
    ids["layered"].append(run_id)
    return ids


def reads(ids: dict[str, list[int]], big_steps: int) -> dict[str, tuple[str, dict[str, str]]]:
    all_keys = ",".join(CURVE_KEYS + LAYER_KEYS)
    return {
        "compare-20x20k": ("/api/compare", {"runs": ",".join(map(str, ids["small"])), "keys": all_keys,
                                            "max_points": "1680"}),
        "compare-80M": ("/api/compare", {"runs": ",".join(map(str, ids["big"])), "keys": ",".join(BIG_KEYS),
                                         "max_points": "1680"}),
        "layers-100": (f"/api/runs/{ids['layered'][0]}/metrics", {"max_points": "1680"}),
        "zoom-1000": (f"/api/runs/{ids['big'][0]}/metrics", {"keys": ",".join(BIG_KEYS), "max_points": "1680",
                                                           "start_step": str(big_steps // 2),
                                                           "end_step": str(big_steps // 2 + 999)}),
        "runs-sort-10k": ("/api/runs", {"limit": "50", "sort": "test_accuracy", "order": "desc"}),
    }  # fmt: skip


def profile(
    pid: int, base: str, path: str, params: dict[str, str], svg: Path, seconds: int, headers: dict[str, str]
) -> float:
    """Repeat one read while py-spy samples the API process; returns the median read in ms."""
    spy = subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--duration", str(seconds),
         "--rate", "200", "--format", "flamegraph", "--output", str(svg)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    durations = []
    with httpx.Client(base_url=base, timeout=120) as client:
        while spy.poll() is None:
            started = time.perf_counter()
            client.get(path, params=params, headers=headers).raise_for_status()
            durations.append(time.perf_counter() - started)
    _, errors = spy.communicate()
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {errors[-2000:]}")
    durations.sort()
    return durations[len(durations) // 2] * 1e3 if durations else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/profiles"))
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--code", type=Path, default=None, help="serve the API from this checkout")
    parser.add_argument("--suffix", default="", help="added to each file name (e.g. -after)")
    parser.add_argument("--small", action="store_true", help="2 runs x 300 steps, 3 x 2,000, 100 runs (a check)")
    parser.add_argument("--only", choices=DATABASES, default=None)
    parser.add_argument("--columns", action="store_true", help="ask for the typed-columns form (the dashboard's)")
    options = parser.parse_args(argv)
    options.out.mkdir(parents=True, exist_ok=True)
    sizes = (2, 300, 3, 2_000, 3, 100) if options.small else (20, 20_000, 20, 100_000, 100, 10_000)
    for backend in [options.only] if options.only else DATABASES:
        with database_stack(backend) as config:
            ids = load(*sizes[:5])
            insert_runs(sizes[5], seed=8)
            with serve_api(config, code=options.code) as (api, base):
                for name, (path, params) in reads(ids, sizes[3]).items():
                    svg = options.out / f"{name}-{backend}{options.suffix}.svg"
                    headers = {"accept": COLUMNS_MEDIA_TYPE} if options.columns else {}
                    median = profile(api.pid, base, path, params, svg, options.seconds, headers)
                    print(f"{backend:10} {name:16} p50 {median:8.1f} ms  {svg}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
