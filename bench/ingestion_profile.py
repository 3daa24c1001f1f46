"""The ingestion paths at bench size, one per invocation, for a sampling profiler (docs/profiles/).

    py-spy record --format flamegraph -o docs/profiles/reporter-postgresql.svg -- \
        python -m bench.ingestion_profile reporter postgresql
    python -m bench.ingestion_profile api sqlite docs/profiles/api-sqlite.svg    # py-spy attached to the API process

`reporter`: the worker's DatabaseReporter fed 100,000 steps x 6 metrics. `record`: `record_points` with
50,000-point batches in this process. `api`: a live API (no worker) taking MLflow log-batch requests and
PruneLabCallback's sender posting to `POST /api/runs/{id}/points`; py-spy records the API process by pid
while this process (the client side) is recorded by an outer py-spy when asked.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import ingestion_workload
from bench.ingestion import METRICS
from bench.stacks import database, deployment


def api(backend: str, svg: str) -> None:
    from bench.mlflow_peer import API
    from prunelab.sender import Sender
    from prunelab.spool import Spool

    name = "postgresql+redis" if backend == "postgresql" else "sqlite+embedded"
    with deployment(name, workers=0) as live, tempfile.TemporaryDirectory(prefix="profile-spool-") as folder:
        spy = subprocess.Popen(
            ["py-spy", "record", "--format", "flamegraph", "-o", svg, "--pid", str(live.api.pid), "--nonblocking"]
        )
        time.sleep(1)
        with httpx.Client(base_url=live.base_url, timeout=120) as client:
            experiment = client.post(f"{API}/experiments/create", json={"name": "profile"}).json()["experiment_id"]
            run = client.post(f"{API}/runs/create", json={"experiment_id": experiment}).json()["run"]["info"]["run_id"]
            for start in range(0, 50_000, 1000):
                metrics = [
                    {"key": METRICS[i % 6], "step": i // 6, "value": 0.5, "timestamp": i}
                    for i in range(start, start + 1000)
                ]
                client.post(f"{API}/runs/log-batch", json={"run_id": run, "metrics": metrics}).raise_for_status()
        sender = Sender(live.base_url, None, Spool(Path(folder))).start()
        sender.open_run("profile", {"source": "keras_callback", "name": "profile"})
        for step in range(1, 20_001):
            sender.log("profile", step, {key: 1.0 / step for key in METRICS}, step * 0.01)
        sender.finish("profile", "succeeded", {"steps": 20_000})
        assert sender.wait_for("profile", 600)
        sender.close()
        spy.send_signal(2)
        spy.wait(60)


def main(argv: list[str]) -> None:
    path, backend = argv[0], argv[1]
    if path == "api":
        api(backend, argv[2])
        return
    with database(backend):
        if path == "reporter":
            print(f"reporter: {ingestion_workload.reporter(100_000):,.0f} points/s")
        else:
            print(f"record_points: {ingestion_workload.record(600_000):,.0f} points/s")


if __name__ == "__main__":
    main(sys.argv[1:])
