"""Series replies encoded straight from numpy columns.

A compare reply holds hundreds of thousands of numbers: building pydantic models and encoding
them with the standard `json` module costs more than reading them. orjson writes numpy arrays
directly (NaN, a gap, becomes null), in the same JSON shape backend/metrics/schemas.py documents.
A series whose values are all float32 (what Keras logs) is written in float32's shortest form
(`0.1`, not `0.10000000149011612`): the same float32, a third fewer bytes; the CSV and Parquet
exports keep every bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi import Response

from prunelab.server.metrics.points import Points

OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def shortest_values(values: np.ndarray) -> np.ndarray:
    """float32 when every value is one (orjson then prints float32's shortest decimal form), else as is."""
    with np.errstate(over="ignore"):
        narrow = values.astype(np.float32)
    return narrow if np.array_equal(narrow.astype(np.float64), values, equal_nan=True) else values


def series_json(series: dict[str, Points]) -> dict[str, dict[str, Any]]:
    return {
        key: {"steps": points.steps, "values": shortest_values(points.values), "wall_times": points.wall_times}
        for key, points in series.items()
    }


def json_response(payload: Any) -> Response:
    return Response(orjson.dumps(payload, option=OPTIONS), media_type="application/json")
