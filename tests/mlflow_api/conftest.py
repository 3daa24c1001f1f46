"""A live PruneLab API and MLflow's own client in its virtualenv (`make mlflow-venv`), to run scripts against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.mlflow_peer import executable
from harness.stack import StackConfig, migrate, sqlite_stack, start_api


def mlflow_python() -> Path:
    """MLflow's virtualenv interpreter (.venv-mlflow, or PRUNELAB_BENCH_MLFLOW); missing: fails in CI, else skips."""
    mlflow = executable()
    if mlflow is not None:
        return mlflow.with_name("python")
    if os.environ.get("CI"):
        pytest.fail("MLflow's virtualenv is missing: `make test` builds it with `make mlflow-venv`")
    pytest.skip("MLflow's client is not installed: run `make mlflow-venv`")


@dataclass
class Live:
    config: StackConfig
    python: Path

    @property
    def url(self) -> str:
        return self.config.base_url

    def run_script(self, script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> dict:  # type: ignore[type-arg]
        """Run `script` with MLflow's interpreter; it prints one JSON object last, which is returned."""
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("PRUNELAB_", "MLFLOW_"))}
        environment.update(env or {})
        done = subprocess.run(
            [str(self.python), "-c", script, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
            cwd="/",  # never the repository: its folders would shadow MLflow's modules
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    python = mlflow_python()
    config = sqlite_stack(tmp_path_factory.mktemp("mlflow-live"))
    migrate(config)
    api = start_api(config, config.home / "logs")
    try:
        yield Live(config, python)
    finally:
        api.stop()
        print(api.log_tail(2000), file=sys.stderr)
