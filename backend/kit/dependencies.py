"""The FastAPI dependencies routes share: path ids, the request's unit of work and the artifact store.

They live here, in the API layer, so that the sessions and stores under them (`prunelab.server.db`,
`prunelab.server.artifacts`) import no web code and the worker process never loads FastAPI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy.orm import Session

from prunelab.core.recipes import MAX_ID
from prunelab.server.artifacts.service import get_store
from prunelab.server.artifacts.storage import ArtifactStore
from prunelab.server.db import session_scope
from prunelab.server.settings import get_settings

# Ids are 32-bit integers in the database: a larger path id is a 422, never a failed query (500 on PostgreSQL).
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="A run's id.")]
UploadId = Annotated[int, Path(ge=1, le=MAX_ID, description="An upload's id.")]


def get_db() -> Iterator[Session]:
    with session_scope() as session:
        yield session


# scope="function": commit before the response goes out, so a 201 always names a committed row.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


def artifact_store() -> ArtifactStore:
    return get_store(get_settings())


StoreDep = Annotated[ArtifactStore, Depends(artifact_store)]
