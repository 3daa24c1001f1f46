"""A run as the API shows it: the row, its latest metric values and its files."""

from __future__ import annotations

from sqlalchemy.orm import Session

from backend.artifacts.routes import artifact_out
from backend.metrics import service as metrics
from backend.models import Run
from backend.plans import RunPlan
from backend.runs.schemas import RunOut
from backend.specs import RunSpec


def run_out(session: Session, run: Run) -> RunOut:
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
        tags=run.tags or [],
        note=run.note or "",
        owner=run.owner_name,
    )
