"""Series replies encoded straight from numpy columns: JSON for API users, typed columns for the charts.

A compare reply holds hundreds of thousands of numbers: building pydantic models and encoding
them with the standard `json` module costs more than reading them. A payload holds `Points`
wherever a series goes; it is written in one of two forms, negotiated by the Accept header:

- JSON (the default; the shape backend/metrics/schemas.py documents): orjson writes numpy arrays
  directly (NaN, a gap, becomes null). A series whose values are all float32 (what Keras logs) is
  written in float32's shortest form (`0.1`, not `0.10000000149011612`): the same float32, a third
  fewer bytes; the CSV and Parquet exports keep every bit.
- Columns (`Accept: application/vnd.prunelab.columns`, what the dashboard asks for): a uint32
  (little-endian) header length, the same payload as JSON with each series replaced by
  `{"columns": count, "steps": [type, offset], "values": [type, offset], "wall_times": [type, offset,
  origin]}`, then the columns as raw little-endian arrays, each at an 8-byte aligned offset counted
  from the first 8-byte boundary after the header. A browser wraps them in typed arrays without
  parsing a number: steps int32 (float64 past int32's range), values float32 when every value is one
  (else float64; NaN is a gap), wall times float32 seconds after `origin` (a float64, the series'
  first wall time): a chart's axis, precise to well under a millisecond over a day's run.

Both carry an ETag (a hash of the body) and `Cache-Control: no-cache`: a browser revalidates, and a
reply that has not changed (a finished run's series) costs a 304 and no transfer.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import numpy as np
import orjson
from fastapi import Request, Response

from prunelab.server.metrics.points import Points

OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
COLUMNS_MEDIA_TYPE = "application/vnd.prunelab.columns"
_ALIGN = 8
_INT32 = np.iinfo(np.int32)
_TYPE_NAMES = {np.int32: "int32", np.float32: "float32", np.float64: "float64"}  # what decodeColumns reads


def series_json(series: dict[str, Points]) -> dict[str, dict[str, Any]]:
    return {key: _json_series(points) for key, points in series.items()}


def _json_series(points: Points) -> dict[str, np.ndarray]:
    return {"steps": points.steps, "values": points.shortest_values, "wall_times": points.wall_times}


def json_response(payload: Any) -> Response:
    return Response(orjson.dumps(payload, option=OPTIONS), media_type="application/json")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % _ALIGN)


class _Columns:
    """Collects the column buffers of a payload's series while orjson writes the header."""

    def __init__(self) -> None:
        self.parts: list[bytes | memoryview] = []
        self.size = 0

    def _add(self, array: np.ndarray) -> list[Any]:
        offset = self.size
        raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        padding = _padding(raw.nbytes)
        self.parts += [raw.data, padding]  # a view of the array: no copy until the join
        self.size += raw.nbytes + len(padding)
        return [_TYPE_NAMES.get(array.dtype.type) or array.dtype.name, offset]

    def describe(self, value: object) -> dict[str, Any]:
        if not isinstance(value, Points):
            raise TypeError(f"{type(value).__name__} is not a series")
        steps = value.steps
        fits = not len(value) or (int(steps.min()) >= _INT32.min and int(steps.max()) <= _INT32.max)
        origin = float(value.wall_times[0]) if len(value) else 0.0
        return {
            "columns": len(value),
            "steps": self._add(steps.astype(np.int32 if fits else np.float64)),
            "values": self._add(value.shortest_values),
            "wall_times": [*self._add((value.wall_times - origin).astype(np.float32)), origin],
        }


def columns_body(payload: Any) -> bytes:
    """The payload in the columns form (see the module docstring)."""
    columns = _Columns()
    header = orjson.dumps(payload, default=columns.describe, option=OPTIONS | orjson.OPT_PASSTHROUGH_DATACLASS)
    start = struct.pack("<I", len(header)) + header
    return b"".join((start, _padding(len(start)), *columns.parts))


def _json_default(value: object) -> dict[str, np.ndarray]:
    if not isinstance(value, Points):
        raise TypeError(f"{type(value).__name__} is not a series")
    return _json_series(value)


def series_reply(request: Request, payload: Any) -> Response:
    """`payload` (with `Points` for series) as JSON or columns, as the request accepts; a 304 when unchanged."""
    if COLUMNS_MEDIA_TYPE in request.headers.get("accept", ""):
        body, media_type = columns_body(payload), COLUMNS_MEDIA_TYPE
    else:
        body = orjson.dumps(payload, default=_json_default, option=OPTIONS | orjson.OPT_PASSTHROUGH_DATACLASS)
        media_type = "application/json"
    etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
