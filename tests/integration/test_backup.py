"""`prunelab backup` and `prunelab restore`: taken while the API serves, restored byte for byte into an empty one.

On SQLite with a local store (the embedded default) and on PostgreSQL with S3 (moto_server). The installation holds
external runs with points and a model file (one finished, one still running), a queued run and an uploaded data set;
what the restored API answers (every run, its full metric history, every file) must equal what the original answered.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.s3server import S3Server
from harness.stack import (
    REDIS_URL,
    REPO,
    StackConfig,
    migrate,
    postgres_database,
    prunelab,
    sqlite_stack,
    start_api,
)
from prunelab.server.artifacts.service import get_store
from prunelab.server.artifacts.storage import STORE_PREFIXES
from prunelab.server.settings import Settings
from tests.backend.hostile_files import valid_npz

pytestmark = pytest.mark.integration

EXTERNAL = {"source": "keras_callback", "name": "script", "dataset": "my pipeline", "epochs": 2, "batch_size": 32,
            "steps_per_epoch": 20, "schedule": {"kind": "constant", "target_sparsity": 0.5, "begin_step": 4,
                                                "end_step": -1, "frequency": 2}}  # fmt: skip
QUEUED = {"name": "queued", "dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64,
          "schedule": {"kind": "constant", "target_sparsity": 0.5, "frequency": 5}}  # fmt: skip


def cli(config: StackConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(prunelab(*args), env=config.env(), cwd=REPO, capture_output=True, text=True, timeout=300)


def populate(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as api:
        for index, finish in enumerate((True, False)):
            run = api.post("/api/runs/external", json={**EXTERNAL, "name": f"script {index}"})
            assert run.status_code == 201, run.text
            run_id = run.json()["id"]
            points = [{"key": key, "step": step, "value": value, "wall_time": 1_700_000_000 + step / 7}
                      for step in range(1, 41)
                      for key, value in (("loss", 2.0 / step), ("measured_sparsity", min(0.5, step / 40)),
                                         ("accuracy", float("nan") if step == 13 else 1 - 1 / step))]  # fmt: skip
            body = json.dumps({"points": points})  # NaN as Python writes it: stored as a gap
            answer = api.post(f"/api/runs/{run_id}/points", content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 200 and answer.json()["accepted"] == len(points), answer.text
            model = b"PK\x03\x04" + os.urandom(200_000 + index)
            stored = api.put(
                f"/api/runs/{run_id}/artifacts/keras",
                files={"file": ("model.keras", model)},
                data={"sha256": hashlib.sha256(model).hexdigest()},
            )
            assert stored.status_code == 200, stored.text
            if finish:
                done = api.post(f"/api/runs/{run_id}/finish", json={"status": "succeeded", "summary": {"note": "ok"}})
                assert done.status_code == 200, done.text
        assert api.post("/api/runs", json=QUEUED).status_code == 201
        uploaded = api.post("/api/datasets", files={"file": ("mine.npz", valid_npz())})
        assert uploaded.status_code == 201, uploaded.text


def observe(base_url: str) -> dict[str, Any]:
    """Everything the API answers about the installation: runs, full histories, files, uploads."""
    seen: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=30) as api:
        listing = api.get("/api/runs", params={"limit": 500, "sort": "id", "order": "asc"}).json()
        seen["runs"] = listing
        for run in listing["runs"]:
            run_id = run["id"]
            seen[f"run {run_id}"] = api.get(f"/api/runs/{run_id}").json()
            seen[f"metrics {run_id}"] = api.get(f"/api/runs/{run_id}/metrics.csv").text
            for artifact in seen[f"run {run_id}"]["artifacts"]:
                model = api.get(f"/api/runs/{run_id}/model", params={"format": artifact["format"]})
                assert model.status_code == 200, model.text
                seen[f"file {run_id} {artifact['format']}"] = hashlib.sha256(model.content).hexdigest()
        seen["upload 1"] = api.get("/api/uploads/1").json()
    return seen


def stored_objects(config: StackConfig, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, str]]:
    """Every object in the installation's store with its size and sha256, read through the store interface."""
    for key, value in config.extra.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    prunelab_settings = {
        key.removeprefix("PRUNELAB_").lower(): value
        for key, value in config.extra.items()
        if key.startswith("PRUNELAB_")
    }
    settings = Settings(home=config.home, **prunelab_settings)
    store = get_store(settings)
    return {key: store.digest(key) for prefix in STORE_PREFIXES for key in store.list_keys(prefix)}


@contextmanager
def installations(kind: str, tmp_path: Path) -> Iterator[tuple[StackConfig, StackConfig]]:
    """Two installations of one kind: the original and an empty one to restore into, on the same queue (a run's
    page names its queue, and a restored installation keeps the original's)."""
    if kind == "sqlite":
        original = sqlite_stack(tmp_path / "original")
        yield original, replace(sqlite_stack(tmp_path / "restored"), queue=original.queue)
        return
    s3 = S3Server(tmp_path / "logs").start()
    try:
        with postgres_database() as original_url, postgres_database() as restored_url:
            configs = []
            for name, url in (("original", original_url), ("restored", restored_url)):
                s3.create_bucket(f"prunelab-{name}")
                configs.append(StackConfig(home=tmp_path / name, database_url=url, broker_url=REDIS_URL,
                                           extra=s3.env(f"prunelab-{name}", "artifacts")))  # fmt: skip
            yield configs[0], replace(configs[1], queue=configs[0].queue)
    finally:
        s3.stop()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql+s3"])
