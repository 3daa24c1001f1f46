"""MLflow's own client (`mlflow` in its virtualenv) logs into a live PruneLab, unchanged but for the tracking URI."""

from __future__ import annotations

import math
import re

import httpx
import pytest

from harness.stack import REPO
from tests.mlflow_api.conftest import Live

OUTPUT = REPO / "test-output"

pytestmark = pytest.mark.integration

STEPS = 300

CLIENT_SCRIPT = """
import json, math, sys
import mlflow
from mlflow import MlflowClient

mlflow.set_tracking_uri(sys.argv[1])
experiment = mlflow.set_experiment("pruning with mlflow")
with mlflow.start_run(run_name="mnist cnn 87.5%") as run:
    mlflow.log_param("final_sparsity", 0.875)
    mlflow.log_params({"batch_size": 250, "begin_step": 20})
    mlflow.set_tag("team", "vision")
    for step in range(1, STEPS_ + 1):
        mlflow.log_metrics({"loss": 2.0 / step, "sparsity": min(0.875, step / STEPS_)}, step=step)
    mlflow.log_metric("diverged", float("nan"), step=1)
    mlflow.log_metric("loss", 123.0, step=1)  # a second value at a logged step: the first one stays
run_id = run.info.run_id
client = MlflowClient()
history = client.get_metric_history(run_id, "loss")
fetched = client.get_run(run_id)
found = mlflow.search_runs(
    experiment_ids=[experiment.experiment_id], filter_string="tags.team = 'vision' AND metrics.sparsity >= 0.875",
    output_format="list",
)
missed = mlflow.search_runs(
    experiment_ids=[experiment.experiment_id], filter_string="params.final_sparsity = '0.5'", output_format="list"
)
searched = [e.name for e in client.search_experiments(filter_string="name LIKE 'pruning%'")]
by_id = client.get_experiment(experiment.experiment_id).name
errors = {}
try:
    client.log_param(run_id, "final_sparsity", 0.5)
except mlflow.exceptions.MlflowException as error:
    errors["param"] = error.error_code
try:
    client.get_run("999999")
except mlflow.exceptions.MlflowException as error:
    errors["missing"] = error.error_code
try:  # a malformed filter is a 400 the client raises at once (it retries 5xx for minutes)
    client.search_runs([experiment.experiment_id], "metrics.loss > 1 OR params.x = 'y'")
except mlflow.exceptions.MlflowException as error:
    errors["filter"] = error.error_code
print(json.dumps({
    "run_id": run_id,
    "experiment_id": experiment.experiment_id,
    "experiment_by_name": client.get_experiment_by_name("pruning with mlflow").experiment_id,
    "history": [[m.step, m.value, m.timestamp] for m in history],
    "status": fetched.info.status,
    "run_name": fetched.info.run_name,
    "params": fetched.data.params,
    "tags": {k: v for k, v in fetched.data.tags.items() if not k.startswith("mlflow.source")},
    "latest": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in fetched.data.metrics.items()},
    "found": [r.info.run_id for r in found],
    "missed": [r.info.run_id for r in missed],
    "errors": errors,
    "searched": searched,
    "by_id": by_id,
}))
""".replace("STEPS_", str(STEPS))

DELETE_SCRIPT = """
import json, sys
import mlflow
from mlflow import MlflowClient

mlflow.set_tracking_uri(sys.argv[1])
client = MlflowClient()
client.delete_run(sys.argv[2])
try:
    client.get_run(sys.argv[2])
    code = None
except mlflow.exceptions.MlflowException as error:
    code = error.error_code
print(json.dumps({"after_delete": code}))
"""


