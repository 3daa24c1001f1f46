"""Request dependencies shared by several routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from backend.artifacts.storage import ArtifactStore, get_store
from backend.settings import get_settings


def artifact_store() -> ArtifactStore:
    root = get_settings().artifact_dir
    assert root is not None
    return get_store(root)


StoreDep = Annotated[ArtifactStore, Depends(artifact_store)]
