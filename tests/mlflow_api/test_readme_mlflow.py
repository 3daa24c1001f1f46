"""README's "Log from MLflow's client" script runs, as printed, with MLflow's client against a live PruneLab."""

from __future__ import annotations

import os
import re
import subprocess

import httpx
import pytest

from harness.stack import REPO
from tests.mlflow_api.conftest import Live

pytestmark = pytest.mark.integration

README_URL = "http://127.0.0.1:8000"


def readme_mlflow_script() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Log from MLflow's client", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's MLflow section must hold a python example"
    return match.group(1)


def test_the_readme_mlflow_script_logs_a_run_prunelab_shows(live: Live) -> None:
    script = readme_mlflow_script()
    assert f'mlflow.set_tracking_uri("{README_URL}")' in script  # the root URL, not .../api/2.0/mlflow
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PRUNELAB_", "MLFLOW_"))}
    done = subprocess.run(
        [str(live.python), "-c", script.replace(README_URL, live.url)],
        capture_output=True, text=True, timeout=600, env=environment, cwd="/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    printed = re.search(r"PruneLab run (\d+): (\d+) points, last sparsity ([\d.]+)", done.stdout)
    assert printed, done.stdout
    run_id, points, last = int(printed[1]), int(printed[2]), float(printed[3])
    assert (points, last) == (480, 0.875)

    run = httpx.get(f"{live.url}/api/runs/{run_id}", timeout=30).json()
    assert run["status"] == "succeeded" and run["name"] == "constant 87.5% from 20%"
    series = httpx.get(f"{live.url}/api/runs/{run_id}/metrics", params={"keys": "measured_sparsity"}, timeout=30)
    sparsity = series.json()["series"]["measured_sparsity"]
    assert sparsity["steps"] == list(range(1, 481)) and sparsity["values"][-1] == 0.875
