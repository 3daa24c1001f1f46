"""Uploads through the client: a `.keras` model (the stripped model of a run, downloaded by the client),
then a run that prunes it; a file PruneLab refuses raises the server's message."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from prunelab import Client, PruneLabError, Run
from tests.client.conftest import TINY


def test_a_downloaded_model_uploads_and_a_run_prunes_it(client: Client, trained: Run, tmp_path: Path) -> None:
    model = client.download(trained.id, "keras", tmp_path / "mine.keras").path
    upload = client.upload_model(model)
    assert upload.kind == "model" and upload.original_filename == "mine.keras"
    assert upload.sha256 == hashlib.sha256(model.read_bytes()).hexdigest() and upload.size_bytes == model.stat().st_size
    assert client.get_upload(upload.id).model_dump() == upload.model_dump()
    spec = {
        **TINY,
        "name": "pruned upload",
        "exports": ["keras"],
        "recipe": {"kind": "uploaded_model", "upload_id": upload.id},
    }
    run = client.wait(client.create_run(spec).id, timeout=300)
    assert run.status == "succeeded", run.error
    assert run.summary is not None and run.summary["measured_sparsity"] == pytest.approx(0.5, abs=0.02)


def test_a_file_that_is_not_a_keras_model_is_refused_with_the_servers_message(client: Client, tmp_path: Path) -> None:
    legacy = tmp_path / "model.h5"
    legacy.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(PruneLabError) as refused:
        client.upload_model(legacy)
    assert refused.value.status_code == 422 and ".keras" in refused.value.message, refused.value


def test_a_missing_file_is_a_clear_error(client: Client, tmp_path: Path) -> None:
    with pytest.raises(PruneLabError) as missing:
        client.upload_model(tmp_path / "nowhere.keras")
    assert "nowhere.keras" in str(missing.value) and missing.value.status_code is None
