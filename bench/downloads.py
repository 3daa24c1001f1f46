"""Benchmark 6: model downloads through the API from S3 (moto_server) against the local artifact folder.

Two API processes on loopback, each with its own SQLite database listing the same file: one keeps
it in a local folder (`file://`), the other in a bucket of a moto_server process (`s3://`). The
same file is downloaded through each in turn, whole and as a resumed second half (`Range`); the
figure is S3 throughput over local throughput, measured in the same run.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.report import Result, Table, median
from harness.s3server import S3Server
from harness.stack import StackConfig, migrate, sqlite_stack, start_api
from prunelab.server.artifacts.service import get_store, set_stored
from prunelab.server.artifacts.storage import artifact_key
from prunelab.server.db import one_off_engine, session_scope
from prunelab.server.models import Artifact, Run, RunStatus
from prunelab.server.settings import Settings

NAME = "downloads"
BUCKET = "prunelab-bench"


@dataclass(frozen=True)
class Size:
    label: str
    megabytes: int
    repeats: int


SIZES = {
    "tiny": Size("a 2 MB file, 2 downloads each", 2, 2),
    "quick": Size("a 32 MB file, 5 downloads each", 32, 5),
    "full": Size("a 128 MB file, 10 downloads each", 128, 10),
}


def _store_file(config: StackConfig, source: Path) -> int:
    """Put `source` into the stack's store and list it as run 1's keras model, as a worker would."""
    env = config.env()
    settings = Settings(
        home=config.home,
        database_url=config.database_url,
        artifact_url=env.get("PRUNELAB_ARTIFACT_URL", ""),
        s3_endpoint_url=env.get("PRUNELAB_S3_ENDPOINT_URL", ""),
    )
    engine = one_off_engine(config.database_url)
    try:
        with session_scope(engine) as session:
            run = Run(name="download", status=RunStatus.SUCCEEDED, spec={}, plan={}, attempt=1)
            session.add(run)
            session.flush()
            stored = get_store(settings).put_file(artifact_key(run.id, 1, "keras"), source)
            session.add(set_stored(Artifact(run_id=run.id, format="keras"), stored))
            return run.id
    finally:
        engine.dispose()


def _download_seconds(url: str, expected: int, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    received = 0
    with httpx.stream("GET", url, headers=headers, timeout=300) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(1 << 20):
            received += len(chunk)
    elapsed = time.perf_counter() - started
    if received != expected:
        raise RuntimeError(f"{url}: {received} bytes received, {expected} expected")
    return elapsed


def run(size: Size) -> Result:
    rows = []
    figures: dict[str, float | str] = {}
    byte_count = size.megabytes << 20
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-downloads-")))
        source = scratch / "model.keras"
        source.write_bytes(os.urandom(byte_count))
        s3 = S3Server(scratch / "logs").start()
        stack.callback(s3.stop)
        s3.create_bucket(BUCKET)
        s3_env = s3.env(BUCKET, "bench")
        saved_env = {key: os.environ.get(key) for key in s3_env if key.startswith("AWS_")}
        os.environ.update({key: value for key, value in s3_env.items() if key.startswith("AWS_")})
        stack.callback(lambda: [os.environ.pop(key, None) if value is None else os.environ.update({key: value})
                                for key, value in saved_env.items()])  # fmt: skip
        throughput: dict[str, list[float]] = {}
        for store_name, extra in (("local folder", {}), ("S3 (moto_server)", s3_env)):
            home = scratch / store_name.split()[0].lower()
            home.mkdir()
            config = sqlite_stack(home)
            config.extra = dict(extra)
            migrate(config)
            run_id = _store_file(config, source)
            api = start_api(config, home / "logs")
            stack.callback(api.stop)
            url = f"{config.base_url}/api/runs/{run_id}/model?format=keras"
            _download_seconds(url, byte_count)  # warm: the first request of a process pays for imports
            whole = [byte_count / _download_seconds(url, byte_count) / 1e6 for _ in range(size.repeats)]
            half = byte_count // 2
            ranged = [
                (byte_count - half) / _download_seconds(url, byte_count - half, {"Range": f"bytes={half}-"}) / 1e6
                for _ in range(size.repeats)
            ]
            throughput[store_name] = [median(whole), median(ranged)]
            rows.append([store_name, median(whole), median(ranged)])
            api.stop()
    local, remote = throughput["local folder"], throughput["S3 (moto_server)"]
    figures["local_mb_per_s"] = local[0]
    figures["s3_mb_per_s"] = remote[0]
    figures["s3_over_local"] = remote[0] / local[0]
    figures["s3_over_local_ranged"] = remote[1] / local[1]
    rows.append(["S3 / local", remote[0] / local[0], remote[1] / local[1]])
    table = Table(
        f"Downloads through the API: {size.label}",
        ["store", "whole file MB/s (p50)", "second half with Range MB/s (p50)"],
        rows,
    )
    notes = [
        "Both APIs stream with Content-Length, the stored sha256 as ETag, and no re-hash per request: the local "
        "store compares the file's identity (inode, size, mtime, ctime) with the one recorded at write, the S3 "
        "store sends one GET conditional on the ETag recorded at write (If-Match).",
        "moto_server is a Python S3 emulator, far slower than MinIO or AWS: the ratio bounds the cost of the S3 "
        "path from below, it is not a figure for a production store.",
    ]
    return Result(NAME, "6. Downloads: S3 against the local folder", size.label, [table], figures, notes)
