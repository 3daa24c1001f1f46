"""HTTP routes for runs (their metric history: backend/runs/history.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi import Path as FastApiPath
from sse_starlette import EventSourceResponse
from starlette.requests import Request

from prunelab.core.specs import RunSpec
from prunelab.server.errors import CONFLICT, NOT_FOUND, ErrorMessage
from prunelab.server.kit.dependencies import RunId, SessionDep, StoreDep
from prunelab.server.kit.identity import PrincipalDep
from prunelab.server.kit.params import run_ids_param
from prunelab.server.runs import listing, masks, service
from prunelab.server.runs.events import RunCursor, RunsCursor, event_stream, poll_run, poll_runs
from prunelab.server.runs.filters import MAX_FILTER_LENGTH
from prunelab.server.runs.presenters import run_detail, run_out, run_outs
from prunelab.server.runs.schemas import MasksOut, RunOut, RunPatch, RunsPage
from prunelab.server.runs.sensitivity import ProposalOut, sensitivity_proposal

MAX_PAGE = 500
router = APIRouter(prefix="/api/runs", tags=["runs"], responses={**NOT_FOUND, **CONFLICT})


@router.post("", status_code=status.HTTP_201_CREATED)
def create_run(spec: RunSpec, session: SessionDep, principal: PrincipalDep) -> RunOut:
    """Submit a pruning run; it is queued for a worker and owned by whoever submitted it."""
    return run_out(session, service.create_run(session, spec, owner_id=principal.user_id))


@router.get("", response_model=None, responses={200: {"model": RunsPage}})
def list_runs(
    session: SessionDep,
    filter_text: Annotated[
        str,
        Query(
            alias="filter",
            max_length=MAX_FILTER_LENGTH,
            description="e.g. `accuracy > 0.98 kind:polynomial tag:sweep` (README: filtering runs)",
        ),
    ] = "",
    sort: Annotated[
        str, Query(max_length=200, description="created, id, name, status or a metric key (blanks last)")
    ] = "created",
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=2000, description="`next_cursor` of the previous page")] = None,
) -> Response:
    """List runs matching a filter, sorted, a page at a time (newest first by default)."""
    page = listing.list_page(session, filter_text, sort, order, limit, cursor)
    shown = RunsPage(runs=run_outs(session, page.runs), next_cursor=page.next_cursor, total=page.total)
    # Encoded here: FastAPI would dump the page and validate every run's spec and plan a second time.
    return Response(shown.model_dump_json(), media_type="application/json")


@router.get("/events", response_class=EventSourceResponse)
def runs_events(
    request: Request,
    ids: Annotated[list[int] | None, Depends(run_ids_param("ids", 1000, required=False))],
) -> EventSourceResponse:
    """Server-Sent Events `runs`: id, status and step of each run whose status or step changed (all runs or `ids`)."""
    cursor = RunsCursor(only=None if ids is None else frozenset(ids))
    return event_stream(request, None, lambda: poll_runs(cursor))


@router.get("/{run_id}")
def get_run(run_id: RunId, session: SessionDep) -> RunOut:
    """One run: spec, resolved plan, status, timestamps, error, summary, artifacts and, while queued, its place."""
    return run_detail(session, service.get_run(session, run_id))


@router.get("/{run_id}/events", response_class=EventSourceResponse)
def run_events(
    request: Request, run_id: RunId, session: SessionDep, after_step: Annotated[int, Query(ge=0, le=2**62)] = 0
) -> EventSourceResponse:
    """Server-Sent Events of a run: `metrics` after `after_step`, `status` on change, `end` once it finished."""
    service.get_run(session, run_id)
    cursor = RunCursor(run_id=run_id, after_step=after_step)
    return event_stream(request, run_id, lambda: poll_run(cursor))


@router.get("/{run_id}/masks")
def get_masks(run_id: RunId, session: SessionDep, store: StoreDep) -> MasksOut:
    """Mask snapshots per layer and pruning event, each with the URL of its picture."""
    return masks.list_masks(store, service.get_run(session, run_id))


@router.get(
    "/{run_id}/masks/{layer_index}/{step}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "Black cells: weights that remain."}},
)
def get_mask_picture(
    run_id: RunId,
    layer_index: Annotated[int, FastApiPath(ge=0, le=100_000)],
    step: Annotated[int, FastApiPath(ge=0, le=2**62)],
    session: SessionDep,
    store: StoreDep,
) -> Response:
    """One layer's mask at one pruning event as a PNG (black where weights remain)."""
    picture = masks.mask_png(store, service.get_run(session, run_id), layer_index, step)
    return Response(picture, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


OWNER_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorMessage, "description": "Only the run's owner or an admin may change it."}
}


@router.patch("/{run_id}", responses=OWNER_ONLY)
def update_run(run_id: RunId, patch: RunPatch, session: SessionDep) -> RunOut:
    """Set a run's tags and/or note."""
    return run_out(session, service.update_run(session, run_id, patch.tags, patch.note))


@router.post("/{run_id}/cancel", responses=OWNER_ONLY)
def cancel_run(run_id: RunId, session: SessionDep) -> RunOut:
    """Cancel a run: a queued run never starts, a running one stops within a few steps."""
    return run_out(session, service.cancel_run(session, run_id))


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT, responses=OWNER_ONLY)
def delete_run(run_id: RunId, session: SessionDep, store: StoreDep) -> Response:
    """Delete a finished or queued run with its metrics and files."""
    service.delete_run(session, store, run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{run_id}/sensitivity/proposal")
def get_sensitivity_proposal(
    run_id: RunId,
    session: SessionDep,
    target_sparsity: Annotated[float, Query(ge=0, lt=1, description="Parameter-weighted mean sparsity.")],
    max_accuracy_drop: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> ProposalOut:
    """Per-layer target sparsities from a sensitivity sweep, and the run spec that prunes to them."""
    return sensitivity_proposal(session, run_id, target_sparsity, max_accuracy_drop)
