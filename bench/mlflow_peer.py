"""MLflow's tracking server as the peer: started from its own virtualenv, spoken to over its REST API.

MLflow pins versions of SQLAlchemy, Alembic, FastAPI and more that PruneLab's environment
does not share, so it lives in `.venv-mlflow` (`make mlflow-venv`) or wherever
PRUNELAB_BENCH_MLFLOW names its `mlflow` executable.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.stack import REPO, Process, free_port, wait_until

API = "/api/2.0/mlflow"
MAX_METRICS_PER_BATCH = 1000  # the server's limit for one log-batch request


def executable() -> Path | None:
    configured = os.environ.get("PRUNELAB_BENCH_MLFLOW")
    path = Path(configured) if configured else REPO / ".venv-mlflow" / "bin" / "mlflow"
    return path if path.is_file() else None


def version() -> str:
    path = executable()
    if path is None:
        return "not installed"
    completed = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60)
    return completed.stdout.strip().rsplit(" ", 1)[-1]


@dataclass
class MlflowClient:
    base_url: str
    client: httpx.Client

    def _post(self, path: str, body: dict) -> dict:  # type: ignore[type-arg]
        response = self.client.post(f"{self.base_url}{API}{path}", json=body)
        response.raise_for_status()
        return response.json()

    def _get(self, path: str, params: dict | list) -> dict:  # type: ignore[type-arg]
        response = self.client.get(f"{self.base_url}{API}{path}", params=params)
        response.raise_for_status()
        return response.json()

    def create_run(self, experiment_id: str, name: str) -> str:
        body = {"experiment_id": experiment_id, "run_name": name, "start_time": int(time.time() * 1000)}
        return str(self._post("/runs/create", body)["run"]["info"]["run_id"])

    def create_experiment(self, name: str) -> str:
        return str(self._post("/experiments/create", {"name": name})["experiment_id"])

    def log_batch(self, run_id: str, metrics: Sequence[tuple[str, int, float, float]]) -> None:
        """(key, step, value, wall_time) points, in requests of at most the server's batch limit."""
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            chunk = metrics[start : start + MAX_METRICS_PER_BATCH]
            payload = [
                {"key": key, "step": step, "value": value, "timestamp": int(wall_time * 1000)}
                for key, step, value, wall_time in chunk
            ]
            self._post("/runs/log-batch", {"run_id": run_id, "metrics": payload})

    def history(self, run_id: str, key: str) -> list[dict]:  # type: ignore[type-arg]
        """The full history of one metric of one run (GET metrics/get-history, every page)."""
        metrics: list[dict] = []  # type: ignore[type-arg]
        params: dict[str, str] = {"run_id": run_id, "metric_key": key}
        while True:
            page = self._get("/metrics/get-history", params)
            metrics += page.get("metrics", [])
            if not page.get("next_page_token"):
                return metrics
            params["page_token"] = page["next_page_token"]

    def history_sampled(self, run_ids: Sequence[str], key: str, max_results: int) -> list[dict]:  # type: ignore[type-arg]
        """Downsampled histories of several runs (GET metrics/get-history-bulk-interval, the UI's chart read)."""
        params = [("run_ids", run_id) for run_id in run_ids] + [("metric_key", key), ("max_results", str(max_results))]
        return self._get("/metrics/get-history-bulk-interval", params).get("metrics", [])


@contextmanager
def mlflow_server(home: Path) -> Iterator[MlflowClient]:
    """`mlflow server` on loopback with a SQLite backend store in `home`; stopped afterwards."""
    path = executable()
    if path is None:
        raise FileNotFoundError("MLflow is not installed: run `make mlflow-venv` or set PRUNELAB_BENCH_MLFLOW")
    port = free_port()
    command = [
        str(path), "server",
        "--backend-store-uri", f"sqlite:///{home / 'mlflow.sqlite'}",
        "--default-artifact-root", str(home / "mlartifacts"),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",  # like PruneLab's API: one server process
    ]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRUNELAB_")}
    server = Process("mlflow", command, env, home / "logs")
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        # MLflow migrates its SQLite store on first start: 110 s here with the machine's two cores busy.
        wait_until(healthy, timeout=600, what=f"MLflow on {base_url}", process=server)
        with httpx.Client(timeout=600) as client:
            yield MlflowClient(base_url, client)
    finally:
        server.stop()
