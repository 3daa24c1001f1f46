"""HTTP routes for runs and their metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from backend.artifacts.routes import artifact_out
from backend.db import SessionDep
from backend.dependencies import StoreDep
from backend.metrics import service as metrics
from backend.models import Run
from backend.plans import RunPlan
from backend.runs import service
from backend.runs.schemas import MetricsOut, RunOut, SeriesOut
from backend.runs.sensitivity import ProposalOut, sensitivity_proposal
from backend.specs import RunSpec

router = APIRouter(prefix="/api/runs", tags=["runs"])


def run_out(session: SessionDep, run: Run) -> RunOut:
    latest = metrics.latest_values(session, run.id)
    return RunOut(
        id=run.id,
        name=run.name,
        status=run.status,
        spec=RunSpec.model_validate(run.spec),
        plan=RunPlan.model_validate(run.plan),
        summary=run.summary,
        error=run.error,
        cancel_requested=run.cancel_requested,
        attempt=run.attempt,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        parent_run_id=run.parent_run_id,
        step=max((step for step, _ in latest.values()), default=None),
        latest={key: value for key, (_, value) in latest.items()},
        artifacts=[artifact_out(artifact) for artifact in run.artifacts],
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_run(spec: RunSpec, session: SessionDep) -> RunOut:
    """Submit a pruning run; it is queued for a worker."""
    return run_out(session, service.create_run(session, spec))


@router.get("")
def list_runs(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[RunOut]:
    """List runs, newest first."""
    return [run_out(session, run) for run in service.list_runs(session, limit, offset)]


@router.get("/{run_id}")
def get_run(run_id: int, session: SessionDep) -> RunOut:
    """One run: spec, resolved plan, status, timestamps, error, summary and artifacts."""
    return run_out(session, service.get_run(session, run_id))


@router.get("/{run_id}/metrics")
def get_metrics(
    run_id: int,
    session: SessionDep,
    keys: Annotated[str | None, Query(description="Comma-separated metric keys; all when omitted.")] = None,
) -> MetricsOut:
    """Per-step series of a run's metrics (null marks a non-finite value)."""
    service.get_run(session, run_id)
    wanted = [key.strip() for key in keys.split(",") if key.strip()] if keys else None
    series = metrics.read_series(session, run_id, wanted)
    return MetricsOut(
        run_id=run_id,
        series={key: SeriesOut(steps=s.steps, values=s.values, wall_times=s.wall_times) for key, s in series.items()},
    )


@router.post("/{run_id}/cancel")
def cancel_run(run_id: int, session: SessionDep) -> RunOut:
    """Cancel a run: a queued run never starts, a running one stops within a few steps."""
    return run_out(session, service.cancel_run(session, run_id))


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_run(run_id: int, session: SessionDep, store: StoreDep) -> Response:
    """Delete a finished or queued run with its metrics and files."""
    service.delete_run(session, store, run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{run_id}/sensitivity/proposal")
def get_sensitivity_proposal(
    run_id: int,
    session: SessionDep,
    target_sparsity: Annotated[float, Query(ge=0, lt=1, description="Parameter-weighted mean sparsity.")],
    max_accuracy_drop: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> ProposalOut:
    """Per-layer target sparsities from a sensitivity sweep, and the run spec that prunes to them."""
    return sensitivity_proposal(session, run_id, target_sparsity, max_accuracy_drop)
