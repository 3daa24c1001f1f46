"""A finished run of 50,000 steps in headless Chromium: the run page asks only for what it draws.

The run is stored compacted (no worker: the series are written by the compaction writer). The page
loads its curve keys and, once the layers section is near the viewport, the per-layer sparsity keys;
never the mask churn, which it does not draw. Its curves hold thousands of points, so they are WebGL
traces. Zooming the loss chart to 1,000 steps re-reads that window and draws every raw point of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, Response, sync_playwright

from harness.browser import launch_chromium
from harness.stack import REDIS_URL, StackConfig, migrate, postgres_database, start_api
from prunelab.core.plans import resolve_plan
from prunelab.core.specs import RunSpec
from prunelab.server.db import engine_for, session_scope
from prunelab.server.metrics.compaction import store_compacted
from prunelab.server.metrics.points import Points
from prunelab.server.metrics.replies import COLUMNS_MEDIA_TYPE
from prunelab.server.models import Run, RunStatus, utcnow

pytestmark = pytest.mark.integration

STEPS = 50_000
CURVES = ("loss", "accuracy", "measured_sparsity", "target_sparsity")


def long_run(database_url: str) -> int:
    spec = RunSpec.model_validate({"name": "long", "epochs": 1, "schedule": {"kind": "constant", "frequency": 7}})
    steps = np.arange(1, STEPS + 1, dtype=np.int64)
    every_100 = steps[99::100]
    rng = np.random.default_rng(0)
    series = {key: Points(steps, rng.random(STEPS), steps * 0.05) for key in CURVES}
    series["layer_sparsity/dense"] = Points(every_100, np.linspace(0, 0.8, every_100.size), every_100 * 0.05)
    series["mask_churn/dense"] = Points(every_100, rng.random(every_100.size), every_100 * 0.05)
    with session_scope(engine_for(database_url)) as session:
        run = Run(
            name="long",
            status=RunStatus.SUCCEEDED,
            spec=spec.model_dump(mode="json"),
            plan=resolve_plan(spec).model_dump(mode="json"),
            finished_at=utcnow(),
        )
        session.add(run)
        session.flush()
        store_compacted(session, run.id, series)
        return run.id


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackConfig, list[int]]]:
    home = tmp_path_factory.mktemp("e2e-long")
    with postgres_database() as url:
        config = StackConfig(home=home, database_url=url, broker_url=REDIS_URL)
        migrate(config)
        run_ids = [long_run(url) for _ in range(5)]
        api = start_api(config, home / "logs")
        try:
            yield config, run_ids
        finally:
            api.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser: Browser = launch_chromium(playwright)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        browser.close()
        assert errors == [], errors


def test_the_run_page_reads_what_it_draws_and_zooms_to_every_point(
    stack: tuple[StackConfig, list[int]], page: Page
) -> None:
    config, (run_id, *_) = stack
    asked: list[dict[str, list[str]]] = []
    page.on(
        "request",
        lambda request: (
            asked.append(parse_qs(urlparse(request.url).query))
            if urlparse(request.url).path == f"/api/runs/{run_id}/metrics"
            else None
        ),
    )
    page.goto(f"{config.base_url}/run.html?id={run_id}")
    page.wait_for_function("(document.getElementById('chart-loss')?.data?.[0]?.x?.length ?? 0) > 100")
    page.wait_for_function("document.querySelectorAll('#layer-table tbody tr').length === 1")
    keys = {key for query in asked for key in query["keys"][0].split(",")}
    assert "mask_churn/dense" not in keys and "layer_sparsity/dense" in keys and "loss" in keys
    overview = page.evaluate("document.getElementById('chart-loss').data[0]")
    assert overview["x"][0] == 1 and overview["x"][-1] == STEPS and len(overview["x"]) < 2000

    # Zoom to steps 20,000-20,999: that window is re-read, and every raw point of it is drawn.
    page.evaluate("Plotly.relayout('chart-loss', {'xaxis.range[0]': 20000, 'xaxis.range[1]': 20999})")
    page.wait_for_function("document.getElementById('chart-loss').data[0].x.length === 1000")
    zoom = [query for query in asked if "start_step" in query][-1]
    assert zoom["start_step"] == ["20000"] and zoom["end_step"] == ["20999"] and zoom["keys"] == ["loss"]
    assert page.evaluate("document.getElementById('chart-loss').data[0].x[0]") == 20000
    assert page.evaluate("document.getElementById('chart-loss').layout.xaxis.range") == [20000, 20999]

    # Smoothing the zoomed window: a step-weighted average, finite and within the data's range.
    page.locator("#smoothing").fill("0.9")
    page.wait_for_function(
        "(() => { const t = document.getElementById('chart-loss').data[0];"
        " return t.y.length === 1000 && t.y[500] !== null && Math.abs(t.y[500] - 0.5) < 0.3; })()"
    )
    # Double-click (autorange) returns to the whole run.
    page.evaluate("Plotly.relayout('chart-loss', {'xaxis.autorange': true})")
    page.wait_for_function(f"document.getElementById('chart-loss').data[0].x.at(-1) === {STEPS}")


def test_compare_draws_many_points_with_webgl_and_zooms_every_run(
    stack: tuple[StackConfig, list[int]], page: Page
) -> None:
    config, run_ids = stack
    page.goto(f"{config.base_url}/compare.html?runs={','.join(map(str, run_ids))}")
    page.wait_for_function("(document.getElementById('chart-loss')?.data?.length ?? 0) === 5")
    traces = page.evaluate("document.getElementById('chart-loss').data.map(t => [t.type, t.x.length])")
    assert sum(count for _, count in traces) > 2000  # five long runs at about a point per pixel: past the SVG limit
    assert {kind for kind, _ in traces} == {"scattergl"}
    page.evaluate("Plotly.relayout('chart-loss', {'xaxis.range[0]': 100, 'xaxis.range[1]': 1099})")
    page.wait_for_function("document.getElementById('chart-loss').data.every(t => t.x.length === 1000)")
    assert page.evaluate("document.getElementById('chart-loss').data.map(t => t.x[0])") == [100] * 5


def test_the_charts_read_typed_columns_and_revalidate_an_unchanged_comparison(
    stack: tuple[StackConfig, list[int]], page: Page
) -> None:
    config, run_ids = stack
    replies: list[tuple[str | None, str | None]] = []
    revalidated: list[tuple[int, str | None]] = []

    def seen(response: Response) -> None:
        if urlparse(response.url).path != "/api/compare":
            return
        revalidated.append((response.status, response.request.all_headers().get("if-none-match")))
        if response.status == 200:
            replies.append((response.request.headers.get("accept"), response.headers.get("content-type")))

    page.on("response", seen)
    url = f"{config.base_url}/compare.html?runs={','.join(map(str, run_ids))}&x=epoch"
    page.goto(url)
    page.wait_for_function("(document.getElementById('chart-loss')?.data?.length ?? 0) === 5")
    assert replies and all(accept == content == COLUMNS_MEDIA_TYPE for accept, content in replies)
    # The typed arrays are drawn as they came (steps an Int32Array; epochs computed into a Float64Array, not truncated).
    drawn = page.evaluate(
        "(() => { const t = document.getElementById('chart-loss').data[0];"
        " return [ArrayBuffer.isView(t.y), t.x.constructor.name, t.x[0], t.x.at(-1)]; })()"
    )
    assert drawn[:2] == [True, "Float64Array"] and 0 < drawn[2] < 1 and drawn[3] > 1
    page.locator("#xaxis").select_option("wall")  # wall times: origin + float32 offsets, made on demand
    page.wait_for_function("document.getElementById('chart-loss').data[0].x[0] === 0.05")
    first_visit = len(revalidated)
    page.goto(url)
    page.wait_for_function("(document.getElementById('chart-loss')?.data?.length ?? 0) === 5")
    # The second visit asks with the ETag it was given: the unchanged comparison is a 304.
    assert revalidated[first_visit:] and all(tag is not None for _, tag in revalidated[first_visit:])
