"""Downloads from a real S3 server (moto_server over HTTP): ranges, ETags, no re-hash per request, integrity."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harness.s3server import S3Server
from prunelab.server.artifacts.service import get_store, set_stored
from prunelab.server.artifacts.storage import StoredFile, artifact_key
from prunelab.server.db import session_scope
from prunelab.server.models import Artifact, Run, RunStatus
from tests.backend import hostile_files as hostile


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture
def s3_settings(settings, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The `settings` fixture with artifacts in a fresh bucket of the moto server."""
    from prunelab.server.settings import get_settings

    bucket = f"unit-{uuid.uuid4().hex[:10]}"
    s3_server.create_bucket(bucket)
    for key, value in s3_server.env(bucket, "unit").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PRUNELAB_STORE_BACKOFF_S", "0.2")
    monkeypatch.setenv("PRUNELAB_STORE_TIMEOUT_S", "2")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def s3_client(s3_settings) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from prunelab.server.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


def store_model(settings, tmp_path: Path, size: int = 300_000) -> tuple[int, bytes, StoredFile]:  # type: ignore[no-untyped-def]
    payload = os.urandom(size)
    source = tmp_path / "model.keras"
    source.write_bytes(payload)
    with session_scope() as session:
        run = Run(name="done", status=RunStatus.SUCCEEDED, spec={}, plan={}, attempt=1)
        session.add(run)
        session.flush()
        run_id = run.id
    stored = get_store(settings).put_file(artifact_key(run_id, 1, "keras"), source)
    with session_scope() as session:
        session.add(set_stored(Artifact(run_id=run_id, format="keras"), stored))
    return run_id, payload, stored


