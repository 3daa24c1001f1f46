"""Uploads: a valid model and data set are stored; every hostile file ends as a 422 that says why."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from prunelab.server.db import session_scope
from prunelab.server.models import Upload
from tests.backend import hostile_files as hostile


def post(client: TestClient, route: str, filename: str, data: bytes):  # type: ignore[no-untyped-def]
    return client.post(route, files={"file": (filename, data, "application/octet-stream")})


def message(response) -> str:  # type: ignore[no-untyped-def]
    [error] = response.json()["detail"]
    assert error["field"] == "file"
    return error["msg"]


def upload_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Upload)) or 0


def stored_files(settings) -> list[Path]:  # type: ignore[no-untyped-def]
    root = settings.artifact_dir
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_a_valid_model_is_stored_under_its_id_never_its_file_name(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    data = hostile.keras_archive()
    response = post(client, "/api/models", "../../etc/passwd.keras", data)
    assert response.status_code == 201, response.text
    upload = response.json()
    assert upload["kind"] == "model"
    assert upload["original_filename"] == "passwd.keras"  # display only
    assert upload["sha256"] == hashlib.sha256(data).hexdigest() and upload["size_bytes"] == len(data)
    assert upload["meta"]["layers"] == ["InputLayer", "Flatten", "Dense"]
    assert [path.relative_to(settings.artifact_dir).as_posix() for path in stored_files(settings)] == [
        f"uploads/{upload['id']}/model.keras"
    ]
    assert client.get(f"/api/uploads/{upload['id']}").json() == upload
    assert client.get("/api/uploads/999999").status_code == 404


@pytest.mark.parametrize("version", ["2.21.0", "3.15.1"])
def test_the_keras_that_saved_a_model_is_recorded(client: TestClient, version: str) -> None:
    response = post(client, "/api/models", "mine.keras", hostile.keras_archive(keras_version=version))
    assert response.status_code == 201, response.text
    assert response.json()["meta"]["keras_version"] == version  # a Keras 3 file is kept; tfmot runs refuse it


def test_a_valid_dataset_is_described(client: TestClient) -> None:
    response = post(client, "/api/datasets", "mine.npz", hostile.valid_npz())
    assert response.status_code == 201, response.text
    meta = response.json()["meta"]
    assert meta["train_examples"] == 20 and meta["input_shape"] == [8, 8] and meta["num_classes"] <= 10


HOSTILE_MODELS = {
    "zip-slip member": (hostile.zip_with_member("../../evil.py"), "outside the archive"),
    "windows zip-slip member": (hostile.zip_with_member("..\\..\\evil.py"), "outside the archive"),
    "absolute member": (hostile.zip_with_member("/etc/cron.d/evil"), "absolute path"),
    "drive-absolute member": (hostile.zip_with_member("C:\\evil.py"), "absolute path"),
    "too many members": (
        hostile.keras_archive(members={f"assets/{index}": b"" for index in range(100)}),
        "at most 64 members",
    ),
    "lambda layer": (hostile.keras_archive(hostile.lambda_config()), "Lambda layers run arbitrary code"),
    "unknown module": (hostile.keras_archive(hostile.unknown_module_config()), "module 'os'"),
    "custom registered object": (hostile.keras_archive(hostile.custom_object_config()), "custom object"),
    "not a zip": (b"print('hello')", "zip archive"),
    "config not json": (hostile.keras_archive(raw_config=b"\xff{"), "not valid JSON"),
    "keras_version not a version": (hostile.keras_archive(keras_version={"major": 3}), "not a version number"),
    "hdf5 content named .keras": (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "HDF5"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_MODELS))
def test_hostile_models_are_refused_with_a_reason(client: TestClient, settings, case: str) -> None:  # type: ignore[no-untyped-def]
    data, reason = HOSTILE_MODELS[case]
    response = post(client, "/api/models", "model.keras", data)
    assert response.status_code == 422, response.text
    assert reason in message(response), response.json()
    assert upload_count() == 0 and stored_files(settings) == []


def test_decompression_bomb_is_refused_from_the_directory_alone(client: TestClient) -> None:
    response = post(client, "/api/models", "bomb.keras", hostile.decompression_bomb())
    assert response.status_code == 422
    assert "decompression bomb" in message(response)


@pytest.mark.parametrize("filename", ["model.h5", "MODEL.HDF5"])
def test_h5_uploads_are_refused(client: TestClient, filename: str) -> None:
    response = post(client, "/api/models", filename, b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert response.status_code == 422
    assert ".h5" in message(response)


def test_pickle_bearing_npz_is_refused_and_nothing_runs(client: TestClient, tmp_path: Path) -> None:
    marker = Path("/tmp/prunelab-pwned")
    marker.unlink(missing_ok=True)
    response = post(client, "/api/datasets", "data.npz", hostile.pickled_npz())
    assert response.status_code == 422
    assert "pickled objects" in message(response)
    assert not marker.exists()


BAD_DATASETS = {
    "missing arrays": (hostile.npz_bytes(x_train=np.zeros((2, 8, 8))), "missing"),
    "labels out of range": (
        hostile.npz_bytes(
            x_train=np.zeros((2, 8, 8)), y_train=np.array([0, 5000]), x_test=np.zeros((1, 8, 8)), y_test=np.array([0])
        ),
        "labels must be in [0, 1000)",
    ),
    "float labels": (
        hostile.npz_bytes(
            x_train=np.zeros((2, 8, 8)), y_train=np.array([0.5, 1]), x_test=np.zeros((1, 8, 8)), y_test=np.array([0])
        ),
        "integer class labels",
    ),
    "shape mismatch": (
        hostile.npz_bytes(
            x_train=np.zeros((2, 8, 8)), y_train=np.array([0]), x_test=np.zeros((1, 8, 8)), y_test=np.array([0])
        ),
        "must have shape (2,)",
    ),
    "string images": (
        hostile.npz_bytes(
            x_train=np.array([["a"]] * 2), y_train=np.array([0, 1]), x_test=np.zeros((1, 8, 8)), y_test=np.array([0])
        ),
        "must be numeric",
    ),
    "wrong extension": (hostile.valid_npz(), ".npz file"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATASETS))
def test_bad_datasets_are_refused_with_a_reason(client: TestClient, case: str) -> None:
    data, reason = BAD_DATASETS[case]
    response = post(client, "/api/datasets", "data.csv" if case == "wrong extension" else "data.npz", data)
    assert response.status_code == 422, response.text
    assert reason in message(response)
