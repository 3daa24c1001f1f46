"""A local, durable queue of what a script still has to send to PruneLab: runs, points, files, ends.

Everything the Keras callback logs goes through here before it goes over the network, so a
server that is down, slow or restarting loses nothing: the points wait in one SQLite file (the
standard library's `sqlite3`, WAL mode) and are deleted only once the server has answered that
it stored them. The server keeps the first write of each (run, key, step), so a batch sent twice
(its answer lost) is stored once: at-least-once delivery with an idempotent store is exactly once.

The file is `$PRUNELAB_SPOOL_DIR/spool.sqlite`, else `$XDG_CACHE_HOME/prunelab/spool.sqlite`
(`~/.cache/prunelab/`). Runs are named by a client-made key until the server gives them an id,
so a script that starts while the server is down still logs from its first step. What a script
could not send before it ended is sent by the next callback that uses the same file and server.

Only the sender thread touches the file; training only appends to an in-memory queue.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_key TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    spec TEXT NOT NULL,
    run_id INTEGER,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS points (
    run_key TEXT NOT NULL,
    key TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL,
    wall_time REAL NOT NULL,
    PRIMARY KEY (run_key, key, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""


def default_spool_dir() -> Path:
    if folder := os.environ.get("PRUNELAB_SPOOL_DIR"):
        return Path(folder)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "prunelab"


@dataclass(frozen=True)
class Point:
    key: str
    step: int
    value: float
    wall_time: float

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "step": self.step, "value": self.value, "wall_time": self.wall_time}


@dataclass(frozen=True)
class Action:
    """Something to do once a run's points are sent: upload a file, or finish the run."""

    seq: int
    run_key: str
    kind: str  # "artifact" or "finish"
    payload: dict[str, Any]


@dataclass(frozen=True)
class SpooledRun:
    run_key: str
    url: str
    spec: dict[str, Any]
    run_id: int | None


class Spool:
    """The spool file; one connection, used by one thread at a time (the sender's)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or default_spool_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "spool.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        os.chmod(self.path, 0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # Runs
    def add_run(self, run_key: str, url: str, spec: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO runs (run_key, url, spec, created_at) VALUES (?, ?, ?, ?)",
                (run_key, url, json.dumps(spec), time.time()),
            )

    def set_run_id(self, run_key: str, run_id: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE runs SET run_id = ? WHERE run_key = ?", (run_id, run_key))

    def runs(self, url: str) -> list[SpooledRun]:
        """Runs for this server with anything left to send, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT run_key, url, spec, run_id FROM runs WHERE url = ? ORDER BY created_at", (url,)
            ).fetchall()
        return [SpooledRun(key, row_url, json.loads(spec), run_id) for key, row_url, spec, run_id in rows]

    def forget_run(self, run_key: str) -> None:
        """Drop a run and everything it still had to send (delivered, or refused for good)."""
        with self._transaction() as db:
            for table in ("points", "actions", "runs"):
                db.execute(f"DELETE FROM {table} WHERE run_key = ?", (run_key,))

    # Points
    def add_points(self, run_key: str, points: Iterable[Point]) -> None:
        # NaN is stored as NULL (SQLite has no NaN) and sent back as NaN; the first write of a step wins.
        rows = [(run_key, p.key, p.step, None if math.isnan(p.value) else p.value, p.wall_time) for p in points]
        if rows:
            with self._transaction() as db:
                db.executemany("INSERT OR IGNORE INTO points VALUES (?, ?, ?, ?, ?)", rows)

    def pending_points(self, run_key: str, limit: int) -> list[Point]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, step, value, wall_time FROM points WHERE run_key = ? ORDER BY step, key LIMIT ?",
                (run_key, limit),
            ).fetchall()
        return [Point(key, step, math.nan if value is None else value, wall) for key, step, value, wall in rows]

    def remove_points(self, run_key: str, points: Iterable[Point]) -> None:
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM points WHERE run_key = ? AND key = ? AND step = ?",
                [(run_key, p.key, p.step) for p in points],
            )

    def point_count(self, run_key: str | None = None) -> int:
        with self._lock:
            if run_key is None:
                return int(self._db.execute("SELECT count(*) FROM points").fetchone()[0])
            return int(self._db.execute("SELECT count(*) FROM points WHERE run_key = ?", (run_key,)).fetchone()[0])

    # Actions
    def add_action(self, run_key: str, kind: str, payload: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO actions (run_key, kind, payload) VALUES (?, ?, ?)", (run_key, kind, json.dumps(payload))
            )

    def next_action(self, run_key: str) -> Action | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, run_key, kind, payload FROM actions WHERE run_key = ? ORDER BY seq LIMIT 1", (run_key,)
            ).fetchone()
        return None if row is None else Action(row[0], row[1], row[2], json.loads(row[3]))

    def remove_action(self, seq: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM actions WHERE seq = ?", (seq,))

    def has_work(self, run_key: str) -> bool:
        with self._lock:
            for table in ("points", "actions"):
                query = f"SELECT 1 FROM {table} WHERE run_key = ? LIMIT 1"
                if self._db.execute(query, (run_key,)).fetchone():
                    return True
        return False
