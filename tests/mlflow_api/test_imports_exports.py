"""MLflow runs in and out, with a real MLflow server and mlflow-export-import's own exporter and importer."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.mlflow_peer import mlflow_server
from harness.stack import REPO
from tests.mlflow_api.conftest import Live

pytestmark = pytest.mark.integration

STEPS = 120
SPARSITY = [min(0.8, step / 100) for step in range(1, STEPS + 1)]

SOURCE_SCRIPT = """
import json, sys
import mlflow
from mlflow_export_import.run.export_run import RunExporter

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("tfmot sweep")
with mlflow.start_run(run_name="polynomial 80%") as run:
    mlflow.log_params({"final_sparsity": "0.8", "schedule": "polynomial_decay"})
    mlflow.set_tag("team", "vision")
    for step in range(1, STEPS_ + 1):
        mlflow.log_metrics({"sparsity": min(0.8, step / 100), "loss": 1.0 / step}, step=step)
assert RunExporter(mlflow.MlflowClient()).export_run(run.info.run_id, sys.argv[2])
print(json.dumps({"run_id": run.info.run_id}))
""".replace("STEPS_", str(STEPS))

IMPORT_SCRIPT = """
import json, sys
import mlflow
from mlflow_export_import.run.import_run import RunImporter

mlflow.set_tracking_uri(sys.argv[1])
client = mlflow.MlflowClient()
run, _ = RunImporter(client, mlmodel_fix=False).import_run("back from prunelab", sys.argv[2])
run = client.get_run(run.info.run_id)
print(json.dumps({
    "sparsity": [[m.step, m.value] for m in client.get_metric_history(run.info.run_id, "sparsity")],
    "params": run.data.params,
    "tags": {k: v for k, v in run.data.tags.items() if k in ("team", "prunelab.run_id")},
}))
"""


@pytest.fixture(scope="module")
def mlflow_url(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server.base_url


def prunelab(live: Live, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "prunelab.server.cli", *args],
        cwd=REPO, env=live.config.env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def imported_ids(output: str) -> list[int]:
    return [int(line.rsplit(" as run ", 1)[1]) for line in output.splitlines() if " as run " in line]


def assert_imported(live: Live, run_id: int) -> None:
    base = live.url
    series = httpx.get(f"{base}/api/runs/{run_id}/metrics", params={"keys": "sparsity,loss"}, timeout=30).json()
    assert series["series"]["sparsity"]["steps"] == list(range(1, STEPS + 1))
    assert series["series"]["sparsity"]["values"] == SPARSITY
    run = httpx.get(f"{base}/api/2.0/mlflow/runs/get", params={"run_id": str(run_id)}, timeout=30).json()["run"]
    assert run["info"]["status"] == "FINISHED" and run["info"]["run_name"] == "polynomial 80%"
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {
        "final_sparsity": "0.8",
        "schedule": "polynomial_decay",
    }
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["team"] == "vision" and "prunelab.imported_from" in tags
    assert httpx.get(f"{base}/api/runs/{run_id}", timeout=30).json()["status"] == "succeeded"


def test_mlflow_runs_import_from_a_server_and_a_folder_and_export_back(
    live: Live, mlflow_url: str, tmp_path: Path
) -> None:
    exported = tmp_path / "exported-by-mlflow-export-import"
    source = live.run_script(SOURCE_SCRIPT, mlflow_url, str(exported))
    assert (exported / "run.json").is_file()

    from_server = imported_ids(prunelab(live, "import", "mlflow", mlflow_url, "--experiment", "tfmot sweep"))
    from_folder = imported_ids(prunelab(live, "import", "mlflow", str(exported)))
    assert len(from_server) == len(from_folder) == 1
    for run_id in (*from_server, *from_folder):
        assert_imported(live, run_id)
    experiment = httpx.get(
        f"{live.url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "tfmot sweep"}, timeout=30
    )
    assert experiment.status_code == 200  # the server's experiment came along by name

    # Upload the same export, zipped, through the API.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in exported.rglob("*"):
            if path.is_file():
                archive.write(path, f"export/{path.relative_to(exported).as_posix()}")
    uploaded = httpx.post(
        f"{live.url}/api/imports/mlflow", files={"file": ("export.zip", buffer.getvalue())}, timeout=60
    )
    assert uploaded.status_code == 201, uploaded.text
    assert [run["name"] for run in uploaded.json()] == ["polynomial 80%"]
    assert_imported(live, uploaded.json()[0]["id"])

    # Out again, in mlflow-export-import's format, and into the real MLflow server with its importer.
    out = tmp_path / "exported-by-prunelab"
    assert "wrote run" in prunelab(live, "export", "mlflow", str(from_server[0]), str(out))
    back = live.run_script(IMPORT_SCRIPT, mlflow_url, str(out))
    assert back["sparsity"] == [[step, value] for step, value in zip(range(1, STEPS + 1), SPARSITY, strict=True)]
    assert back["params"] == {"final_sparsity": "0.8", "schedule": "polynomial_decay"}
    assert back["tags"] == {"team": "vision", "prunelab.run_id": str(from_server[0])}
    print(f"MLflow run {source['run_id']}: imported as {from_server + from_folder}, exported and re-imported")
