"""A run with compress stages in headless Chromium: the run page draws its staircase of size against accuracy, and
the compare page draws each stage of each run as its own point of the Pareto front."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from harness.browser import screenshot as shot
from harness.stack import StackConfig, wait_for_run

pytestmark = pytest.mark.integration

SPEC = {
    "name": "e2e compress",
    "dataset": "digits",
    "model": "mlp",
    "epochs": 1,
    "batch_size": 64,
    "schedule": {"kind": "constant", "target_sparsity": 0.75, "begin_step": 0, "frequency": 7},
    "exports": ["h5"],
    "compress": [
        {"kind": "cluster", "number_of_clusters": 8, "epochs": 1, "learning_rate": 1e-4},
        {"kind": "tflite_int8", "calibration_examples": 10},
    ],
}


def test_run_page_staircase_and_compare_pareto_points(stack: StackConfig, page: Page) -> None:
    base = stack.base_url
    created = httpx.post(f"{base}/api/runs", json=SPEC, timeout=30)
    assert created.status_code == 201, created.text
    plain = httpx.post(
        f"{base}/api/runs", json={**SPEC, "name": "e2e plain", "compress": [], "exports": ["keras"]}, timeout=30
    )
    run_id, plain_id = created.json()["id"], plain.json()["id"]
    run = wait_for_run(base, run_id, {"succeeded", "failed"}, timeout=600)
    assert run["status"] == "succeeded", run["error"]
    wait_for_run(base, plain_id, {"succeeded", "failed"}, timeout=600)
    stages = [stage["stage"] for stage in run["summary"]["compression"]["stages"] if not stage["reference"]]
    assert stages == ["pruned", "cluster", "tflite_int8"]

    page.goto(f"{base}/run.html?id={run_id}")
    expect(page.locator("#stages-section")).to_be_visible()
    page.wait_for_function("document.getElementById('chart-loss')?.layout?.shapes?.length === 1")
    boundary = page.evaluate("document.getElementById('chart-loss').layout.annotations[0]")
    assert (boundary["x"], boundary["text"]) == (run["plan"]["phase_steps"][0], "cluster")  # the cluster phase begins
    page.wait_for_function("document.getElementById('chart-stages')?.data?.length >= 2")
    staircase = page.evaluate(
        "(() => { const t = document.getElementById('chart-stages').data[0]; return {x: t.x, y: t.y, text: t.text,"
        " shape: t.line.shape}; })()"
    )
    assert staircase["text"] == stages
    assert staircase["shape"] == "vh"
    assert staircase["x"] == [
        stage["zip_bytes"] for stage in run["summary"]["compression"]["stages"] if not stage["reference"]
    ]
    assert staircase["x"][-1] < staircase["x"][0]  # the int8 file is smaller than the pruned .h5
    expect(page.locator("#stages-table tr[data-stage='cluster']")).to_contain_text("clustered_h5")
    expect(page.locator("#stages-sparse")).to_contain_text("XNNPACK sparse inference: does not apply")
    expect(page.locator("[data-format='tflite_int8_compressed']")).to_be_visible()
    shot(page, "run-compress-stages")

    page.goto(f"{base}/compare.html?runs={run_id},{plain_id}")
    page.wait_for_function("document.getElementById('chart-pareto')?.data?.length >= 3")
    traces = page.evaluate("document.getElementById('chart-pareto').data.map((t) => ({x: t.x, name: t.name}))")
    per_run = [trace for trace in traces if trace["name"] != "Pareto frontier"]
    assert sorted(len(trace["x"]) for trace in per_run) == [1, 3]  # the plain run is one point, the other its stages
    shot(page, "compare-compress-stages")
