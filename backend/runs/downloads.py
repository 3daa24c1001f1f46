"""Downloads of a run's stripped model and the files that describe it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from prunelab.core.errors import ArtifactNotFound
from prunelab.core.exports import EXPORT_FORMATS, RUN_FILE_FORMATS
from prunelab.server.artifacts.ranges import requested_range, strong_etag
from prunelab.server.artifacts.service import IntegrityReport, StoreDep, check_run_files, open_stream
from prunelab.server.artifacts.storage import ArtifactStore
from prunelab.server.db import SessionDep
from prunelab.server.errors import CONFLICT, NOT_FOUND, ErrorMessage
from prunelab.server.kit.dependencies import RunId
from prunelab.server.models import Artifact, Run
from prunelab.server.runs import service
from prunelab.server.runs.schemas import ArtifactOut

DOWNLOAD_ANSWERS: dict[int | str, dict[str, object]] = {
    206: {"description": "The byte range asked for with `Range` (resuming a cut download)."},
    304: {"description": "`If-None-Match` names the file's ETag: the client already has these bytes."},
    416: {"model": ErrorMessage, "description": "The range starts past the end of the file."},
    503: {"model": ErrorMessage, "description": "The artifact store cannot be reached; try again."},
}
router = APIRouter(prefix="/api/runs", tags=["artifacts"], responses={**NOT_FOUND, **CONFLICT, **DOWNLOAD_ANSWERS})


@dataclass(frozen=True)
class Conditions:
    """The request headers a resumable download answers to."""

    range: str | None
    if_range: str | None
    if_none_match: str | None


def download_conditions(request: Request) -> Conditions:
    headers = request.headers
    return Conditions(headers.get("range"), headers.get("if-range"), headers.get("if-none-match"))


ConditionsDep = Annotated[Conditions, Depends(download_conditions)]

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
    conditions: ConditionsDep,
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat("keras"),
) -> Response:
    """Download the run's model with the pruning wrappers stripped (`Range` resumes a cut download)."""
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
    return serve_verified(store, artifact, what, filename, "application/octet-stream", conditions, headers)


@router.get(
    "/{run_id}/manifest",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}, "description": "The export manifest."}},
)
def download_manifest(run_id: RunId, session: SessionDep, store: StoreDep, conditions: ConditionsDep) -> Response:
    """The export manifest: library versions, spec, measured sparsity per layer and sha256 of every file."""
    run = service.get_run(session, run_id)
    missing = f"run {run_id} has no manifest (status: {run.status})"
    return serve_run_file(store, run, "manifest", "application/json", missing, conditions)


def serve_run_file(
    store: ArtifactStore, run: Run, file_format: str, media_type: str, missing: str, conditions: Conditions
) -> Response:
    """A file that describes a run's model (manifest, rewind weights), or `missing` as a 404."""
    artifact = next((a for a in run.artifacts if a.format == file_format), None)
    if artifact is None:
        raise ArtifactNotFound(missing)
    name = f"{file_format}{RUN_FILE_FORMATS[file_format]}"
    what = f"the {name} of run {run.id}"
    return serve_verified(store, artifact, what, f"prunelab-run{run.id}-{name}", media_type, conditions)


def serve_verified(
    store: ArtifactStore,
    artifact: Artifact,
    what: str,
    filename: str,
    media_type: str,
    conditions: Conditions,
    headers: dict[str, str] | None = None,
) -> Response:
    """Stream a stored file, or the byte range asked for, once the store shows it still holds the recorded bytes.

    The sha256 recorded when the file was written is its ETag and X-Content-SHA256; the file is re-hashed
    only when the store reports another version of it than the one verified then.
    """
    etag = strong_etag(artifact.sha256)
    described = {"ETag": etag, "X-Content-SHA256": artifact.sha256, "Accept-Ranges": "bytes", **(headers or {})}
    if conditions.if_none_match and etag in {tag.strip() for tag in conditions.if_none_match.split(",")}:
        return Response(status_code=304, headers=described)
    size = artifact.size_bytes
    wanted = requested_range(conditions.range, conditions.if_range, etag, size)
    stream = open_stream(store, artifact, what, *((wanted.start, wanted.end) if wanted else (0, None)))
    described.update(
        {"Content-Disposition": f'attachment; filename="{filename}"', "Content-Length": str(stream.end - stream.start)}
    )
    if wanted is not None:
        described["Content-Range"] = wanted.content_range(size)
    return StreamingResponse(
        stream.chunks,
        status_code=206 if wanted is not None else 200,
        media_type=media_type,
        headers=described,
        background=BackgroundTask(stream.release),
    )


@router.post("/{run_id}/verify", response_model=IntegrityReport)
def verify_run_files(run_id: RunId, session: SessionDep, store: StoreDep) -> IntegrityReport:
    """Read every stored file of the run in full and compare it with the size and sha256 recorded at write."""
    return check_run_files(store, service.get_run(session, run_id))


@router.get(
    "/{run_id}/rewind",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The lottery ticket's rewind.npz."}},
)
def download_rewind(run_id: RunId, session: SessionDep, store: StoreDep, conditions: ConditionsDep) -> Response:
    """A lottery-ticket run's rewind.npz: the weights it rewound to (`saved/<weight>`) and the final masks."""
    run = service.get_run(session, run_id)
    missing = f"run {run_id} has no rewind.npz (lottery_ticket runs have one once they succeed)"
    return serve_run_file(store, run, "rewind", "application/octet-stream", missing, conditions)
