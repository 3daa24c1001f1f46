"""HTTP routes of a run's metric history: series for charts (and zoomed windows), the keys logged, full exports.

They live with the runs (a run's 404 comes from its service); the store itself is backend/metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from prunelab.server.errors import NOT_FOUND
from prunelab.server.kit.dependencies import RunId, SessionDep
from prunelab.server.kit.params import split_keys
from prunelab.server.metrics import export
from prunelab.server.metrics.replies import COLUMNS_MEDIA_TYPE, series_reply
from prunelab.server.metrics.schemas import EndStep, MaxPoints, MetricsOut, StartStep, step_window
from prunelab.server.metrics.service import MetricKeyOut, metric_keys
from prunelab.server.metrics.store import read_points
from prunelab.server.runs import service as runs

router = APIRouter(prefix="/api/runs", tags=["metrics"], responses=NOT_FOUND)

Keys = Annotated[str | None, Query(description="Comma-separated metric keys; all when omitted.")]


@router.get(
    "/{run_id}/metrics",
    response_model=None,
    responses={200: {"model": MetricsOut, "content": {COLUMNS_MEDIA_TYPE: {}}}, 304: {"description": "Not modified"}},
)
def get_metrics(
    request: Request,
    run_id: RunId,
    session: SessionDep,
    keys: Keys = None,
    max_points: MaxPoints = None,
    start_step: StartStep = None,
    end_step: EndStep = None,
) -> Response:
    """Per-step series of a run's metrics (null marks a non-finite value), optionally downsampled and zoomed.

    With `max_points`, each series keeps about four points per pixel column (first, last, minimum,
    maximum, and the first gap); a window whose points fit the budget returns every point in it. JSON by default;
    `Accept: application/vnd.prunelab.columns` gets typed columns (backend/metrics/replies.py); an ETag lets a
    client revalidate (a 304 when unchanged).
    """
    runs.require_runs(session, [run_id])  # a 404 for a missing run, without loading it
    window = step_window(start_step, end_step)
    series = read_points(session, [run_id], split_keys(keys), window, max_points)[run_id]
    return series_reply(request, {"run_id": run_id, "series": series})


@router.get("/{run_id}/metric-keys")
def get_metric_keys(run_id: RunId, session: SessionDep) -> list[MetricKeyOut]:
    """The keys a run has logged and the last step of each (one row per key; no history is read)."""
    runs.get_run(session, run_id)
    return metric_keys(session, [run_id])


@router.get(
    "/{run_id}/metrics.parquet",
    response_class=Response,
    responses={200: {"content": {"application/vnd.apache.parquet": {}}, "description": "key, step, value, wall_time"}},
)
def export_parquet(run_id: RunId, session: SessionDep) -> Response:
    """The run's full metric history as Parquet (columns key, step, value, wall_time; null = non-finite)."""
    runs.get_run(session, run_id)
    return Response(
        export.parquet_bytes(session, run_id),
        media_type="application/vnd.apache.parquet",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-metrics.parquet"'},
    )


@router.get(
    "/{run_id}/metrics.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "key, step, value, wall_time"}},
)
def export_csv(run_id: RunId, session: SessionDep) -> StreamingResponse:
    """The run's full metric history as CSV (columns key, step, value, wall_time; empty value = non-finite)."""
    runs.get_run(session, run_id)
    return StreamingResponse(
        export.csv_chunks(run_id),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-metrics.csv"'},
    )
