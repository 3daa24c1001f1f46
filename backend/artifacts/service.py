"""Reading stored artifacts for the API: only files that still match their recorded hash."""

from __future__ import annotations

from typing import BinaryIO

from backend.artifacts.storage import ArtifactStore, StoredFileMismatch
from backend.errors import ArtifactCorrupted, ArtifactNotFound
from backend.models import Artifact


def open_checked(store: ArtifactStore, artifact: Artifact, what: str) -> BinaryIO:
    """The artifact's file, opened only if it still matches its row; domain errors otherwise."""
    try:
        return store.open_verified(artifact.storage_key, artifact.size_bytes, artifact.sha256)
    except FileNotFoundError:
        raise ArtifactNotFound(f"{what} is missing from the artifact store") from None
    except StoredFileMismatch:
        raise ArtifactCorrupted(f"{what} no longer matches its recorded sha256; it is not served") from None
