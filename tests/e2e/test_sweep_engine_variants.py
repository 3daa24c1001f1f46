"""The sweep form's engine variants in headless Chromium (the API with no worker: nothing here trains): engine
and backend as two varied fields is refused with the point named and the variants suggested, and the engine
boxes submit each engine and backend pair as a variant, crossed with the schedule variants."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from harness.stack import StackConfig
from tests.client.conftest import api_only  # noqa: F401 - the API with no worker: nothing here trains
from tests.e2e.test_sweeps import fill

pytestmark = pytest.mark.integration


def test_engine_variants_cross_with_schedule_variants_and_engine_axes_are_refused_by_point(
    api_only: StackConfig,  # noqa: F811
    page: Page,
) -> None:
    base = api_only.base_url
    page.goto(f"{base}/new-sweep.html")
    expect(page.locator('[data-field="epochs"] input')).to_be_visible()
    fill(page, "epochs", "1")
    fill(page, "batch_size", "64")
    fill(page, "schedule.frequency", "7")
    page.get_by_label("Seeds").fill("0")
    page.get_by_label("constant", exact=True).check()
    page.get_by_label("field 1 to vary").select_option("engine")
    page.get_by_label("values of field 1").fill("tfmot, keras")
    page.get_by_role("button", name="Vary another field").click()
    page.get_by_label("field 2 to vary").select_option("backend")
    page.get_by_label("values of field 2").fill("tensorflow, jax")
    page.locator('[data-field="exports"] input').fill("keras")
    page.get_by_role("button", name="Submit sweep").click()
    error = page.locator("#form-error")
    expect(error).to_contain_text("point 1 (variant constant, engine tfmot, backend jax, seed 0): backend:")
    expect(error).to_contain_text("give each engine and backend pair as a variant instead")
    assert httpx.get(f"{base}/api/runs", timeout=10).json()["total"] == 0

    for index in (2, 1):
        page.locator(".axis").nth(index - 1).get_by_role("button", name="Remove").click()
    page.locator('[data-field="exports"] input').fill("keras, h5, tflite")
    page.get_by_label("tfmot (tfmot)").check()
    page.get_by_label("keras-jax (keras on jax)").check()
    expect(page.locator("#count")).to_have_text("This sweep makes 2 runs (2 combinations x 1 seed).")
    page.get_by_label("polynomial", exact=True).check()
    expect(page.locator("#count")).to_have_text("This sweep makes 4 runs (4 combinations x 1 seed).")
    page.get_by_role("button", name="Submit sweep").click()
    page.wait_for_url(re.compile(r"/sweep\.html\?id=\d+$"))
    sweep = httpx.get(f"{base}/api/sweeps/{page.url.rsplit('=', 1)[1]}", timeout=10).json()
    made = {
        point["variant"]: (run["spec"]["schedule"]["kind"], run["spec"]["engine"], run["spec"]["backend"],
                           run["spec"]["exports"])
        for point, run in zip(sweep["points"], sweep["runs"], strict=True)
    }  # fmt: skip
    assert made == {
        "constant+tfmot": ("constant", "tfmot", None, ["keras", "h5", "tflite"]),
        "constant+keras-jax": ("constant", "keras", "jax", ["keras", "tflite"]),
        "polynomial+tfmot": ("polynomial", "tfmot", None, ["keras", "h5", "tflite"]),
        "polynomial+keras-jax": ("polynomial", "keras", "jax", ["keras", "tflite"]),
    }
