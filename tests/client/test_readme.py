"""README's "Python client and CLI" examples, executed as written against a fresh live stack (so the run ids
they name, 1 to 3, are the ones they get): the Python block in this interpreter, the shell block in bash."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import REPO, StackConfig, api_and_worker, sqlite_stack
from prunelab import Client

SECTION = re.search(r"\n## Python client and CLI\n(.*?)\n## ", (REPO / "README.md").read_text(), re.S)
DEFAULT_URL = "http://127.0.0.1:8000"


def blocks(language: str) -> list[str]:
    assert SECTION is not None, "README has no 'Python client and CLI' section"
    return re.findall(rf"```{language}\n(.*?)```", SECTION.group(1), re.S)


def test_the_section_has_one_python_and_one_shell_example_and_nothing_else() -> None:
    assert SECTION is not None
    fences = re.findall(r"^```(\w*)$", SECTION.group(1), re.M)
    assert fences == ["python", "", "bash", ""], fences  # every block is executed below


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    with api_and_worker(sqlite_stack(tmp_path_factory.mktemp("readme-client"))) as config:
        yield config


def test_the_readme_examples_run_as_written(
    fresh_stack: StackConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [python] = blocks("python")
    [shell] = blocks("bash")
    assert DEFAULT_URL in python
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(python.replace(DEFAULT_URL, fresh_stack.base_url), "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert lines[0].startswith("succeeded 0.5"), lines
    assert lines[1].startswith("422 schedule.target_sparsity: target_sparsity must be in range [0,1)"), lines
    assert (tmp_path / "model.tflite").stat().st_size > 0

    shim = tmp_path / "bin" / "prunelab"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m prunelab.cli "$@"\n')
    shim.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRUNELAB_")}
    env |= {"PATH": f"{shim.parent}:{env['PATH']}", "PYTHONPATH": str(REPO), "PRUNELAB_URL": fresh_stack.base_url}
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", shell], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "run 2 succeeded, sparsity 0.5" in ran.stdout and "wrote report.html (2 runs)" in ran.stdout, ran.stdout
    assert "Traceback" not in ran.stderr
    with Client(fresh_stack.base_url) as client:
        assert [run.status for run in client.list_runs()][1:] == ["succeeded", "succeeded"]
        assert client.wait(3, timeout=120).status == "cancelled"
        assert client.get_run(1).tags == ["sweep"]
    assert (tmp_path / "report.html").stat().st_size > 1_000_000
