"""A real S3-compatible server for tests and benchmarks: moto_server (moto[server]) on a free port.

It is a separate process speaking S3 over HTTP, so it can be stopped, killed or paused
(SIGSTOP) in the middle of an upload, as a real object store can fail. Its state lives in
its memory: a killed server comes back empty.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import httpx

ACCESS_KEY = "prunelab-test"
SECRET_KEY = "prunelab-test-secret"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class S3Server:
    """moto_server bound to `host` (loopback, or a veth address another network namespace reaches)."""

    def __init__(self, log_dir: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"moto-{self.port}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60) -> S3Server:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"moto_server exited:\n{self.log_path.read_text()[-2000:]}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.endpoint}/moto-api/", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        raise TimeoutError(f"moto_server on {self.endpoint} did not answer within {timeout:.0f} s")

    def create_bucket(self, bucket: str) -> None:
        response = httpx.put(f"{self.endpoint}/{bucket}", timeout=10)
        response.raise_for_status()

    def env(self, bucket: str, prefix: str = "", endpoint: str | None = None) -> dict[str, str]:
        """The environment a PruneLab process needs to keep its artifacts in `bucket`."""
        return {
            "PRUNELAB_ARTIFACT_URL": f"s3://{bucket}/{prefix}".rstrip("/"),
            "PRUNELAB_S3_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key in the bucket (under `prefix`), read with a client of its own."""
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            bucket,
            endpoint=self.endpoint,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            region="us-east-1",
            client_options={"allow_http": True},
        )
        return sorted(meta["path"] for batch in obstore.list(store, prefix or None) for meta in batch)

    def requests_seen(self) -> str:
        """moto's request log: one line per HTTP request it answered."""
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        assert self.popen is not None
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections and answers nothing until `resume`."""
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crashed server: every open connection is reset, its objects are gone."""
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.resume()
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
