"""Downloads of a run's stripped model."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from backend.artifacts.storage import EXPORT_FORMATS, StoredFileMismatch
from backend.db import SessionDep
from backend.dependencies import RunId, StoreDep
from backend.errors import CONFLICT, NOT_FOUND, ArtifactCorrupted, ArtifactNotFound
from backend.models import Artifact
from backend.runs import service
from backend.runs.schemas import ArtifactOut

router = APIRouter(prefix="/api/runs", tags=["artifacts"], responses={**NOT_FOUND, **CONFLICT})

ExportFormat = StrEnum("ExportFormat", {name: name for name in EXPORT_FORMATS})


def artifact_out(artifact: Artifact) -> ArtifactOut:
    return ArtifactOut(
        format=artifact.format,
        size_bytes=artifact.size_bytes,
        zip_size_bytes=artifact.zip_size_bytes,
        sha256=artifact.sha256,
        url=f"/api/runs/{artifact.run_id}/model?format={artifact.format}",
    )


def download_name(run_id: int, run_name: str, export_format: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-.")[:60] or "model"
    return f"prunelab-run{run_id}-{slug}-stripped{EXPORT_FORMATS[export_format]}"


@router.get(
    "/{run_id}/model",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The stripped model file."}},
)
def download_model(
    run_id: RunId,
    session: SessionDep,
    store: StoreDep,
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.keras,
) -> StreamingResponse:
    """Download the run's model with the pruning wrappers stripped."""
    run = service.get_run(session, run_id)
    artifact = next((a for a in run.artifacts if a.format == export_format.value), None)
    if artifact is None:
        raise ArtifactNotFound(
            f"run {run_id} has no {export_format.value} model (status: {run.status}); "
            "models exist once a run has succeeded"
        )
    try:
        handle = store.open_verified(artifact.storage_key, artifact.size_bytes, artifact.sha256)
    except FileNotFoundError:
        raise ArtifactNotFound(
            f"the {export_format.value} model of run {run_id} is missing from the artifact store"
        ) from None
    except StoredFileMismatch:
        raise ArtifactCorrupted(
            f"the stored {export_format.value} model of run {run_id} no longer matches its recorded sha256; "
            "it is not served"
        ) from None
    filename = download_name(run_id, run.name, export_format.value)
    return StreamingResponse(
        iter(lambda: handle.read(1 << 20), b""),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(artifact.size_bytes),
            "X-Content-SHA256": artifact.sha256,
        },
        background=BackgroundTask(handle.close),
    )
