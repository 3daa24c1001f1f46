"""MLflow runs in and out: from a tracking server's REST API or an mlflow-export-import folder, and back out.

The folder format is mlflow-export-import's run export (export_file_version 2): `run.json` holding
`{"system": {...}, "mlflow": {"info", "params", "metrics", "tags", "inputs"}}` with every point of
every metric (`{"value", "timestamp", "step"}`), beside an optional `artifacts/` folder; an
experiment export is a folder of such run folders. `import-run` of mlflow-export-import reads
what `export_run` writes, and PruneLab's imports read both exports and export_file_version 1 (the
same fields at the top level).

An imported run keeps its MLflow experiment (by name), params, tags, status, times and every point
(one per step: PruneLab's store keeps the first value logged at a step). The source run's id is in
the tag `prunelab.imported_from`.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from prunelab.server import __version__
from prunelab.server.artifacts.service import recorded
from prunelab.server.artifacts.storage import ArtifactStore
from prunelab.server.metrics.service import MetricPoint, read_series, record_points
from prunelab.server.mlflow_api import service as mlflow
from prunelab.server.models import MlflowExperiment, MlflowRun, Run, RunParam, RunStatus, RunTagValue
from prunelab.server.runs import service as runs

API = "/api/2.0/mlflow"
SOURCE_TAG = "prunelab.imported_from"
HISTORY_PAGE = 25_000
WRITE_BATCH = 5000
EXPORT_FILE_VERSION = "2"


@dataclass
class SourceRun:
    """One MLflow run as read from a server or an export: what PruneLab stores of it."""

    info: dict[str, Any]
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    experiment_name: str = mlflow.DEFAULT_EXPERIMENT_NAME
    source: str = ""


class MlflowSourceError(Exception):
    """The tracking server or the folder could not be read; the message says what to do."""


# -- reading a tracking server -------------------------------------------------------------------------


class TrackingServer:
    """MLflow's REST API at `url` (the tracking URI, without /api/2.0/mlflow), with httpx."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url + API, headers=headers, timeout=timeout)

    def __enter__(self) -> TrackingServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise MlflowSourceError(f"cannot reach the MLflow tracking server at {self.url}: {error}") from None
        if answer.status_code != 200:
            try:
                body = answer.json()
                detail = f"{body.get('error_code', answer.status_code)}: {body.get('message', body)}"
            except ValueError:
                detail = f"HTTP {answer.status_code}: {answer.text[:200]}"
            raise MlflowSourceError(f"MLflow at {self.url} refused {path}: {detail}")
        return answer.json()

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        return self._call("GET", "/experiments/get", params={"experiment_id": experiment_id})["experiment"]

    def experiment_by_name(self, name: str) -> dict[str, Any]:
        return self._call("GET", "/experiments/get-by-name", params={"experiment_name": name})["experiment"]

    def experiments(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token = None
        while True:
            page = self._call("POST", "/experiments/search", json={"max_results": 1000, "page_token": token})
            found += page.get("experiments", [])
            token = page.get("next_page_token")
            if not token:
                return found

    def run_ids(self, experiment_ids: list[str]) -> list[str]:
        found: list[str] = []
        token = None
        while True:
            body = {"experiment_ids": experiment_ids, "max_results": 1000, "page_token": token}
            page = self._call("POST", "/runs/search", json=body)
            found += [run["info"]["run_id"] for run in page.get("runs", [])]
            token = page.get("next_page_token")
            if not token:
                return found

    def history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = []
        token = None
        while True:
            params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": HISTORY_PAGE}
            if token:
                params["page_token"] = token
            page = self._call("GET", "/metrics/get-history", params=params)
            points += [{k: m.get(k) for k in ("value", "timestamp", "step")} for m in page.get("metrics", [])]
            token = page.get("next_page_token")
            if not token:
                return points

    def run(self, run_id: str, experiment_names: dict[str, str]) -> SourceRun:
        run = self._call("GET", "/runs/get", params={"run_id": run_id})["run"]
        info, data = run["info"], run.get("data", {})
        experiment_id = str(info.get("experiment_id", "0"))
        if experiment_id not in experiment_names:
            experiment_names[experiment_id] = self.experiment(experiment_id)["name"]
        return SourceRun(
            info=info,
            params={p["key"]: p.get("value", "") for p in data.get("params", [])},
            tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
            metrics={m["key"]: self.history(run_id, m["key"]) for m in data.get("metrics", [])},
            experiment_name=experiment_names[experiment_id],
            source=f"{self.url}#run={run_id}",
        )


def read_server(
    url: str, experiment: str | None = None, run_ids: list[str] | None = None, token: str | None = None
) -> Iterator[SourceRun]:
    """The runs named, or those of one experiment (by name), or every active run on the server."""
    with TrackingServer(url, token) as server:
        names: dict[str, str] = {}
        if not run_ids:
            experiments = [server.experiment_by_name(experiment)] if experiment else server.experiments()
            names = {str(e["experiment_id"]): e["name"] for e in experiments}
            run_ids = server.run_ids(list(names))
        for run_id in run_ids:
            yield server.run(run_id, names)


# -- reading an mlflow-export-import folder ------------------------------------------------------------


def read_folder(folder: Path) -> list[SourceRun]:
    """The runs of a run export (`run.json` in `folder`) or an experiment export (run folders inside it)."""
    if not folder.is_dir():
        raise MlflowSourceError(f"{folder} is not a folder (an mlflow-export-import run or experiment export)")
    files = [folder / "run.json"] if (folder / "run.json").is_file() else sorted(folder.glob("*/run.json"))
    if not files:
        raise MlflowSourceError(f"{folder} holds no run.json: export runs with mlflow-export-import's export-run")
    experiment_name = _experiment_name(folder)
    return [_read_run_file(path, experiment_name) for path in files]


def _experiment_name(folder: Path) -> str | None:
    manifest = folder / "experiment.json"
    if not manifest.is_file():
        return None
    try:
        content = json.loads(manifest.read_text(encoding="utf-8"))
    except ValueError:
        return None
    experiment = content.get("mlflow", content).get("experiment", {})
    return experiment.get("name") if isinstance(experiment, dict) else None


def _read_run_file(path: Path, experiment_name: str | None) -> SourceRun:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MlflowSourceError(f"{path}: not a readable run.json ({error})") from None
    run = content.get("mlflow", content)  # export_file_version 2 nests the run under "mlflow"; 1 does not
    if not isinstance(run, dict) or not isinstance(run.get("info"), dict):
        raise MlflowSourceError(f"{path}: no run info: is it an mlflow-export-import run export?")
    tags = {str(k): str(v) for k, v in (run.get("tags") or {}).items()}
    return SourceRun(
        info=run["info"],
        params={str(k): str(v) for k, v in (run.get("params") or {}).items()},
        tags=tags,
        metrics={str(k): list(v) for k, v in (run.get("metrics") or {}).items()},
        experiment_name=experiment_name or tags.get("prunelab.experiment") or "Imported from MLflow",
        source=f"{path.parent}#run={run['info'].get('run_id', '?')}",
    )


# -- storing -------------------------------------------------------------------------------------------


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def store_run(session: Session, source: SourceRun, owner_id: int | None) -> MlflowRun:
    """One imported run: experiment (by name), params, tags, points, status and times."""
    experiment = mlflow.experiment_named(session, source.experiment_name[:500])
    info = source.info
    tags = {key: value for key, value in source.tags.items() if len(key) <= 250}
    tags[SOURCE_TAG] = source.source[:8000]
    row = mlflow.add_run(
        session,
        experiment,
        str(info.get("run_name") or ""),
        owner_id,
        str(info.get("user_id") or ""),
        int(info.get("start_time") or mlflow.now_ms()),
        tags,
    )
    mlflow.log_params(session, row.run_id, source.params)
    points = [
        MetricPoint(key[:200], int(point.get("step") or 0), _float(point.get("value")),
                    int(point.get("timestamp") or 0) / 1000.0)
        for key, history in source.metrics.items()
        for point in history
        if int(point.get("step") or 0) >= 0
    ]  # fmt: skip
    for start in range(0, len(points), WRITE_BATCH):
        record_points(session, row.run_id, points[start : start + WRITE_BATCH])
    row.run.started_at = datetime.fromtimestamp(row.start_time_ms / 1000, UTC)
    status = str(info.get("status") or "FINISHED")
    mlflow.end_run(session, row, "FINISHED" if status == "RUNNING" else status, info.get("end_time"))
    session.flush()
    return row


# -- exporting -----------------------------------------------------------------------------------------


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _spec_params(spec: dict[str, Any]) -> dict[str, str]:
    """A PruneLab spec as MLflow params: scalars as they are, nested values as JSON."""
    return {
        key: (json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value))[:6000]
        for key, value in spec.items()
    }


