"""The MLflow tracking API over PruneLab's runs: experiments, runs, params, tags and the metric store.

An MLflow run is a PruneLab external run (it appears in the dashboard, compare and downloads like
any other) plus an `mlflow_runs` row naming its experiment; its run id is the PruneLab run id as a
string. Metrics go through `record_points`, so the policy is PruneLab's:

- one value per (run, key, step): the first write wins, so a retried `log_batch` never doubles a
  point. MLflow keeps every (value, timestamp) logged at a step; here a second value at the same
  step is dropped. `mlflow.log_metric(key, value)` without `step=` logs at step 0, so log with
  `step=` (Keras callbacks and `log_metrics(..., step=)` do) to keep a series.
- non-finite values (NaN, Infinity) are stored as gaps and served back as "NaN".
- timestamps are kept to the millisecond (stored as seconds).

Params are immutable (logging a key again with another value is INVALID_PARAMETER_VALUE, as in
MLflow); tags are overwritten. Deleting a run deletes it in PruneLab (its metrics and files with
it): there is no restore. Services flush; the request's session commits.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, Select, String, case, cast, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from prunelab.core.errors import InvalidFilter
from prunelab.server.artifacts.storage import ArtifactStore
from prunelab.server.kit import ownership
from prunelab.server.kit.identity import Principal
from prunelab.server.metrics import service as metrics
from prunelab.server.metrics.service import MetricPoint
from prunelab.server.metrics.store import Window, read_points
from prunelab.server.mlflow_api import schemas, search
from prunelab.server.mlflow_api.errors import MlflowApiError, invalid, not_found
from prunelab.server.models import MlflowExperiment, MlflowRun, Run, RunParam, RunStatus, RunTagValue, utcnow
from prunelab.server.runs import external, filters, listing
from prunelab.server.runs import service as runs
from prunelab.server.runs.filters import All, Filter, KeyCompare, MetricColumns

DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
PRUNELAB_KEY_LIMIT = metrics.MAX_KEY_LENGTH  # PruneLab's metric keys are shorter than MLflow's 250
MAX_STEP = 2**62  # PruneLab's step range (MLflow's is any 64-bit integer; negative steps are refused here)

TO_PRUNELAB = {
    "RUNNING": RunStatus.RUNNING,
    "SCHEDULED": RunStatus.QUEUED,
    "FINISHED": RunStatus.SUCCEEDED,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.CANCELLED,
}
TO_MLFLOW = {prunelab: mlflow for mlflow, prunelab in TO_PRUNELAB.items()}


def now_ms() -> int:
    return int(time.time() * 1000)


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


# -- experiments ---------------------------------------------------------------------------------------


def _default_experiment(session: Session) -> MlflowExperiment:
    experiment = session.get(MlflowExperiment, DEFAULT_EXPERIMENT_ID)
    if experiment is None:
        experiment = MlflowExperiment(id=DEFAULT_EXPERIMENT_ID, name=DEFAULT_EXPERIMENT_NAME, tags={})
        session.add(experiment)
        session.flush()
    return experiment


def experiment_json(experiment: MlflowExperiment) -> schemas.Json:
    return {
        "experiment_id": str(experiment.id),
        "name": experiment.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": "active",
        "creation_time": _ms(experiment.created_at),
        "last_update_time": _ms(experiment.updated_at),
        "tags": [{"key": key, "value": value} for key, value in sorted((experiment.tags or {}).items())],
    }


def _experiment_id(raw: str) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise invalid(f"Invalid experiment ID '{raw}'. Experiment ID must be a valid integer.") from None
    if not 0 <= value < 2**31:
        raise not_found(f"No Experiment with id={raw} exists")
    return value


def get_experiment(session: Session, experiment_id: str) -> MlflowExperiment:
    value = _experiment_id(experiment_id)
    if value == DEFAULT_EXPERIMENT_ID:
        return _default_experiment(session)
    experiment = session.get(MlflowExperiment, value)
    if experiment is None:
        raise not_found(f"No Experiment with id={experiment_id} exists")
    return experiment


def get_experiment_by_name(session: Session, name: str) -> MlflowExperiment:
    if name == DEFAULT_EXPERIMENT_NAME:
        return _default_experiment(session)
    experiment = session.scalars(select(MlflowExperiment).where(MlflowExperiment.name == name)).first()
    if experiment is None:
        raise not_found(f"Could not find experiment with name '{name}'")
    return experiment


def _check_name(name: str) -> None:
    if not name:
        raise invalid(f"Invalid experiment name: '{name}'")
    if len(name) > schemas.MAX_EXPERIMENT_NAME_LENGTH:
        raise invalid(f"'name' exceeds the maximum length of {schemas.MAX_EXPERIMENT_NAME_LENGTH} characters")


def create_experiment(session: Session, request: schemas.CreateExperiment) -> MlflowExperiment:
    """A new experiment; RESOURCE_ALREADY_EXISTS when the name is taken."""
    _check_name(request.name)
    _default_experiment(session)
    exists = session.scalars(select(MlflowExperiment.id).where(MlflowExperiment.name == request.name)).first()
    if exists is not None:
        raise MlflowApiError("RESOURCE_ALREADY_EXISTS", f"Experiment(name={request.name}) already exists.")
    for tag in request.tags:
        _check_key("tags.key", tag.key)
    experiment = MlflowExperiment(
        name=request.name,
        artifact_location=request.artifact_location,
        tags={tag.key: tag.value for tag in request.tags},
    )
    session.add(experiment)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent create of the same name won
        raise MlflowApiError("RESOURCE_ALREADY_EXISTS", f"Experiment(name={request.name}) already exists.") from None
    return experiment


def _fingerprint(*query: Any) -> str:
    return hashlib.sha256(json.dumps(query).encode()).hexdigest()[:16]


def _position(page_token: str | None, fingerprint: str, kinds: Sequence[type | tuple[type, ...]]) -> list[Any] | None:
    """The sort values (id last) where the previous page ended, each of its key's kind; None for the first page."""
    if not page_token:
        return None
    decoded = listing.decode_cursor(page_token)
    refused = invalid(f"Invalid page_token {page_token!r}: pass the next_page_token of the previous answer "
                      "to the same search (same filter, order_by and experiments)")  # fmt: skip
    if decoded is None or decoded[0] != fingerprint or not isinstance(decoded[1], list):
        raise refused
    values = [*decoded[1], decoded[2]]
    if len(values) != len(kinds):
        raise refused
    for value, kind in zip(values, kinds, strict=True):
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise refused
    if any(isinstance(value, str) and "\x00" in value for value in values):
        raise refused
    return values


