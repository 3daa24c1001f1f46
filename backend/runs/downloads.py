"""Downloads of a run's stripped model and the files that describe it."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from backend.artifacts.service import StoreDep, open_checked
from backend.artifacts.storage import ArtifactStore
from backend.db import SessionDep
from backend.errors import CONFLICT, NOT_FOUND
from backend.kit.dependencies import RunId
from backend.models import Artifact, Run
from backend.runs import service
from backend.runs.schemas import ArtifactOut
from core.errors import ArtifactNotFound
from core.exports import EXPORT_FORMATS, RUN_FILE_FORMATS

router = APIRouter(prefix="/api/runs", tags=["artifacts"], responses={**NOT_FOUND, **CONFLICT})

# Built from the storage module's formats, so a new export format needs no change here.
ExportFormat = StrEnum("ExportFormat", {name: name for name in EXPORT_FORMATS})  # type: ignore[misc]


def artifact_url(run_id: int, artifact_format: str) -> str:
    if artifact_format in RUN_FILE_FORMATS:
        return f"/api/runs/{run_id}/{artifact_format}"
    return f"/api/runs/{run_id}/model?format={artifact_format}"


def artifact_out(artifact: Artifact) -> ArtifactOut:
    return ArtifactOut(
        format=artifact.format,
        size_bytes=artifact.size_bytes,
        zip_size_bytes=artifact.zip_size_bytes,
        sha256=artifact.sha256,
        url=artifact_url(artifact.run_id, artifact.format),
    )


def download_name(run_id: int, run_name: str, export_format: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-.")[:60] or "model"
    # Both TFLite files end in .tflite; the int8 one says so in its name.
    variant = "-int8" if export_format == "tflite_int8" else ""
    return f"prunelab-run{run_id}-{slug}-stripped{variant}{EXPORT_FORMATS[export_format]}"


@router.get(
    "/{run_id}/model",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The stripped model file."}},
)
def download_model(
    run_id: RunId,
    session: SessionDep,
    store: StoreDep,
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat("keras"),
) -> StreamingResponse:
    """Download the run's model with the pruning wrappers stripped."""
    run = service.get_run(session, run_id)
    artifact = next((a for a in run.artifacts if a.format == export_format.value), None)
    if artifact is None:
        raise ArtifactNotFound(
            f"run {run_id} has no {export_format.value} model (status: {run.status}); "
            "models exist once a run has succeeded"
        )
    headers = {}
    if any(a.format == "manifest" for a in run.artifacts):
        headers["Link"] = f'<{artifact_url(run_id, "manifest")}>; rel="describedby"'
    filename = download_name(run_id, run.name, export_format.value)
    what = f"the {export_format.value} model of run {run_id}"
    return serve_verified(store, artifact, what, filename, "application/octet-stream", headers)


@router.get(
    "/{run_id}/manifest",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}, "description": "The export manifest."}},
)
def download_manifest(run_id: RunId, session: SessionDep, store: StoreDep) -> StreamingResponse:
    """The export manifest: library versions, spec, measured sparsity per layer and sha256 of every file."""
    run = service.get_run(session, run_id)
    return serve_run_file(
        store, run, "manifest", "application/json", f"run {run_id} has no manifest (status: {run.status})"
    )


def serve_run_file(
    store: ArtifactStore, run: Run, file_format: str, media_type: str, missing: str
) -> StreamingResponse:
    """A file that describes a run's model (manifest, rewind weights), or `missing` as a 404."""
    artifact = next((a for a in run.artifacts if a.format == file_format), None)
    if artifact is None:
        raise ArtifactNotFound(missing)
    name = f"{file_format}{RUN_FILE_FORMATS[file_format]}"
    return serve_verified(store, artifact, f"the {name} of run {run.id}", f"prunelab-run{run.id}-{name}", media_type)


def serve_verified(
    store: ArtifactStore,
    artifact: Artifact,
    what: str,
    filename: str,
    media_type: str,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """Stream a stored file only if it still matches its recorded size and sha256, from the handle checked."""
    handle = open_checked(store, artifact, what)
    return StreamingResponse(
        iter(lambda: handle.read(1 << 20), b""),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(artifact.size_bytes),
            "X-Content-SHA256": artifact.sha256,
            **(headers or {}),
        },
        background=BackgroundTask(handle.close),
    )


@router.get(
    "/{run_id}/rewind",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The lottery ticket's rewind.npz."}},
)
def download_rewind(run_id: RunId, session: SessionDep, store: StoreDep) -> StreamingResponse:
    """A lottery-ticket run's rewind.npz: the weights it rewound to (`saved/<weight>`) and the final masks."""
    run = service.get_run(session, run_id)
    missing = f"run {run_id} has no rewind.npz (lottery_ticket runs have one once they succeed)"
    return serve_run_file(store, run, "rewind", "application/octet-stream", missing)
