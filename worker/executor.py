"""Run one queued run: claim it, train it with the database reporter, store the outcome.

The glue between the training library and the database. Every write after the
claim is fenced on the attempt this worker holds: a duplicate delivery, or a run
reassigned after this worker was presumed dead, writes nothing.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from prunelab.core.plans import RunPlan
from prunelab.core.recipes import upload_id
from prunelab.core.specs import RunSpec
from prunelab.server.artifacts.service import discard_checkpoints, get_store, set_stored
from prunelab.server.artifacts.storage import (
    ArtifactStore,
    Recorded,
    StoreUnavailable,
    artifact_key,
    attempt_prefix,
)
from prunelab.server.db import session_scope
from prunelab.server.metrics.compaction import compact_run
from prunelab.server.models import Artifact, Run, RunStatus, Upload, utcnow
from prunelab.server.runs import links, sources
from prunelab.server.settings import Settings, get_settings
from prunelab.worker.checkpoints import RunCheckpoints
from prunelab.worker.db_reporter import DatabaseReporter
from prunelab.worker.lifecycle import listen_for_shutdown, shutdown_requested
from prunelab.worker.training.result import TrainingResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    run_id: int
    attempt: int
    spec: RunSpec
    plan: RunPlan
    checkpoint: dict[str, Any] | None = None  # the latest checkpoint of an earlier attempt, to resume from


def claim_run(run_id: int, worker_name: str) -> Claim | None:
    """Atomically move a queued, uncancelled run whose base run (if any) succeeded to running; take the next attempt."""
    now = utcnow()
    base_ready = links.base_run_ready()
    with session_scope() as session:
        row = session.execute(
            update(Run)
            .where(
                Run.id == run_id,
                Run.status == RunStatus.QUEUED,
                Run.source == "prunelab",  # an external run is never trained here
                Run.cancel_requested.is_(False),
                base_ready,
            )
            .values(
                status=RunStatus.RUNNING,
                attempt=Run.attempt + 1,
                worker=worker_name,
                heartbeat_at=now,
                started_at=now,
                error=None,
            )
            .returning(Run.attempt, Run.spec, Run.plan, Run.checkpoint)
        ).first()
    if row is None:
        return None
    spec, plan = RunSpec.model_validate(row.spec), RunPlan.model_validate(row.plan)
    return Claim(run_id, row.attempt, spec, plan, row.checkpoint)


def _fenced_finish(session: Session, claim: Claim, status: RunStatus, **values: Any) -> bool:
    held = session.execute(
        update(Run)
        .where(Run.id == claim.run_id, Run.attempt == claim.attempt, Run.status == RunStatus.RUNNING)
        .values(status=status, finished_at=utcnow(), heartbeat_at=utcnow(), checkpoint=None, **values)
        .returning(Run.id)
    ).first()
    if held is not None and status != RunStatus.SUCCEEDED:
        outcome = "was cancelled" if status == RunStatus.CANCELLED else "failed"
        links.fail_waiting_runs(session, claim.run_id, outcome)
    return held is not None


def finish_run(claim: Claim, status: RunStatus, **values: Any) -> bool:
    """Record the outcome if this worker still holds the attempt; returns whether it did."""
    with session_scope() as session:
        return _fenced_finish(session, claim, status, **values)


def _store_exports(store: ArtifactStore, claim: Claim, exports: dict[str, Path]) -> list[Artifact]:
    artifacts = []
    for export_format, path in sorted(exports.items()):
        stored = store.put_file(artifact_key(claim.run_id, claim.attempt, export_format), path)
        artifacts.append(set_stored(Artifact(run_id=claim.run_id, format=export_format), stored))
    return artifacts


def succeed_run(claim: Claim, summary: dict[str, Any], artifacts: list[Artifact]) -> bool:
    """Mark the run succeeded and list its artifacts, in one fenced transaction."""
    with session_scope() as session:
        if not _fenced_finish(session, claim, RunStatus.SUCCEEDED, summary=summary):
            return False
        session.execute(delete(Artifact).where(Artifact.run_id == claim.run_id))
        session.add_all(artifacts)
        session.flush()
        links.start_waiting_runs(session, claim.run_id)
    return True


def starting_model_path(claim: Claim, store: ArtifactStore, scratch: Path) -> Path | None:
    """The run's starting model (its base run's stripped .keras model, or its upload), fetched and checked."""
    with session_scope() as session:
        if claim.plan.base_run_id is not None:
            key = sources.base_model_key(session, claim.plan.base_run_id)
            if key is None:
                raise FileNotFoundError(f"base run {claim.plan.base_run_id} has no .keras model")
            row: Artifact | Upload | None = session.scalar(
                select(Artifact).where(Artifact.run_id == claim.plan.base_run_id, Artifact.storage_key == key)
            )
        elif (upload := upload_id(claim.spec.recipe)) is not None:
            row = session.get(Upload, sources.model_upload(session, upload).upload_id)
        else:
            return None
        assert row is not None
        recorded = Recorded(row.storage_key, row.size_bytes, row.sha256)
    return store.fetch_to(recorded, scratch / "start.keras")


def execute_run(run_id: int, worker_name: str, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    claim = claim_run(run_id, worker_name)
    if claim is None:
        log.info("run %s is not queued (cancelled, deleted or taken); skipping", run_id)
        return "skipped"
    log.info("run %s attempt %s: training %s", run_id, claim.attempt, claim.spec.display_name())
    listen_for_shutdown()
    reporter = DatabaseReporter(run_id, claim.attempt, shutdown=shutdown_requested).start()
    started = time.monotonic()
    try:
        train = training_engine(claim.spec)
        assert settings.data_dir is not None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = get_store(settings)
        scratch_root = settings.home / "scratch"  # this machine's disk; nothing here is shared with the API
        scratch_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"run{run_id}-", dir=scratch_root) as scratch:
            start_model = starting_model_path(claim, store, Path(scratch))
            checkpoints = RunCheckpoints(store, run_id, claim.attempt, claim.checkpoint, reporter, Path(scratch))
            output_dir = Path(scratch) / "output"
            output_dir.mkdir()
            result = train(
                claim.spec,
                claim.plan,
                reporter,
                data_dir=settings.data_dir,
                output_dir=output_dir,
                start_model=start_model,
                checkpoints=checkpoints,
            )
            # Stored while the reporter still beats: saving a large model must not look like a dead worker.
            artifacts = _store_exports(store, claim, result.exports)
            reporter.close()
            if reporter.lost.is_set():
                return "lost"
            if result.cancelled:
                if reporter.cancelled.is_set():
                    return _ended(claim, store, finish_run(claim, RunStatus.CANCELLED), "cancelled")
                interrupted = finish_run(
                    claim, RunStatus.FAILED, error="interrupted: the worker was shut down during training"
                )
                return _ended(claim, store, interrupted, "interrupted")
            summary = {**result.summary, "wall_time_s": round(time.monotonic() - started, 3)}
            return _ended(claim, store, succeed_run(claim, summary, artifacts), "succeeded")
    except SoftTimeLimitExceeded:
        reporter.close()
        failed = finish_run(
            claim,
            RunStatus.FAILED,
            error=f"time limit: the run exceeded its soft time limit of {settings.run_soft_time_limit_s} s "
            f"(PRUNELAB_RUN_TIME_LIMIT_S={settings.run_time_limit_s})",
        )
        return _ended(claim, get_store(settings), failed, "failed")
    except Exception as error:
        log.exception("run %s failed", run_id)
        reporter.close()
        failed = finish_run(claim, RunStatus.FAILED, error=failure_message(error))
        return _ended(claim, get_store(settings), failed, "failed", partial_files=True)
    finally:
        reporter.close()
        compact_quietly(run_id)


def training_engine(spec: RunSpec) -> Callable[..., TrainingResult]:
    """The engine's `train` (one signature for both): tfmot in this process, keras in a child process per run."""
    if spec.engine == "keras":
        from prunelab.worker.keras3 import process

        return process.train
    from prunelab.worker.training.train import train  # TensorFlow loads here, in the pool process

    return train


def failure_message(error: BaseException) -> str:
    """A failed run's error: `Type: message`, the keras engine's child's own type for what it raised."""
    run_error = getattr(error, "run_error", None)
    return run_error if isinstance(run_error, str) else f"{type(error).__name__}: {error}"


def compact_quietly(run_id: int) -> None:
    """Compact a finished run's history now; on failure the reaper's next pass does it (nothing is lost)."""
    try:
        compact_run(run_id)
    except Exception:
        log.exception("compacting the metrics of run %s failed; the reaper's pass will retry", run_id)


def _ended(claim: Claim, store: ArtifactStore, recorded: bool, outcome: str, partial_files: bool = False) -> str:
    """After this attempt recorded how the run ended: its checkpoints go (and a failed attempt's files)."""
    if not recorded:
        return "lost"
    discard_checkpoints(claim.run_id, store)
    if partial_files:
        try:  # files stored before the failure: never listed, never offered, so removed
            store.delete_prefix(attempt_prefix(claim.run_id, claim.attempt))
        except (StoreUnavailable, OSError):
            log.warning("could not delete the files of failed run %s attempt %s", claim.run_id, claim.attempt)
    return outcome
