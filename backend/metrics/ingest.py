"""The hot tier's one writer: a batch of points as numpy columns, stored in a few statements whatever its size.

Each (run, key, step) is stored once, the first write wins: a batch is first reduced to the first
occurrence of each (run, key, step) with numpy, then inserted with ON CONFLICT DO NOTHING, so a retried
batch or a duplicate delivery never doubles a point. PostgreSQL: the columns become one binary COPY
into a temporary table (built by numpy, no Python object per point), then one INSERT ... SELECT ...
ON CONFLICT DO NOTHING. SQLite: one `executemany` in the caller's transaction (WAL; the rows handed
over by C-level iterators). Non-finite values are stored as NULL (a gap). The latest value of each
(run, key) is upserted from the same batch, one row per series.

`metrics` has no foreign key to `runs` (its check ran once per inserted row): once the rows are written, the
writer locks the batch's runs in one statement instead and refuses (rolls back) a batch naming a run that does not
exist. PostgreSQL: FOR KEY SHARE, which a concurrent delete of the run waits for, and after which a deleted run is
not found; SQLite: after its INSERT the transaction holds the database's write lock, so no delete can come between
the check and the commit.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from prunelab.core.errors import RunNotFound
from prunelab.server.models import LatestMetric, Run


@dataclass(frozen=True)
class MetricPoint:
    key: str
    step: int
    value: float
    wall_time: float


@dataclass(frozen=True)
class PointBatch:
    """Points as columns: point i is (run_ids[i], keys[key_ids[i]], steps[i], values[i], wall_times[i]); NaN = gap."""

    keys: tuple[str, ...]
    run_ids: np.ndarray  # int64
    key_ids: np.ndarray  # int32, indexes `keys`
    steps: np.ndarray  # int64
    values: np.ndarray  # float64
    wall_times: np.ndarray  # float64

    def __len__(self) -> int:
        return int(self.steps.size)

    @staticmethod
    def of_runs(points_of_runs: Mapping[int, Iterable[MetricPoint]]) -> PointBatch:
        """The adapter for callers that hold `MetricPoint`s (API edges, imports)."""
        key_index: dict[str, int] = {}
        run_ids: list[int] = []
        key_ids: list[int] = []
        steps: list[int] = []
        values: list[float] = []
        walls: list[float] = []
        for run_id, points in points_of_runs.items():
            for point in points:
                run_ids.append(run_id)
                key_ids.append(key_index.setdefault(point.key, len(key_index)))
                steps.append(point.step)
                values.append(point.value)
                walls.append(point.wall_time)
        return PointBatch.of_columns(tuple(key_index), run_ids, key_ids, steps, values, walls)

    @staticmethod
    def of_steps(run_id: int, logged: Sequence[tuple[int, tuple[str, ...], Sequence[float], float]]) -> PointBatch:
        """(step, keys, values, wall_time) per logged step, as a reporter collects them: one object per step."""
        key_index: dict[str, int] = {}
        by_keys: dict[tuple[str, ...], list[int]] = {}
        for position, (_, keys, _, _) in enumerate(logged):
            by_keys.setdefault(keys, []).append(position)
        parts = []
        for keys, positions in by_keys.items():
            ids = np.array([key_index.setdefault(key, len(key_index)) for key in keys], np.int32)
            rows = [logged[position] for position in positions]
            values = np.array([row[2] for row in rows], np.float64).reshape(len(rows), len(keys))
            step_column = np.fromiter((row[0] for row in rows), np.int64, len(rows))
            wall_column = np.fromiter((row[3] for row in rows), np.float64, len(rows))
            parts.append(
                (
                    np.tile(ids, len(rows)),
                    np.repeat(step_column, len(keys)),
                    values.ravel(),
                    np.repeat(wall_column, len(keys)),
                )
            )
        if not parts:
            return PointBatch.of_columns((), [], [], [], [], [])
        key_ids, steps, values, walls = (np.concatenate(column) for column in zip(*parts, strict=True))
        return PointBatch.of_columns(tuple(key_index), np.full(steps.size, run_id), key_ids, steps, values, walls)

    @staticmethod
    def of_columns(
        keys: tuple[str, ...], run_ids: Any, key_ids: Any, steps: Any, values: Any, walls: Any
    ) -> PointBatch:
        """Columns as arrays (or sequences); non-finite values become NaN, the one gap marker.

        Key ids are renumbered in the keys' sorted order, so every writer inserts (and locks) rows in the same
        (run, key, step) order: two concurrent batches of one run never wait on each other crosswise."""
        order = sorted(range(len(keys)), key=keys.__getitem__)
        rank = np.empty(len(keys), np.int32)
        rank[order] = np.arange(len(keys), dtype=np.int32)
        value_column = np.asarray(values, np.float64).copy()
        value_column[~np.isfinite(value_column)] = np.nan
        return PointBatch(
            tuple(keys[index] for index in order),
            np.asarray(run_ids, np.int64),
            rank[np.asarray(key_ids, np.intp)] if len(keys) else np.asarray(key_ids, np.int32),
            np.asarray(steps, np.int64),
            value_column,
            np.asarray(walls, np.float64),
        )

    def take(self, indices: np.ndarray) -> PointBatch:
        return PointBatch(
            self.keys,
            self.run_ids[indices],
            self.key_ids[indices],
            self.steps[indices],
            self.values[indices],
            self.wall_times[indices],
        )

    def first_writes(self) -> PointBatch:
        """The first occurrence of each (run, key, step), ordered by (run, key, step)."""
        order = np.lexsort((self.steps, self.key_ids, self.run_ids))  # stable: equal points keep their order
        runs, keys, steps = self.run_ids[order], self.key_ids[order], self.steps[order]
        first = np.ones(order.size, bool)
        first[1:] = (runs[1:] != runs[:-1]) | (keys[1:] != keys[:-1]) | (steps[1:] != steps[:-1])
        return self.take(order[first])

    def newest(self) -> list[dict[str, object]]:
        """Of a `first_writes` batch: the highest step of each (run, key), as latest-value rows."""
        last = np.ones(len(self), bool)
        last[:-1] = (self.run_ids[1:] != self.run_ids[:-1]) | (self.key_ids[1:] != self.key_ids[:-1])
        picked = self.take(np.flatnonzero(last))
        return [
            {"run_id": run_id, "key": self.keys[key_id], "step": step, "value": None if math.isnan(value) else value}
            for run_id, key_id, step, value in zip(
                picked.run_ids.tolist(),
                picked.key_ids.tolist(),
                picked.steps.tolist(),
                picked.values.tolist(),
                strict=True,
            )
        ]


# PostgreSQL's binary COPY: a fixed header, then per row a field count and each field as (length, big-endian bytes).
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("run_id_size", ">i4"),
        ("run_id", ">i8"),
        ("key_id_size", ">i4"),
        ("key_id", ">i4"),
        ("step_size", ">i4"),
        ("step", ">i8"),
        ("value_size", ">i4"),
        ("value", ">f8"),
        ("wall_time_size", ">i4"),
        ("wall_time", ">f8"),
    ]
)
_STAGING = "prunelab_metric_ingest"
_CREATE_STAGING = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} "
    "(run_id int8, key_id int4, step int8, value float8, wall_time float8) ON COMMIT DELETE ROWS"
)
# NaN -> NULL: PostgreSQL compares NaN equal to NaN, so NULLIF turns the gap marker into the stored NULL.
_INSERT_STAGED = (
    "INSERT INTO metrics (run_id, key, step, value, wall_time) "
    "SELECT s.run_id, (%s::text[])[s.key_id + 1], s.step, NULLIF(s.value, 'NaN'::float8), s.wall_time "
    f"FROM {_STAGING} s "
    "ON CONFLICT DO NOTHING"
)


def _copy_payload(batch: PointBatch) -> bytes:
    rows = np.empty(len(batch), _COPY_ROW)
    rows["fields"] = 5
    for column, size in (("run_id", 8), ("key_id", 4), ("step", 8), ("value", 8), ("wall_time", 8)):
        rows[f"{column}_size"] = size
    rows["run_id"], rows["key_id"], rows["step"] = batch.run_ids, batch.key_ids, batch.steps
    rows["value"], rows["wall_time"] = batch.values, batch.wall_times
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


def _write_postgresql(session: Session, batch: PointBatch) -> None:
    connection = session.connection().connection.driver_connection
    with connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(_CREATE_STAGING)
        with cursor.copy(f"COPY {_STAGING} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_copy_payload(batch))
        cursor.execute(_INSERT_STAGED, (list(batch.keys),))
        # The staging rows go now, not at commit: the same transaction may write another batch.
        cursor.execute(f"TRUNCATE {_STAGING}")


def _write_sqlite(session: Session, batch: PointBatch) -> None:
    connection = session.connection().connection.driver_connection
    key_names = np.array(batch.keys, dtype=object)[batch.key_ids].tolist()
    # sqlite3 binds a NaN as NULL: the stored gap.
    rows = zip(
        batch.run_ids.tolist(),
        key_names,
        batch.steps.tolist(),
        batch.values.tolist(),
        batch.wall_times.tolist(),
        strict=True,
    )
    connection.executemany(  # type: ignore[union-attr]
        "INSERT INTO metrics (run_id, key, step, value, wall_time) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows
    )


def _lock_runs(session: Session, run_ids: np.ndarray, dialect: str) -> None:
    """What the foreign key did, once a batch and after its rows: every run exists, and stays until the commit."""
    wanted = np.unique(run_ids).tolist()
    query = select(Run.id).where(Run.id.in_(wanted))
    if dialect == "postgresql":
        query = query.with_for_update(key_share=True)
    found = set(session.scalars(query))
    missing = [run_id for run_id in wanted if run_id not in found]
    if missing:
        raise RunNotFound(missing[0])


def record_batch(session: Session, batch: PointBatch) -> None:
    """Store a batch idempotently in the caller's transaction: the first write of a (run, key, step) wins."""
    if not len(batch):
        return
    unique = batch.first_writes()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        _write_postgresql(session, unique)
        statement: postgresql.Insert | sqlite.Insert = postgresql.insert(LatestMetric)
    elif dialect == "sqlite":
        _write_sqlite(session, unique)
        statement = sqlite.insert(LatestMetric)
    else:
        raise NotImplementedError(f"metric writes are written for PostgreSQL and SQLite, not {dialect}")
    _lock_runs(session, unique.run_ids, dialect)
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={"step": statement.excluded.step, "value": statement.excluded.value},
        where=LatestMetric.step <= statement.excluded.step,
    )
    session.execute(statement, unique.newest())
