"""The sweep form and a sweep's page in headless Chromium, against an API with a real worker (PostgreSQL + Redis).

The form: the run form with schedule variants, a varied field and seeds; a point that is not a valid spec is
refused with the server's message naming it, and nothing is queued; fixed, the sweep is submitted and its page
shows the runs filling in until every point succeeded. A second sweep is cancelled from its page, and its
failed point retried.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, text

from harness.browser import screenshot as shot
from harness.stack import StackConfig

pytestmark = pytest.mark.integration


def fill(page: Page, field: str, value: str) -> None:
    page.locator(f'[data-field="{field}"] input').fill(value)


def test_sweep_form_submits_and_the_page_fills_in_live(page: Page, stack: StackConfig) -> None:
    page.goto(f"{stack.base_url}/new-sweep.html")
    expect(page.locator('[data-field="epochs"] input')).to_be_visible()
    fill(page, "epochs", "1")
    fill(page, "batch_size", "64")
    fill(page, "schedule.frequency", "7")
    page.locator('[data-field="exports"] input').fill("keras")
    page.get_by_label("constant", exact=True).check()
    page.get_by_label("polynomial", exact=True).check()
    page.get_by_label("values of field 1").fill("0.5, 1.0")
    page.get_by_label("Seeds").fill("0")
    expect(page.locator("#count")).to_have_text("This sweep makes 4 runs (4 combinations x 1 seed).")

    page.get_by_role("button", name="Submit sweep").click()
    error = page.locator("#form-error")
    expect(error).to_have_text(
        "point 1 (variant constant, sparsity 1, seed 0): schedule.target_sparsity: target_sparsity must be in range "
        "[0,1)\npoint 3 (variant polynomial, sparsity 1, seed 0): schedule.final_sparsity: final_sparsity must be in "
        "range [0,1)"
    )
    assert httpx.get(f"{stack.base_url}/api/runs").json()["total"] == 0  # all or nothing
    shot(page, "sweep-form-refused")

    page.get_by_label("values of field 1").fill("0.8")
    expect(page.locator("#count")).to_have_text("This sweep makes 2 runs (2 combinations x 1 seed).")
    page.get_by_role("button", name="Submit sweep").click()
    expect(page).to_have_url(f"{stack.base_url}/sweep.html?id=1")
    expect(page.locator("#points tbody tr")).to_have_count(2)
    # Filling in live: no reload, the rows turn succeeded with their measured sparsity and accuracy.
    expect(page.locator("#progress")).to_have_text("2 succeeded of 2", timeout=240_000)
    rows = page.locator("#points tbody tr")
    expect(rows.nth(0)).to_contain_text("constant")
    expect(rows.nth(1)).to_contain_text("polynomial")
    for index in range(2):
        expect(rows.nth(index)).to_have_attribute("data-status", "succeeded")
        expect(rows.nth(index)).to_contain_text("80.0%")
    expect(page.get_by_role("button", name="Cancel sweep")).to_be_disabled()
    expect(page.get_by_role("button", name="Retry failed points")).to_be_disabled()
    # The page links to the compare page grouped the sweep's default way (every axis but the seed).
    expect(page.locator("#groups-link")).to_have_attribute(
        "href", "compare.html?filter=tag%3A%22sweep%3A1%22&by=tag%3Avariant%2Ctag%3Asparsity"
    )
    # ... and to the sweep's report, which the browser downloads as one HTML file.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the sweep's report (HTML)").click()
    assert download.value.suggested_filename == "prunelab-sweep-1.html"
    report = Path(download.value.path()).read_text()
    assert "<h2>Groups by tag:variant, tag:sparsity</h2>" in report and "<h2>The sweep's spec</h2>" in report
    shot(page, "sweep-page")

    sweep = httpx.get(f"{stack.base_url}/api/sweeps/1").json()
    assert [run["spec"]["schedule"]["kind"] for run in sweep["runs"]] == ["constant", "polynomial"]
    assert all(run["spec"]["schedule"]["frequency"] == 7 for run in sweep["runs"])


def test_cancel_from_the_sweep_page(page: Page, stack: StackConfig) -> None:
    body = {
        "name": "to cancel",
        "base": {"dataset": "digits", "model": "mlp", "epochs": 3, "exports": ["keras"], "schedule": {"frequency": 7}},
        "axes": [{"path": "sparsity", "values": [0.3, 0.4, 0.5, 0.6]}],
    }
    created = httpx.post(f"{stack.base_url}/api/sweeps", json=body, timeout=30)
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    page.goto(f"{stack.base_url}/sweep.html?id={sweep_id}")
    expect(page.locator("#points tbody tr")).to_have_count(4)
    page.get_by_role("button", name="Cancel sweep").click()
    expect(page.locator("#status")).to_have_text("cancelled", timeout=120_000)
    expect(page.locator("#points tbody tr[data-status=queued]")).to_have_count(0)
    expect(page.locator("#points tbody tr[data-status=cancelled]")).not_to_have_count(0)
    expect(page.get_by_role("button", name="Retry failed points")).to_be_disabled()

    # A failed point (made so in the database: a run that fails on its own takes a broken model) is run again.
    failed_run = httpx.get(f"{stack.base_url}/api/sweeps/{sweep_id}").json()["points"][-1]["run_id"]
    engine = create_engine(stack.database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE runs SET status = 'failed' WHERE id = :id"), {"id": failed_run})
    engine.dispose()
    page.reload()
    expect(page.locator("#points tbody tr").last).to_have_attribute("data-status", "failed")
    page.get_by_role("button", name="Retry failed points").click()
    expect(page.locator("#points tbody tr").last).not_to_have_attribute("data-status", "failed")
    expect(page.locator("#points tbody tr").last).not_to_contain_text(f"#{failed_run}")
    expect(page.get_by_role("button", name="Retry failed points")).to_be_disabled()
    retried = httpx.get(f"{stack.base_url}/api/runs/{failed_run}").json()
    assert retried["status"] == "failed" and retried["tags"] == [f"retried:sweep:{sweep_id}"]

    page.goto(f"{stack.base_url}/sweep.html")
    expect(page.locator("#points tbody tr")).to_have_count(2)
    expect(page.locator(f'tr[data-sweep="{sweep_id}"]')).to_contain_text("cancelled")