def test_mlflow_client_round_trips_every_point_and_the_run_shows_in_prunelab(live: Live) -> None:
    result = live.run_script(CLIENT_SCRIPT, live.url)

    history = result["history"]
    assert [step for step, _, _ in history] == list(range(1, STEPS + 1))
    assert [value for _, value, _ in history] == [2.0 / step for step in range(1, STEPS + 1)]  # 123.0 was dropped
    assert all(timestamp > 1_600_000_000_000 for _, _, timestamp in history)
    assert result["status"] == "FINISHED"
    assert result["run_name"] == "mnist cnn 87.5%"
    assert result["params"] == {"final_sparsity": "0.875", "batch_size": "250", "begin_step": "20"}
    assert result["tags"]["team"] == "vision" and result["tags"]["mlflow.runName"] == "mnist cnn 87.5%"
    assert result["latest"] == {"loss": 2.0 / STEPS, "sparsity": 0.875, "diverged": None}
    assert result["found"] == [result["run_id"]] and result["missed"] == []
    assert result["experiment_by_name"] == result["experiment_id"]
    assert result["errors"] == {
        "param": "INVALID_PARAMETER_VALUE",
        "missing": "RESOURCE_DOES_NOT_EXIST",
        "filter": "INVALID_PARAMETER_VALUE",
    }
    assert result["searched"] == ["pruning with mlflow"] and result["by_id"] == "pruning with mlflow"

    # The same run over PruneLab's own API: a finished run with every point.
    run_id = int(result["run_id"])
    run = httpx.get(f"{live.url}/api/runs/{run_id}", timeout=10).json()
    assert run["status"] == "succeeded" and run["name"] == "mnist cnn 87.5%"
    assert run["latest"]["sparsity"] == 0.875
    series = httpx.get(f"{live.url}/api/runs/{run_id}/metrics", params={"keys": "loss,sparsity,diverged"}).json()
    assert series["series"]["loss"]["steps"] == list(range(1, STEPS + 1))
    assert series["series"]["sparsity"]["values"][-1] == 0.875
    assert series["series"]["diverged"]["values"] == [None]
    assert run_id in [listed["id"] for listed in httpx.get(f"{live.url}/api/runs", timeout=10).json()["runs"]]

    deleted = live.run_script(DELETE_SCRIPT, live.url, result["run_id"])
    assert deleted == {"after_delete": "RESOURCE_DOES_NOT_EXIST"}
    assert httpx.get(f"{live.url}/api/runs/{run_id}", timeout=10).status_code == 404
    print(f"MLflow client: {len(history)} points of loss round-tripped through run {run_id}")

    # Which endpoints MLflow's client called, from the API's access log (tests/mlflow_api/test_api.py calls
    # get-history-bulk-interval, the MLflow UI's chart read, which the Python client does not use).
    called = endpoint_counts(live)
    assert set(called) >= {
        "POST experiments/create", "GET experiments/get", "GET experiments/get-by-name", "POST experiments/search",
        "POST runs/create", "POST runs/update", "GET runs/get", "POST runs/search", "POST runs/delete",
        "POST runs/log-metric", "POST runs/log-batch", "POST runs/log-parameter", "POST runs/set-tag",
        "GET metrics/get-history",
    }, called  # fmt: skip
    OUTPUT.mkdir(exist_ok=True)
    table = "\n".join(f"| {endpoint} | {count} |" for endpoint, count in sorted(called.items()))
    (OUTPUT / "mlflow-client-endpoints.md").write_text(f"| endpoint | calls |\n|---|---|\n{table}\n")


def endpoint_counts(live: Live) -> dict[str, int]:
    log = (live.config.home / "logs" / "api.log").read_text(errors="replace")
    counts: dict[str, int] = {}
    for method, path in re.findall(r'"(GET|POST) /api/2\.0/mlflow/([\w/-]+)', log):
        counts[f"{method} {path}"] = counts.get(f"{method} {path}", 0) + 1
    return counts


def test_nan_round_trips_as_nan(live: Live) -> None:
    script = """
import json, math, sys
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
with mlflow.start_run() as run:
    mlflow.log_metric("loss", float("inf"), step=3)
history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
print(json.dumps({"nan": [math.isnan(m.value) for m in history], "experiment": run.info.experiment_id}))
"""
    assert live.run_script(script, live.url) == {"nan": [True], "experiment": "0"}
    assert not math.isnan(0.0)