def _keyset_page(
    session: Session,
    query: Select[Any],
    keys: Sequence[tuple[Any, bool, bool]],
    position: list[Any] | None,
    max_results: int,
    fingerprint: str,
) -> tuple[list[int], str | None]:
    """The ids of one page of `query` (its rows ordered by `keys`, an id last) after `position`; the next token."""
    labelled = [value.label(f"sort_{index}") for index, (value, _, _) in enumerate(keys)]
    where = [] if position is None else [listing.after_position(keys, position)]
    rows = session.execute(
        query.add_columns(*labelled).where(*where).order_by(*listing.ordering(keys)).limit(max_results + 1)
    ).all()
    ids = [int(row[-1]) for row in rows[:max_results]]
    token = None
    if len(rows) > max_results:
        last = list(rows[max_results - 1][-len(keys) :])
        token = listing.encode_cursor(fingerprint, last[:-1], int(last[-1]))
    return ids, token


def _compiled(parsed: Filter | None, columns: MetricColumns) -> ColumnElement[bool]:
    try:
        return filters.clause(parsed, columns)
    except InvalidFilter as error:
        raise invalid(f"Invalid search: {error}") from None


def search_experiments(session: Session, request: schemas.SearchExperiments) -> schemas.Json:
    """Experiments by name filter (`name = 'x'`, `name LIKE 'x%'`), newest first, filtered and paged in SQL."""
    parsed = search.parse_filter(request.filter)
    parts = parsed.parts if isinstance(parsed, All) else () if parsed is None else (parsed,)
    for part in parts:
        if not (isinstance(part, KeyCompare) and (part.source, part.key) == ("column", "run_name")):
            raise invalid("experiments/search filters on the experiment's name only: name = '...' or name LIKE '...'")
    if request.view_type == "DELETED_ONLY":
        return {"experiments": []}  # experiments are never deleted here
    _default_experiment(session)
    names: dict[str, Any] = {"run_name": MlflowExperiment.name}
    condition = _compiled(parsed, MetricColumns(names))
    fingerprint = _fingerprint("experiments", request.filter)
    keys = [(MlflowExperiment.id, True, False)]
    position = _position(request.page_token, fingerprint, [int])
    query = select().select_from(MlflowExperiment).where(condition)
    ids, token = _keyset_page(session, query, keys, position, request.max_results, fingerprint)
    found = {
        experiment.id: experiment
        for experiment in session.scalars(select(MlflowExperiment).where(MlflowExperiment.id.in_(ids)))
    }
    answer: schemas.Json = {"experiments": [experiment_json(found[experiment_id]) for experiment_id in ids]}
    if token:
        answer["next_page_token"] = token
    return answer


