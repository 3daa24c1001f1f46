"""Side-by-side data of several runs: summaries, specs, plans and downsampled series."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from prunelab.core.plans import RunPlan
from prunelab.server.metrics.downsample import MAX_POINTS
from prunelab.server.metrics.points import Points
from prunelab.server.metrics.presenters import series_out
from prunelab.server.metrics.schemas import SeriesOut
from prunelab.server.metrics.service import Series
from prunelab.server.metrics.store import EVERYTHING, Window, read_points
from prunelab.server.models import Run
from prunelab.server.previews.service import PlannedSparsity, planned_sparsity
from prunelab.server.runs.presenters import run_outs
from prunelab.server.runs.schemas import RunOut
from prunelab.server.runs.service import check_found

DEFAULT_KEYS = (
    "measured_sparsity",
    "target_sparsity",
    "loss",
    "accuracy",
    "val_accuracy",
    "compressed_size_bytes",
)
MAX_RUNS = 21  # 20 compared runs and a pinned baseline
# Plotly's Dark24: one fixed colour per position in the comparison, the same on the page and in the report.
PALETTE = (
    "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#B68100", "#750D86", "#EB663B", "#511CFB", "#00A08B",
    "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE", "#862A16", "#A777F1", "#620042", "#1616A7", "#DA60CA",
    "#6C4516", "#0D2A63", "#AF0038", "#222A2A",
)  # fmt: skip
BASELINE_COLOR = "#7f7f7f"
# What "compressed size" means across the product: the zipped .keras file, as the tfmot tutorials measure it.
SIZE_KEY = "keras_zip_bytes"


class ParameterDifference(BaseModel):
    parameter: str
    values: dict[int, Any]


class CompareOut(BaseModel):
    runs: list[RunOut]
    keys: list[str]
    series: dict[int, dict[str, SeriesOut]]
    planned: dict[int, PlannedSparsity]
    differences: list[ParameterDifference]
    pareto_ids: list[int]  # runs with a point (a stage, or the run itself) on the accuracy-size frontier
    baseline_id: int | None
    colors: dict[int, str]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{'schedule': {'kind': 'x'}} -> {'schedule.kind': 'x'}"""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(flatten(inner, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def differences(runs: Sequence[RunOut]) -> list[ParameterDifference]:
    """Spec parameters (and resolved steps) whose values are not the same in every run."""
    flat = {
        run.id: {
            **flatten(run.spec.model_dump(mode="json")),
            "plan.total_steps": run.plan.total_steps,
            "plan.schedule.end_step": run.plan.schedule.end_step,
        }
        for run in runs
    }
    names = list(dict.fromkeys(name for values in flat.values() for name in values))
    rows = [ParameterDifference(parameter=name, values={i: v.get(name) for i, v in flat.items()}) for name in names]
    return [row for row in rows if len({repr(value) for value in row.values.values()}) > 1]


K = TypeVar("K")


class SizePoint(BaseModel):
    """One point of the accuracy-against-size chart: a run's compress stage, or a run without stages."""

    run_id: int
    stage: str | None
    zipped: float
    accuracy: float


def pareto_front(points: Mapping[K, tuple[float, float]]) -> list[K]:
    """Keys of the points no other point beats on both size (smaller) and accuracy (higher), by increasing size."""
    front: list[K] = []
    best_accuracy = float("-inf")
    for key, (_size, accuracy) in sorted(points.items(), key=lambda item: (item[1][0], -item[1][1])):
        if accuracy > best_accuracy:
            front.append(key)
            best_accuracy = accuracy
    return front


def size_points(run: RunOut) -> list[SizePoint]:
    """Each compress stage of a run (pruned, cluster, qat, tflite_int8) with its own file's zipped size; a run
    without stages is one point, its zipped .keras. The compare page (compare.js `sizePoints`) draws the same."""
    summary = run.summary or {}
    stages = [stage for stage in (summary.get("compression") or {}).get("stages", []) if not stage.get("reference")]
    if stages:
        return [
            SizePoint(run_id=run.id, stage=stage["stage"], zipped=stage["zip_bytes"], accuracy=stage["test_accuracy"])
            for stage in stages
        ]
    size, accuracy = summary.get(SIZE_KEY), summary.get("test_accuracy")
    if size is None or accuracy is None:
        return []
    return [SizePoint(run_id=run.id, stage=None, zipped=size, accuracy=accuracy)]


def frontier(runs: Sequence[RunOut]) -> list[SizePoint]:
    """The Pareto frontier over every run's size points, by increasing size."""
    points = [point for run in runs for point in size_points(run)]
    keyed = {index: (point.zipped, point.accuracy) for index, point in enumerate(points)}
    return [points[index] for index in pareto_front(keyed)]


def compare_data(
    session: Session,
    run_ids: Sequence[int],
    keys: Sequence[str] | None,
    max_points: int | None,
    baseline_id: int | None = None,
    window: Window = EVERYTHING,
) -> tuple[CompareOut, dict[int, dict[str, Points]]]:
    """Everything the compare page draws; the series apart, as numpy columns, from one read of the store."""
    wanted = list(dict.fromkeys([*run_ids, *([baseline_id] if baseline_id is not None else [])]))
    rows = session.scalars(select(Run).where(Run.id.in_(wanted)).options(selectinload(Run.artifacts))).all()
    by_id = {run.id: run for run in rows}
    check_found(wanted, by_id)
    shown = run_outs(session, [by_id[run_id] for run_id in wanted])
    keys = list(keys or DEFAULT_KEYS)
    series = read_points(session, wanted, keys, window, max_points)
    out = CompareOut(
        runs=shown,
        keys=keys,
        series={},
        planned={
            run_id: planned_sparsity(RunPlan.model_validate(by_id[run_id].plan), max_points or MAX_POINTS)
            for run_id in wanted
        },
        differences=differences(shown),
        pareto_ids=list(dict.fromkeys(point.run_id for point in frontier(shown))),
        baseline_id=baseline_id,
        colors={
            run_id: BASELINE_COLOR if run_id == baseline_id else PALETTE[index % len(PALETTE)]
            for index, run_id in enumerate(wanted)
        },
    )
    return out, series


def compare_runs(
    session: Session,
    run_ids: Sequence[int],
    keys: Sequence[str] | None,
    max_points: int | None,
    baseline_id: int | None = None,
) -> CompareOut:
    """The comparison as one model (the HTML report and the CLI use it)."""
    out, series = compare_data(session, run_ids, keys, max_points, baseline_id)
    out.series = {
        run_id: {key: series_out(Series.of(points), None) for key, points in by_key.items()}
        for run_id, by_key in series.items()
    }
    return out
