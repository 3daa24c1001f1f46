"""A run as the API shows it: the row, its latest metric values and its files."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from prunelab.core.external import ExternalRunSpec
from prunelab.core.plans import RunPlan
from prunelab.core.recipes import upload_id
from prunelab.core.specs import RunSpec
from prunelab.server.artifacts.downloads import artifact_url
from prunelab.server.metrics import service as metrics
from prunelab.server.models import Artifact, Run, Upload, utcnow
from prunelab.server.queue import workers
from prunelab.server.runs.schemas import ArtifactOut, RunOut
from prunelab.server.settings import get_settings


# A stored spec and plan never change, and validating them is most of a run's presentation: a page of runs
# validates each distinct one once per process (keyed by its exact JSON, so an edited row is validated anew).
@lru_cache(maxsize=4096)
def _spec(spec_json: bytes, trained_here: bool) -> RunSpec | ExternalRunSpec:
    """A queued run's spec, or what an external run's client read from its script."""
    return RunSpec.model_validate_json(spec_json) if trained_here else ExternalRunSpec.model_validate_json(spec_json)


@lru_cache(maxsize=4096)
def _plan(plan_json: bytes) -> RunPlan:
    return RunPlan.model_validate_json(plan_json)


def run_out(session: Session, run: Run) -> RunOut:
    return run_outs(session, [run])[0]


def run_detail(session: Session, run: Run) -> RunOut:
    """One run as its page shows it: with its place in the queue and why it waits, while queued."""
    shown = run_out(session, run)
    shown.queue_position = workers.queue_position(session, run)
    if shown.queue_position is not None:
        shown.waiting = workers.no_worker_message(session, get_settings(), utcnow())
    return shown


def run_outs(session: Session, runs: Sequence[Run]) -> list[RunOut]:
    """Runs as shown, with the latest values of all of them read in one query (artifacts come loaded)."""
    latest_of = metrics.latest_values_of_runs(session, [run.id for run in runs])
    shown = [_shown(run, latest_of[run.id]) for run in runs]
    _name_uploaded_models(session, shown)
    return shown


def _name_uploaded_models(session: Session, shown: Sequence[RunOut]) -> None:
    """A run of an uploaded model (or a sensitivity sweep of one) shows the file's name: one query per page."""
    uploaded = {
        run.id: upload for run in shown if isinstance(run.spec, RunSpec) and (upload := upload_id(run.spec.recipe))
    }
    if not uploaded:
        return
    rows = session.execute(select(Upload.id, Upload.original_filename).where(Upload.id.in_(set(uploaded.values()))))
    names = {upload: filename for upload, filename in rows}
    for run in shown:
        if run.id in uploaded:
            run.model_name = names.get(uploaded[run.id], f"upload {uploaded[run.id]} (deleted)")


def _shown(run: Run, latest: dict[str, tuple[int, float | None]]) -> RunOut:
    spec = _spec(orjson.dumps(run.spec, option=orjson.OPT_SORT_KEYS), run.source == "prunelab")
    return RunOut(
        id=run.id,
        name=run.name,
        status=run.status,
        source=run.source,
        spec=spec,
        model_name=spec.model,
        plan=_plan(orjson.dumps(run.plan, option=orjson.OPT_SORT_KEYS)),
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


def artifact_out(artifact: Artifact) -> ArtifactOut:
    return ArtifactOut(
        format=artifact.format,
        size_bytes=artifact.size_bytes,
        zip_size_bytes=artifact.zip_size_bytes,
        sha256=artifact.sha256,
        url=artifact_url(artifact.run_id, artifact.format),
    )
