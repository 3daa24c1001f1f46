"""Where run artifacts live. The worker writes, the API reads; neither knows the backend.

Keys are built by `artifact_key` (and `upload_key`) from ids and known formats, never
from user input, and the store checks every key anyway: plain segments only, and the
resolved path (symlinks followed) must stay inside the root. A file becomes visible
under its key only once complete (written to a `.partial-*` name, fsynced, renamed),
so a reader never sees a partial artifact; a partial left by a killed writer is never
served (no key can name it) and is removed by `remove_stale_partials`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from core.exports import ARTIFACT_FILE_NAMES, file_digest, zipped_size

UPLOAD_FILES: dict[str, str] = {"model": "model.keras", "dataset": "dataset.npz"}
PARTIAL_PREFIX = ".partial-"
# A key segment starts with a letter or digit (so never '.', '..' or a partial) and holds no separator,
# percent sign, backslash or NUL.
KEY_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
MAX_KEY_LENGTH = 500


class UnsafeKey(ValueError):
    """A key that is not a plain relative path inside the store."""


class StoredFileMismatch(Exception):
    """A stored file whose size or sha256 differs from what was recorded when it was written."""


def run_prefix(run_id: int) -> str:
    return f"runs/{int(run_id)}"


def artifact_key(run_id: int, attempt: int, export_format: str) -> str:
    """Per attempt, so a stale duplicate delivery can never overwrite the current files."""
    if export_format not in ARTIFACT_FILE_NAMES:
        raise ValueError(f"unknown export format {export_format!r}")
    return f"{run_prefix(run_id)}/attempt-{int(attempt)}/{ARTIFACT_FILE_NAMES[export_format]}"


def upload_key(upload_id: int, kind: str) -> str:
    """Built from the upload's id alone; the uploaded file's name is never part of a path."""
    if kind not in UPLOAD_FILES:
        raise ValueError(f"unknown upload kind {kind!r}")
    return f"uploads/{int(upload_id)}/{UPLOAD_FILES[kind]}"


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise UnsafeKey(f"artifact key {key!r} is empty or too long")
    if not all(KEY_SEGMENT.fullmatch(segment) for segment in key.split("/")):
        raise UnsafeKey(f"artifact key {key!r} is not a plain relative path")
    return key


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

    def open_verified(self, key: str, size_bytes: int, sha256: str) -> BinaryIO:
        """An open handle on the artifact, after checking it still has the recorded size and sha256."""

    def delete_prefix(self, prefix: str) -> None:
        """Remove every artifact under `prefix` (a run's folder)."""

    def remove_stale_partials(self, older_than_s: float) -> int:
        """Delete temporary files of writes that never completed."""


class LocalArtifactStore:
    """Artifacts in a local folder (`PRUNELAB_ARTIFACT_DIR`)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        # resolve() follows symlinks: a link planted inside the root that points out is caught here.
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise UnsafeKey(f"artifact key {key!r} is outside the artifact root")
        return path

    def put_file(self, key: str, source: Path) -> StoredFile:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=PARTIAL_PREFIX, suffix=target.suffix)
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

    def open_verified(self, key: str, size_bytes: int, sha256: str) -> BinaryIO:
        # Checked and served through one open handle: a file swapped in after the check is not what is sent.
        handle = self.local_path(key).open("rb")
        try:
            if os.fstat(handle.fileno()).st_size != size_bytes:
                raise StoredFileMismatch(f"{key}: size differs from the recorded {size_bytes} bytes")
            digest = hashlib.sha256()
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
            if digest.hexdigest() != sha256:
                raise StoredFileMismatch(f"{key}: sha256 differs from the recorded one")
            handle.seek(0)
        except BaseException:
            handle.close()
            raise
        return handle

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def remove_stale_partials(self, older_than_s: float) -> int:
        """Delete `.partial-*` files a killed writer left behind; returns how many."""
        cutoff = time.time() - older_than_s
        removed = 0
        for partial in self.root.rglob(f"{PARTIAL_PREFIX}*"):
            try:
                if partial.is_file() and not partial.is_symlink() and partial.stat().st_mtime < cutoff:
                    partial.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def get_store(root: Path) -> ArtifactStore:
    return LocalArtifactStore(root)
