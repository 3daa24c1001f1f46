"""Runs grouped by any spec field or tag: final-metric statistics per group, grouped curves, comparisons, frontier.

A group is the runs (among those a runs filter matches) with the same values of the `by` fields: a spec path
(`schedule.kind`, `model`, `seed`, ...), `sparsity` (the sparsity the run's schedule ends at, whatever the
schedule's own field is called) or `tag:<name>` (the value of a run's `<name>:<value>` tag, `<name>` for the
bare tag). Statistics count succeeded runs only; failed and cancelled runs, and runs not finished, are counted
apart. Curves are read from the series store (its pyramid levels), put on one x grid and reduced per x.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Sequence
from itertools import combinations
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from prunelab.core.errors import InvalidParameter, RunNotFound
from prunelab.core.external import ExternalRunSpec
from prunelab.core.specs import RunSpec
from prunelab.server.compare.service import SIZE_KEY, pareto_front
from prunelab.server.compare.statistics import BAND_KINDS, Band, BandKind, Difference, Summary, band, summarize, welch
from prunelab.server.metrics.store import read_points
from prunelab.server.models import Run, RunStatus
from prunelab.server.runs.filters import METRIC_KEY, MetricColumns, clause, parse_filter

MAX_GROUPED_RUNS = 10_000
MAX_BY = 4
MAX_METRICS = 8
MAX_CURVE_RUNS = 200  # runs whose series one grouped chart reads
CURVE_READ_POINTS = 2000  # per run, from the pyramid: the grid below is narrower
DEFAULT_GRID_POINTS = 300
MAX_COMPARISONS = 64
SPARSITY_FIELD = "sparsity"
TAG_PREFIX = "tag:"
FAILED = (RunStatus.FAILED, RunStatus.CANCELLED)
XAxis = Literal["step", "epoch", "fraction"]
FrontierX = Literal["sparsity", "size"]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (a union's members, `X | None`, `Annotated[...]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return [model for argument in typing.get_args(annotation) for model in _models_in(argument)]
    return []


def _paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        inner = _models_in(field.annotation)
        if inner:
            for member in inner:
                paths |= _paths(member, f"{prefix}{name}.")
        else:
            paths.add(f"{prefix}{name}")
    return paths


# A run PruneLab trains has a RunSpec; a run logged by a script (an external run) an ExternalRunSpec, whose free
# `params` are grouped by as `params.<name>`.
SPEC_PATHS = frozenset(_paths(RunSpec) | _paths(ExternalRunSpec))
PARAMS_PREFIX = "params."


def check_by(by: Sequence[str]) -> list[str]:
    """The group fields, each a spec path, `sparsity` or `tag:<name>`; InvalidParameter naming an unknown one."""
    fields = list(dict.fromkeys(field.strip() for field in by if field.strip()))
    if not fields:
        raise InvalidParameter(("by",), "by is required: comma-separated spec fields or tags, e.g. schedule.kind,seed")
    if len(fields) > MAX_BY:
        raise InvalidParameter(("by",), f"by names {len(fields)} fields; group by at most {MAX_BY}")
    for field in fields:
        if field == SPARSITY_FIELD or field in SPEC_PATHS:
            continue
        if field.startswith((TAG_PREFIX, PARAMS_PREFIX)) and len(field) > len(TAG_PREFIX) and len(field) <= 200:
            continue
        raise InvalidParameter(
            ("by",),
            f"by: {field[:60]!r} is not a spec field; use a spec path such as schedule.kind, schedule.final_sparsity, "
            "structure.kind, model or seed, or sparsity, tag:<name> or params.<name>",
        )
    return fields


def check_metrics(metrics: Sequence[str], name: str = "metrics") -> list[str]:
    keys = list(dict.fromkeys(key.strip() for key in metrics if key.strip())) or ["test_accuracy"]
    if len(keys) > MAX_METRICS:
        raise InvalidParameter((name,), f"{name} names {len(keys)} keys; at most {MAX_METRICS}")
    for key in keys:
        if not METRIC_KEY.match(key):
            raise InvalidParameter((name,), f"{name}: {key[:60]!r} is not a metric key, e.g. test_accuracy")
    return keys


def _tag_value(tags: Sequence[str], name: str) -> str | None:
    for tag in tags or ():
        if tag == name:
            return name
        if tag.startswith(name + ":"):
            return tag[len(name) + 1 :]
    return None


def _field_column(field: str) -> ColumnElement[Any]:
    """What the database returns for a group field: the plan's target sparsity, the run's tags (a tag field is
    read from them in Python), or the value at the field's path in the spec (null where the path is missing)."""
    if field == SPARSITY_FIELD:
        return Run.plan["target_sparsity"]
    if field.startswith(TAG_PREFIX):
        return Run.tags.expression
    return Run.spec[tuple(field.split("."))]


