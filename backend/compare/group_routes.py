"""Groups of runs: statistics per group, grouped curves with bands, Welch comparisons and the pruning frontier."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from prunelab.server.compare.groups import (
    DEFAULT_GRID_POINTS,
    MAX_GROUPED_RUNS,
    CurvesOut,
    FrontierOut,
    FrontierX,
    GroupsOut,
    XAxis,
    compare_groups,
    group_curves,
    group_frontier,
    group_runs,
)
from prunelab.server.compare.statistics import BandKind, Difference
from prunelab.server.errors import NOT_FOUND
from prunelab.server.kit.dependencies import SessionDep
from prunelab.server.kit.params import run_ids_param, split_keys
from prunelab.server.runs.filters import MAX_FILTER_LENGTH

router = APIRouter(prefix="/api/groups", tags=["groups"], responses=NOT_FOUND)

Filter = Annotated[
    str, Query(alias="filter", max_length=MAX_FILTER_LENGTH, description="The runs filter, as the runs table takes it.")
]
By = Annotated[
    str,
    Query(
        max_length=1000,
        description="Comma-separated group fields: spec paths (schedule.kind, model, seed), sparsity, or tag:<name>.",
    ),
]
# The compare page groups the runs it shows; without `runs`, every run the filter matches.
Runs = Annotated[list[int] | None, Depends(run_ids_param("runs", MAX_GROUPED_RUNS, required=False))]
Metric = Annotated[str, Query(max_length=200, description="A final metric key: the summary's, else the latest value.")]


@router.get("")
def groups(
    session: SessionDep,
    by: By,
    filter_text: Filter = "",
    runs: Runs = None,
    metrics: Annotated[str | None, Query(max_length=2000, description="Comma-separated final metrics.")] = None,
) -> GroupsOut:
    """The matching runs grouped by `by`: n, mean, std (ddof=1), min and max of each final metric per group."""
    return group_runs(session, filter_text, split_keys(by) or [], split_keys(metrics) or [], runs)


@router.get("/curves")
def curves(
    session: SessionDep,
    by: By,
    key: Annotated[str, Query(max_length=200, description="The metric drawn.")],
    filter_text: Filter = "",
    runs: Runs = None,
    x: XAxis = "step",
    band: BandKind = "std",
    points: Annotated[int, Query(ge=2, le=2000, description="Points of the shared x grid.")] = DEFAULT_GRID_POINTS,
) -> CurvesOut:
    """Each group's mean curve of `key` with a std, min-max or 95% CI band and the runs counted at each x."""
    return group_curves(session, filter_text, split_keys(by) or [], key, x, band, points, runs)


@router.get("/compare")
def compare(
    session: SessionDep,
    by: By,
    a: Annotated[str, Query(max_length=1000, description="A group's label, as /api/groups gives it.")],
    b: Annotated[str, Query(max_length=1000, description="The other group's label.")],
    filter_text: Filter = "",
    runs: Runs = None,
    metric: Metric = "test_accuracy",
) -> Difference:
    """Mean of group a minus group b: Welch's 95% interval, p-value, n per side and a sentence saying it."""
    return compare_groups(session, filter_text, split_keys(by) or [], metric, a, b, runs)


@router.get("/frontier")
def frontier(
    session: SessionDep,
    by: By,
    filter_text: Filter = "",
    runs: Runs = None,
    metric: Metric = "test_accuracy",
    x: FrontierX = "sparsity",
    baseline: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="The dense baseline run.")] = None,
) -> FrontierOut:
    """Per group: mean +- std of a final metric against achieved sparsity or zipped size, the Pareto front marked."""
    return group_frontier(session, filter_text, split_keys(by) or [], metric, x, baseline, runs)