def export_run(session: Session, store: ArtifactStore, run_id: int, folder: Path) -> Path:
    """Write run `run_id` as mlflow-export-import's run folder (run.json, artifacts/); returns run.json's path."""
    run: Run = runs.get_run(session, run_id)
    row = session.get(MlflowRun, run_id)
    param_rows = session.execute(select(RunParam.key, RunParam.value).where(RunParam.run_id == run_id))
    params = {key: value for key, value in param_rows}
    tag_rows = session.execute(select(RunTagValue.key, RunTagValue.value).where(RunTagValue.run_id == run_id))
    tags = {key: value for key, value in tag_rows}
    if row is None:  # a run PruneLab trained: its spec is its params
        params = {**_spec_params(run.spec), **params}
    experiment = session.get(MlflowExperiment, row.experiment_id) if row is not None else None
    tags.setdefault(mlflow.RUN_NAME_TAG, run.name)
    tags["prunelab.run_id"] = str(run.id)
    tags["prunelab.experiment"] = experiment.name if experiment is not None else "PruneLab"
    if run.tags:
        tags["prunelab.tags"] = ",".join(run.tags)
    if run.note:
        tags["mlflow.note.content"] = run.note[:8000]
    series = read_series(session, run_id, None)
    metrics = {
        key: [
            {"value": value if value is not None else math.nan, "timestamp": round(wall * 1000), "step": step}
            for step, value, wall in zip(s.steps, s.values, s.wall_times, strict=True)
        ]
        for key, s in series.items()
    }
    start = row.start_time_ms if row is not None else _ms(run.started_at or run.created_at)
    end = row.end_time_ms if row is not None else _ms(run.finished_at)
    info = {
        "run_uuid": str(run.id),
        "run_id": str(run.id),
        "run_name": run.name,
        "experiment_id": str(row.experiment_id if row is not None else 0),
        "user_id": (row.user_id if row is not None else "") or (run.owner_name or ""),
        "status": mlflow.TO_MLFLOW.get(RunStatus(run.status), "RUNNING"),
        "start_time": start,
        "end_time": end,
        "lifecycle_stage": "active",
        "artifact_uri": "",
    }
    content = {
        "system": {
            "package_version": f"prunelab {__version__}",
            "script": "prunelab export mlflow",
            "export_file_version": EXPORT_FILE_VERSION,
            "export_time": int(time.time()),
            "_export_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "mlflow_version": "",
            "mlflow_tracking_uri": "",
            "platform": {"python_version": platform.python_version(), "system": platform.system()},
            "user": run.owner_name or "",
        },
        "mlflow": {
            "info": info,
            "params": params,
            "metrics": metrics,
            "tags": dict(sorted(tags.items())),
            "inputs": {"dataset_inputs": [], "model_inputs": []},
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.json"
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    _export_artifacts(store, run, folder / "artifacts")
    return path


def _export_artifacts(store: ArtifactStore, run: Run, folder: Path) -> None:
    for artifact in run.artifacts:
        folder.mkdir(parents=True, exist_ok=True)
        store.fetch_to(recorded(artifact), folder / PurePosixPath(artifact.storage_key).name)
