"""Compare runs side by side, and export the comparison as a self-contained HTML report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from prunelab.core.errors import InvalidParameter
from prunelab.core.recipes import MAX_ID
from prunelab.core.sweeps import SweepSpec, point_label
from prunelab.server.compare.groups import grouped_report
from prunelab.server.compare.report import SweepAppendix, build_report
from prunelab.server.compare.service import MAX_RUNS, CompareOut, compare_data, compare_runs
from prunelab.server.errors import NOT_FOUND
from prunelab.server.kit.dependencies import SessionDep
from prunelab.server.kit.params import run_ids_param, split_keys
from prunelab.server.metrics.replies import COLUMNS_MEDIA_TYPE, series_reply
from prunelab.server.metrics.schemas import EndStep, MaxPoints, StartStep, step_window
from prunelab.server.metrics.service import MetricKeyOut, metric_keys
from prunelab.server.runs.filters import MAX_FILTER_LENGTH
from prunelab.server.runs.service import require_runs
from prunelab.server.sweeps import service as sweeps

router = APIRouter(prefix="/api/compare", tags=["compare"], responses=NOT_FOUND)  # a run that does not exist

RunIds = Annotated[list[int], Depends(run_ids_param("runs", MAX_RUNS, required=True))]
Keys = Annotated[str | None, Query(description="Comma-separated metric keys; the dashboard's set when omitted.")]
Baseline = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="A run drawn as the dense baseline.")]


@router.get(
    "",
    response_model=None,
    responses={200: {"model": CompareOut, "content": {COLUMNS_MEDIA_TYPE: {}}}, 304: {"description": "Not modified"}},
)
def compare(
    request: Request,
    session: SessionDep,
    runs: RunIds,
    keys: Keys = None,
    max_points: MaxPoints = None,
    baseline: Baseline = None,
    start_step: StartStep = None,
    end_step: EndStep = None,
) -> Response:
    """Summaries, specs, plans, planned sparsity and (downsampled, optionally zoomed) series of up to 20 runs.

    JSON by default; `Accept: application/vnd.prunelab.columns` gets the series as typed columns (the dashboard's
    form, backend/metrics/replies.py). An ETag lets a client revalidate: an unchanged comparison is a 304."""
    window = step_window(start_step, end_step)
    out, series = compare_data(session, runs, split_keys(keys), max_points, baseline, window)
    payload = out.model_dump(mode="json")
    payload["series"] = series
    return series_reply(request, payload)


def _sweep_report(session: Session, sweep_id: int, by: list[str] | None, metric: str) -> HTMLResponse:
    sweep = sweeps.get_sweep(session, sweep_id)
    spec = SweepSpec.model_validate(sweep.spec)
    # A sweep of seeds only has no axis to group by: its runs are then one group.
    fields = by or spec.group_by() or ["tag:sweep"]
    grouped = grouped_report(session, f'tag:"sweep:{sweep.id}"', fields, metric)
    points = [
        (point_label(point.variant, point.values, point.seed), point.run_id, status)
        for point, status in sweeps.points_with_status(session, sweep.id)
    ]
    appendix = SweepAppendix(sweep.id, sweep.name, spec.model_dump(mode="json"), points)
    return HTMLResponse(
        build_report(None, grouped, appendix),
        headers={"Content-Disposition": f'attachment; filename="prunelab-sweep-{sweep.id}.html"'},
    )


@router.get("/metric-keys")
def compare_metric_keys(session: SessionDep, runs: RunIds) -> list[MetricKeyOut]:
    """Every metric key any of the runs logged (the union), with how many of them logged it: one query."""
    require_runs(session, runs)
    return metric_keys(session, runs)


# The report is HTML, its 404 is JSON like every error: documented as such, not as the route's media type.
JSON_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}}}
}


OptionalRunIds = Annotated[list[int] | None, Depends(run_ids_param("runs", MAX_RUNS, required=False))]


@router.get("/report", response_class=HTMLResponse, responses=JSON_NOT_FOUND)
def report(
    session: SessionDep,
    runs: OptionalRunIds = None,
    baseline: Baseline = None,
    by: Annotated[
        str | None, Query(max_length=1000, description="Group the runs by these fields (as /api/groups takes them).")
    ] = None,
    filter_text: Annotated[
        str, Query(alias="filter", max_length=MAX_FILTER_LENGTH, description="With `by` and no `runs`: the runs.")
    ] = "",
    metric: Annotated[str, Query(max_length=200, description="The final metric groups are compared on.")] = (
        "test_accuracy"
    ),
    sweep: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="A sweep's report: its runs grouped by every axis but the seed, its spec."),
    ] = None,
) -> HTMLResponse:
    """The comparison as one HTML file with Plotly embedded: it opens without a network. With `by`, the group
    table, Welch comparisons, the frontier and grouped curves too (of `runs`, or of the runs `filter` matches).
    With `sweep`, the sweep's report: its runs grouped as its page groups them (or by `by`), and its spec."""
    if sweep is not None:
        return _sweep_report(session, sweep, split_keys(by), metric)
    if runs is None and not by:
        raise InvalidParameter(
            ("runs",), "runs is required (comma-separated run ids, e.g. 1,2), or by to group runs, or sweep"
        )
    grouped = grouped_report(session, filter_text, split_keys(by) or [], metric, runs, baseline) if by else None
    data = compare_runs(session, runs, None, 2000, baseline) if runs is not None else None
    html = build_report(data, grouped)
    named = "-".join(str(run_id) for run_id in runs[:8]) if runs is not None else "groups"
    return HTMLResponse(html, headers={"Content-Disposition": f'attachment; filename="prunelab-report-{named}.html"'})
