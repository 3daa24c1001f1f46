"""An external run (logged over the API, as the Keras callback logs one) in headless Chromium: listed with the
others, and its run page draws planned vs measured sparsity, the per-layer table and the coverage report."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page

from harness.stack import StackConfig, migrate, sqlite_stack, start_api

pytestmark = pytest.mark.integration

STEPS = 40
SPEC = {
    "source": "keras_callback",
    "name": "script run",
    "model": "two_branch",
    "dataset": "my pipeline",
    "epochs": 2,
    "steps_per_epoch": 20,
    "schedule": {"kind": "constant", "target_sparsity": 0.75, "begin_step": 10, "end_step": -1, "frequency": 10},
    "layers": [
        {"name": "conv", "class_name": "Conv2D", "params": 80, "prunable_params": 72, "wrapped": True},
        {"name": "flatten", "class_name": "Flatten", "wrapped": False, "reason": "no weights to prune"},
        {
            "name": "logits",
            "class_name": "Dense",
            "params": 330,
            "wrapped": False,
            "reason": "not wrapped by the script",
        },
    ],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackConfig, int]]:
    config = sqlite_stack(tmp_path_factory.mktemp("e2e-external"))
    migrate(config)
    api = start_api(config, config.home / "logs")
    try:
        base = config.base_url
        run_id = httpx.post(f"{base}/api/runs/external", json=SPEC, timeout=30).json()["id"]
        points = []
        for step in range(1, STEPS + 1):
            sparsity = 0.75 if step >= 10 else 0.0
            points += [
                {"key": "loss", "step": step, "value": 2.0 / step},
                {"key": "accuracy", "step": step, "value": step / STEPS},
                {"key": "target_sparsity", "step": step, "value": sparsity},
                {"key": "measured_sparsity", "step": step, "value": sparsity},
            ]
            if step % 10 == 0:
                points.append({"key": "layer_sparsity/conv", "step": step, "value": 0.75})
        answer = httpx.post(f"{base}/api/runs/{run_id}/points", json={"points": points}, timeout=30)
        assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text
        finished = httpx.post(f"{base}/api/runs/{run_id}/finish", json={"status": "succeeded"}, timeout=30)
        assert finished.status_code == 200, finished.text
        yield config, run_id
    finally:
        api.stop()


def test_an_external_run_is_listed_and_drawn_like_the_others(stack: tuple[StackConfig, int], page: Page) -> None:
    config, run_id = stack
    page.goto(f"{config.base_url}/index.html")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 1")
    row = page.locator("#runs tbody tr").first.inner_text()
    assert "script run" in row and "two_branch" in row and "my pipeline" in row

    page.goto(f"{config.base_url}/run.html?id={run_id}")
    page.wait_for_function(f"(document.getElementById('chart-sparsity')?.data?.[0]?.x?.length ?? 0) === {STEPS}")
    facts = page.locator("#facts").inner_text()
    assert "logged by" in facts and "keras callback" in facts and "constant" in facts
    assert page.locator("#actions a", has_text="Clone").count() == 0
    measured = page.evaluate("document.getElementById('chart-sparsity').data[0].y.at(-1)")
    assert measured == 0.75
    page.locator("#coverage").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelectorAll('#coverage tbody tr').length === 3")
    coverage = page.locator("#coverage").inner_text()
    assert "not wrapped by the script" in coverage and "no weights to prune" in coverage
    page.wait_for_function("document.querySelectorAll('#layer-table tbody tr').length === 1")
