"""Every run spec README.md shows is submitted to a live stack and must be accepted: a README example cannot rot."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.stack import REPO, StackConfig, migrate, sqlite_stack, start_api, start_worker, wait_for_run
from tests.backend import hostile_files

pytestmark = pytest.mark.integration

README = (REPO / "README.md").read_text()
# `curl ... /api/runs ... -d '{...}'`: the body is everything between the quotes (README's JSON has no single quote).
RUN_SUBMISSION = re.compile(r"curl [^\n]*?/api/runs\b[^\n]*?-d '(\{.*?\})'", re.S)
DENSE_BASE = {"name": "readme base", "dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64}


def readme_run_specs() -> list[dict[str, Any]]:
    return [json.loads(body) for body in RUN_SUBMISSION.findall(README)]


def test_every_curl_submission_in_readme_is_extracted() -> None:
    # Counted a second, simpler way, so a change in README's layout cannot make the extraction skip examples.
    submissions = [line for line in README.splitlines() if re.search(r"curl .*-X POST \S*/api/runs\b.*-d '\{$", line)]
    assert len(readme_run_specs()) == len(submissions) >= 9


@pytest.fixture(scope="module")
def stack_with_a_base_run_and_an_upload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, int]]:
    """A live API whose database holds a succeeded dense run and an uploaded model, as README's examples assume."""
    config: StackConfig = sqlite_stack(tmp_path_factory.mktemp("readme-stack"))
    migrate(config)
    api = start_api(config, config.home / "logs")
    worker = start_worker(config, config.home / "logs")
    try:
        base = config.base_url
        dense = httpx.post(f"{base}/api/runs", json={**DENSE_BASE, "recipe": {"kind": "dense"}, "exports": ["keras"]})
        assert dense.status_code == 201, dense.text
        assert wait_for_run(base, dense.json()["id"], {"succeeded", "failed"})["status"] == "succeeded"
        worker.stop()  # the examples are only submitted: they stay queued
        upload = httpx.post(f"{base}/api/models", files={"file": ("model.keras", hostile_files.keras_archive())})
        assert upload.status_code == 201, upload.text
        yield base, dense.json()["id"], upload.json()["id"]
    finally:
        worker.stop()
        api.stop()


def with_live_ids(spec: dict[str, Any], base_run_id: int, upload_id: int) -> dict[str, Any]:
    recipe = dict(spec.get("recipe", {}))
    if "base_run_id" in recipe:
        recipe["base_run_id"] = base_run_id
    if "upload_id" in recipe:
        recipe["upload_id"] = upload_id
    return {**spec, "recipe": recipe} if recipe else spec


def test_every_readme_run_spec_is_accepted_and_round_trips(stack_with_a_base_run_and_an_upload) -> None:  # type: ignore[no-untyped-def]
    base, base_run_id, upload_id = stack_with_a_base_run_and_an_upload
    submitted = []
    for example in readme_run_specs():
        spec = with_live_ids(example, base_run_id, upload_id)
        created = httpx.post(f"{base}/api/runs", json=spec, timeout=30)
        assert created.status_code == 201, (spec, created.text)
        stored = httpx.get(f"{base}/api/runs/{created.json()['id']}", timeout=10)
        assert stored.status_code == 200, stored.text
        again = httpx.post(f"{base}/api/runs", json=stored.json()["spec"], timeout=30)
        assert again.status_code == 201 and again.json()["spec"] == stored.json()["spec"], again.text
        submitted.append(f"{created.json()['name']} ({spec.get('recipe', {}).get('kind', 'from_scratch')})")
    print("README run specs submitted:", "; ".join(submitted))
    assert len(submitted) == len(readme_run_specs())