def _identity(value: Any) -> tuple[str, Any]:
    """A hashable stand-in for a group field's value that keeps its JSON type (1, 1.0 and true differ)."""
    if value is None or isinstance(value, (str, int, float)):
        return type(value).__name__, value
    return "json", json.dumps(value, sort_keys=True, default=str)


class Group(BaseModel):
    """Runs with the same values of the group fields."""

    key: dict[str, Any]
    label: str
    run_ids: list[int]  # succeeded: the runs behind the statistics
    failed_run_ids: list[int]  # failed or cancelled
    pending_run_ids: list[int]  # queued or running
    metrics: dict[str, Summary]


class GroupsOut(BaseModel):
    by: list[str]
    metrics: list[str]
    groups: list[Group]


def label_of(key: dict[str, Any]) -> str:
    return ", ".join(f"{field}={_shown(value)}" for field, value in key.items())


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) or value is None else str(value)


def _order(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, _shown(value))


def group_runs(
    session: Session,
    filter_text: str,
    by: Sequence[str],
    metrics: Sequence[str],
    run_ids: Sequence[int] | None = None,
) -> GroupsOut:
    """The runs `filter_text` matches (among `run_ids` when given) grouped by `by`, each group with n, mean, std,
    min and max of each metric."""
    fields = check_by(by)
    keys = check_metrics(metrics)
    parsed = parse_filter(filter_text)
    columns = MetricColumns()
    values = [columns.value(key).label(f"metric_{index}") for index, key in enumerate(keys)]
    # Each group field is read in SQL (a JSON path into the spec or the plan), not by decoding every run's spec
    # and plan in Python: at 10,000 runs that decoding was most of the read.
    field_columns = [_field_column(field).label(f"field_{index}") for index, field in enumerate(fields)]
    query = (
        columns.join(select(Run.id, Run.status, *field_columns, *values))
        .where(clause(parsed, columns), *([] if run_ids is None else [Run.id.in_(run_ids)]))
        .order_by(Run.id)
        .limit(MAX_GROUPED_RUNS + 1)
    )
    rows = session.execute(query).all()
    if len(rows) > MAX_GROUPED_RUNS:
        raise InvalidParameter(
            ("filter",), f"the filter matches more than {MAX_GROUPED_RUNS} runs; narrow it to group them"
        )
    # Rows are (id, status, field values..., metric values...); a group is found by its values' identity, which
    # tells 1 from 1.0 and True as the JSON key did, without encoding every row's key (10,000 rows a read).
    tags = [field[len(TAG_PREFIX) :] if field.startswith(TAG_PREFIX) else None for field in fields]
    members: dict[tuple[Any, ...], tuple[dict[str, Any], list[Any]]] = {}
    for row in rows:
        settings = [
            row[2 + index] if tag is None else _tag_value(row[2 + index] or (), tag) for index, tag in enumerate(tags)
        ]
        identity = tuple(map(_identity, settings))
        found = members.get(identity)
        if found is None:
            members[identity] = found = (dict(zip(fields, settings, strict=True)), [])
        found[1].append(row)
    groups = []
    for key, grouped in sorted(members.values(), key=lambda item: [_order(value) for value in item[0].values()]):
        succeeded = [row for row in grouped if row.status == RunStatus.SUCCEEDED]
        groups.append(
            Group(
                key=key,
                label=label_of(key),
                run_ids=[row.id for row in succeeded],
                failed_run_ids=[row.id for row in grouped if row.status in FAILED],
                pending_run_ids=[row.id for row in grouped if row.status not in (*FAILED, RunStatus.SUCCEEDED)],
                metrics={
                    metric: summarize([getattr(row, f"metric_{index}") for row in succeeded])
                    for index, metric in enumerate(keys)
                },
            )
        )
    return GroupsOut(by=fields, metrics=keys, groups=groups)


def _final_values(session: Session, run_ids: Sequence[int], metric: str) -> dict[int, float | None]:
    columns = MetricColumns()
    value = columns.value(metric)
    query: Any = select(Run.id, value)  # a two-column Select; MetricColumns.join is typed for any Select
    return {row[0]: row[1] for row in session.execute(columns.join(query).where(Run.id.in_(run_ids)))}


