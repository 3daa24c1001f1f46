"""HTTP routes for sweeps: submit a grid of runs as one, follow it, cancel it, retry its failed points."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from prunelab.core.recipes import MAX_ID
from prunelab.core.sweeps import SweepSpec
from prunelab.server.errors import NOT_FOUND, ErrorMessage
from prunelab.server.kit.dependencies import SessionDep
from prunelab.server.kit.identity import PrincipalDep
from prunelab.server.models import Run, Sweep
from prunelab.server.runs.presenters import run_outs
from prunelab.server.settings import get_settings
from prunelab.server.sweeps import service
from prunelab.server.sweeps.schemas import SweepDetailOut, SweepOut, SweepPointOut, SweepsPage, SweepSummaryOut

SweepId = Annotated[int, Path(ge=1, le=MAX_ID, description="A sweep's id.")]
OWNER_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorMessage, "description": "Only the sweep's owner or an admin may change it."}
}
router = APIRouter(prefix="/api/sweeps", tags=["sweeps"], responses=NOT_FOUND)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_sweep(spec: SweepSpec, session: SessionDep, principal: PrincipalDep) -> SweepOut:
    """Submit a sweep: every point is checked first (all or nothing), then its runs are stored and queued."""
    sweep = service.create_sweep(session, spec, get_settings().max_sweep_runs, owner_id=principal.user_id)
    return sweep_out(session, sweep)


@router.get("")
def list_sweeps(session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> SweepsPage:
    """The newest sweeps first, each with its progress."""
    sweeps = service.list_sweeps(session, limit)
    progress = service.progress_of(sweeps, session)
    return SweepsPage(sweeps=[_summary(sweep, progress[sweep.id]) for sweep in sweeps])


@router.get("/{sweep_id}")
def get_sweep(sweep_id: SweepId, session: SessionDep) -> SweepDetailOut:
    """One sweep: its spec, progress, points and their runs."""
    shown = sweep_out(session, service.get_sweep(session, sweep_id))
    run_ids = [point.run_id for point in shown.points if point.run_id is not None]
    chosen = select(Run).where(Run.id.in_(run_ids)).options(selectinload(Run.artifacts))
    by_id = {run.id: run for run in session.scalars(chosen)} if run_ids else {}
    return SweepDetailOut(**dict(shown), runs=run_outs(session, [by_id[run_id] for run_id in run_ids]))


@router.post("/{sweep_id}/cancel", responses=OWNER_ONLY)
def cancel_sweep(sweep_id: SweepId, session: SessionDep) -> SweepOut:
    """Cancel a sweep: queued runs never start, running ones stop; finished runs and their data stay."""
    return sweep_out(session, service.cancel_sweep(session, sweep_id))


@router.post("/{sweep_id}/retry", responses=OWNER_ONLY)
def retry_sweep(sweep_id: SweepId, session: SessionDep) -> SweepOut:
    """Run every failed point again as a new run."""
    service.retry_sweep(session, sweep_id)
    return sweep_out(session, service.get_sweep(session, sweep_id))


def _summary(sweep: Sweep, progress: Any) -> SweepSummaryOut:
    return SweepSummaryOut(
        id=sweep.id,
        name=sweep.name,
        status=service.sweep_status(sweep, progress),  # type: ignore[arg-type]
        progress=progress,
        created_at=sweep.created_at,
        cancelled_at=sweep.cancelled_at,
        owner=sweep.owner_name,
    )


def sweep_out(session: Session, sweep: Sweep) -> SweepOut:
    """A sweep with its points; the runs themselves only on GET /api/sweeps/{id} (a thousand runs weigh)."""
    points = service.points_with_status(session, sweep.id)
    progress = service.progress_of([sweep], session)[sweep.id]
    spec = SweepSpec.model_validate(sweep.spec)
    return SweepOut(
        **_summary(sweep, progress).model_dump(),
        spec=spec,
        tag=f"sweep:{sweep.id}",
        group_by=spec.group_by(),
        points=[
            SweepPointOut(
                index=point.index,
                variant=point.variant,
                values=point.values,
                seed=point.seed,
                run_id=point.run_id,
                status=status,  # type: ignore[arg-type]
            )
            for point, status in points
        ],
    )
