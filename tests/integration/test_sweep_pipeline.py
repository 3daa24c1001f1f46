"""README's "Sweeps" examples executed as written against a live API and a real Celery worker (PostgreSQL + Redis).

The REST block submits, reads, cancels and retries sweep 1; the YAML block, saved as sweep.yaml, is the same
sweep (2 variants x 2 sparsities x 2 seeds of the mlp on digits, one epoch), run to the end by
`prunelab sweep submit sweep.yaml --wait` as sweep 2.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import scipy.stats
import yaml

from harness.stack import REDIS_URL, REPO, StackConfig, api_and_worker, postgres_database
from prunelab.client import DEFAULT_URL, Client

pytestmark = pytest.mark.integration

SECTION = re.search(r"\n## Sweeps\n(.*?)\n## ", (REPO / "README.md").read_text(), re.S)


def blocks(language: str) -> list[str]:
    assert SECTION is not None, "README has no 'Sweeps' section"
    return re.findall(rf"```{language}\n(.*?)```", SECTION.group(1), re.S)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    with postgres_database() as url:
        config = StackConfig(home=tmp_path_factory.mktemp("sweep-stack"), database_url=url, broker_url=REDIS_URL)
        with api_and_worker(config):
            yield config


def run_bash(script: str, base_url: str, folder: Path) -> str:
    """A README bash block as written, with the server's address and `prunelab` as this checkout's command."""
    prelude = f'set -euo pipefail\nprunelab() {{ "{sys.executable}" -m prunelab.cli --url {base_url} "$@"; }}\n'
    answer = subprocess.run(
        ["bash", "-c", prelude + script.replace(DEFAULT_URL, base_url)],
        cwd=folder, capture_output=True, text=True, timeout=900, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert answer.returncode == 0, answer.stdout + answer.stderr
    return answer.stdout


def json_values(text: str) -> list[dict]:  # type: ignore[type-arg]
    """The JSON answers curl printed one after another (without newlines between them)."""
    decoder, values, position = json.JSONDecoder(), [], 0
    while (position := len(text) - len(text[position:].lstrip())) < len(text):
        value, position = decoder.raw_decode(text, position)
        values.append(value)
    return values


def test_the_rest_and_yaml_examples_are_the_same_sweep() -> None:
    rest, cli = blocks("bash")
    [sweep_yaml] = blocks("yaml")
    body = re.search(r"/api/sweeps -H [^\n]*-d '(\{.*?\})'", rest, re.S)
    assert body is not None
    assert json.loads(body.group(1)) == yaml.safe_load(sweep_yaml)
    assert "prunelab sweep submit sweep.yaml --wait" in cli and "prunelab sweep status 2" in cli
    assert "prunelab sweep report 2 -o sweep-2.html" in cli


def test_readme_sweep_runs_end_to_end_through_a_worker(stack: StackConfig, tmp_path: Path) -> None:
    rest, cli = blocks("bash")
    [sweep_yaml] = blocks("yaml")
    (tmp_path / "sweep.yaml").write_text(sweep_yaml)

    created, shown, cancelled, retried = json_values(run_bash(rest, stack.base_url, tmp_path))
    assert created["id"] == 1 and created["progress"]["total"] == 8
    assert len(shown["runs"]) == 8
    assert cancelled["status"] in ("cancelled", "running")  # a running run stops within a few steps
    assert cancelled["progress"]["queued"] == 0
    assert retried["progress"]["failed"] == 0

    output = run_bash(cli, stack.base_url, tmp_path)
    assert "sweep 2 finished: 8 succeeded of 8" in output, output
    with Client(stack.base_url) as client:
        sweep = client.sweep(2)
        first = client.sweep(1)
    assert sweep.status == "finished" and sweep.progress.succeeded == 8
    grid = {
        (variant, sparsity, seed)
        for variant in ("constant", "polynomial")
        for sparsity in (0.5, 0.8)
        for seed in (0, 1)
    }
    assert {(p.variant, p.values["sparsity"], p.seed) for p in sweep.points} == grid
    runs = {run.id: run for run in sweep.runs}
    for point in sweep.points:
        assert point.run_id is not None
        run = runs[point.run_id]
        assert run.status == "succeeded"
        assert run.tags == ["sweep:2", f"variant:{point.variant}", f"sparsity:{point.values['sparsity']}",
                            f"seed:{point.seed}"]  # fmt: skip
        assert run.spec["schedule"]["kind"] == point.variant and run.spec["seed"] == point.seed
        assert run.summary is not None
        assert run.summary["measured_sparsity"] == pytest.approx(point.values["sparsity"], abs=0.01)
    # `sweep status` groups the sweep by every axis but the seed, from the runs' own final metrics, and
    # compares the two variants at each sparsity with scipy's Welch interval.
    assert sweep.group_by == ["tag:variant", "tag:sparsity"]
    assert "groups by tag:variant, tag:sparsity (test_accuracy, succeeded runs):" in output, output
    with Client(stack.base_url) as client:
        table = client.group_table(sweep.group_by, filter='tag:"sweep:2"')
        for sparsity in (0.5, 0.8):
            values = {
                variant: [runs[p.run_id].summary["test_accuracy"] for p in sweep.points  # type: ignore[index]
                          if p.variant == variant and p.values["sparsity"] == sparsity]
                for variant in ("constant", "polynomial")
            }  # fmt: skip
            labels = {}
            for variant, accuracies in values.items():
                key = {"tag:variant": variant, "tag:sparsity": str(sparsity)}
                [group] = [g for g in table["groups"] if g["key"] == key]
                labels[variant] = group["label"]
                summary = group["metrics"]["test_accuracy"]
                assert summary["n"] == 2 and summary["mean"] == pytest.approx(statistics.mean(accuracies), abs=1e-12)
                assert summary["std"] == pytest.approx(statistics.stdev(accuracies), abs=1e-12)
            welch = scipy.stats.ttest_ind(values["polynomial"], values["constant"], equal_var=False)
            compared = client.compare_groups(
                sweep.group_by, labels["polynomial"], labels["constant"], filter='tag:"sweep:2"'
            )
            assert compared.sentence in output, output
            if compared.p_value is not None:
                assert compared.p_value == pytest.approx(welch.pvalue, rel=1e-9)
    # `sweep report` wrote the sweep's self-contained report: its groups, comparisons, spec and every point.
    report = (tmp_path / "sweep-2.html").read_text()
    assert "<h2>Groups by tag:variant, tag:sparsity</h2>" in report and "<h2>The sweep's spec</h2>" in report
    assert all(f"<td>#{point.run_id}</td><td>succeeded</td>" in report for point in sweep.points)
    assert '"group_frontier"' in report and '"group_mean"' in report  # drawn offline: tests/backend/test_report.py
    # Cancelling sweep 1 kept what had finished and queued nothing more.
    assert first.status == "cancelled"
    assert all(p.status in ("succeeded", "cancelled") for p in first.points), [p.status for p in first.points]
