"""Where run artifacts live. The worker writes, the API reads; neither knows the backend.

Keys are built by `artifact_key` from a run id and a known format, never from user
input. A file becomes visible under its key only once complete (written to a
temporary name, flushed, renamed), so a reader never sees a partial artifact.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Model downloads (GET /api/runs/{id}/model?format=...): format -> file extension.
EXPORT_FORMATS: dict[str, str] = {
    "keras": ".keras",
    "h5": ".h5",
    "saved_model": ".zip",
    "tflite": ".tflite",
    "tflite_int8": ".tflite",
}
# Files that describe a run's model but are not one: the mask pictures and the export manifest.
RUN_FILE_FORMATS: dict[str, str] = {"masks": ".npz", "manifest": ".json", "rewind": ".npz"}
# The file name of every artifact format inside its attempt's folder.
ARTIFACT_FILE_NAMES: dict[str, str] = {
    "keras": "model.keras",
    "h5": "model.h5",
    "saved_model": "saved_model.zip",
    "tflite": "model.tflite",
    "tflite_int8": "model_int8.tflite",
    "masks": "masks.npz",
    "manifest": "manifest.json",
    "rewind": "rewind.npz",  # lottery_ticket: the weights rewound to, and the final masks
}


def run_prefix(run_id: int) -> str:
    return f"runs/{int(run_id)}"


def artifact_key(run_id: int, attempt: int, export_format: str) -> str:
    """Per attempt, so a stale duplicate delivery can never overwrite the current files."""
    if export_format not in ARTIFACT_FILE_NAMES:
        raise ValueError(f"unknown export format {export_format!r}")
    return f"{run_prefix(run_id)}/attempt-{int(attempt)}/{ARTIFACT_FILE_NAMES[export_format]}"


@dataclass(frozen=True)
class StoredFile:
    key: str
    size_bytes: int
    zip_size_bytes: int
    sha256: str


class ArtifactStore(Protocol):
    def put_file(self, key: str, source: Path) -> StoredFile:
        """Copy a finished local file in under `key`, atomically."""

    def local_path(self, key: str) -> Path:
        """A local file holding the artifact, for the API to stream."""

    def delete_prefix(self, prefix: str) -> None:
        """Remove every artifact under `prefix` (a run's folder)."""


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def zipped_size(path: Path, arcname: str | None = None) -> int:
    """Size of the file alone in a ZIP_DEFLATED archive, as the tfmot tutorials measure it."""
    with tempfile.TemporaryFile() as buffer:
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.write(path, arcname=arcname or path.name)
        return buffer.tell()


class LocalArtifactStore:
    """Artifacts in a local folder (`PRUNELAB_ARTIFACT_DIR`)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"artifact key {key!r} is outside the artifact root")
        return path

    def put_file(self, key: str, source: Path) -> StoredFile:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".partial-", suffix=target.suffix)
        try:
            with os.fdopen(descriptor, "wb") as handle, source.open("rb") as reader:
                shutil.copyfileobj(reader, handle, 1 << 20)
                handle.flush()
                os.fsync(handle.fileno())
            stored = StoredFile(
                key=key,
                size_bytes=os.path.getsize(temporary),
                zip_size_bytes=zipped_size(Path(temporary), arcname=target.name),
                sha256=file_digest(Path(temporary)),
            )
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return stored

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)


def get_store(root: Path) -> ArtifactStore:
    return LocalArtifactStore(root)
