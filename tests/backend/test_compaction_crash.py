"""Compaction killed half-way (SIGKILL of a real process inside a series' transaction) loses and doubles nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from harness.stack import REPO
from prunelab.server.db import session_scope
from prunelab.server.metrics.compaction import compact_run
from prunelab.server.metrics.service import read_series
from prunelab.server.models import Metric, MetricSeries, RunStatus
from tests.backend.test_series_store import finish, log_steps
from tests.worker.test_db_reporter import queued_run

KEYS = tuple(f"key_{index}" for index in range(6))

# Compacts the run, but stops dead inside the third series' transaction: its chunks are written and
# its hot rows deleted, not yet committed. The test kills the process there.
COMPACT_AND_HANG = """
import sys, time
from pathlib import Path
from prunelab.server.metrics import compaction

marker, real, calls = Path(sys.argv[2]), compaction.delete_hot_rows, []

def delete_then_hang(session, run_id, key, hot):
    real(session, run_id, key, hot)
    calls.append(key)
    if len(calls) == 3:
        marker.write_text(key)
        time.sleep(600)

compaction.delete_hot_rows = delete_then_hang
compaction.compact_run(int(sys.argv[1]))
"""


def stored_where(run_id: int) -> tuple[set[str], set[str]]:
    with session_scope() as session:
        hot = set(session.scalars(select(Metric.key).where(Metric.run_id == run_id).distinct()))
        compacted = set(session.scalars(select(MetricSeries.key).where(MetricSeries.run_id == run_id)))
    return hot, compacted


def test_killed_compaction_leaves_every_point_readable_exactly_once(settings: object, tmp_path: Path) -> None:
    run_id = queued_run()
    log_steps(run_id, range(1, 3001), KEYS)
    finish(run_id, RunStatus.CANCELLED)
    with session_scope() as session:
        expected = read_series(session, run_id, None)
    marker = tmp_path / "hanging"
    process = subprocess.Popen(
        [sys.executable, "-c", COMPACT_AND_HANG, str(run_id), str(marker)], cwd=REPO, env=dict(os.environ)
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, "the compacting process exited before it reached the third series"
            assert time.monotonic() < deadline, "the compacting process never reached the third series"
            time.sleep(0.1)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    hot, compacted = stored_where(run_id)
    assert compacted == set(KEYS[:2])  # committed before the kill
    assert hot == set(KEYS[2:])  # the third series' transaction died with the process: its rows are back
    with session_scope() as session:
        assert read_series(session, run_id, None) == expected
        total = session.scalar(select(func.sum(MetricSeries.point_count)).where(MetricSeries.run_id == run_id))
    assert total == 2 * 3000
    assert compact_run(run_id) == len(KEYS) - 2  # a second pass finishes the job
    assert stored_where(run_id) == (set(), set(KEYS))
    with session_scope() as session:
        assert read_series(session, run_id, None) == expected
