"""Workers on other machines: artifacts in a real S3 server (moto_server over HTTP), no shared filesystem.

The API and each worker have homes of their own. Where the machine allows (root, `ip netns`), the
worker runs in its own network namespace and reaches PostgreSQL, Redis and S3 over a veth pair, with
the API's home hidden under an empty tmpfs; elsewhere it runs on loopback with its own home. Each test
prints what it observed: files in the bucket and under each home, retries, resumed epochs.
"""

from __future__ import annotations

import hashlib
import json
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from harness.netns import WorkerNetwork, loopback_worker, netns_unavailable, worker_namespace
from harness.s3server import S3Server
from harness.stack import (
    REDIS_URL,
    Process,
    StackConfig,
    migrate,
    postgres_database,
    prunelab,
    start_api,
    wait_for_run,
    wait_until,
)
from tests.integration.test_faults import assert_every_step_once, run_of, submit

pytestmark = pytest.mark.integration

FINISHED = {"succeeded", "failed", "cancelled"}
BUCKET = "prunelab-artifacts"
SMALL = {"dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 64, "seed": 3,
         "schedule": {"kind": "constant", "target_sparsity": 0.5, "frequency": 7},
         "exports": ["keras", "h5"]}  # fmt: skip


def files_under(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def _with_host(url: str, host: str) -> str:
    return make_url(url).set(host=host).render_as_string(hide_password=False)


@dataclass
class ObjectStoreStack:
    """An API (home `api_home`) and the settings of workers (home `worker_home`) that share only the services."""

    api_config: StackConfig
    worker_config: StackConfig
    network: WorkerNetwork
    s3: S3Server
    logs: Path

    def start_worker(self, name: str) -> Process:
        command = prunelab("worker", "--name", f"{name}-{uuid.uuid4().hex[:6]}@%h")
        return Process(name, self.network.wrap(command), self.worker_config.env(), self.logs)


@pytest.fixture
def object_store_stack(tmp_path: Path) -> Iterator[ObjectStoreStack]:
    api_home, worker_home, logs = tmp_path / "api-home", tmp_path / "worker-home", tmp_path / "logs"
    for folder in (api_home, worker_home):
        folder.mkdir()
    reason = netns_unavailable()
    if reason:
        print(f"\nno network namespace ({reason}): the worker runs on loopback with its own home")
    redis = make_url(REDIS_URL)
    network_context = loopback_worker() if reason else worker_namespace([5432, redis.port or 6379], api_home)
    with network_context as network, postgres_database() as database_url:
        s3 = S3Server(logs, host=network.host).start()
        try:
            s3.create_bucket(BUCKET)
            api_config = StackConfig(
                home=api_home,
                database_url=database_url,
                broker_url=REDIS_URL,
                extra={**s3.env(BUCKET, "prunelab"), "PRUNELAB_REAPER_INTERVAL_S": "2",
                       "PRUNELAB_HEARTBEAT_TIMEOUT_S": "20"},
            )  # fmt: skip
            worker_config = StackConfig(
                home=worker_home,
                database_url=_with_host(database_url, network.host),
                broker_url=_with_host(REDIS_URL, network.host),
                queue=api_config.queue,
                extra={**s3.env(BUCKET, "prunelab"), "PRUNELAB_STORE_BACKOFF_S": "0.5"},
            )
            migrate(api_config)
            print(f"\nworker network: {network.description}; S3 at {s3.endpoint}")
            yield ObjectStoreStack(api_config, worker_config, network, s3, logs)
        finally:
            s3.stop()


def cut_download(url: str, keep: int) -> tuple[bytes, str]:
    """The first `keep` bytes of a download whose connection is then dropped, and the ETag it announced."""
    received = b""
    with httpx.stream("GET", url, timeout=30) as response:
        assert response.status_code == 200
        etag = response.headers["etag"]
        for chunk in response.iter_raw(chunk_size=4096):
            received += chunk
            if len(received) >= keep:
                break  # closing the stream here drops the connection mid-body
    return received[:keep], etag


def test_a_worker_without_the_apis_filesystem_trains_a_model_the_api_serves_and_ranges_resume(
    object_store_stack: ObjectStoreStack,
) -> None:
    stack = object_store_stack
    api = start_api(stack.api_config, stack.logs)
    worker = stack.start_worker("remote")
    try:
        base = stack.api_config.base_url
        run_id = submit(base, SMALL, "trained elsewhere")
        run = wait_for_run(base, run_id, FINISHED, timeout=300)
        assert run["status"] == "succeeded", (run, worker.log_tail())
        assert_every_step_once(base, run)

        model_url = f"{base}/api/runs/{run_id}/model?format=keras"
        whole = httpx.get(model_url, timeout=30)
        assert whole.status_code == 200
        recorded = next(a for a in run["artifacts"] if a["format"] == "keras")
        assert hashlib.sha256(whole.content).hexdigest() == recorded["sha256"] == whole.headers["x-content-sha256"]
        assert whole.headers["etag"] == f'"{recorded["sha256"]}"' and whole.headers["accept-ranges"] == "bytes"

        # A download cut after 10 000 bytes, resumed with Range + If-Range: the joined file is byte-identical.
        head, etag = cut_download(model_url, 10_000)
        rest = httpx.get(model_url, headers={"Range": f"bytes={len(head)}-", "If-Range": etag}, timeout=30)
        assert rest.status_code == 206
        assert (
            rest.headers["content-range"] == f"bytes {len(head)}-{recorded['size_bytes'] - 1}/{recorded['size_bytes']}"
        )
        assert head + rest.content == whole.content
        assert httpx.get(model_url, headers={"If-None-Match": etag}, timeout=30).status_code == 304
        stale = httpx.get(model_url, headers={"Range": "bytes=10-", "If-Range": '"other"'}, timeout=30)
        assert stale.status_code == 200 and stale.content == whole.content  # another version: the whole file
        verified = httpx.post(f"{base}/api/runs/{run_id}/verify", timeout=60).json()
        assert verified["ok"] and {check["format"] for check in verified["files"]} == {
            "keras",
            "h5",
            "masks",
            "manifest",
        }
    finally:
        worker.stop()
        api.stop()
    bucket = stack.s3.keys(BUCKET)
    api_files = files_under(stack.api_config.home)
    worker_files = files_under(stack.worker_config.home)
    print(f"bucket {BUCKET}: {bucket}\nunder the API's home: {api_files}\nunder the worker's home: {worker_files}")
    assert bucket == sorted(f"prunelab/runs/{run_id}/attempt-1/{name}"
                            for name in ("model.keras", "model.h5", "masks.npz", "manifest.json"))  # fmt: skip
    assert api_files == []  # nothing written under the API's home
    assert not any(name.endswith((".keras", ".h5", ".npz")) for name in worker_files)  # scratch removed


def test_s3_killed_mid_upload_is_retried_then_fails_the_run_naming_the_store(
    object_store_stack: ObjectStoreStack,
) -> None:
    stack = object_store_stack
    if not stack.network.namespace:
        pytest.skip("needs the worker's own network namespace, whose uplink is slowed so S3 dies mid-upload")
    # At 1 Mbit/s each of the run's files takes a second or more to upload: S3 is killed once moto has
    # answered the first one's PUT, so the next upload is cut midway.
    stack.network.limit_upload_rate("1mbit")
    api = start_api(stack.api_config, stack.logs)
    worker = stack.start_worker("remote")
    try:
        base = stack.api_config.base_url
        run_id = submit(base, {**SMALL, "epochs": 1}, "store dies")
        first_put = f"PUT /{BUCKET}/prunelab/runs/{run_id}/attempt-1/"
        wait_until(lambda: first_put in stack.s3.requests_seen(), 300, "the first upload of the run's files", 0.05)
        stack.s3.kill()  # mid-upload: the run's other files, and the read-back check, find no server
        run = wait_for_run(base, run_id, FINISHED, timeout=240)
        retries = [line for line in worker.log_tail(400_000).splitlines() if "retrying in" in line]
        print(f"S3 killed at the first PUT of run {run_id}: {run['status']}: {run['error']!r}\n"
              f"{len(retries)} retries logged, e.g. {retries[:3]}")  # fmt: skip
        assert run["status"] == "failed"
        assert f"s3://{BUCKET}/prunelab at {stack.s3.endpoint}" in run["error"]
        assert run["artifacts"] == []  # nothing half-written is offered
        assert httpx.get(f"{base}/api/runs/{run_id}/model", timeout=30).status_code == 404
        waits = [float(line.rsplit("retrying in ", 1)[1].split()[0]) for line in retries[:3]]
        assert len(retries) >= 3 and waits == sorted(waits) and waits[0] < waits[-1]  # backoff grows
    finally:
        worker.stop()
        api.stop()


def _checkpoint_epoch(engine: Engine, run_id: int) -> int:
    """The epoch of the checkpoint recorded on the run (0: none)."""
    with engine.connect() as connection:
        record = connection.execute(text("SELECT checkpoint FROM runs WHERE id = :id"), {"id": run_id}).scalar()
    if isinstance(record, str):
        record = json.loads(record)
    return int(record["epoch"]) if record else 0


def _final_masks(base: str, run_id: int, folder: Path) -> dict[str, object]:
    import numpy as np

    from prunelab.worker.training.tf import keras

    path = folder / f"run{run_id}.keras"
    path.write_bytes(httpx.get(f"{base}/api/runs/{run_id}/model?format=keras", timeout=30).content)
    model = keras.models.load_model(path, compile=False)
    return {weight.name: np.asarray(weight.numpy() != 0) for weight in model.weights if "kernel" in weight.name}


def test_a_worker_killed_after_epoch_2_of_4_resumes_at_epoch_3_and_ends_as_an_uninterrupted_run(
    object_store_stack: ObjectStoreStack, tmp_path: Path
) -> None:
    import numpy as np

    stack = object_store_stack
    # 4 epochs of ceil(1293 / 3) = 431 steps (about a second each), pruning until the last step: epochs 3 and 4
    # still move the masks.
    spec = {**SMALL, "epochs": 4, "batch_size": 3, "seed": 11,
            "schedule": {"kind": "polynomial", "final_sparsity": 0.8, "frequency": 50}}  # fmt: skip
    api = start_api(stack.api_config, stack.logs)
    first = stack.start_worker("first")
    second = None
    try:
        base = stack.api_config.base_url
        straight_id = submit(base, spec, "uninterrupted")
        killed_id = submit(base, spec, "killed after epoch 2")
        straight = wait_for_run(base, straight_id, FINISHED, timeout=600)
        assert straight["status"] == "succeeded"
        engine = create_engine(stack.api_config.database_url)
        try:
            wait_until(lambda: _checkpoint_epoch(engine, killed_id) >= 2, 600, "the checkpoint after epoch 2", 0.02)
            first.kill(signal.SIGKILL)  # the whole process group: Celery's main process and its pool
            checkpoint_epoch = _checkpoint_epoch(engine, killed_id)
        finally:
            engine.dispose()
        at_kill = run_of(base, killed_id)
        second = stack.start_worker("second")
        resumed = wait_for_run(base, killed_id, FINISHED, timeout=600)
        log_lines = [line for line in second.log_tail(400_000).splitlines() if "resuming at" in line]
        checkpoint_lines = [line for line in first.log_tail(400_000).splitlines() if "checkpoint after epoch" in line]
        straight_masks = _final_masks(base, straight_id, tmp_path)
        resumed_masks = _final_masks(base, killed_id, tmp_path) if resumed["status"] == "succeeded" else {}
        series = httpx.get(f"{base}/api/runs/{killed_id}/metrics", params={"keys": "loss"}, timeout=30)
        steps = series.json()["series"]["loss"]["steps"]
    finally:
        for process in (first, second):
            if process is not None:
                process.stop()
        api.stop()
    total = resumed["plan"]["total_steps"]
    print(f"killed at step {at_kill['step']} with the checkpoint of epoch {checkpoint_epoch} recorded\n"
          f"first worker: {[line.split(': ', 1)[-1] for line in checkpoint_lines]}\n"
          f"second worker: {[line.split(': ', 1)[-1] for line in log_lines]}\n"
          f"run {killed_id}: {resumed['status']} at attempt {resumed['attempt']}; loss stored at {len(steps)} steps "
          f"{steps[0]}..{steps[-1]} of {total}, {len(set(steps))} distinct")  # fmt: skip
    assert checkpoint_epoch == 2
    assert len(log_lines) == 1 and "resuming at epoch 3 (step 863)" in log_lines[0]
    assert resumed["status"] == "succeeded" and resumed["attempt"] == 2
    assert steps == list(range(1, total + 1))  # every step once
    assert resumed["summary"]["measured_sparsity"] == straight["summary"]["measured_sparsity"]
    assert straight_masks.keys() == resumed_masks.keys() and straight_masks
    for name, mask in straight_masks.items():
        assert np.array_equal(mask, resumed_masks[name]), name  # type: ignore[arg-type]
    assert not [key for key in stack.s3.keys(BUCKET) if "/checkpoints/" in key]  # removed when the run ended
