"""Where artifacts live: the one storage interface. The worker writes, the API reads; neither knows the backend.

Two backends: a local folder (`file:///path`, this module) and any S3-compatible server
(`s3://bucket/prefix`, `prunelab.server.artifacts.s3`), chosen by `PRUNELAB_ARTIFACT_URL` in
`prunelab.server.artifacts.service.get_store` (the backends import this module, never each other). Keys are
built by `artifact_key`, `upload_key` and `checkpoint_key` from ids and known formats, never
from user input, and each store checks every key anyway. An object becomes visible under its
key only once complete (a local file is written to a `.partial-*` name, fsynced and renamed;
an S3 object appears when its upload completes), and `put_file` reads back what the store
holds and checks its sha256 before returning, so a row recorded from its `StoredFile` names
a complete, verified object. The returned `version` (a local file's identity, an S3 ETag)
lets readers skip re-hashing while the object is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from prunelab.core.exports import ARTIFACT_FILE_NAMES, file_digest, zipped_size

UPLOAD_FILES: dict[str, str] = {"model": "model.keras", "dataset": "dataset.npz"}
CHECKPOINT_FILE = "checkpoint.npz"
PARTIAL_PREFIX = ".partial-"
CHUNK_BYTES = 1 << 20
# A key segment starts with a letter or digit (so never '.', '..' or a partial) and holds no separator,
# percent sign, backslash or NUL.
KEY_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
MAX_KEY_LENGTH = 500
# Every key starts with one of these (`run_prefix`, `upload_key`): a backup lists the whole store by them.
STORE_PREFIXES = ("runs", "uploads")


class UnsafeKey(ValueError):
    """A key that is not a plain relative path inside the store."""


class StoredFileMismatch(Exception):
    """A stored file whose size or sha256 differs from what was recorded when it was written."""


class StoreUnavailable(Exception):
    """The artifact store failed an operation after its retries; the message names the store."""


def run_prefix(run_id: int) -> str:
    return f"runs/{int(run_id)}"


def artifact_key(run_id: int, attempt: int, export_format: str) -> str:
    """Per attempt, so a stale duplicate delivery can never overwrite the current files."""
    if export_format not in ARTIFACT_FILE_NAMES:
        raise ValueError(f"unknown export format {export_format!r}")
    return f"{run_prefix(run_id)}/attempt-{int(attempt)}/{ARTIFACT_FILE_NAMES[export_format]}"


def attempt_prefix(run_id: int, attempt: int) -> str:
    return f"{run_prefix(run_id)}/attempt-{int(attempt)}"


def checkpoint_prefix(run_id: int) -> str:
    """Every checkpoint of a run, of every attempt: removed when the run ends."""
    return f"{run_prefix(run_id)}/checkpoints"


def checkpoint_key(run_id: int, attempt: int, epoch: int) -> str:
    """Per attempt and epoch: a stale worker's checkpoint can never replace the one recorded for the run."""
    return f"{checkpoint_prefix(run_id)}/attempt-{int(attempt)}/epoch-{int(epoch):05d}-{CHECKPOINT_FILE}"


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
    version: str | None = None  # what the store reported for the verified object: unchanged while this matches


@dataclass(frozen=True)
class Recorded:
    """What a database row says of an object: a reader checks the store against it."""

    key: str
    size_bytes: int
    sha256: str
    version: str | None = None


@dataclass(frozen=True)
class ObjectStream:
    """Bytes [start, end) of a recorded object, checked against its row; iterate once, then close."""

    chunks: Iterator[bytes]
    start: int
    end: int
    close: Callable[[], None] | None = None  # releases the handle the chunks are read from, if any

    def release(self) -> None:
        if self.close is not None:
            self.close()