# -- runs ----------------------------------------------------------------------------------------------


def _check_key(path: str, key: str, limit: int = schemas.MAX_ENTITY_KEY_LENGTH) -> None:
    if not key:
        raise invalid(f"Missing value for required parameter '{path}'.")
    if len(key) > limit:
        raise invalid(f"'{path}' exceeds the maximum length of {limit} characters")


def _check_value(path: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise invalid(f"'{path}' exceeds the maximum length of {limit} characters")


def open_external_run(session: Session, name: str, owner_id: int | None, source: str = "mlflow") -> Run:
    """The PruneLab side of an MLflow run (or an import): an external run, running, never queued."""
    return external.create_external_run(session, name[:200], None, owner_id, source=source)


def find_run(session: Session, run_ref: str) -> MlflowRun:
    """The MLflow run named by an MLflow run id; RESOURCE_DOES_NOT_EXIST for anything else."""
    if not run_ref:
        raise invalid("Missing value for required parameter 'run_id'.")
    if not run_ref.isdigit() or len(run_ref) > 12:
        raise not_found(f"Run with id={run_ref} not found")
    row = session.get(MlflowRun, int(run_ref))
    if row is None:
        raise not_found(f"Run with id={run_ref} not found")
    return row


def writable_run(session: Session, principal: Principal, run_ref: str) -> MlflowRun:
    """The run, when `principal` may change it (its owner, an admin, the service token)."""
    row = find_run(session, run_ref)
    reason = ownership.refusal(session, principal, "run_id", row.run_id)
    if reason is not None:
        raise MlflowApiError("PERMISSION_DENIED", reason)
    return row


def create_run(session: Session, principal: Principal, request: schemas.CreateRun) -> MlflowRun:
    """An external run in an experiment, RUNNING from `start_time`; the run name is also the mlflow.runName tag."""
    experiment = get_experiment(session, request.experiment_id or str(DEFAULT_EXPERIMENT_ID))
    tags = {tag.key: tag.value for tag in request.tags}
    for key, value in tags.items():
        _check_key("tags.key", key)
        _check_value("tags.value", value, schemas.MAX_TAG_VAL_LENGTH)
    user = request.user_id or tags.get(USER_TAG, "") or (principal.name or "")
    return add_run(session, experiment, request.run_name, principal.user_id, user, request.start_time or now_ms(), tags)


def add_run(
    session: Session,
    experiment: MlflowExperiment,
    run_name: str,
    owner_id: int | None,
    user_id: str,
    start_time_ms: int,
    tags: dict[str, str],
) -> MlflowRun:
    """Store an MLflow run (an external run and its MLflow row) with its tags; RUNNING until updated."""
    name = run_name or tags.get(RUN_NAME_TAG) or ""
    run = open_external_run(session, name or "mlflow run", owner_id)
    if not name:
        name = f"mlflow run {run.id}"
        run.name = name
    tags = {**tags, RUN_NAME_TAG: name}
    row = MlflowRun(run_id=run.id, experiment_id=experiment.id, user_id=user_id[:250], start_time_ms=start_time_ms)
    session.add(row)
    session.add_all(RunTagValue(run_id=run.id, key=key, value=value) for key, value in tags.items())
    session.flush()
    return row


def experiment_named(session: Session, name: str) -> MlflowExperiment:
    """The experiment called `name`, made when there is none (imports)."""
    try:
        return get_experiment_by_name(session, name)
    except MlflowApiError:
        return create_experiment(session, schemas.CreateExperiment(name=name))


def _set_status(session: Session, row: MlflowRun, mlflow_status: str, end_time_ms: int | None) -> None:
    """MLflow lets a client set any status; a running run that ends is finished as external runs are."""
    run, status = row.run, TO_PRUNELAB[mlflow_status]
    if run.status == RunStatus.RUNNING and status in external.FINISHED_BY_CLIENT:
        error = "the MLflow client set the run's status to FAILED" if status == RunStatus.FAILED else None
        external.finish_external_run(session, run.id, status, error, None)
    else:
        run.status = status
        run.finished_at = utcnow() if status.finished else None
    row.end_time_ms = (end_time_ms or row.end_time_ms or now_ms()) if status.finished else None


def end_run(session: Session, row: MlflowRun, status: str, end_time_ms: int | None) -> None:
    """Give an MLflow run its final MLflow status (FINISHED, FAILED, KILLED) and end time (imports)."""
    _set_status(session, row, status if status in TO_PRUNELAB else "FINISHED", end_time_ms)


def log_params(session: Session, run_id: int, params: dict[str, str]) -> None:
    """Params of a run, checked as log-batch checks them (imports)."""
    _log_params(session, run_id, [schemas.KeyValue(key=k, value=v) for k, v in params.items()])


def set_tags(session: Session, run_id: int, tags: dict[str, str]) -> None:
    _set_tags(session, run_id, _checked_tags([schemas.KeyValue(key=k, value=v) for k, v in tags.items()]))


def update_run(session: Session, principal: Principal, request: schemas.UpdateRun) -> MlflowRun:
    """Set status (a finished status ends the PruneLab run), end time and name."""
    row = writable_run(session, principal, request.ref())
    run = row.run
    if request.status is not None:
        _set_status(session, row, request.status, request.end_time)
    if request.end_time is not None:
        row.end_time_ms = request.end_time
    if request.run_name:
        run.name = request.run_name[:200]
        _set_tags(session, run.id, {RUN_NAME_TAG: request.run_name})
    session.flush()
    return row


def delete_run(session: Session, store: ArtifactStore, principal: Principal, run_ref: str) -> None:
    """Delete the PruneLab run (metrics, params, tags and files); a running one is ended as KILLED first."""
    row = writable_run(session, principal, run_ref)
    if row.run.status == RunStatus.RUNNING:
        row.run.status = RunStatus.CANCELLED
        row.run.finished_at = utcnow()
        session.flush()
    runs.delete_run(session, store, row.run_id)


def _touch(run: Run) -> None:
    if run.status == RunStatus.RUNNING:
        run.heartbeat_at = utcnow()


def _metric_value(path: str, value: float | str) -> float:
    if isinstance(value, str):
        try:
            return float(value)  # "NaN", "Infinity", "-Infinity" (protobuf JSON), or a number sent as a string
        except ValueError:
            raise invalid(
                f"Invalid value {value!r} for parameter '{path}' supplied: "
                "Please specify value as a valid double (64-bit floating point)"
            ) from None
    return float(value)


def _at(path: str, index: int, field: str) -> str:
    """The JSON path MLflow names in messages: `metrics[3].key` in a batch, `key` in a single-item request."""
    return f"{path}[{index}].{field}" if path else field


def _points(metrics_in: Sequence[schemas.MetricIn], path: str = "metrics") -> list[MetricPoint]:
    points = []
    for index, metric in enumerate(metrics_in):
        _check_key(_at(path, index, "key"), metric.key, PRUNELAB_KEY_LIMIT)
        if metric.timestamp < 0:
            raise invalid(f"Invalid value {metric.timestamp} for parameter '{_at(path, index, 'timestamp')}' supplied: "
                          "Timestamp must be a nonnegative long (64-bit integer)")  # fmt: skip
        if not 0 <= metric.step <= MAX_STEP:
            raise invalid(f"Invalid value {metric.step} for parameter '{_at(path, index, 'step')}' supplied: "
                          f"PruneLab stores steps from 0 to {MAX_STEP}")  # fmt: skip
        value = _metric_value(_at(path, index, "value"), metric.value)
        points.append(MetricPoint(metric.key, metric.step, value, metric.timestamp / 1000.0))
    return points


def _log_params(session: Session, run_id: int, params: Sequence[schemas.KeyValue], path: str = "params") -> None:
    seen: dict[str, str] = {}
    for index, param in enumerate(params):
        _check_key(_at(path, index, "key"), param.key)
        _check_value(_at(path, index, "value"), param.value, schemas.MAX_PARAM_VAL_LENGTH)
        if param.key in seen and seen[param.key] != param.value:
            raise invalid(f"Duplicate parameter keys have been submitted: ['{param.key}']. Please ensure "
                          "the request contains only one param value per param key.")  # fmt: skip
        seen[param.key] = param.value
    if not seen:
        return
    query = select(RunParam.key, RunParam.value).where(RunParam.run_id == run_id, RunParam.key.in_(seen))
    stored = {key: value for key, value in session.execute(query)}
    for key, value in seen.items():
        if key in stored and stored[key] != value:
            raise invalid(
                f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                f"value='{stored[key]}' for run ID='{run_id}'. Attempted logging new value '{value}'."
            )
        if key not in stored:
            session.add(RunParam(run_id=run_id, key=key, value=value))


def _set_tags(session: Session, run_id: int, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        row = session.get(RunTagValue, (run_id, key))
        if row is None:
            session.add(RunTagValue(run_id=run_id, key=key, value=value))
        else:
            row.value = value


def _checked_tags(tags: Sequence[schemas.KeyValue], path: str = "tags") -> dict[str, str]:
    for index, tag in enumerate(tags):
        _check_key(_at(path, index, "key"), tag.key)
        _check_value(_at(path, index, "value"), tag.value, schemas.MAX_TAG_VAL_LENGTH)
    return {tag.key: tag.value for tag in tags}


def log_batch(session: Session, principal: Principal, request: schemas.LogBatch) -> None:
    """Metrics, params and tags in one request, within MLflow's limits; all or nothing."""
    for entity, limit, count in (
        ("metrics", schemas.MAX_METRICS_PER_BATCH, len(request.metrics)),
        ("params", schemas.MAX_PARAMS_TAGS_PER_BATCH, len(request.params)),
        ("tags", schemas.MAX_PARAMS_TAGS_PER_BATCH, len(request.tags)),
        (
            "metrics, params, and tags",
            schemas.MAX_ENTITIES_PER_BATCH,
            len(request.metrics) + len(request.params) + len(request.tags),
        ),
    ):
        if count > limit:
            raise invalid(
                f"A batch logging request can contain at most {limit} {entity}. Got {count} {entity}. "
                f"Please split up {entity} across multiple requests and try again."
            )
    row = writable_run(session, principal, request.ref())
    points = _points(request.metrics)
    tags = _checked_tags(request.tags)
    _log_params(session, row.run_id, request.params)
    _set_tags(session, row.run_id, tags)
    metrics.record_points(session, row.run_id, points)
    _touch(row.run)
    session.flush()


def log_metric(session: Session, principal: Principal, request: schemas.LogMetric) -> None:
    row = writable_run(session, principal, request.ref())
    metrics.record_points(session, row.run_id, _points([request], path=""))
    _touch(row.run)
    session.flush()


def log_param(session: Session, principal: Principal, request: schemas.LogParam) -> None:
    row = writable_run(session, principal, request.ref())
    _log_params(session, row.run_id, [request], path="")
    session.flush()


def set_tag(session: Session, principal: Principal, request: schemas.SetTag) -> None:
    row = writable_run(session, principal, request.ref())
    tags = _checked_tags([request], path="")
    _set_tags(session, row.run_id, tags)
    if RUN_NAME_TAG in tags:
        row.run.name = tags[RUN_NAME_TAG][:200] or row.run.name
    session.flush()


# -- reading -------------------------------------------------------------------------------------------


def _json_value(value: float | None) -> float | str:
    return "NaN" if value is None or not math.isfinite(value) else value


def _info_json(row: Row[*tuple[Any, ...]]) -> schemas.Json:
    info: schemas.Json = {
        "run_id": str(row.run_id),
        "run_uuid": str(row.run_id),
        "run_name": row.name,
        "experiment_id": str(row.experiment_id),
        "user_id": row.user_id,
        "status": TO_MLFLOW.get(RunStatus(row.status), "RUNNING"),
        "start_time": row.start_time_ms,
        "artifact_uri": "",
        "lifecycle_stage": "active",
    }
    if row.end_time_ms is not None:
        info["end_time"] = row.end_time_ms
    return info


def _by_run(rows: Iterable[Row[*tuple[Any, ...]]], run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """(run_id, key, value) rows as {run id: {key: value}}, every run of `run_ids` present."""
    found: dict[int, dict[str, Any]] = {run_id: {} for run_id in run_ids}
    for run_id, key, value in rows:
        found[run_id][key] = value
    return found


def runs_json(session: Session, run_ids: Sequence[int]) -> list[schemas.Json]:
    """MLflow's view of runs (info, latest metric values, params, tags) in the order of `run_ids`.

    Four set-based queries for a page, whatever its size, reading only the columns the reply shows.
    """
    if not run_ids:
        return []
    infos = {
        row.run_id: row
        for row in session.execute(
            select(MlflowRun.run_id, MlflowRun.experiment_id, MlflowRun.user_id, MlflowRun.start_time_ms,
                   MlflowRun.end_time_ms, Run.name, Run.status)
            .join(Run, Run.id == MlflowRun.run_id)
            .where(MlflowRun.run_id.in_(run_ids))
        )
    }  # fmt: skip
    latest = metrics.latest_values_of_runs(session, run_ids)
    params = _by_run(
        session.execute(select(RunParam.run_id, RunParam.key, RunParam.value).where(RunParam.run_id.in_(run_ids))),
        run_ids,
    )
    tags = _by_run(
        session.execute(
            select(RunTagValue.run_id, RunTagValue.key, RunTagValue.value).where(RunTagValue.run_id.in_(run_ids))
        ),
        run_ids,
    )
    return [
        {
            "info": _info_json(infos[run_id]),
            "data": {
                # The latest value of each key (its timestamp is not kept with it: 0).
                "metrics": [
                    {"key": key, "value": _json_value(value), "timestamp": 0, "step": step}
                    for key, (step, value) in sorted(latest[run_id].items())
                ],
                "params": [{"key": key, "value": value} for key, value in sorted(params[run_id].items())],
                "tags": [{"key": key, "value": value} for key, value in sorted(tags[run_id].items())],
            },
            "inputs": {},
        }
        for run_id in run_ids
    ]


def get_run(session: Session, run_ref: str) -> schemas.Json:
    return runs_json(session, [find_run(session, run_ref).run_id])[0]


# What `attributes.<name>` reads in a search, as MLflow shows it (`runs_json`).
RUN_ATTRIBUTES: dict[str, ColumnElement[Any]] = {
    "run_id": cast(MlflowRun.run_id, String),
    "run_name": Run.name,  # type: ignore[dict-item]
    "status": case(*((Run.status == ours.value, theirs) for ours, theirs in TO_MLFLOW.items()), else_="RUNNING"),
    "start_time": MlflowRun.start_time_ms,  # type: ignore[dict-item]
    "end_time": MlflowRun.end_time_ms,  # type: ignore[dict-item]
    "user_id": MlflowRun.user_id,  # type: ignore[dict-item]
    "experiment_id": cast(MlflowRun.experiment_id, String),
    "lifecycle_stage": literal("active", String),
}
NUMERIC_KINDS = (int, float)


def _sort_kind(order: search.Order) -> type | tuple[type, ...]:
    if order.source == "latest":
        return NUMERIC_KINDS
    if order.source == "column" and order.key in search.NUMERIC_ATTRIBUTES:
        return int
    return str


def search_runs(session: Session, request: schemas.SearchRuns) -> schemas.Json:
    """Runs of the experiments that pass the filter, ordered (newest first by default) and paged, all in SQL."""
    parsed = search.parse_filter(request.filter)
    orders = search.parse_order_by(request.order_by)
    if request.run_view_type == "DELETED_ONLY":
        return {}  # a deleted run is gone
    experiment_ids = [_experiment_id(raw) for raw in request.experiment_ids]
    columns = MetricColumns(RUN_ATTRIBUTES)
    condition = _compiled(parsed, columns)
    try:
        keys: list[tuple[Any, bool, bool]] = [(columns.of(o.source, o.key), o.descending, True) for o in orders]
    except InvalidFilter as error:
        raise invalid(f"Invalid order_by: {error}") from None
    kinds = [_sort_kind(order) for order in orders]
    # Then MLflow's own order: newest first, ties by id (newest first too).
    keys += [(MlflowRun.start_time_ms, True, False), (MlflowRun.run_id, True, False)]
    kinds += [int, int]
    fingerprint = _fingerprint("runs", request.filter, request.order_by, sorted(experiment_ids))
    position = _position(request.page_token, fingerprint, kinds)
    query = columns.join(
        select()
        .select_from(MlflowRun)
        .join(Run, Run.id == MlflowRun.run_id)
        .where(MlflowRun.experiment_id.in_(experiment_ids), condition)
    )
    ids, token = _keyset_page(session, query, keys, position, request.max_results, fingerprint)
    page = runs_json(session, ids)
    answer: schemas.Json = {"runs": page} if page else {}
    if token:
        answer["next_page_token"] = token
    return answer


def _history_json(key: str, steps: Sequence[int], values: Sequence[float], wall_times: Sequence[float]) -> list[Any]:
    return [
        {"key": key, "value": _json_value(None if math.isnan(value) else value),
         "timestamp": round(wall_time * 1000), "step": int(step)}
        for step, value, wall_time in zip(steps, values, wall_times, strict=True)
    ]  # fmt: skip


def metric_history(
    session: Session, run_ref: str, key: str, max_results: int | None, page_token: str | None
) -> schemas.Json:
    """Every point of one metric in step order; paged by step when `max_results` is given."""
    row = find_run(session, run_ref)
    if max_results is not None and max_results <= 0:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results' supplied. "
                      "It must be a positive integer.")  # fmt: skip
    first = None
    if page_token:
        if not page_token.lstrip("-").isdigit():
            raise invalid(f"Invalid page token {page_token!r}: pass the next_page_token of the previous answer")
        first = int(page_token)
    points = read_points(session, [row.run_id], [key], Window(first=first))[row.run_id][key]
    answer: schemas.Json = {}
    if max_results is not None and len(points) > max_results:
        answer["next_page_token"] = str(int(points.steps[max_results]))
        points = points.between(int(points.steps[0]), int(points.steps[max_results - 1]))
    history = _history_json(key, points.steps.tolist(), points.values.tolist(), points.wall_times.tolist())
    if history:
        answer["metrics"] = history
    return answer


def metric_history_bulk_interval(
    session: Session,
    run_refs: Sequence[str],
    key: str,
    start_step: int | None,
    end_step: int | None,
    max_results: int,
) -> schemas.Json:
    """Each run's metric sampled to about `max_results` points in [start_step, end_step], extremes kept.

    PruneLab's store answers from its min/max pyramid, so the cost follows `max_results`, not the history.
    """
    if not run_refs:
        raise invalid("Missing value for required parameter 'run_ids'.")
    if len(run_refs) > schemas.MAX_RUNS_PER_BULK_INTERVAL:
        raise invalid(
            f"GetMetricHistoryBulkInterval request must specify at most {schemas.MAX_RUNS_PER_BULK_INTERVAL} "
            f"run_ids. Received {len(run_refs)} run_ids."
        )
    if not 1 <= max_results <= schemas.MAX_RESULTS_PER_RUN:
        raise invalid(f"max_results must be between 1 and {schemas.MAX_RESULTS_PER_RUN}.")
    if (start_step is None) != (end_step is None):
        raise invalid("If either start step or end step are specified, both must be specified.")
    if start_step is not None and end_step is not None and start_step > end_step:
        raise invalid(
            f"end_step must be greater than start_step. Found start_step={start_step} and end_step={end_step}."
        )
    rows = [find_run(session, ref) for ref in dict.fromkeys(run_refs)]
    window = Window(first=start_step, last=end_step)
    series = read_points(session, [row.run_id for row in rows], [key], window, max_points=max_results)
    found = []
    for row in sorted(rows, key=lambda r: str(r.run_id)):
        points = series[row.run_id][key]
        for entry in _history_json(key, points.steps.tolist(), points.values.tolist(), points.wall_times.tolist()):
            found.append({**entry, "run_id": str(row.run_id)})
    return {"metrics": found} if found else {}
