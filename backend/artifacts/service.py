"""The artifact store as the API uses it: one per request, and only files that still match their recorded hash."""

from __future__ import annotations

from typing import Annotated, BinaryIO

from fastapi import Depends

from backend.artifacts.storage import ArtifactStore, StoredFileMismatch, get_store
from backend.models import Artifact
from backend.settings import get_settings
from core.errors import ArtifactCorrupted, ArtifactNotFound


def artifact_store() -> ArtifactStore:
    root = get_settings().artifact_dir
    assert root is not None
    return get_store(root)


StoreDep = Annotated[ArtifactStore, Depends(artifact_store)]


def open_checked(store: ArtifactStore, artifact: Artifact, what: str) -> BinaryIO:
    """The artifact's file, opened only if it still matches its row; domain errors otherwise."""
    try:
        return store.open_verified(artifact.storage_key, artifact.size_bytes, artifact.sha256)
    except FileNotFoundError:
        raise ArtifactNotFound(f"{what} is missing from the artifact store") from None
    except StoredFileMismatch:
        raise ArtifactCorrupted(f"{what} no longer matches its recorded sha256; it is not served") from None
