"""HTTP routes for a run's stripped model and the files that describe it (served by `artifacts.downloads`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from prunelab.server.artifacts.downloads import (
    DOWNLOAD_ANSWERS,
    ConditionsDep,
    ExportFormat,
    serve_model,
    serve_run_file,
)
from prunelab.server.artifacts.service import IntegrityReport, check_run_files
from prunelab.server.errors import CONFLICT, NOT_FOUND
from prunelab.server.kit.dependencies import RunId, SessionDep, StoreDep
from prunelab.server.runs import service

router = APIRouter(prefix="/api/runs", tags=["artifacts"], responses={**NOT_FOUND, **CONFLICT, **DOWNLOAD_ANSWERS})


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
    return serve_model(store, service.get_run(session, run_id), export_format.value, conditions)


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
