"""Many finished-looking runs at once, for list tests and benchmarks: names, statuses, tags, owners, summaries, metrics.

Rows are inserted in bulk (one INSERT per batch), their latest values through `record_points_of_runs`
(`record_points` for many runs: the one writer of metric points), and the tables are then analyzed, as
PostgreSQL's "Populating a Database" advises after a bulk load (autovacuum would do it within a minute
on a server that runs it; a query planned before that guesses every table's size). Everything derives from the seed, and
`SeededRun` says what each run holds, so a test can evaluate a filter or a sort by brute force and compare.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import insert, text

from prunelab.core.plans import resolve_plan
from prunelab.core.specs import RunSpec
from prunelab.server.db import session_scope
from prunelab.server.metrics.service import MetricPoint, record_points_of_runs
from prunelab.server.models import MlflowExperiment, MlflowRun, Run, RunParam, RunStatus, RunTagValue

WORDS = ("alpha", "bravo", "cifar", "delta", "mnist", "sweep", "prune", "dense", "my run", "zeta")
TAGS = ("sweep", "dense", "ablation", "best", "Sweep2", "p_1", "pX1")
KINDS = ("polynomial", "constant")
LATEST_KEYS = ("loss", "accuracy", "measured_sparsity", "test_accuracy")
START = datetime(2026, 10, 20, tzinfo=UTC)


@dataclass(frozen=True)
class SeededRun:
    id: int
    name: str
    note: str
    status: str
    kind: str
    tags: tuple[str, ...]
    owner_id: int | None
    created_at: datetime
    summary: dict[str, Any] | None
    latest: dict[str, float | None]
    target_sparsity: float


def stored_spec(spec: RunSpec) -> dict[str, Any]:
    """A benchmark's run spec as stored: a tfmot run without the engine fields (their defaults). The benchmarks
    serve the same rows to an API at an older commit (issue 24's "before"), whose spec has no such fields and
    forbids extras; the code of today reads a missing field as its default."""
    return spec.model_dump(mode="json", exclude={"engine", "backend"} if spec.engine == "tfmot" else None)


@cache
def _spec_and_plan(kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    schedule: dict[str, Any] = (
        {"kind": "polynomial", "final_sparsity": 0.8, "frequency": 7}
        if kind == "polynomial"
        else {"kind": "constant", "target_sparsity": 0.5, "begin_step": 0, "end_step": -1, "frequency": 7}
    )
    spec = RunSpec.model_validate(
        {"name": "seeded", "dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 64, "schedule": schedule}
    )
    return stored_spec(spec), resolve_plan(spec).model_dump(mode="json")


def _maybe(rng: random.Random, value: float, blank: float = 0.1) -> float | None:
    return None if rng.random() < blank else value


def describe(index: int, rng: random.Random, owner_ids: Sequence[int | None]) -> dict[str, Any]:
    """One run's columns and latest values, drawn from `rng` (a few of everything, some blanks and ties)."""
    kind = rng.choice(KINDS)
    status = rng.choice(list(RunStatus))
    accuracy = round(rng.uniform(0.9, 1.0), 3)  # rounded: ties in sorts
    summary: dict[str, Any] | None = None
    if status == RunStatus.SUCCEEDED:
        summary = {
            "test_loss": round(rng.uniform(0.01, 0.5), 4),
            "measured_sparsity": round(rng.uniform(0.4, 0.95), 3),
            "keras_zip_bytes": rng.randrange(10_000, 200_000),
            "wall_time_s": round(rng.uniform(5, 500), 1),
            "steps": 42,
            "coverage": {"dense_1": {"wrapped": True, "sparsity": 0.8}},
        }
        if rng.random() < 0.8:  # else only the latest value has it
            summary["test_accuracy"] = accuracy
    latest: dict[str, float | None] = {
        "loss": _maybe(rng, round(rng.uniform(0.01, 2.0), 3)),
        "accuracy": _maybe(rng, accuracy),
        "measured_sparsity": _maybe(rng, round(rng.uniform(0.0, 0.9), 3)),
    }
    if status == RunStatus.SUCCEEDED:
        latest["test_accuracy"] = _maybe(rng, round(accuracy - 0.002, 4), blank=0.2)
    return {
        "name": f"{rng.choice(WORDS)} {index}" if rng.random() < 0.5 else f"{rng.choice(WORDS)}-{index}",
        "note": rng.choice(("", "", "baseline for mnist", "rerun")),
        "status": status.value,
        "kind": kind,
        "tags": sorted(rng.sample(TAGS, rng.randrange(0, 3))),
        "owner_id": rng.choice(list(owner_ids)),
        # Pairs of runs a few minutes apart, in either order and sometimes at the same time: ties broken by id.
        "created_at": START + timedelta(minutes=7 * (index // 2) + rng.randrange(0, 3)),
        "summary": summary,
        "latest": latest,
    }


def insert_runs(
    count: int, seed: int = 0, owner_ids: Sequence[int | None] = (None,), batch: int = 2_000, first_index: int = 0
) -> list[SeededRun]:
    """Insert `count` runs (bulk INSERTs of `batch` rows) and their latest values; return what each holds."""
    rng = random.Random(seed)
    seeded: list[SeededRun] = []
    for start in range(first_index, first_index + count, batch):
        described = [describe(index, rng, owner_ids) for index in range(start, min(first_index + count, start + batch))]
        rows = []
        for run in described:
            spec, plan = _spec_and_plan(run["kind"])
            rows.append(
                {
                    "name": run["name"],
                    "note": run["note"],
                    "status": run["status"],
                    "spec": spec,
                    "plan": plan,
                    "summary": run["summary"],
                    "tags": run["tags"],
                    "owner_id": run["owner_id"],
                    "created_at": run["created_at"],
                    "finished_at": run["created_at"] if RunStatus(run["status"]).finished else None,
                }
            )
        with session_scope() as session:
            ids = session.scalars(insert(Run).returning(Run.id, sort_by_parameter_order=True), rows).all()
            record_points_of_runs(
                session,
                {
                    run_id: [
                        MetricPoint(key, 42, float("nan") if value is None else value, 1.7e9)
                        for key, value in run["latest"].items()
                    ]
                    for run_id, run in zip(ids, described, strict=True)
                },
            )
        for run_id, run in zip(ids, described, strict=True):
            seeded.append(
                SeededRun(
                    id=run_id,
                    name=run["name"],
                    note=run["note"],
                    status=run["status"],
                    kind=run["kind"],
                    tags=tuple(run["tags"]),
                    owner_id=run["owner_id"],
                    created_at=run["created_at"],
                    summary=run["summary"],
                    latest=run["latest"],
                    target_sparsity=float(_spec_and_plan(run["kind"])[1]["target_sparsity"]),
                )
            )
    analyze("runs", "latest_metrics")
    return seeded


def analyze(*tables: str) -> None:
    """Refresh the planner's statistics of `tables` (PostgreSQL and SQLite both read them)."""
    with session_scope() as session:
        for table in tables:
            session.execute(text(f"ANALYZE {table}"))


@dataclass(frozen=True)
class SeededMlflowRun:
    """A seeded run as MLflow's API shows it: `run` plus its MLflow fields, params and key/value tags."""

    run: SeededRun
    experiment_id: int
    user_id: str
    start_time_ms: int
    end_time_ms: int | None
    params: dict[str, str]
    tags: dict[str, str]

    @property
    def id(self) -> int:
        return self.run.id


MLFLOW_USERS = ("ana", "bo", "Ana")
LEARNING_RATES = ("0.1", "0.01", "0.001", "1e-3")
TEAMS = ("vision", "Vision", "audio", "vis_ion", "v%s")


def insert_mlflow_runs(count: int, experiment_id: int = 0, seed: int = 0, batch: int = 2_000) -> list[SeededMlflowRun]:
    """`insert_runs` as runs of an MLflow experiment (made when missing), with what MLflow's API shows of them.

    Params `kind` and (mostly) `lr`; tags `mlflow.runName`, `<tag>: yes` for each PruneLab tag and (mostly) `team`;
    start times three runs a second (ties), end times for most, three users. Latest metric values: `insert_runs`'.
    """
    with session_scope() as session:
        if session.get(MlflowExperiment, experiment_id) is None:
            name = "Default" if experiment_id == 0 else f"seeded {experiment_id}"
            session.add(MlflowExperiment(id=experiment_id, name=name, tags={}))
    rng = random.Random(seed + 1)
    seeded: list[SeededMlflowRun] = []
    for index, run in enumerate(insert_runs(count, seed=seed, batch=batch)):
        params = {"kind": run.kind}
        if rng.random() < 0.8:
            params["lr"] = rng.choice(LEARNING_RATES)
        tags = {"mlflow.runName": run.name, **{tag: "yes" for tag in run.tags}}
        if rng.random() < 0.8:
            tags["team"] = rng.choice(TEAMS)
        start_ms = 1_700_000_000_000 + 1000 * (index // 3)
        end_ms = start_ms + rng.randrange(1, 10_000) if rng.random() < 0.7 else None
        seeded.append(SeededMlflowRun(run, experiment_id, rng.choice(MLFLOW_USERS), start_ms, end_ms, params, tags))
    for first in range(0, count, batch):
        part = seeded[first : first + batch]
        with session_scope() as session:
            session.execute(
                insert(MlflowRun),
                [
                    {"run_id": r.id, "experiment_id": r.experiment_id, "user_id": r.user_id,
                     "start_time_ms": r.start_time_ms, "end_time_ms": r.end_time_ms}
                    for r in part
                ],
            )  # fmt: skip
            param_rows = [{"run_id": r.id, "key": k, "value": v} for r in part for k, v in r.params.items()]
            session.execute(insert(RunParam), param_rows)
            tag_rows = [{"run_id": r.id, "key": k, "value": v} for r in part for k, v in r.tags.items()]
            session.execute(insert(RunTagValue), tag_rows)
    analyze("mlflow_runs", "run_params", "run_tag_values")
    return seeded
