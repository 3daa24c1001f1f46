"""A run's full metric history as CSV or Parquet, written key by key so memory follows one series.

Columns: key, step, value (empty / null for a non-finite value), wall_time (seconds since the
epoch). Rows are ordered by key, then step. Both formats are written by pyarrow; its CSV writer
prints each float in the shortest form that reads back to the same number.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from prunelab.server.db import session_scope
from prunelab.server.metrics.points import Points
from prunelab.server.metrics.service import latest_values
from prunelab.server.metrics.store import read_points

SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("step", pa.int64()),
        ("value", pa.float64()),
        ("wall_time", pa.float64()),
    ]
)


def _table(key: str, points: Points) -> pa.Table:
    return pa.table(
        {
            "key": pa.array([key] * len(points), pa.string()),
            "step": pa.array(points.steps, pa.int64()),
            "value": pa.array(points.values, pa.float64(), mask=np.isnan(points.values)),
            "wall_time": pa.array(points.wall_times, pa.float64()),
        },
        schema=SCHEMA,
    )


def _series(session: Session, run_id: int) -> Iterator[tuple[str, Points]]:
    for key in sorted(latest_values(session, run_id)):
        yield key, read_points(session, [run_id], [key])[run_id][key]


def parquet_bytes(session: Session, run_id: int) -> bytes:
    """The whole history as one Parquet file (zstd), a row group per key."""
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, SCHEMA, compression="zstd") as writer:
        for key, points in _series(session, run_id):
            writer.write_table(_table(key, points))
    return sink.getvalue()


def csv_chunks(run_id: int) -> Iterator[bytes]:
    """The whole history as CSV, one block of bytes per key (the header first); streamed with its own session."""
    yield b'"key","step","value","wall_time"\n'
    options = pa_csv.WriteOptions(include_header=False)
    with session_scope() as session:
        for key, points in _series(session, run_id):
            sink = io.BytesIO()
            pa_csv.write_csv(_table(key, points), sink, options)
            yield sink.getvalue()