def _find(groups: GroupsOut, label: str, name: str) -> Group:
    for group in groups.groups:
        if group.label == label:
            return group
    known = "; ".join(group.label for group in groups.groups[:10])
    raise InvalidParameter((name,), f"{name}: no group {label[:80]!r}; the groups are: {known}")


def _titles(first: Group, second: Group) -> tuple[str, str, str]:
    """Short names of two groups (the fields where they differ; only the values when one field does) and what they
    share ("at ...")."""
    differing = [field for field in first.key if first.key[field] != second.key[field]] or list(first.key)
    shared = {field: value for field, value in first.key.items() if field not in differing}
    if len(differing) == 1:
        (field,) = differing
        return _shown(first.key[field]), _shown(second.key[field]), label_of(shared)
    return (
        label_of({field: first.key[field] for field in differing}),
        label_of({field: second.key[field] for field in differing}),
        label_of(shared),
    )


def difference(session: Session, first: Group, second: Group, metric: str) -> Difference:
    """Welch's comparison of two groups' final `metric` over their succeeded runs."""
    finals = _final_values(session, [*first.run_ids, *second.run_ids], metric)
    title_a, title_b, context = _titles(first, second)
    return welch(
        [value for run_id in first.run_ids if (value := finals.get(run_id)) is not None],
        [value for run_id in second.run_ids if (value := finals.get(run_id)) is not None],
        metric,
        title_a,
        title_b,
        failed_a=len(first.failed_run_ids),
        failed_b=len(second.failed_run_ids),
        context=context,
    )


def compare_groups(
    session: Session,
    filter_text: str,
    by: Sequence[str],
    metric: str,
    a: str,
    b: str,
    run_ids: Sequence[int] | None = None,
) -> Difference:
    """Group `a` minus group `b` (labels as /api/groups gives them) on a final metric."""
    (metric,) = check_metrics([metric], "metric")
    groups = group_runs(session, filter_text, by, [metric], run_ids)
    return difference(session, _find(groups, a, "a"), _find(groups, b, "b"), metric)


def comparisons(session: Session, groups: GroupsOut, metric: str) -> list[Difference]:
    """Every pair of groups that differ in exactly one field (Polynomial vs Constant at each sparsity, ...)."""
    pairs = [
        (first, second)
        for first, second in combinations(groups.groups, 2)
        if sum(first.key[field] != second.key[field] for field in groups.by) == 1
    ]
    return [difference(session, first, second, metric) for first, second in pairs[:MAX_COMPARISONS]]


class GroupCurve(BaseModel):
    label: str
    key: dict[str, Any]
    run_ids: list[int]
    band: Band


class CurvesOut(BaseModel):
    metric: str
    x: XAxis
    band: BandKind
    grid: list[float]
    groups: list[GroupCurve]


def group_curves(
    session: Session,
    filter_text: str,
    by: Sequence[str],
    metric: str,
    x: XAxis = "step",
    band_kind: BandKind = "std",
    points: int = DEFAULT_GRID_POINTS,
    run_ids: Sequence[int] | None = None,
) -> CurvesOut:
    """Each group's mean curve of `metric` with its band, on one x grid shared by every group; n per x."""
    if band_kind not in BAND_KINDS:
        raise InvalidParameter(("band",), f"band must be one of {', '.join(BAND_KINDS)}")
    (metric,) = check_metrics([metric], "key")
    groups = group_runs(session, filter_text, by, [metric], run_ids)
    drawn = [run_id for group in groups.groups for run_id in group.run_ids]
    if len(drawn) > MAX_CURVE_RUNS:
        raise InvalidParameter(("filter",), f"{len(drawn)} runs to draw; narrow the filter to {MAX_CURVE_RUNS}")
    plans: dict[int, dict[str, Any]] = {
        run_id: plan for run_id, plan in session.execute(select(Run.id, Run.plan).where(Run.id.in_(drawn)))
    }
    series = read_points(session, drawn, [metric], max_points=CURVE_READ_POINTS)
    per_run: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for run_id in drawn:
        found = series.get(run_id, {}).get(metric)
        if found is None:
            continue
        finite = ~np.isnan(found.values)
        if not finite.any():
            continue
        steps = found.steps[finite].astype(np.float64)
        plan = plans.get(run_id) or {}
        if x == "fraction":
            steps = steps / max(1, int(plan.get("total_steps") or steps[-1]))
        elif x == "epoch":
            steps = steps / max(1, int(plan.get("steps_per_epoch") or 1))
        per_run[run_id] = (steps, found.values[finite])
    if per_run:
        low = min(xs[0] for xs, _ in per_run.values())
        high = max(xs[-1] for xs, _ in per_run.values())
        grid = np.linspace(low, high, max(2, points)) if high > low else np.array([low])
    else:
        grid = np.empty(0)
    curves = []
    for group in groups.groups:
        members = [run_id for run_id in group.run_ids if run_id in per_run]
        # A run stands only between its own first and last x: past its end it is not counted, so n says so.
        columns = np.array(
            [np.interp(grid, *per_run[run_id], left=np.nan, right=np.nan) for run_id in members]
        ).reshape(len(members), grid.size)
        curves.append(GroupCurve(label=group.label, key=group.key, run_ids=members, band=band(columns, band_kind)))
    return CurvesOut(metric=metric, x=x, band=band_kind, grid=[float(value) for value in grid], groups=curves)


