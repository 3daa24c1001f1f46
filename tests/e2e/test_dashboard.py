"""The dashboard end to end in headless Chromium, against a real API, Redis, a Celery worker and PostgreSQL.

One user journey: fill the generated form for a ConstantSparsity and a PolynomialDecay run (a server
message shows next to a bad field first), watch both finish on their run pages (live, by SSE),
select them in the runs table, compare them (the overlaid sparsity curves reach each target), download
the stripped model from a run page and load it, and save screenshots of every page in
test-output/screenshots/ for review.
"""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from harness.browser import screenshot as shot
from harness.stack import StackConfig
from tests.integration.test_pipeline import assert_stripped_and_sparse

pytestmark = pytest.mark.integration

RUN_TIMEOUT_MS = 240_000
# digits with batch 64: ceil(1293 / 64) = 21 steps per epoch, 42 in all; frequency 7 divides 42,
# so both schedules prune at their last step and reach their targets.
CONSTANT = {"name": "e2e constant 60%", "kind": "constant", "fields": {"target_sparsity": "0.6"}, "target": 0.6}
POLYNOMIAL = {"name": "e2e polynomial 80%", "kind": "polynomial", "fields": {"final_sparsity": "0.8"}, "target": 0.8}


def submit_run(page: Page, base: str, run: dict, screenshot: str | None = None) -> int:
    page.goto(f"{base}/new.html")
    page.get_by_label("Name", exact=True).fill(run["name"])
    expect(page.get_by_label("Dataset")).to_have_value("digits")
    page.get_by_label("Epochs").fill("2")
    page.get_by_label("Batch Size").fill("64")
    page.get_by_label("Schedule kind").select_option(run["kind"])
    page.get_by_label("Frequency").fill("7")
    for field, value in run["fields"].items():
        page.locator(f'[name="schedule.{field}"]').fill(value)
    expect(page.locator("#preview-facts")).to_contain_text("42 steps (21 per epoch)")
    expect(page.locator("#preview-facts")).to_contain_text(f"ending at {run['target'] * 100:.1f}% sparsity")
    if screenshot:
        shot(page, screenshot)
    page.get_by_role("button", name="Submit run").click()
    page.wait_for_url(re.compile(r"/run\.html\?id=\d+$"))
    return int(page.url.rsplit("=", 1)[1])


