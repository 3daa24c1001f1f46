"""Path parameters shared by several routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from prunelab.core.recipes import MAX_ID

# Ids are 32-bit integers in the database: a larger path id is a 422, never a failed query (500 on PostgreSQL).
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="A run's id.")]
UploadId = Annotated[int, Path(ge=1, le=MAX_ID, description="An upload's id.")]