class FrontierPoint(BaseModel):
    label: str
    variant: str  # the group's fields but the sparsity ones: one line per variant
    key: dict[str, Any]
    n: int
    x: Summary
    y: Summary
    pareto: bool


class Baseline(BaseModel):
    run_id: int
    x: float | None
    y: float | None


class FrontierOut(BaseModel):
    metric: str
    x: FrontierX
    x_key: str
    points: list[FrontierPoint]
    baseline: Baseline | None


def group_frontier(
    session: Session,
    filter_text: str,
    by: Sequence[str],
    metric: str = "test_accuracy",
    x: FrontierX = "sparsity",
    baseline_id: int | None = None,
    run_ids: Sequence[int] | None = None,
) -> FrontierOut:
    """Per group: mean +- std of `metric` against the achieved sparsity or the zipped size; the Pareto front marked."""
    (metric,) = check_metrics([metric], "metric")
    x_key = "measured_sparsity" if x == "sparsity" else SIZE_KEY
    groups = group_runs(session, filter_text, by, [metric, x_key], run_ids)
    sparsity_fields = [field for field in groups.by if "sparsity" in field]
    points = [
        FrontierPoint(
            label=group.label,
            variant=label_of({field: value for field, value in group.key.items() if field not in sparsity_fields})
            or "all",
            key=group.key,
            n=group.metrics[metric].n,
            x=group.metrics[x_key],
            y=group.metrics[metric],
            pareto=False,
        )
        for group in groups.groups
    ]
    # Smaller files are better; on sparsity, higher is: pareto_front takes "smaller is better" on x.
    sign = -1.0 if x == "sparsity" else 1.0
    drawable = {
        index: (sign * point.x.mean, point.y.mean)
        for index, point in enumerate(points)
        if point.x.mean is not None and point.y.mean is not None
    }
    for index in pareto_front(drawable):
        points[index].pareto = True
    baseline = None
    if baseline_id is not None:
        if session.get(Run, baseline_id) is None:
            raise RunNotFound(baseline_id)
        finals = _final_values(session, [baseline_id], metric)
        sizes = _final_values(session, [baseline_id], x_key)
        baseline = Baseline(run_id=baseline_id, x=sizes.get(baseline_id), y=finals.get(baseline_id))
    return FrontierOut(metric=metric, x=x, x_key=x_key, points=points, baseline=baseline)


class GroupedReport(BaseModel):
    """What the report adds when runs are grouped: the table, the comparisons, the frontier and a grouped curve."""

    groups: GroupsOut
    metric: str
    comparisons: list[Difference]
    frontier: FrontierOut
    curves: CurvesOut


def grouped_report(
    session: Session,
    filter_text: str,
    by: Sequence[str],
    metric: str = "test_accuracy",
    run_ids: Sequence[int] | None = None,
    baseline_id: int | None = None,
) -> GroupedReport:
    """The groups of the reported runs (the baseline apart), each pair differing in one field compared."""
    (metric,) = check_metrics([metric], "metric")
    grouped_ids = None if run_ids is None else [run_id for run_id in run_ids if run_id != baseline_id]
    groups = group_runs(session, filter_text, by, [metric, "measured_sparsity", SIZE_KEY], grouped_ids)
    return GroupedReport(
        groups=groups,
        metric=metric,
        comparisons=comparisons(session, groups, metric),
        frontier=group_frontier(session, filter_text, by, metric, "sparsity", baseline_id, grouped_ids),
        curves=group_curves(session, filter_text, by, "accuracy", "fraction", "std", run_ids=grouped_ids),
    )
