"""Groups through the client, and README's "Groups of runs" example executed as written against a live API."""

from __future__ import annotations

import contextlib
import io
import re

import httpx
import pytest

from harness.stack import REPO, StackConfig
from prunelab import Client, PruneLabError

SECTION = re.search(r"\n## Groups of runs[^\n]*\n(.*?)\n## ", (REPO / "README.md").read_text(), re.S)
DEFAULT_URL = "http://127.0.0.1:8000"


def test_the_readme_groups_example_runs_as_written(api_only: StackConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    assert SECTION is not None, "README has no 'Groups of runs' section"
    (python,) = re.findall(r"```python\n(.*?)```", SECTION.group(1), re.S)
    assert re.findall(r"^```(\w*)$", SECTION.group(1), re.M) == ["python", ""]  # the one block, executed here
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(python.replace(DEFAULT_URL, api_only.base_url), "README.md", "exec"), {})
    expected = [line[2:] for line in python.splitlines() if line.startswith("# ")]
    assert printed.getvalue().splitlines() == expected


def test_groups_frame_counts_failed_runs_apart_and_bad_fields_are_the_servers_422(api_only: StackConfig) -> None:
    url = api_only.base_url
    run = httpx.post(f"{url}/api/runs/external", json={"name": "crashed", "model": "groups-test"}).json()
    httpx.post(f"{url}/api/runs/{run['id']}/finish", json={"status": "failed", "error": "out of memory"})
    for accuracy in (0.5, 0.7):
        ok = httpx.post(f"{url}/api/runs/external", json={"name": "ok", "model": "groups-test"}).json()
        httpx.post(
            f"{url}/api/runs/{ok['id']}/finish", json={"status": "succeeded", "summary": {"test_accuracy": accuracy}}
        )
    with Client(url) as client:
        frame = client.groups(["model"], filter="model:groups-test")
        assert list(frame.columns[:4]) == ["model", "n", "failed", "pending"]
        (row,) = frame.to_dict("records")
        assert (row["n"], row["failed"], row["test_accuracy_n"]) == (2, 1, 2)
        assert row["test_accuracy_mean"] == pytest.approx(0.6) and row["test_accuracy_std"] == pytest.approx(
            0.1414, abs=1e-4
        )
        with pytest.raises(PruneLabError) as unknown:
            client.groups(["schedule.knd"])
        assert unknown.value.status_code == 422 and "'schedule.knd' is not a spec field" in unknown.value.message
