"""Serving a stored file over HTTP: resumable byte ranges, ETags, and only bytes that still match their row.

The routes that name these files belong to the runs they describe (`prunelab.server.runs.download_routes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from prunelab.core.errors import ArtifactNotFound
from prunelab.core.exports import EXPORT_FORMATS, RUN_FILE_FORMATS
from prunelab.server.artifacts.ranges import requested_range, strong_etag
from prunelab.server.artifacts.service import open_stream
from prunelab.server.artifacts.storage import ArtifactStore
from prunelab.server.errors import ErrorMessage
from prunelab.server.models import Artifact, Run

DOWNLOAD_ANSWERS: dict[int | str, dict[str, object]] = {
    206: {"description": "The byte range asked for with `Range` (resuming a cut download)."},
    304: {"description": "`If-None-Match` names the file's ETag: the client already has these bytes."},
    416: {"model": ErrorMessage, "description": "The range starts past the end of the file."},
    503: {"model": ErrorMessage, "description": "The artifact store cannot be reached; try again."},
}


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
    """Where the API serves a run's file of this format."""
    if artifact_format in RUN_FILE_FORMATS:
        return f"/api/runs/{run_id}/{artifact_format}"
    return f"/api/runs/{run_id}/model?format={artifact_format}"


def download_name(run_id: int, run_name: str, export_format: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-.")[:60] or "model"
    # Both TFLite files end in .tflite; the int8 one says so in its name.
    variant = "-int8" if export_format == "tflite_int8" else ""
    return f"prunelab-run{run_id}-{slug}-stripped{variant}{EXPORT_FORMATS[export_format]}"


def serve_model(store: ArtifactStore, run: Run, export_format: str, conditions: Conditions) -> Response:
    """The run's stripped model in `export_format`, or a 404 saying models exist once a run has succeeded."""
    artifact = next((a for a in run.artifacts if a.format == export_format), None)
    if artifact is None:
        raise ArtifactNotFound(
            f"run {run.id} has no {export_format} model (status: {run.status}); models exist once a run has succeeded"
        )
    headers = {}
    if any(a.format == "manifest" for a in run.artifacts):
        headers["Link"] = f'<{artifact_url(run.id, "manifest")}>; rel="describedby"'
    filename = download_name(run.id, run.name, export_format)
    what = f"the {export_format} model of run {run.id}"
    return serve_verified(store, artifact, what, filename, "application/octet-stream", conditions, headers)


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