def test_s3_downloads_answer_ranges_and_etags_with_one_request_and_no_rehash(
    s3_client: TestClient,
    s3_settings,
    s3_server: S3Server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    run_id, payload, stored = store_model(s3_settings, tmp_path)
    url = f"/api/runs/{run_id}/model"
    etag = f'"{stored.sha256}"'
    gets_before = s3_server.requests_seen().count(f"GET /{s3_settings.artifact_url[5:]}/{stored.key}")
    whole = s3_client.get(url)
    assert whole.status_code == 200 and whole.content == payload
    assert whole.headers["etag"] == etag and whole.headers["content-length"] == str(len(payload))
    assert whole.headers["x-content-sha256"] == hashlib.sha256(payload).hexdigest()
    gets = s3_server.requests_seen().count(f"GET /{s3_settings.artifact_url[5:]}/{stored.key}") - gets_before
    assert gets == 1  # one ranged GET, conditional on the ETag verified at write: nothing read twice

    size = len(payload)
    answers = {
        "bytes=0-99": (206, payload[:100], f"bytes 0-99/{size}"),
        "bytes=-100": (206, payload[-100:], f"bytes {size - 100}-{size - 1}/{size}"),
        f"bytes={size - 10}-": (206, payload[-10:], f"bytes {size - 10}-{size - 1}/{size}"),
        f"bytes=100-{size + 500}": (206, payload[100:], f"bytes 100-{size - 1}/{size}"),
        "bytes=5-1": (200, payload, None),  # invalid: ignored
        "bytes=0-1,5-6": (200, payload, None),  # several ranges: the whole file
        "items=0-5": (200, payload, None),
    }
    for header, (status, body, content_range) in answers.items():
        answer = s3_client.get(url, headers={"Range": header})
        assert (answer.status_code, answer.content, answer.headers.get("content-range")) == (
            status, body, content_range
        ), header  # fmt: skip
    past_end = s3_client.get(url, headers={"Range": f"bytes={size}-"})
    assert past_end.status_code == 416 and past_end.headers["content-range"] == f"bytes */{size}"
    assert s3_client.get(url, headers={"If-None-Match": etag}).status_code == 304
    changed = s3_client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"not-this-one"'})
    assert changed.status_code == 200 and changed.content == payload


def test_an_s3_object_replaced_behind_the_apis_back_is_refused_and_reported(
    s3_client: TestClient,
    s3_settings,
    s3_server: S3Server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    run_id, payload, stored = store_model(s3_settings, tmp_path)
    other = tmp_path / "other.keras"
    other.write_bytes(b"tampered" + payload[8:])  # same size, other bytes, a new ETag
    store = get_store(s3_settings)
    store.put_file(stored.key, other)
    refused = s3_client.get(f"/api/runs/{run_id}/model")
    assert refused.status_code == 409 and "sha256" in refused.json()["detail"]
    report = s3_client.post(f"/api/runs/{run_id}/verify").json()
    assert report == {"run_id": run_id, "ok": False, "files": [
        {"format": "keras", "ok": False, "size_bytes": len(payload), "sha256": stored.sha256,
         "problem": "sha256 differs from the recorded one"}]}  # fmt: skip
    store.delete(stored.key)
    assert s3_client.get(f"/api/runs/{run_id}/model").status_code == 404
    assert s3_client.post(f"/api/runs/{run_id}/verify").json()["files"][0]["problem"] == (
        "missing from the artifact store"
    )


def test_an_upload_to_an_s3_server_paused_midway_is_retried_until_it_answers(
    s3_settings,
    s3_server: S3Server,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    source = tmp_path / "big.keras"
    source.write_bytes(os.urandom(24 << 20))  # three multipart parts
    key = artifact_key(9, 1, "keras")
    outcome: dict[str, object] = {}

    def upload() -> None:
        try:
            outcome["stored"] = get_store(s3_settings).put_file(key, source)
        except Exception as error:  # noqa: BLE001 - handed to the test's thread, which asserts on it
            outcome["error"] = error

    part_uploads = s3_server.requests_seen().count("partNumber=")
    writer = threading.Thread(target=upload)
    with caplog.at_level(logging.WARNING, logger="prunelab.server.artifacts.s3"):
        writer.start()
        deadline = time.monotonic() + 60
        while s3_server.requests_seen().count("partNumber=") == part_uploads and time.monotonic() < deadline:
            time.sleep(0.01)
        s3_server.pause()  # mid-upload: a part is in, the rest hang until the client times out
        time.sleep(5)
        s3_server.resume()
        writer.join(timeout=120)
    retries = [record.getMessage() for record in caplog.records if "retrying in" in record.getMessage()]
    print(f"\nS3 paused 5 s mid-upload: {len(retries)} retries, e.g. {retries[:1]}; outcome {sorted(outcome)}")
    assert "error" not in outcome, outcome
    stored = outcome["stored"]
    assert isinstance(stored, StoredFile) and stored.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert retries and all(s3_settings.artifact_url in message for message in retries)
    assert get_store(s3_settings).digest(key) == (source.stat().st_size, stored.sha256)


def test_local_downloads_do_not_rehash_an_unchanged_file(
    client: TestClient,
    settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    run_id, payload, stored = store_model(settings, tmp_path)
    assert stored.version is not None

    def no_hashing(*_: object) -> object:
        raise AssertionError("a download re-hashed an unchanged file")

    monkeypatch.setattr("prunelab.server.artifacts.storage.hashlib.sha256", no_hashing)
    for _ in range(3):
        answer = client.get(f"/api/runs/{run_id}/model", headers={"Range": "bytes=10-"})
        assert answer.status_code == 206 and answer.content == payload[10:]


def test_uploads_go_to_the_same_s3_store(
    s3_client: TestClient,
    s3_settings,
    s3_server: S3Server,  # type: ignore[no-untyped-def]
) -> None:
    data = hostile.valid_npz()
    response = s3_client.post("/api/datasets", files={"file": ("mine.npz", data, "application/octet-stream")})
    assert response.status_code == 201, response.text
    upload = response.json()
    bucket, prefix = s3_settings.artifact_url.removeprefix("s3://").split("/", 1)
    assert s3_server.keys(bucket) == [f"{prefix}/uploads/{upload['id']}/dataset.npz"]
    stored = get_store(s3_settings).get_bytes(f"uploads/{upload['id']}/dataset.npz")
    assert hashlib.sha256(stored).hexdigest() == upload["sha256"] == hashlib.sha256(data).hexdigest()
