"""A run as the API shows it: the row, its latest metric values and its files."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from backend.metrics import service as metrics
from backend.models import Run
from backend.runs.downloads import artifact_out
from backend.runs.schemas import RunOut
from core.external import ExternalRunSpec
from core.plans import RunPlan
from core.specs import RunSpec


def run_out(session: Session, run: Run) -> RunOut:
    return run_outs(session, [run])[0]


def run_outs(session: Session, runs: Sequence[Run]) -> list[RunOut]:
    """Runs as shown, with the latest values of all of them read in one query (artifacts come loaded)."""
    latest_of = metrics.latest_values_of_runs(session, [run.id for run in runs])
    return [_shown(run, latest_of[run.id]) for run in runs]


def _shown(run: Run, latest: dict[str, tuple[int, float | None]]) -> RunOut:
    return RunOut(
        id=run.id,
        name=run.name,
        status=run.status,
        source=run.source,
        spec=RunSpec.model_validate(run.spec) if run.source == "prunelab" else ExternalRunSpec.model_validate(run.spec),
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
