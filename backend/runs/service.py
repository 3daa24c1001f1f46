"""Run lifecycle: create, read, cancel, delete. Services flush; the caller's scope commits."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from prunelab.core.errors import InvalidSpec, RunNotFound, RunStateConflict
from prunelab.core.plans import RunPlan, resolve_plan
from prunelab.core.recipes import DenseRecipe, PretrainedRecipe, base_run_id, upload_id
from prunelab.core.specs import KERAS_BACKEND_INSTALL, RunSpec
from prunelab.server.artifacts.storage import ArtifactStore, StoreUnavailable, run_prefix
from prunelab.server.db import after_commit
from prunelab.server.models import Metric, Run, RunStatus, utcnow
from prunelab.server.queue import workers
from prunelab.server.queue.client import enqueue_run
from prunelab.server.runs import links, sources
from prunelab.server.settings import get_settings

log = logging.getLogger(__name__)


def create_run(session: Session, spec: RunSpec, owner_id: int | None = None) -> Run:
    """Validate and store a run, then queue it once the row is committed.

    A pretrained run with `dense_epochs` also stores its dense baseline run; only that one is
    queued, and the pruned run starts when it succeeds.
    """
    plan, parent_run_id = checked_plan(session, spec)
    dense = None
    if isinstance(spec.recipe, PretrainedRecipe) and spec.recipe.dense_epochs is not None:
        dense = _store_run(session, _dense_baseline_spec(spec, spec.recipe.dense_epochs), owner_id=owner_id)
        parent_run_id = dense.id
        plan = plan.model_copy(update={"base_run_id": dense.id})
    run = _store_run(session, spec, plan, parent_run_id=parent_run_id, owner_id=owner_id)
    queued_id = dense.id if dense else run.id  # a run waiting on its dense run is queued when that succeeds
    after_commit(session, lambda: enqueue_run(queued_id))
    return run


def checked_plan(session: Session, spec: RunSpec) -> tuple[RunPlan, int | None]:
    """The spec's resolved plan and the run it starts from, once its upload and base run are checked."""
    if (upload := upload_id(spec.recipe)) is not None:
        sources.check_upload_fits(spec, sources.model_upload(session, upload))
    plan = resolve_plan(spec)
    check_backend_offered(session, spec)
    if (parent_run_id := base_run_id(spec.recipe)) is not None:
        sources.check_base_run(session, spec, parent_run_id)
    return plan, parent_run_id


def check_backend_offered(session: Session, spec: RunSpec) -> None:
    """A keras run's backend must be one a live worker can run, when the workers say which they can."""
    if spec.engine != "keras":
        return
    offered = workers.online_keras_backends(session, get_settings(), utcnow())
    backend = spec.keras_backend
    if offered is None or backend in offered:
        return
    raise InvalidSpec(
        ("backend",),
        f"backend {backend!r}: no live worker can run the keras engine on {backend} (the live workers' Keras "
        f"backends: {', '.join(offered) or 'none'}); choose one of those, or install it on a worker with "
        f"{KERAS_BACKEND_INSTALL[backend]} and restart the worker",
    )


def _dense_baseline_spec(spec: RunSpec, dense_epochs: int) -> RunSpec:
    name = f"{spec.display_name()[:180]} (dense baseline)"
    # Only the .keras model is needed: the pruned run starts from it.
    dense = {"name": name, "epochs": dense_epochs, "recipe": DenseRecipe(), "layer_targets": None, "exports": ["keras"]}
    return RunSpec.model_validate({**spec.model_dump(), **dense})


def _store_run(
    session: Session,
    spec: RunSpec,
    plan: RunPlan | None = None,
    parent_run_id: int | None = None,
    owner_id: int | None = None,
) -> Run:
    run = Run(
        name=spec.display_name(),
        status=RunStatus.QUEUED,
        spec=spec.model_dump(mode="json"),
        plan=(plan or resolve_plan(spec)).model_dump(mode="json"),
        parent_run_id=parent_run_id,
        owner_id=owner_id,
    )
    session.add(run)
    session.flush()
    return run


def check_found(wanted: Sequence[int], found: Collection[int]) -> None:
    """Raise RunNotFound for the first of `wanted` not in `found`."""
    for run_id in wanted:
        if run_id not in found:
            raise RunNotFound(run_id)


def require_runs(session: Session, run_ids: Sequence[int]) -> None:
    """Raise RunNotFound for the first of the runs that does not exist (one query on ids, no row loaded)."""
    check_found(run_ids, set(session.scalars(select(Run.id).where(Run.id.in_(run_ids)))))


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id, options=[selectinload(Run.artifacts)])
    if run is None:
        raise RunNotFound(run_id)
    return run


def update_run(session: Session, run_id: int, tags: list[str] | None, note: str | None) -> Run:
    """Replace the run's tags (deduplicated, in order) and/or its note."""
    run = get_run(session, run_id)
    if tags is not None:
        run.tags = list(dict.fromkeys(tags))
    if note is not None:
        run.note = note
    session.flush()
    return run


def cancel_run(session: Session, run_id: int) -> Run:
    """A queued run never starts; a running one stops within a few steps (an external one at once); a finished
    one is left as it is."""
    run = get_run(session, run_id)
    if RunStatus(run.status).finished:
        return run
    run.cancel_requested = True
    # No worker watches an external run: it ends now, and its client's next batch of points is refused.
    if run.status == RunStatus.QUEUED or run.source != "prunelab":
        run.status = RunStatus.CANCELLED
        run.finished_at = utcnow()
        links.fail_waiting_runs(session, run_id, "was cancelled")
    session.flush()
    return run


def delete_run(session: Session, store: ArtifactStore, run_id: int) -> None:
    """Delete a run that is not running, with its metrics and files."""
    run = get_run(session, run_id)
    if run.status == RunStatus.RUNNING:
        raise RunStateConflict(f"run {run_id} is running; cancel it first, then delete it")
    links.fail_waiting_runs(session, run_id, "was deleted")
    session.delete(run)
    session.flush()
    # `metrics` has no foreign key (backend/models.py): its rows go here, after the run's row is deleted, so a
    # writer that locked the run first has committed and its rows are seen; a later one finds no run.
    session.execute(delete(Metric).where(Metric.run_id == run_id))
    after_commit(session, lambda: _delete_files(store, run_id))


def _delete_files(store: ArtifactStore, run_id: int) -> None:
    # After the commit: the run is gone either way; files a store outage keeps are unreachable, not served.
    try:
        store.delete_prefix(run_prefix(run_id))
    except StoreUnavailable as error:
        log.warning("run %s was deleted but its files stay in the artifact store: %s", run_id, error)
