"""The `prunelab` command's client verbs, run as a terminal user runs them (a subprocess), against a live stack.

Errors print the server's message and exit non-zero, never a traceback; the server's verbs are there too."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.stack import REPO, StackConfig, free_port
from prunelab import Client, Run
from tests.client.conftest import LONG, TINY


def prunelab(
    url: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PRUNELAB_")}
    clean |= {"PRUNELAB_URL": url, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "prunelab.cli", *args], env=clean, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


def test_submit_wait_then_show_and_list(stack: StackConfig, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**TINY, "name": "from the terminal", "exports": ["keras"]}))
    submitted = prunelab(stack.base_url, "submit", str(spec), "--wait")
    assert submitted.returncode == 0, submitted.stderr
    run_id = int(submitted.stdout.split()[1])
    assert f"run {run_id} queued: from the terminal (21 steps)" in submitted.stdout
    assert f"run {run_id} succeeded, sparsity 0.5" in submitted.stdout, submitted.stdout
    assert "21/21" in submitted.stderr  # the progress bar

    shown = prunelab(stack.base_url, "runs", "show", str(run_id))
    assert shown.returncode == 0, shown.stderr
    assert "from the terminal" in shown.stdout and "succeeded" in shown.stdout and "file      keras" in shown.stdout
    listed = prunelab(stack.base_url, "runs", "ls")
    assert listed.returncode == 0 and f"{run_id}\tsucceeded\t21/21\tfrom the terminal" in listed.stdout, listed.stdout
    as_json = json.loads(prunelab(stack.base_url, "runs", "ls", "--json", "-n", "1").stdout)
    assert [run["id"] for run in as_json] == [run_id]


def test_a_bad_spec_prints_the_servers_message_and_no_traceback(stack: StackConfig, tmp_path: Path) -> None:
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({**TINY, "schedule": {"kind": "constant", "target_sparsity": 1.5}}))
    refused = prunelab(stack.base_url, "submit", str(spec))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "prunelab: schedule.target_sparsity: target_sparsity must be in range [0,1) (HTTP 422)"
    ), refused.stderr
    spec.write_text("{not json")
    garbled = prunelab(stack.base_url, "submit", str(spec))
    assert garbled.returncode == 1 and "is not JSON" in garbled.stderr
    for result in (refused, garbled):
        no_traceback(result)


def test_submit_passes_engine_and_backend_through_and_prints_their_422(
    stack: StackConfig, client: Client, tmp_path: Path
) -> None:
    spec = tmp_path / "keras.json"
    spec.write_text(json.dumps({**LONG, "name": "keras engine", "engine": "keras", "backend": "jax"}))
    submitted = prunelab(stack.base_url, "submit", str(spec), "--json")
    assert submitted.returncode == 0, submitted.stderr
    run = json.loads(submitted.stdout)
    client.cancel(run["id"])  # only the fields are under test here; tests/integration trains keras runs
    assert (run["spec"]["engine"], run["spec"]["backend"]) == ("keras", "jax")
    assert run["spec"]["exports"] == ["keras", "tflite", "tflite_int8"]
    spec.write_text(json.dumps({**TINY, "backend": "jax"}))
    refused = prunelab(stack.base_url, "submit", str(spec))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "prunelab: backend: backend 'jax': the tfmot engine runs on tf-keras (TensorFlow) only; "
        'set "engine": "keras" to train on another Keras backend, or leave backend null (HTTP 422)'
    ), refused.stderr
    no_traceback(refused)


def test_a_missing_run_prints_the_servers_404(stack: StackConfig) -> None:
    missing = prunelab(stack.base_url, "runs", "show", "987654")
    assert missing.returncode == 1 and "987654" in missing.stderr and "(HTTP 404)" in missing.stderr
    no_traceback(missing)


def test_connection_refused_prints_a_clear_message(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    for args in (["runs", "ls"], ["watch", "1"], ["download", "1"]):
        refused = prunelab(nowhere, *args, cwd=tmp_path)
        assert refused.returncode == 1, refused.stderr
        assert refused.stderr.startswith(f"prunelab: cannot reach PruneLab at {nowhere}"), refused.stderr
        no_traceback(refused)


def test_download_writes_the_verified_file(stack: StackConfig, trained: Run, tmp_path: Path) -> None:
    target = tmp_path / "model.tflite"
    done = prunelab(stack.base_url, "download", str(trained.id), "--format", "tflite_int8", "-o", str(target))
    assert done.returncode == 0, done.stderr
    artifact = trained.artifact("tflite_int8")
    assert artifact is not None and hashlib.sha256(target.read_bytes()).hexdigest() == artifact.sha256
    assert "verified" in done.stdout
    here = prunelab(stack.base_url, "download", str(trained.id), cwd=tmp_path)
    assert here.returncode == 0 and (tmp_path / f"prunelab-run{trained.id}-client-tiny-stripped.keras").is_file()
    lacking = prunelab(stack.base_url, "download", str(trained.id), "-f", "h5", cwd=tmp_path)
    assert lacking.returncode == 1 and "has no h5 model" in lacking.stderr
    no_traceback(lacking)


def test_watch_and_cancel(stack: StackConfig, client: Client, trained: Run) -> None:
    watched = prunelab(stack.base_url, "watch", str(trained.id))
    assert watched.returncode == 0 and f"run {trained.id} succeeded" in watched.stdout, watched.stderr
    long = client.create_run(LONG)
    cancelled = prunelab(stack.base_url, "cancel", str(long.id))
    assert cancelled.returncode == 0 and cancelled.stdout.startswith(f"run {long.id} "), cancelled.stderr
    ended = prunelab(stack.base_url, "watch", str(long.id), "--timeout", "120")
    assert ended.returncode == 1 and f"run {long.id} cancelled" in ended.stdout, ended.stdout + ended.stderr


def test_compare_prints_a_table_writes_the_report_or_opens_the_page(
    stack: StackConfig, client: Client, trained: Run, tmp_path: Path
) -> None:
    other = client.cancel(client.create_run({**LONG, "name": "compared"}))  # any status compares
    ids = [str(trained.id), str(other.id)]
    table = prunelab(stack.base_url, "compare", *ids)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].startswith("ID\tSTATUS\tSPARSITY")
    assert any(line.startswith(f"{trained.id}\tsucceeded\t0.5") for line in table.stdout.splitlines()), table.stdout
    report = tmp_path / "report.html"
    written = prunelab(stack.base_url, "compare", *ids, "-o", str(report))
    assert written.returncode == 0 and "client tiny" in report.read_text()
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {tmp_path / "opened.txt"}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    opened = prunelab(stack.base_url, "compare", *ids, "--open", env={"BROWSER": f"{browser} %s"})
    assert opened.returncode == 0, opened.stderr
    assert (tmp_path / "opened.txt").read_text().strip() == f"{stack.base_url}/compare.html?runs={','.join(ids)}"


def test_one_command_has_the_server_verbs_too(stack: StackConfig) -> None:
    helped = prunelab(stack.base_url, "--help")
    assert "Client commands:" in helped.stdout and "Server commands:" in helped.stdout
    assert "submit" in helped.stdout and "migrate" in helped.stdout and "tokens" in helped.stdout
    users = subprocess.run(
        [sys.executable, "-m", "prunelab.cli", "users", "list"],
        env={**stack.env(), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert users.returncode == 0 and users.stdout.startswith("no users"), users.stderr


def test_shell_completion(tmp_path: Path) -> None:
    script = prunelab("http://unused", "completion", "bash")
    assert script.returncode == 0 and "_PRUNELAB_COMPLETE=bash_complete" in script.stdout
    completed = prunelab(
        "http://unused", env={"_PRUNELAB_COMPLETE": "bash_complete", "COMP_WORDS": "prunelab ru", "COMP_CWORD": "1"}
    )
    offered = {line.split(",", 1)[1] for line in completed.stdout.splitlines()}
    assert {"runs", "run"} <= offered, completed.stdout


@pytest.mark.parametrize("verb", ["runs ls", "compare 1 2"])
def test_verbs_answer_help_without_a_server(verb: str) -> None:
    helped = prunelab(f"http://127.0.0.1:{free_port()}", *verb.split(), "--help")
    assert helped.returncode == 0 and "Usage: prunelab" in helped.stdout
