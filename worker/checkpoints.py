"""Checkpoints of a run in the artifact store, the latest one recorded on the run's row.

The training library's `Checkpointer` for one attempt. Saving first writes the metrics logged so
far (a resumed attempt never logs them again, so they must be in the database before a checkpoint
says training passed them), then stores and verifies the file under a key of this attempt, then
records it on the run fenced on the attempt: a worker that lost its run records nothing. The
previous checkpoint is deleted once the new one is recorded; all of a run's checkpoints are
deleted when the run ends (`backend.artifacts.service.discard_checkpoints`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from prunelab.server.artifacts.storage import ArtifactStore, Recorded, StoredFileMismatch, checkpoint_key
from prunelab.server.db import session_scope
from prunelab.server.models import Run, RunStatus

if TYPE_CHECKING:
    from prunelab.worker.db_reporter import DatabaseReporter

log = logging.getLogger(__name__)


class RunCheckpoints:
    def __init__(
        self,
        store: ArtifactStore,
        run_id: int,
        attempt: int,
        recorded: dict[str, Any] | None,
        reporter: DatabaseReporter,
        scratch: Path,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.attempt = attempt
        self.recorded = recorded
        self.reporter = reporter
        self.scratch = scratch

    def latest(self) -> Path | None:
        if not self.recorded:
            return None
        record = self.recorded
        target = self.scratch / "resume-checkpoint.npz"
        try:
            self.store.fetch_to(Recorded(record["key"], record["size_bytes"], record["sha256"]), target)
        except (FileNotFoundError, StoredFileMismatch) as error:
            log.warning("run %s attempt %s: checkpoint %s is unusable (%s); starting at step 1",
                        self.run_id, self.attempt, record["key"], error)  # fmt: skip
            return None
        log.info("run %s attempt %s: resuming at epoch %d (step %d) from checkpoint %s",
                 self.run_id, self.attempt, record["epoch"] + 1, record["step"] + 1, record["key"])  # fmt: skip
        return target

    def save(self, epoch: int, step: int, path: Path) -> None:
        if not (self.reporter.flush() or self.reporter.flush()):
            log.warning("run %s: metrics up to step %d not written; no checkpoint after epoch %d",
                        self.run_id, step, epoch)  # fmt: skip
            return
        if self.reporter.lost.is_set():
            return
        stored = self.store.put_file(checkpoint_key(self.run_id, self.attempt, epoch), path)
        record = {"key": stored.key, "epoch": epoch, "step": step, "size_bytes": stored.size_bytes,
                  "sha256": stored.sha256, "attempt": self.attempt}  # fmt: skip
        with session_scope() as session:
            held = session.execute(
                update(Run)
                .where(Run.id == self.run_id, Run.attempt == self.attempt, Run.status == RunStatus.RUNNING)
                .values(checkpoint=record)
                .returning(Run.id)
            ).first()
        if held is None:
            self.store.delete(stored.key)
            return
        previous, self.recorded = self.recorded, record
        if previous and previous["key"] != stored.key:
            self.store.delete(previous["key"])
        log.info("run %s attempt %s: checkpoint after epoch %d (step %d) stored as %s",
                 self.run_id, self.attempt, epoch, step, stored.key)  # fmt: skip
