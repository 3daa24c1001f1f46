"""Downloads through the client: streamed, named as the server names them, resumed from a partial file, and
refused when the bytes on disk do not hash to the sha256 the server recorded."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from prunelab import ChecksumMismatch, Client, PruneLabError, Run, ServerUnreachable


class CutModelDownloads(httpx.BaseTransport):
    """A real connection that breaks after `limit` bytes of a model's body, as a dropped network does."""

    def __init__(self, limit: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.limit = limit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/model"):
            return response
        limit, body = self.limit, response.stream

        class Cut(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                sent = 0
                for chunk in body:  # type: ignore[union-attr]
                    if sent + len(chunk) >= limit:
                        yield chunk[: limit - sent]
                        raise httpx.ReadError("connection reset (cut by the test)")
                    sent += len(chunk)
                    yield chunk

            def close(self) -> None:
                body.close()  # type: ignore[union-attr]

        return httpx.Response(response.status_code, headers=response.headers, stream=Cut())


def served_bytes(client: Client, run: Run, file_format: str) -> bytes:
    artifact = run.artifact(file_format)
    assert artifact is not None
    return httpx.get(client.url + artifact.url, timeout=30).content


def test_a_model_is_downloaded_under_the_servers_name_and_checked(client: Client, trained: Run, tmp_path: Path) -> None:
    done = client.download(trained.id, "keras", tmp_path)
    artifact = trained.artifact("keras")
    assert artifact is not None
    assert done.path == tmp_path / f"prunelab-run{trained.id}-client-tiny-stripped.keras"
    assert done.sha256 == artifact.sha256 == hashlib.sha256(done.path.read_bytes()).hexdigest()
    assert done.size_bytes == artifact.size_bytes and done.resumed_from == 0
    assert list(tmp_path.iterdir()) == [done.path]


def test_int8_tflite_to_a_file_with_a_progress_bar(
    client: Client, trained: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = client.download(trained.id, "tflite_int8", tmp_path / "model.tflite", progress=True)
    assert done.path.read_bytes() == served_bytes(client, trained, "tflite_int8")
    assert "model.tflite" in capsys.readouterr().err


def test_a_cut_download_resumes_from_its_partial_file(client: Client, trained: Run, tmp_path: Path) -> None:
    whole = served_bytes(client, trained, "keras")
    target = tmp_path / "model.keras"
    partial = tmp_path / "model.keras.part"
    partial.write_bytes(whole[: len(whole) // 2])
    done = client.download(trained.id, "keras", target)
    assert done.resumed_from == len(whole) // 2
    assert target.read_bytes() == whole and not partial.exists()
    # A partial file that is already whole still gets verified and named.
    partial.write_bytes(whole)
    again = client.download(trained.id, "keras", tmp_path / "again.keras")
    assert again.resumed_from == 0  # a different target: its own partial file, none yet
    (tmp_path / "again.keras.part").write_bytes(whole)
    third = client.download(trained.id, "keras", tmp_path / "again.keras")
    assert third.resumed_from == len(whole) - 1 and third.path.read_bytes() == whole


def test_a_download_cut_mid_stream_keeps_its_bytes_and_the_next_call_resumes(
    client: Client, trained: Run, tmp_path: Path
) -> None:
    whole = served_bytes(client, trained, "keras")
    cut_at = len(whole) * 2 // 3
    target = tmp_path / "model.keras"
    with Client(client.url, transport=CutModelDownloads(cut_at)) as flaky, pytest.raises(ServerUnreachable) as cut:
        flaky.download(trained.id, "keras", target)
    assert "connection reset" in str(cut.value)
    assert not target.exists() and (tmp_path / "model.keras.part").stat().st_size == cut_at
    done = client.download(trained.id, "keras", target)
    assert done.resumed_from == cut_at and target.read_bytes() == whole


def test_a_partial_file_with_wrong_bytes_is_caught_by_the_sha256(client: Client, trained: Run, tmp_path: Path) -> None:
    whole = served_bytes(client, trained, "keras")
    half = len(whole) // 2
    partial = tmp_path / "model.keras.part"
    partial.write_bytes(bytes(byte ^ 0xFF for byte in whole[:half]))  # same length, other bytes
    with pytest.raises(ChecksumMismatch) as mismatch:
        client.download(trained.id, "keras", tmp_path / "model.keras")
    artifact = trained.artifact("keras")
    assert artifact is not None and artifact.sha256 in str(mismatch.value)
    assert not partial.exists() and not (tmp_path / "model.keras").exists()
    # Removed, so the next attempt starts over and succeeds.
    assert client.download(trained.id, "keras", tmp_path / "model.keras").path.read_bytes() == whole


def test_a_format_the_run_lacks_is_the_servers_404_and_an_unknown_one_is_refused_here(
    client: Client, trained: Run, tmp_path: Path
) -> None:
    with pytest.raises(PruneLabError) as missing:
        client.download(trained.id, "h5", tmp_path)
    assert missing.value.status_code == 404 and "has no h5 model" in missing.value.message
    with pytest.raises(PruneLabError) as unknown:
        client.download(trained.id, "onnx", tmp_path)
    assert "tflite_int8" in str(unknown.value) and unknown.value.status_code is None
    assert not list(tmp_path.iterdir())


def test_the_manifest_downloads_as_a_file(client: Client, trained: Run, tmp_path: Path) -> None:
    if trained.artifact("manifest") is None:
        pytest.skip("this run wrote no manifest")
    done = client.download(trained.id, "manifest", tmp_path)
    assert done.path.suffix == ".json" and b'"files"' in done.path.read_bytes()
