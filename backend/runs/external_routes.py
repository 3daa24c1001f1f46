"""HTTP routes of external runs: create one, send its points and files, finish it (backend/runs/external.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, UploadFile, status
from fastapi import Path as FastApiPath

from prunelab.core.external import ExternalRunSpec
from prunelab.server.errors import CONFLICT, NOT_FOUND, ErrorMessage
from prunelab.server.kit.dependencies import RunId, SessionDep, StoreDep
from prunelab.server.kit.identity import PrincipalDep
from prunelab.server.models import RunStatus
from prunelab.server.runs import external
from prunelab.server.runs.presenters import artifact_out, run_out
from prunelab.server.runs.schemas import ArtifactOut, ExternalFinish, PointsIn, PointsOut, RejectedPointOut, RunOut

router = APIRouter(prefix="/api/runs", tags=["external runs"], responses={**NOT_FOUND, **CONFLICT})

OWNER_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorMessage, "description": "Only the run's owner or an admin may change it."}
}
ExportFormat = Literal["keras", "h5", "saved_model", "tflite", "tflite_int8"]  # core.exports.EXPORT_FORMATS


@router.post("/external", status_code=status.HTTP_201_CREATED)
def create_external_run(spec: ExternalRunSpec, session: SessionDep, principal: PrincipalDep) -> RunOut:
    """Start an external run (trained by your own script, never queued); it is running until you finish it."""
    run = external.create_external_run(session, spec.name, spec, owner_id=principal.user_id)
    return run_out(session, run)


@router.post("/{run_id}/points", responses=OWNER_ONLY)
def add_points(run_id: RunId, batch: PointsIn, session: SessionDep) -> PointsOut:
    """Store a batch of an external run's metric points, idempotently per (key, step); each rejected one is named."""
    report = external.ingest_points(session, run_id, batch.points)
    return PointsOut(
        accepted=report.accepted,
        rejected=[RejectedPointOut(**vars(point)) for point in report.rejected],
        cancel_requested=report.cancel_requested,
    )


@router.post("/{run_id}/finish", responses=OWNER_ONLY)
def finish_run(run_id: RunId, finish: ExternalFinish, session: SessionDep) -> RunOut:
    """End an external run as succeeded or failed; sending the same end again changes nothing."""
    run = external.finish_external_run(session, run_id, RunStatus(finish.status), finish.error, finish.summary)
    return run_out(session, run)


@router.put("/{run_id}/artifacts/{export_format}", responses=OWNER_ONLY)
def put_artifact(
    run_id: RunId,
    export_format: Annotated[ExportFormat, FastApiPath(description="An export format of core/exports.py.")],
    file: UploadFile,
    sha256: Annotated[str, Form(pattern=r"^[0-9a-f]{64}$", description="The file's sha256, lowercase hex.")],
    session: SessionDep,
    store: StoreDep,
) -> ArtifactOut:
    """Store a model file of an external run (replacing one of the same format); its sha256 is checked."""
    artifact = external.store_external_artifact(session, store, run_id, export_format, file.file, sha256)
    return artifact_out(artifact)
