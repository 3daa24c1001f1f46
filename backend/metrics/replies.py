"""Series replies encoded straight from numpy columns.

A compare reply holds hundreds of thousands of numbers: building pydantic models and encoding
them with the standard `json` module costs more than reading them. orjson writes numpy arrays
directly (NaN, a gap, becomes null), in the same JSON shape the schemas in
backend/runs/schemas.py document.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

from backend.metrics.points import Points

OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def series_json(series: dict[str, Points]) -> dict[str, dict[str, Any]]:
    return {
        key: {"steps": points.steps, "values": points.values, "wall_times": points.wall_times}
        for key, points in series.items()
    }


def json_response(payload: Any) -> Response:
    return Response(orjson.dumps(payload, option=OPTIONS), media_type="application/json")
