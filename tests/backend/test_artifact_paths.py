"""Artifacts: no key reaches outside the root, downloads match their stored hash, killed writes leave nothing listed."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harness.stack import REPO
from prunelab.server.artifacts.storage import LocalArtifactStore, Recorded, UnsafeKey, artifact_key
from prunelab.server.db import session_scope
from prunelab.server.models import Artifact, Run, RunStatus

TRAVERSAL_KEYS = [
    "../secret.txt",
    "runs/../../secret.txt",
    "runs/1/../../../secret.txt",
    "%2e%2e%2fsecret.txt",
    "%2e%2e/secret.txt",
    "%252e%252e%252fsecret.txt",  # double encoding
    "..%2fsecret.txt",
    "..\\secret.txt",
    "runs\\..\\..\\secret.txt",
    "/etc/passwd",
    "//etc/passwd",
    "C:\\Windows\\win.ini",
    "runs/1/model.keras\x00.txt",
    "\x00",
    "",
    ".",
    "runs/.",
    "runs/1/.partial-abc.keras",
    "runs//1",
    "~/secret.txt",
]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    return secret


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    root = tmp_path / "artifacts"
    root.mkdir()
    return LocalArtifactStore(root)


@pytest.mark.parametrize("key", TRAVERSAL_KEYS)
def test_hostile_keys_never_reach_outside_the_root(store: LocalArtifactStore, outside: Path, key: str) -> None:
    with pytest.raises(UnsafeKey):
        store.local_path(key)
    with pytest.raises(UnsafeKey):
        store.stream(Recorded(key, 9, "0" * 64))
    with pytest.raises(UnsafeKey):
        store.put_file(key, outside)
    with pytest.raises(UnsafeKey):
        store.delete_prefix(key)
    assert outside.read_text() == "not yours"


def test_a_planted_symlink_inside_the_root_is_not_followed_out(store: LocalArtifactStore, outside: Path) -> None:
    link_dir = store.root / "runs" / "7" / "attempt-1"
    link_dir.mkdir(parents=True)
    (link_dir / "model.keras").symlink_to(outside)
    (store.root / "runs" / "8").symlink_to(outside.parent, target_is_directory=True)
    with pytest.raises(UnsafeKey):
        store.local_path(artifact_key(7, 1, "keras"))
    with pytest.raises(UnsafeKey):
        store.local_path("runs/8/secret.txt")
    with pytest.raises(UnsafeKey):
        store.put_file(artifact_key(7, 1, "keras"), outside)
    assert outside.read_text() == "not yours"


def stored_run(store: LocalArtifactStore, source: Path) -> int:
    with session_scope() as session:
        run = Run(name="done", status=RunStatus.SUCCEEDED, spec={}, plan={}, attempt=1)
        session.add(run)
        session.flush()
        stored = store.put_file(artifact_key(run.id, 1, "keras"), source)
        session.add(
            Artifact(
                run_id=run.id,
                format="keras",
                storage_key=stored.key,
                size_bytes=stored.size_bytes,
                zip_size_bytes=stored.zip_size_bytes,
                sha256=stored.sha256,
            )
        )
        return run.id


def test_downloads_match_the_stored_hash_and_tampered_files_are_refused(
    client: TestClient,
    settings,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    store = LocalArtifactStore(settings.artifact_dir)
    source = tmp_path / "model.keras"
    source.write_bytes(os.urandom(300_000))
    run_id = stored_run(store, source)

    good = client.get(f"/api/runs/{run_id}/model", params={"format": "keras"})
    assert good.status_code == 200
    assert hashlib.sha256(good.content).hexdigest() == good.headers["x-content-sha256"]
    assert good.content == source.read_bytes()

    stored_path = store.local_path(artifact_key(run_id, 1, "keras"))
    stored_path.write_bytes(b"tampered" + source.read_bytes()[8:])  # same size, other bytes
    tampered = client.get(f"/api/runs/{run_id}/model", params={"format": "keras"})
    assert tampered.status_code == 409 and "sha256" in tampered.json()["detail"]
    stored_path.write_bytes(b"short")
    assert client.get(f"/api/runs/{run_id}/model", params={"format": "keras"}).status_code == 409
    stored_path.unlink()
    assert client.get(f"/api/runs/{run_id}/model", params={"format": "keras"}).status_code == 404
    for hostile in ("../1", "%2e%2e", "1%00"):
        assert client.get(f"/api/runs/{hostile}/model").status_code in (404, 422)
    assert client.get(f"/api/runs/{run_id}/model", params={"format": "../../etc/passwd"}).status_code == 422


SLOW_WRITER = """
import shutil, sys, time
from pathlib import Path
import prunelab.server.artifacts.storage as storage

def slow_copy(reader, writer, length=0):
    while chunk := reader.read(64 * 1024):
        writer.write(chunk)
        writer.flush()
        print("wrote", flush=True)
        time.sleep(0.05)

storage.shutil.copyfileobj = slow_copy
storage.LocalArtifactStore(Path(sys.argv[1])).put_file(sys.argv[2], Path(sys.argv[3]))
print("done", flush=True)
"""


def test_a_write_killed_midway_leaves_no_visible_artifact(store: LocalArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "big.keras"
    source.write_bytes(os.urandom(4 << 20))
    key = artifact_key(3, 1, "keras")
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(store.root), key, str(source)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    for _ in range(5):
        assert writer.stdout.readline().strip() == "wrote"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)

    with pytest.raises(FileNotFoundError):
        store.local_path(key)
    partials = list(store.root.rglob(".partial-*"))
    assert len(partials) == 1 and 0 < partials[0].stat().st_size < source.stat().st_size
    with pytest.raises(UnsafeKey):
        store.local_path(partials[0].relative_to(store.root).as_posix())  # never servable
    assert store.remove_stale_partials(older_than_s=3600) == 0  # might still be a live write
    old = time.time() - 7200
    os.utime(partials[0], (old, old))
    assert store.remove_stale_partials(older_than_s=3600) == 1
    assert not list(store.root.rglob(".partial-*"))
