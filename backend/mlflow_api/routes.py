"""HTTP routes of the MLflow tracking API subset, at MLflow's paths and methods (mlflow/protos/service.proto).

Point MLflow's client at PruneLab's root URL: `mlflow.set_tracking_uri("http://127.0.0.1:8000")`
(the client appends /api/2.0/mlflow/...); with sign-in on, MLFLOW_TRACKING_TOKEN carries a PruneLab
API token as `Authorization: Bearer`. Writes to a run are its owner's (or an admin's), checked here
since the run id travels in the body.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from prunelab.server.kit.dependencies import SessionDep, StoreDep
from prunelab.server.kit.identity import PrincipalDep
from prunelab.server.metrics.replies import json_response
from prunelab.server.mlflow_api import schemas, service
from prunelab.server.mlflow_api.errors import PREFIX, invalid

# MLflow's error statuses (backend/mlflow_api/errors.py), each answered in MLflow's error shape.
MLFLOW_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.MlflowErrorOut, "description": "INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS, ..."},
    403: {"model": schemas.MlflowErrorOut, "description": "PERMISSION_DENIED: the run is another user's."},
    404: {"model": schemas.MlflowErrorOut, "description": "RESOURCE_DOES_NOT_EXIST."},
}


def no_nul_in_query(request: Request) -> None:
    """A NUL in a query parameter is INVALID_PARAMETER_VALUE (PostgreSQL text cannot hold it); bodies check theirs."""
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise invalid(f"{name} must not contain NUL characters")


router = APIRouter(prefix=PREFIX, tags=["mlflow"], responses=MLFLOW_ERRORS, dependencies=[Depends(no_nul_in_query)])
Json = dict[str, Any]
EMPTY: Json = {}


@router.post("/experiments/create")
def create_experiment(request: schemas.CreateExperiment, session: SessionDep) -> Json:
    """Create an experiment; RESOURCE_ALREADY_EXISTS when its name is taken."""
    return {"experiment_id": str(service.create_experiment(session, request).id)}


@router.get("/experiments/get")
def get_experiment(experiment_id: Annotated[str, Query(max_length=20)], session: SessionDep) -> Json:
    """One experiment by id ("0" is MLflow's Default experiment)."""
    return {"experiment": service.experiment_json(service.get_experiment(session, experiment_id))}


@router.get("/experiments/get-by-name")
def get_experiment_by_name(
    experiment_name: Annotated[str, Query(max_length=schemas.MAX_EXPERIMENT_NAME_LENGTH)], session: SessionDep
) -> Json:
    """One experiment by name; RESOURCE_DOES_NOT_EXIST when there is none."""
    return {"experiment": service.experiment_json(service.get_experiment_by_name(session, experiment_name))}


@router.post("/experiments/search")
def search_experiments(request: schemas.SearchExperiments, session: SessionDep) -> Json:
    """Experiments, newest first, filtered by name."""
    return service.search_experiments(session, request)


@router.post("/runs/create")
def create_run(request: schemas.CreateRun, session: SessionDep, principal: PrincipalDep) -> Json:
    """Start a run: a PruneLab external run owned by the caller, RUNNING until runs/update ends it."""
    row = service.create_run(session, principal, request)
    return {"run": service.runs_json(session, [row.run_id])[0]}


@router.post("/runs/update")
def update_run(request: schemas.UpdateRun, session: SessionDep, principal: PrincipalDep) -> Json:
    """Set a run's status (FINISHED, FAILED, KILLED end it), end time or name."""
    row = service.update_run(session, principal, request)
    return {"run_info": service.runs_json(session, [row.run_id])[0]["info"]}


@router.get("/runs/get")
def get_run(
    session: SessionDep,
    run_id: Annotated[str | None, Query(max_length=40)] = None,
    run_uuid: Annotated[str | None, Query(max_length=40)] = None,
) -> Json:
    """A run with its latest metrics, params and tags."""
    return {"run": service.get_run(session, run_id or run_uuid or "")}


@router.post("/runs/search", response_model=None)
def search_runs(request: schemas.SearchRuns, session: SessionDep) -> Response:
    """Runs of experiments that pass a filter (comparisons joined by AND), ordered and paged."""
    # A page of 100 runs is thousands of small objects: encoded by orjson directly, not validated as `Json` first.
    return json_response(service.search_runs(session, request))


@router.post("/runs/delete")
def delete_run(request: schemas.RunRef, session: SessionDep, store: StoreDep, principal: PrincipalDep) -> Json:
    """Delete a run with its metrics, params, tags and files (there is no restore)."""
    service.delete_run(session, store, principal, request.ref())
    return EMPTY


@router.post("/runs/log-metric")
def log_metric(request: schemas.LogMetric, session: SessionDep, principal: PrincipalDep) -> Json:
    """Log one metric point; a second value at the same (key, step) is dropped (first write wins)."""
    service.log_metric(session, principal, request)
    return EMPTY


@router.post("/runs/log-batch")
def log_batch(request: schemas.LogBatch, session: SessionDep, principal: PrincipalDep) -> Json:
    """Log up to 1000 metrics, 100 params and 100 tags (1000 in all) at once."""
    service.log_batch(session, principal, request)
    return EMPTY


@router.post("/runs/log-parameter")
def log_param(request: schemas.LogParam, session: SessionDep, principal: PrincipalDep) -> Json:
    """Log a param; logging it again must repeat the value."""
    service.log_param(session, principal, request)
    return EMPTY


@router.post("/runs/set-tag")
def set_tag(request: schemas.SetTag, session: SessionDep, principal: PrincipalDep) -> Json:
    """Set a key/value tag (overwrites); mlflow.runName renames the run."""
    service.set_tag(session, principal, request)
    return EMPTY


@router.get("/metrics/get-history")
def get_metric_history(
    session: SessionDep,
    metric_key: Annotated[str, Query(max_length=schemas.MAX_ENTITY_KEY_LENGTH)],
    run_id: Annotated[str | None, Query(max_length=40)] = None,
    run_uuid: Annotated[str | None, Query(max_length=40)] = None,
    max_results: Annotated[int | None, Query(le=10**9)] = None,
    page_token: Annotated[str | None, Query(max_length=40)] = None,
) -> Json:
    """Every point of one metric of one run, in step order, paged by `max_results`."""
    return service.metric_history(session, run_id or run_uuid or "", metric_key, max_results, page_token)


@router.get("/metrics/get-history-bulk-interval")
def get_metric_history_bulk_interval(
    session: SessionDep,
    run_ids: Annotated[list[str], Query(max_length=1000)],
    metric_key: Annotated[str, Query(max_length=schemas.MAX_ENTITY_KEY_LENGTH)],
    start_step: Annotated[int | None, Query(ge=0, le=service.MAX_STEP)] = None,
    end_step: Annotated[int | None, Query(ge=0, le=service.MAX_STEP)] = None,
    max_results: Annotated[int, Query()] = schemas.MAX_RESULTS_PER_RUN,
) -> Json:
    """One metric of several runs, each sampled to about `max_results` points with its extremes (charts)."""
    return service.metric_history_bulk_interval(session, run_ids, metric_key, start_step, end_step, max_results)