class ArtifactStore(Protocol):
    url: str  # the store's address without credentials, for messages

    def put_file(self, key: str, source: Path) -> StoredFile:
        """Copy a finished local file in under `key`, atomically; verified (sha256 read back) before returning."""

    def put_bytes(self, key: str, data: bytes) -> StoredFile:
        """`put_file` for bytes in memory (small objects: compacted chunks, manifests)."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""

    def get_bytes(self, key: str) -> bytes:
        """The whole object (small objects only); FileNotFoundError if absent."""

    def stream(self, recorded: Recorded, start: int = 0, end: int | None = None) -> ObjectStream:
        """Bytes [start, end) of the object, after checking it is still the recorded one (re-hashing only
        when its version differs); FileNotFoundError if absent, StoredFileMismatch if it changed."""

    def fetch_to(self, recorded: Recorded, target: Path) -> Path:
        """Download the object to a local file, checking its size and sha256 on the way."""

    def digest(self, key: str) -> tuple[int, str]:
        """Size and sha256 of the stored bytes, read in full: the on-demand integrity check."""

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix/`, sorted."""

    def delete(self, key: str) -> None:
        """Remove one object; nothing happens if it is absent."""

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object under `prefix` (a run's folder, its checkpoints)."""

    def remove_stale_partials(self, older_than_s: float) -> int:
        """Delete temporary files of writes that never completed."""


def check_digest(key: str, recorded: Recorded, size: int, sha256: str) -> None:
    if size != recorded.size_bytes:
        raise StoredFileMismatch(f"{key}: size differs from the recorded {recorded.size_bytes} bytes")
    if sha256 != recorded.sha256:
        raise StoredFileMismatch(f"{key}: sha256 differs from the recorded one")


def byte_range(size: int, start: int, end: int | None) -> tuple[int, int]:
    end = size if end is None else min(end, size)
    if not 0 <= start <= end:
        raise ValueError(f"byte range {start}-{end} is outside an object of {size} bytes")
    return start, end


class VerifiedVersions:
    """Versions whose bytes were re-hashed and matched their row, so the next read need not hash them again."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def matches(self, recorded: Recorded, version: str | None) -> bool:
        if version is None:
            return False
        if version == recorded.version:
            return True
        with self._lock:
            return self._seen.get((recorded.key, version)) == recorded.sha256

    def remember(self, recorded: Recorded, version: str | None) -> None:
        if version is not None:
            with self._lock:
                if len(self._seen) > 10_000:
                    self._seen.clear()
                self._seen[(recorded.key, version)] = recorded.sha256


def file_version(stat: os.stat_result) -> str:
    """A local file's identity: any write changes its mtime and ctime, a replacement its inode."""
    return f"{stat.st_ino:x}-{stat.st_size:x}-{stat.st_mtime_ns:x}-{stat.st_ctime_ns:x}"


class LocalArtifactStore:
    """Artifacts in a local folder (`file:///path`)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()
        self._verified = VerifiedVersions()

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
                shutil.copyfileobj(reader, handle, CHUNK_BYTES)
                handle.flush()
                os.fsync(handle.fileno())
            size = os.path.getsize(temporary)
            zip_size = zipped_size(Path(temporary), arcname=target.name)
            sha256 = file_digest(Path(temporary))  # what was written, read back
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return StoredFile(key, size, zip_size, sha256, version=file_version(target.stat()))

    def put_bytes(self, key: str, data: bytes) -> StoredFile:
        with tempfile.TemporaryDirectory(prefix="prunelab-put-") as scratch:
            source = Path(scratch) / self._path(key).name
            source.write_bytes(data)
            return self.put_file(key, source)

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def get_bytes(self, key: str) -> bytes:
        return self.local_path(key).read_bytes()

    def _open_checked(self, recorded: Recorded) -> BinaryIO:
        # Checked and served through one open handle: a file swapped in after the check is not what is sent.
        handle = self.local_path(recorded.key).open("rb")
        try:
            stat = os.fstat(handle.fileno())
            if stat.st_size != recorded.size_bytes:
                raise StoredFileMismatch(f"{recorded.key}: size differs from the recorded {recorded.size_bytes} bytes")
            version = file_version(stat)
            if not self._verified.matches(recorded, version):
                digest = hashlib.sha256()
                for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
                    digest.update(chunk)
                check_digest(recorded.key, recorded, stat.st_size, digest.hexdigest())
                self._verified.remember(recorded, version)
            handle.seek(0)
        except BaseException:
            handle.close()
            raise
        return handle

    def stream(self, recorded: Recorded, start: int = 0, end: int | None = None) -> ObjectStream:
        handle = self._open_checked(recorded)
        start, end = byte_range(recorded.size_bytes, start, end)
        handle.seek(start)

        def chunks() -> Iterator[bytes]:
            left = end - start
            while left > 0 and (chunk := handle.read(min(CHUNK_BYTES, left))):
                left -= len(chunk)
                yield chunk

        return ObjectStream(chunks(), start, end, handle.close)

    def fetch_to(self, recorded: Recorded, target: Path) -> Path:
        handle = self._open_checked(recorded)
        with handle, target.open("wb") as output:
            shutil.copyfileobj(handle, output, CHUNK_BYTES)
        return target

    def digest(self, key: str) -> tuple[int, str]:
        path = self.local_path(key)
        return path.stat().st_size, file_digest(path)

    def list_keys(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(PARTIAL_PREFIX)
        )

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

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
