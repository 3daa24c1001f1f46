"""The artifact store of this process, and reads that serve only objects that still hold their recorded bytes.

No web code here: the worker uses this module too. Routes get the store through `kit.dependencies.StoreDep`.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel

from prunelab.core.errors import ArtifactCorrupted, ArtifactNotFound, ArtifactStoreUnavailable
from prunelab.server.artifacts.storage import (
    STORE_PREFIXES,
    ArtifactStore,
    LocalArtifactStore,
    ObjectStream,
    Recorded,
    StoredFile,
    StoredFileMismatch,
    StoreUnavailable,
    checkpoint_prefix,
)
from prunelab.server.models import Artifact, Run
from prunelab.server.settings import Settings, get_settings

log = logging.getLogger(__name__)


def get_store(where: Settings | Path) -> ArtifactStore:
    """The store `PRUNELAB_ARTIFACT_URL` names (or a local folder), one per process and address."""
    if isinstance(where, Path):
        return _local_store(where.resolve())
    if where.artifact_dir is not None:
        return _local_store(where.artifact_dir.resolve())
    from prunelab.server.artifacts.s3 import S3Options, s3_store  # obstore loads only where S3 is used

    return s3_store(S3Options.from_settings(where))


@lru_cache(maxsize=16)
def _local_store(root: Path) -> LocalArtifactStore:
    return LocalArtifactStore(root)


def unreachable(settings: Settings) -> str | None:
    """Why the configured store cannot be used (down, no bucket, refused credentials); None when it answers."""
    store = get_store(settings)
    try:
        store.list_keys(STORE_PREFIXES[0])
    except StoreUnavailable as error:
        return (
            f"{error}. Start the object store (or create its bucket), or correct PRUNELAB_ARTIFACT_URL, "
            "PRUNELAB_S3_ENDPOINT_URL and the AWS_* credentials"
        )
    except OSError as error:
        return f"the artifact store {store.url} cannot be read: {error}"
    return None


def set_stored(artifact: Artifact, stored: StoredFile) -> Artifact:
    """Point the artifact's row at the object `put_file` stored and read back."""
    artifact.storage_key = stored.key
    artifact.size_bytes = stored.size_bytes
    artifact.zip_size_bytes = stored.zip_size_bytes
    artifact.sha256 = stored.sha256
    artifact.storage_version = stored.version
    return artifact


def recorded(artifact: Artifact) -> Recorded:
    return Recorded(artifact.storage_key, artifact.size_bytes, artifact.sha256, artifact.storage_version)


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """The store's failures as domain errors naming `what`."""
    try:
        yield
    except FileNotFoundError:
        raise ArtifactNotFound(f"{what} is missing from the artifact store") from None
    except StoredFileMismatch:
        raise ArtifactCorrupted(f"{what} no longer matches its recorded sha256; it is not served") from None
    except StoreUnavailable as error:
        raise ArtifactStoreUnavailable(f"{what} cannot be read now: {error}") from None


def open_stream(
    store: ArtifactStore, artifact: Artifact, what: str, start: int = 0, end: int | None = None
) -> ObjectStream:
    """Bytes [start, end) of the artifact, once the store shows it is still the object verified at write."""
    with store_errors(what):
        return store.stream(recorded(artifact), start, end)


def open_checked(store: ArtifactStore, artifact: Artifact, what: str) -> BinaryIO:
    """The artifact in memory, as a seekable file (small files: mask pictures), if it still matches its row."""
    stream = open_stream(store, artifact, what)
    try:
        with store_errors(what):
            return io.BytesIO(b"".join(stream.chunks))
    finally:
        stream.release()


class ArtifactCheck(BaseModel):
    format: str
    ok: bool
    size_bytes: int
    sha256: str
    problem: str | None = None


class IntegrityReport(BaseModel):
    run_id: int
    ok: bool
    files: list[ArtifactCheck]


def check_run_files(store: ArtifactStore, run: Run) -> IntegrityReport:
    """Read every stored file of the run in full and compare its size and sha256 with its row."""
    files = []
    for artifact in sorted(run.artifacts, key=lambda a: a.format):
        problem = None
        try:
            size, sha256 = store.digest(artifact.storage_key)
        except FileNotFoundError:
            problem = "missing from the artifact store"
        except StoreUnavailable as error:
            raise ArtifactStoreUnavailable(f"the files of run {run.id} cannot be checked now: {error}") from None
        else:
            if size != artifact.size_bytes:
                problem = f"{size} bytes stored, {artifact.size_bytes} recorded"
            elif sha256 != artifact.sha256:
                problem = "sha256 differs from the recorded one"
        files.append(
            ArtifactCheck(
                format=artifact.format,
                ok=problem is None,
                size_bytes=artifact.size_bytes,
                sha256=artifact.sha256,
                problem=problem,
            )
        )
    return IntegrityReport(run_id=run.id, ok=all(check.ok for check in files), files=files)


def discard_checkpoints(run_id: int, store: ArtifactStore | None = None) -> None:
    """Delete every checkpoint of a run that ended; a store that cannot be reached is logged, not raised."""
    try:
        (store or get_store(get_settings())).delete_prefix(checkpoint_prefix(run_id))
    except Exception:
        log.warning("could not delete the checkpoints of run %s", run_id, exc_info=True)
