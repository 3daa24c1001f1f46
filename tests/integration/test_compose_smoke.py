"""docker-compose.yml, run: each PruneLab service's `command` with its `environment`, as local processes.

Docker cannot run here, so the file is resolved by Debian's `docker-compose config` (with an operator's .env) and
its services are started as compose would start them, in order: `migrate` to completion, then `api` and `worker`.
Only the service host names are pointed at what runs here (postgres: a fresh PostgreSQL database, redis: the local
Redis with a queue of the test's own, seaweedfs: moto_server with the bucket compose's store creates). The
healthchecks are run as written; a run (digits, mlp, 1 epoch) goes from submission to a downloadable model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from harness.compose import resolved_services
from harness.s3server import S3Server
from harness.stack import (
    REDIS_URL,
    REPO,
    Process,
    free_port,
    postgres_database,
    shared_data_dir,
    wait_for_run,
    wait_until,
)

pytestmark = pytest.mark.integration

SPEC = {"name": "compose smoke", "dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64,
        "schedule": {"kind": "constant", "target_sparsity": 0.5, "frequency": 5}, "exports": ["keras"]}  # fmt: skip


def local_environment(compose_env: dict[str, str], database_url: str, s3: S3Server, home: Path, queue: str) -> dict:  # type: ignore[type-arg]
    """The service's environment with compose's host names pointed at the local services (and nothing else changed)."""
    database = make_url(compose_env["PRUNELAB_DATABASE_URL"])
    assert (database.host, database.port, database.database) == ("postgres", 5432, "prunelab")
    assert make_url(compose_env["PRUNELAB_BROKER_URL"]).host == "redis"
    assert compose_env["PRUNELAB_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    local = {key: value for key, value in os.environ.items() if not key.startswith(("PRUNELAB_", "AWS_"))}
    local.update(compose_env)
    local.update(
        PRUNELAB_DATABASE_URL=database_url,
        PRUNELAB_BROKER_URL=REDIS_URL,
        PRUNELAB_S3_ENDPOINT_URL=s3.endpoint,
        PRUNELAB_HOME=str(home),  # compose's is the container's own disk
        PRUNELAB_QUEUE=queue,  # the shared Redis: a queue of this test's own
        PRUNELAB_DATA_DIR=str(shared_data_dir()),
        # `prunelab`, `python` and `celery` as the image has them on PATH; this checkout's code
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(REPO),
    )
    return local


def healthcheck(service: dict, env: dict[str, str]) -> subprocess.CompletedProcess[str]:  # type: ignore[type-arg]
    """The service's healthcheck `test`, run as Docker runs it ($$ is compose's escape of $)."""
    kind, *command = service["healthcheck"]["test"]
    if kind == "CMD-SHELL":
        command = ["sh", "-c", command[0].replace("$$", "$")]
    assert kind in ("CMD", "CMD-SHELL"), kind
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_the_compose_services_start_as_written_and_train_a_run_end_to_end(tmp_path: Path) -> None:
    services = resolved_services(tmp_path)
    bucket = services["seaweedfs"]["environment"]["S3_BUCKET"]
    queue = f"prunelab-compose-{uuid.uuid4().hex[:8]}"
    s3 = S3Server(tmp_path / "logs").start()
    started: list[Process] = []
    try:
        s3.create_bucket(bucket)  # what SeaweedFS does at start from S3_BUCKET
        with postgres_database() as database_url:
            env = {name: local_environment(services[name]["environment"], database_url, s3, tmp_path / name, queue)
                   for name in ("migrate", "api", "worker")}  # fmt: skip
            port = free_port()
            env["api"]["PRUNELAB_PORT"] = str(port)  # compose's 8000 may be taken on a shared machine

            migrated = subprocess.run(services["migrate"]["command"], env=env["migrate"], cwd=tmp_path,
                                      capture_output=True, text=True, timeout=300)  # fmt: skip
            assert migrated.returncode == 0, migrated.stderr
            api = Process("api", services["api"]["command"], env["api"], tmp_path / "logs")
            worker = Process("worker", services["worker"]["command"], env["worker"], tmp_path / "logs")
            started += [api, worker]
            wait_until(lambda: healthcheck(services["api"], env["api"]).returncode == 0, timeout=120,
                       what="the api service's healthcheck", interval=1, process=api)  # fmt: skip

            base_url = f"http://127.0.0.1:{port}"
            created = httpx.post(f"{base_url}/api/runs", json=SPEC, timeout=30)
            assert created.status_code == 201, created.text
            run = wait_for_run(base_url, created.json()["id"], {"succeeded", "failed", "cancelled"}, timeout=400)
            assert run["status"] == "succeeded", (run.get("error"), worker.log_tail())
            model = httpx.get(f"{base_url}/api/runs/{run['id']}/model", params={"format": "keras"}, timeout=60)
            assert model.status_code == 200 and model.content[:4] == b"PK\x03\x04"
            stored = s3.keys(bucket)
            assert any(key.startswith(f"artifacts/runs/{run['id']}/") for key in stored), stored

            worker_health = healthcheck(services["worker"], env["worker"])
            assert worker_health.returncode == 0, worker_health.stdout + worker_health.stderr
            assert "pong" in worker_health.stdout
            print(f"\ncompose smoke: run {run['id']} {run['status']}, {len(stored)} objects in s3://{bucket}")
    finally:
        for process in reversed(started):
            process.stop()
        s3.stop()
