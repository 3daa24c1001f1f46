"""Store uploaded models and data sets once they pass inspection. Services flush; the caller's scope commits."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from prunelab.core.errors import InvalidUpload, UploadNotFound
from prunelab.server.artifacts.service import store_errors
from prunelab.server.artifacts.storage import ArtifactStore, upload_key
from prunelab.server.models import Upload, UploadKind
from prunelab.server.uploads.archives import UploadRejected
from prunelab.server.uploads.inspect_keras import inspect_keras
from prunelab.server.uploads.inspect_npz import inspect_npz

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
EXPECTED_SUFFIX = {UploadKind.MODEL: ".keras", UploadKind.DATASET: ".npz"}
INSPECTORS: dict[UploadKind, Callable[[Path], dict[str, Any]]] = {
    UploadKind.MODEL: inspect_keras,
    UploadKind.DATASET: inspect_npz,
}


def display_name(filename: str | None) -> str:
    """The client's file name, for display only: the last path segment, printable, at most 255 characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(character for character in name if character.isprintable())
    return name[:255] or "upload"


def _check_name(kind: UploadKind, filename: str) -> None:
    lowered = filename.lower()
    if lowered.endswith((".h5", ".hdf5")):
        raise InvalidUpload(
            "HDF5 (.h5) models are refused: loading them can run code (CVE-2025-9905); upload a .keras file"
        )
    if not lowered.endswith(EXPECTED_SUFFIX[kind]):
        raise InvalidUpload(f"a {kind} upload must be a {EXPECTED_SUFFIX[kind]} file, not {filename!r}")


def _spool(source: BinaryIO, scratch: Path) -> tuple[Path, int, str]:
    path = scratch / "upload"
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as target:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
            target.write(chunk)
    return path, size, digest.hexdigest()


def store_upload(
    session: Session,
    store: ArtifactStore,
    kind: UploadKind,
    filename: str | None,
    source: BinaryIO,
    owner_id: int | None = None,
) -> Upload:
    """Inspect an uploaded file (never loading a model), then store it under a key built from its id."""
    name = display_name(filename)
    _check_name(kind, name)
    with tempfile.TemporaryDirectory(prefix="prunelab-upload-") as scratch:
        path, size, sha256 = _spool(source, Path(scratch))
        with path.open("rb") as head:
            if head.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                raise InvalidUpload("HDF5 files are refused whatever their name: upload a .keras file")
        try:
            meta = INSPECTORS[kind](path)
        except UploadRejected as rejected:
            raise InvalidUpload(str(rejected)) from None
        upload = Upload(
            kind=kind,
            original_filename=name,
            storage_key="",
            size_bytes=size,
            sha256=sha256,
            meta=meta,
            owner_id=owner_id,
        )
        session.add(upload)
        session.flush()
        upload.storage_key = upload_key(upload.id, kind)
        with store_errors(f"upload {upload.id}"):
            stored = store.put_file(upload.storage_key, path)
    if (stored.size_bytes, stored.sha256) != (size, sha256):
        raise InvalidUpload("the upload changed while it was stored; send it again")
    session.flush()
    return upload


def get_upload(session: Session, upload_id: int) -> Upload:
    upload = session.get(Upload, upload_id)
    if upload is None:
        raise UploadNotFound(upload_id)
    return upload
