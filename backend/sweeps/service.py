"""Sweep lifecycle: submit (all or nothing), progress, cancel, retry. Services flush; the caller's scope commits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from prunelab.core.errors import InvalidSpec, SweepNotFound
from prunelab.core.plans import RunPlan
from prunelab.core.recipes import PretrainedRecipe
from prunelab.core.sweeps import MAX_REPORTED_POINTS, InvalidSweep, SweepPoint, SweepSpec, expand, point_problem
from prunelab.server.db import after_commit
from prunelab.server.models import Run, RunStatus, Sweep, utcnow
from prunelab.server.models import SweepPoint as PointRow
from prunelab.server.queue.client import enqueue_runs, enqueue_runs_in_background
from prunelab.server.runs import service as runs
from prunelab.server.sweeps.schemas import ProgressOut

MISSING = "missing"


def create_sweep(session: Session, spec: SweepSpec, max_runs: int, owner_id: int | None = None) -> Sweep:
    """Expand and check every point, store the sweep and all its runs at once, and queue them after the commit."""
    points = expand(spec, max_runs)
    planned = _plans(session, points)
    sweep = Sweep(name=spec.name, spec=spec.model_dump(mode="json"), point_count=len(points), owner_id=owner_id)
    session.add(sweep)
    session.flush()
    now = utcnow()
    rows = [
        {
            "name": f"{point.spec.display_name()} [{point.label()}]"[:200],
            "status": RunStatus.QUEUED,
            "spec": point.spec.model_dump(mode="json"),
            "schedule_kind": point.spec.schedule.kind,
            "plan": plan.model_dump(mode="json"),
            "parent_run_id": parent_run_id,
            "owner_id": owner_id,
            "tags": point.tags(sweep.id),
            "created_at": now,
        }
        for point, (plan, parent_run_id) in zip(points, planned, strict=True)
    ]
    # One multi-row INSERT per batch, ids returned in the rows' order: a thousand points in a few statements.
    run_ids = list(session.scalars(insert(Run).returning(Run.id, sort_by_parameter_order=True), rows))
    session.execute(
        insert(PointRow),
        [
            {"sweep_id": sweep.id, "index": point.index, "variant": point.variant, "values": point.values,
             "seed": point.seed, "run_id": run_id}
            for point, run_id in zip(points, run_ids, strict=True)
        ],
    )  # fmt: skip
    after_commit(session, lambda: enqueue_runs_in_background(run_ids))
    return sweep


def _plans(session: Session, points: list[SweepPoint]) -> list[tuple[RunPlan, int | None]]:
    planned: list[tuple[RunPlan, int | None]] = []
    problems: list[tuple[tuple[str, ...], str]] = []
    for point in points:
        try:
            recipe = point.spec.recipe
            if isinstance(recipe, PretrainedRecipe) and recipe.dense_epochs is not None:
                raise InvalidSpec(
                    ("recipe", "dense_epochs"),
                    "a sweep does not train a dense baseline per point: train one dense run and give "
                    "recipe.base_run_id instead",
                )
            planned.append(runs.checked_plan(session, point.spec))
        except InvalidSpec as error:
            problems.append(point_problem(point.index, point.label(), error))
            if len(problems) == MAX_REPORTED_POINTS:
                break
    if problems:
        raise InvalidSweep(problems)
    return planned


def get_sweep(session: Session, sweep_id: int) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise SweepNotFound(sweep_id)
    return sweep


def list_sweeps(session: Session, limit: int) -> list[Sweep]:
    """The newest sweeps first."""
    return list(session.scalars(select(Sweep).order_by(Sweep.id.desc()).limit(limit)))


def points_with_status(session: Session, sweep_id: int) -> list[tuple[PointRow, str]]:
    """The sweep's points in order, each with its run's status (`missing` when the run was deleted)."""
    rows = session.execute(
        select(PointRow, Run.status)
        .outerjoin(Run, Run.id == PointRow.run_id)
        .where(PointRow.sweep_id == sweep_id)
        .order_by(PointRow.index)
    )
    return [(point, status or MISSING) for point, status in rows]


def progress_of(sweeps: Sequence[Sweep], session: Session) -> dict[int, ProgressOut]:
    """Each sweep's counts by status, in one query."""
    counts: dict[int, Counter[str]] = {sweep.id: Counter() for sweep in sweeps}
    rows = session.execute(
        select(PointRow.sweep_id, Run.status, func.count())
        .outerjoin(Run, Run.id == PointRow.run_id)
        .where(PointRow.sweep_id.in_(list(counts)))
        .group_by(PointRow.sweep_id, Run.status)
    )
    for sweep_id, status, count in rows:
        counts[sweep_id][status or MISSING] += count
    return {sweep.id: ProgressOut(total=sweep.point_count, **counts[sweep.id]) for sweep in sweeps}


def sweep_status(sweep: Sweep, progress: ProgressOut) -> str:
    if progress.queued or progress.running:
        return "running"
    return "cancelled" if sweep.cancelled_at is not None else "finished"


def cancel_sweep(session: Session, sweep_id: int) -> Sweep:
    """Drop the queued runs and stop the running ones; finished runs and their data are kept."""
    sweep = get_sweep(session, sweep_id)
    for point, status in points_with_status(session, sweep_id):
        if point.run_id is not None and status in (RunStatus.QUEUED, RunStatus.RUNNING):
            runs.cancel_run(session, point.run_id)
    sweep.cancelled_at = utcnow()
    session.flush()
    return sweep


def retry_sweep(session: Session, sweep_id: int) -> list[int]:
    """Run each failed point again as a new run (queued after the commit); returns the new runs' ids.

    The failed run is kept, its sweep tags swapped for `retried:sweep:<id>`, so a group counts each point once.
    """
    sweep = get_sweep(session, sweep_id)
    new_ids: list[int] = []
    for point, status in points_with_status(session, sweep_id):
        if status != RunStatus.FAILED or point.run_id is None:
            continue
        failed = runs.get_run(session, point.run_id)
        run = Run(
            name=failed.name,
            status=RunStatus.QUEUED,
            spec=failed.spec,
            plan=failed.plan,
            parent_run_id=failed.parent_run_id,
            owner_id=failed.owner_id,
            tags=failed.tags,
        )
        session.add(run)
        session.flush()
        failed.tags = [f"retried:sweep:{sweep.id}"]
        point.run_id = run.id
        new_ids.append(run.id)
    if new_ids:
        sweep.cancelled_at = None
    session.flush()
    after_commit(session, lambda: enqueue_runs(new_ids))
    return new_ids