def test_the_whole_flow_in_the_browser(stack: StackConfig, page: Page, tmp_path: Path) -> None:
    started = time.monotonic()
    base = stack.base_url

    # The form shows the server's message next to the field it names, before anything is submitted.
    page.goto(f"{base}/new.html")
    page.get_by_label("Schedule kind").select_option("polynomial")
    page.locator('[name="schedule.final_sparsity"]').fill("1.5")
    error = page.locator('[data-field="schedule.final_sparsity"] .error')
    expect(error).to_have_text("final_sparsity must be in range [0,1)")
    page.get_by_label("Epochs").fill("0")
    expect(page.locator('[data-field="epochs"] .error')).to_have_text("must be ≥ 1")
    shot(page, "01-new-run-form-errors")
    page.get_by_role("button", name="Submit run").click()
    expect(page).to_have_url(re.compile(r"/new\.html$"))  # nothing submitted
    assert httpx.get(f"{base}/api/runs").json()["runs"] == []

    constant_id = submit_run(page, base, CONSTANT, screenshot="02-new-run-form-constant")
    polynomial_id = submit_run(page, base, POLYNOMIAL)

    # Each run page is opened while its run is queued or training and follows it live (SSE) to the end.
    page.goto(f"{base}/run.html?id={constant_id}")
    expect(page.locator("#facts .badge")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    shot(page, "04-run-page-constant")
    page.goto(f"{base}/run.html?id={polynomial_id}")
    expect(page.locator("#title")).to_contain_text(POLYNOMIAL["name"])
    page.wait_for_function(
        "document.querySelector('#facts .badge')?.textContent === 'succeeded' || "
        "(document.getElementById('chart-loss')?.data?.[0]?.y?.length ?? 0) > 5",
        timeout=RUN_TIMEOUT_MS,
    )
    shot(page, "03-run-page-polynomial-live")
    expect(page.locator("#facts .badge")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#downloads a[data-format='keras']")).to_be_visible()
    page.wait_for_function("document.getElementById('chart-sparsity').data[0].y.length === 42")
    last_sparsity = page.evaluate("document.getElementById('chart-sparsity').data[0].y.at(-1)")
    assert last_sparsity == pytest.approx(0.8, abs=1e-3)
    # The axis grows with the live data (Plotly re-reads arrays that grew in place).
    page.wait_for_function("document.getElementById('chart-sparsity').layout.xaxis.range[1] >= 42")
    expect(page.locator("#layer-table tbody tr")).to_have_count(2)
    # The coverage report: both Dense layers wrapped, the Flatten left dense for having no weights.
    expect(page.locator("#coverage")).to_contain_text("Sparsity of prunable weights 80.0%")
    expect(page.locator("#coverage tbody tr")).to_have_count(3)
    # The mask picture at the last pruning event: black cells are the 20% of weights that remain.
    mask = page.locator("#mask img")
    expect(mask).to_be_visible()
    page.locator("#mask-step").fill(page.locator("#mask-step").get_attribute("max") or "0")
    expect(page.locator("#mask output")).to_have_text("step 42")
    page.wait_for_function(
        "document.querySelector('#mask img').complete && document.querySelector('#mask img').naturalWidth > 0"
    )
    kept = page.evaluate(
        """() => {
          const image = document.querySelector('#mask img');
          const canvas = document.createElement('canvas');
          canvas.width = image.naturalWidth;
          canvas.height = image.naturalHeight;
          const context = canvas.getContext('2d');
          context.drawImage(image, 0, 0);
          const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
          let black = 0;
          for (let i = 0; i < pixels.length; i += 4) if (pixels[i] === 0) black += 1;
          return black / (pixels.length / 4);
        }"""
    )
    assert kept == pytest.approx(0.2, abs=0.002)
    shot(page, "03-run-page-polynomial-done")

    # Download from the run page: the file the server stored, stripped and at its target sparsity.
    with page.expect_download() as download_info:
        page.locator("#downloads a[data-format='keras']").click()
    download = download_info.value
    model_path = tmp_path / download.suggested_filename
    download.save_as(model_path)
    assert model_path.name.startswith(f"prunelab-run{polynomial_id}-") and model_path.suffix == ".keras"
    artifacts = {a["format"]: a for a in httpx.get(f"{base}/api/runs/{polynomial_id}").json()["artifacts"]}
    assert model_path.stat().st_size == artifacts["keras"]["size_bytes"]
    assert zipfile.is_zipfile(model_path)
    assert_stripped_and_sparse(model_path, target=0.8)

    # The runs table: select both and compare.
    page.goto(f"{base}/index.html")
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    page.get_by_label("Filter").fill("kind:constant accuracy > 0.1")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    page.get_by_label("Filter").fill("")
    page.get_by_label(f"tags of run {constant_id}").fill("mine, constant")
    page.get_by_label(f"tags of run {constant_id}").press("Enter")
    page.wait_for_function(f"document.querySelector('[data-run=\"{constant_id}\"] td.tags input').title === 'saved'")
    assert httpx.get(f"{base}/api/runs/{constant_id}").json()["tags"] == ["mine", "constant"]
    page.get_by_label(f"select run {constant_id}", exact=False).check()
    page.get_by_label(f"select run {polynomial_id}", exact=False).check()
    shot(page, "05-runs-table")
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(rf"/compare\.html\?runs={constant_id},{polynomial_id}"))

    # The compare page: measured sparsity of each run ends at its own target; planned curves are drawn too.
    page.wait_for_function("document.getElementById('chart-sparsity')?.data?.length >= 4")
    traces = page.evaluate(
        "document.getElementById('chart-sparsity').data"
        ".map(t => ({meta: t.meta, last: t.y.at(-1), color: t.line.color}))"
    )
    measured = {t["meta"]["run_id"]: t for t in traces if t["meta"]["metric"] == "measured_sparsity"}
    planned = {t["meta"]["run_id"]: t for t in traces if t["meta"]["metric"] == "planned_sparsity"}
    assert measured[constant_id]["last"] == pytest.approx(0.6, abs=1e-3)
    assert measured[polynomial_id]["last"] == pytest.approx(0.8, abs=1e-3)
    assert planned[polynomial_id]["last"] == pytest.approx(0.8, abs=1e-6)
    assert measured[constant_id]["color"] == planned[constant_id]["color"] != measured[polynomial_id]["color"]
    expect(page.locator("#differences")).to_contain_text("schedule.kind")
    page.get_by_label("x axis").select_option("window")
    expect(page).to_have_url(re.compile(r"x=window"))
    window_x = page.evaluate("document.getElementById('chart-sparsity').data[0].x.at(-1)")
    assert window_x == pytest.approx(1.0)
    shot(page, "06-compare")

    # The URL is the comparison: reloading it shows the same runs and settings.
    page.reload()
    page.wait_for_function("document.getElementById('chart-sparsity')?.data?.length >= 4")
    expect(page.get_by_label("x axis")).to_have_value("window")
    report = page.request.get(f"{base}{page.locator('#report').get_attribute('href')}")
    assert report.ok and "Plotly.newPlot" in report.text()

    # A narrow window: the pages reflow (no horizontal scroll of the whole page).
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(f"{base}/new.html")
    expect(page.locator("#preview-facts")).to_contain_text("steps")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(page, "07-new-run-form-narrow")
    print(f"e2e flow took {time.monotonic() - started:.0f} s")
