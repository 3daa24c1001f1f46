"""The run form's engine fields in headless Chromium: an Engine group with both choices, the server's 422 shown
next to the field it names, and a keras run on JAX submitted as the JSON the API stores (no worker needed)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from harness.browser import screenshot as shot
from harness.stack import StackConfig
from tests.client.conftest import api_only  # noqa: F401 - the API with no worker: nothing here trains

pytestmark = pytest.mark.integration


def test_the_form_offers_the_engines_and_says_what_each_cannot_do(api_only: StackConfig, page: Page) -> None:  # noqa: F811
    base = api_only.base_url
    page.goto(f"{base}/new.html")
    group = page.locator('fieldset[data-group="engine"]')
    expect(group.locator("legend")).to_have_text("Engine")
    engine, backend = page.get_by_label("Engine", exact=True), page.get_by_label("Backend", exact=True)
    expect(engine).to_have_value("tfmot")
    expect(backend).to_have_value("")  # null: the engine's default
    expect(backend.locator("option")).to_have_text(["(default)", "tensorflow", "jax", "torch"])

    backend.select_option("jax")
    expect(page.locator('[data-field="backend"] .error')).to_contain_text(
        "the tfmot engine runs on tf-keras (TensorFlow) only"
    )
    engine.select_option("keras")
    expect(page.locator('[data-field="backend"] .error')).to_have_text("")
    expect(page.locator('[data-field="exports"] .error')).to_contain_text(
        "h5: the keras engine exports keras, tflite, tflite_int8 only"
    )
    page.get_by_label("Exports", exact=True).fill("keras, tflite")
    expect(page.locator('[data-field="exports"] .error')).to_have_text("")
    page.get_by_label("Epochs").fill("1")
    page.get_by_label("Batch Size").fill("64")
    page.get_by_label("Frequency").fill("7")  # 21 steps: the default frequency (100) would not fit
    shot(page, "engine-form-keras-jax")
    page.get_by_role("button", name="Submit run").click()
    page.wait_for_url(re.compile(r"/run\.html\?id=\d+$"))
    run_id = int(page.url.rsplit("=", 1)[1])
    spec = httpx.get(f"{base}/api/runs/{run_id}", timeout=10).json()["spec"]
    assert (spec["engine"], spec["backend"], spec["exports"]) == ("keras", "jax", ["keras", "tflite"])
