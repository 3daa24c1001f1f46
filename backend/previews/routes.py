"""Preview a schedule before submitting: its target sparsity over the run's steps."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from prunelab.core.specs import RunSpec
from prunelab.server.metrics.downsample import MAX_POINTS, MIN_POINTS
from prunelab.server.previews.service import SchedulePreview, preview

router = APIRouter(prefix="/api/schedules", tags=["schedules"])

PreviewPoints = Annotated[int, Query(ge=MIN_POINTS, le=MAX_POINTS, description="Most points in the curve.")]


@router.post("/preview")
def preview_posted(spec: RunSpec, max_points: PreviewPoints = 1000) -> SchedulePreview:
    """Target sparsity per step of the posted run spec, its pruning steps and warnings (422 as submitting would)."""
    return preview(spec, max_points)


@router.get("/preview")
def preview_query(
    spec: Annotated[str, Query(description="The run spec as JSON.", max_length=100_000)],
    max_points: PreviewPoints = 1000,
) -> SchedulePreview:
    """Target sparsity per step of the run spec given as JSON in `spec`."""
    try:
        parsed = RunSpec.model_validate(json.loads(spec))
    except json.JSONDecodeError as error:
        raise RequestValidationError([{"loc": ("query", "spec"), "msg": f"spec is not JSON: {error}"}]) from None
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("query", *item["loc"])} for item in error.errors(include_url=False)]
        ) from None
    return preview(parsed, max_points)