def test_a_backup_taken_while_serving_restores_every_run_point_and_file_into_an_empty_installation(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with installations(kind, tmp_path) as (original, restored):
        migrate(original)
        api = start_api(original, tmp_path / "logs")
        try:
            populate(original.base_url)
            backup = cli(original, "backup", str(tmp_path / "backup"))  # the API keeps serving meanwhile
            assert backup.returncode == 0, backup.stderr
            before = observe(original.base_url)
        finally:
            api.stop()
        objects = stored_objects(original, monkeypatch)
        manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
        print(f"\n{kind}: {len(before['runs']['runs'])} runs, {len(objects)} objects; backup: "
              f"{sum(1 for _ in (tmp_path / 'backup').rglob('*') if _.is_file())} files")  # fmt: skip
        assert {entry["key"]: (entry["size"], entry["sha256"]) for entry in manifest["objects"]} == objects
        assert len(before["runs"]["runs"]) == 3 and len(objects) == 3  # two model files and the upload

        if kind != "sqlite":
            migrate(restored)  # a fresh installation, migrated and empty (SQLite's has no database at all yet)
        restore = cli(restored, "restore", str(tmp_path / "backup"))
        assert restore.returncode == 0, restore.stderr
        assert stored_objects(restored, monkeypatch) == objects
        api = start_api(restored, tmp_path / "logs-restored")
        try:
            after = observe(restored.base_url)
            assert after == before
            # ids handed out next follow the restored ones (PostgreSQL's sequences were moved on)
            next_run = httpx.post(f"{restored.base_url}/api/runs", json=QUEUED, timeout=30)
            assert next_run.status_code == 201 and next_run.json()["id"] == 4, next_run.text
        finally:
            api.stop()

        again = cli(restored, "restore", str(tmp_path / "backup"))
        assert again.returncode == 1 and "not empty" in again.stderr and "--overwrite" in again.stderr
        assert "Traceback" not in again.stderr
        overwritten = cli(restored, "restore", str(tmp_path / "backup"), "--overwrite")
        assert overwritten.returncode == 0, overwritten.stderr
        assert stored_objects(restored, monkeypatch) == objects

        damaged = tmp_path / "backup" / manifest["objects"][0]["path"]
        damaged.write_bytes(damaged.read_bytes()[:-1] + b"!")
        refused = cli(restored, "restore", str(tmp_path / "backup"), "--overwrite")
        assert refused.returncode == 1 and "damaged" in refused.stderr, refused.stderr


KILLED_BEFORE_THE_MANIFEST = """
import os, signal, sys
from pathlib import Path
import prunelab.server.backup as backup
from prunelab.server.settings import get_settings
backup.write_manifest = lambda folder, manifest: os.kill(os.getpid(), signal.SIGKILL)  # killed at the last step
backup.backup(get_settings(), Path(sys.argv[1]))
"""


def test_a_backup_killed_half_way_leaves_no_folder_that_restore_accepts(tmp_path: Path) -> None:
    original = sqlite_stack(tmp_path / "original")
    migrate(original)
    target = tmp_path / "backup"
    killed = subprocess.run([sys.executable, "-c", KILLED_BEFORE_THE_MANIFEST, str(target)],
                            env=original.env(), cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert not target.exists()
    (partial,) = tmp_path.glob(".partial-backup-*")
    assert (partial / "database" / "prunelab.sqlite").is_file() and not (partial / "manifest.json").exists()
    restored = sqlite_stack(tmp_path / "restored")
    for folder in (target, partial):
        refused = cli(restored, "restore", str(folder))
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "not a complete PruneLab backup" in refused.stderr
    assert not (tmp_path / "restored" / "prunelab.sqlite").exists()  # nothing was written


@pytest.mark.parametrize("verb", ["api", "worker", "backup"])
def test_an_object_store_that_is_down_at_start_is_a_clear_message_and_exit_1(verb: str, tmp_path: Path) -> None:
    down = S3Server(tmp_path / "logs")  # a port nothing listens on
    config = sqlite_stack(tmp_path / "home")
    config.extra.update(down.env("prunelab", "artifacts"), PRUNELAB_STORE_ATTEMPTS="1", PRUNELAB_STORE_TIMEOUT_S="5")
    migrate(config)
    started = cli(config, verb, *([str(tmp_path / "backup")] if verb == "backup" else []))
    assert started.returncode == 1, started.stdout + started.stderr
    assert "Traceback" not in started.stderr
    assert f"prunelab {verb}: the artifact store s3://prunelab/artifacts at {down.endpoint}" in started.stderr
    assert "PRUNELAB_S3_ENDPOINT_URL" in started.stderr
