"""Groups on the compare page in headless Chromium: the group table, the banded mean curves (n at each x, runs of
different lengths), the comparison sentence of two groups, the frontier (log x) and the parcoords.

The runs are written straight into PostgreSQL (no worker): final metrics known, accuracy series compacted, so
every figure the page draws can be checked against what the server computed from them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from scipy import stats

from harness.browser import screenshot as shot
from harness.stack import REDIS_URL, StackConfig, migrate, postgres_database, start_api
from prunelab.core.plans import resolve_plan
from prunelab.core.specs import RunSpec
from prunelab.server.db import engine_for, session_scope
from prunelab.server.metrics.compaction import store_compacted
from prunelab.server.metrics.points import Points
from prunelab.server.models import Run, RunStatus, utcnow

pytestmark = pytest.mark.integration

SCHEDULES = {
    "constant": {"kind": "constant", "target_sparsity": 0.75, "frequency": 7},
    "polynomial": {"kind": "polynomial", "final_sparsity": 0.75, "frequency": 7},
}
ACCURACY = {"constant": [0.951, 0.957, 0.949], "polynomial": [0.962, 0.968, 0.96]}
STEPS = (42, 42, 21)  # the third seed of each schedule stopped at half: n drops to 2 past step 21


def _run(database_url: str, name: str, schedule: dict[str, object], seed: int, status: RunStatus, steps: int,
         summary: dict[str, float] | None) -> int:  # fmt: skip
    spec = RunSpec.model_validate({"name": name, "epochs": 2, "batch_size": 64, "seed": seed, "schedule": schedule})
    with session_scope(engine_for(database_url)) as session:
        run = Run(name=name, status=status, spec=spec.model_dump(mode="json"),
                  plan=resolve_plan(spec).model_dump(mode="json"), summary=summary, finished_at=utcnow())  # fmt: skip
        session.add(run)
        session.flush()
        step = np.arange(1, steps + 1, dtype=np.int64)
        accuracy = (summary or {}).get("test_accuracy", 0.5) * step / 42
        store_compacted(session, run.id, {"accuracy": Points(step, accuracy, step * 0.1)})
        return run.id


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    """On a loaded machine the page's requests take seconds: wait on each element's state up to 30 s, here only."""
    expect.set_options(timeout=30_000)
    yield
    expect.set_options(timeout=5_000)  # Playwright's default, for the other modules


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackConfig, list[int], int]]:
    home = tmp_path_factory.mktemp("e2e-groups")
    with postgres_database() as url:
        config = StackConfig(home=home, database_url=url, broker_url=REDIS_URL)
        migrate(config)
        ids = []
        for kind, schedule in SCHEDULES.items():
            for seed, (accuracy, steps) in enumerate(zip(ACCURACY[kind], STEPS, strict=True)):
                summary = {"test_accuracy": accuracy, "measured_sparsity": 0.75 - seed / 100,
                           "keras_zip_bytes": 20_000 + 1000 * seed + (0 if kind == "polynomial" else 5000)}  # fmt: skip
                ids.append(_run(url, f"{kind} {seed}", schedule, seed, RunStatus.SUCCEEDED, steps, summary))
        ids.append(_run(url, "constant crashed", SCHEDULES["constant"], 7, RunStatus.FAILED, 5, None))
        dense = _run(url, "dense", {"kind": "constant", "target_sparsity": 0.0, "frequency": 7}, 0, RunStatus.SUCCEEDED,
                     42, {"test_accuracy": 0.975, "measured_sparsity": 0.0, "keras_zip_bytes": 90_000})  # fmt: skip
        api = start_api(config, home / "logs")
        try:
            yield config, ids, dense
        finally:
            api.stop()


def test_grouped_compare_draws_bands_the_sentence_and_the_frontier(
    stack: tuple[StackConfig, list[int], int], page: Page
) -> None:
    config, ids, dense = stack
    page.goto(
        f"{config.base_url}/compare.html?runs={','.join(map(str, ids))}&baseline={dense}&by=schedule.kind&gx=step"
    )
    rows = page.locator("#groups tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text('"constant"')
    expect(rows.nth(0).locator("td").nth(1)).to_have_text("1")  # the failed run, counted apart
    expect(rows.nth(1).locator(".group-n")).to_have_text("3")
    mean, std = np.mean(ACCURACY["polynomial"]), np.std(ACCURACY["polynomial"], ddof=1)
    expect(rows.nth(1)).to_contain_text(f"{mean:.4f} ± {std:.2g}")

    # The grouped curves: a mean line between its band's edges per group, n at each x (the short runs end at 21).
    page.wait_for_function(
        "(document.getElementById('chart-groups')?.data || [])"
        ".filter(t => t.meta?.metric === 'group_mean').length === 2"
    )
    traces = page.evaluate(
        "document.getElementById('chart-groups').data"
        ".map(t => ({meta: t.meta, x: [...t.x], y: [...t.y], fill: t.fill}))"
    )
    means = [trace for trace in traces if trace["meta"]["metric"] == "group_mean"]
    assert {trace["meta"]["group"] for trace in means} == {"schedule.kind=constant", "schedule.kind=polynomial"}
    for trace in means:
        for x, n in zip(trace["x"], trace["meta"]["n"], strict=True):
            assert n == (3 if x <= 21 else 2), (x, n)
    lower = next(
        t for t in traces if t["meta"]["metric"] == "group_band_lower" and t["meta"]["group"].endswith("polynomial")
    )
    assert lower["fill"] == "tonexty"
    last_x, last_lower = lower["x"][-1], lower["y"][-1]
    first_two = [value * last_x / 42 for value in ACCURACY["polynomial"][:2]]
    assert last_lower == pytest.approx(np.mean(first_two) - np.std(first_two, ddof=1))
    page.get_by_label("Band").select_option("ci95")
    page.wait_for_function(
        "document.getElementById('chart-groups').data"
        ".some(t => t.meta?.metric === 'group_mean' && t.meta.band === 'ci95')"
    )
    expect(page).to_have_url(re.compile(r"band=ci95"))

    # The sentence: polynomial minus constant, Welch's interval and p as scipy gives them, the failed run said.
    expected = stats.ttest_ind(ACCURACY["polynomial"], ACCURACY["constant"], equal_var=False)
    interval = expected.confidence_interval(0.95)
    sentence = page.locator("#group-sentence")
    expect(sentence).to_contain_text(
        f"polynomial - constant: +{(mean - np.mean(ACCURACY['constant'])) * 100:.2f} pt "
        f"[{interval.low * 100:+.2f}, {interval.high * 100:+.2f}]"
    )
    expect(sentence).to_contain_text("n = 3 / 3")
    expect(sentence).to_contain_text("1 failed run in constant not counted")
    page.get_by_label("Group A").select_option("schedule.kind=constant")
    page.get_by_label("minus group B").select_option("schedule.kind=polynomial")
    expect(sentence).to_contain_text("constant - polynomial: -")

    # The frontier: one line per variant with error bars; the polynomial group (smaller files) is on the front.
    page.get_by_label("Frontier x").select_option("size")
    page.wait_for_function(
        "(document.getElementById('chart-frontier')?.data || []).some(t => t.meta?.metric === 'group_frontier')"
        " && document.getElementById('chart-frontier').layout.xaxis.title.text === 'keras_zip_bytes'"
    )
    frontier = page.evaluate(
        "document.getElementById('chart-frontier').data"
        ".map(t => ({meta: t.meta, x: [...t.x], err: [...t.error_y.array]}))"
    )
    by_variant = {trace["meta"]["variant"]: trace for trace in frontier}
    assert by_variant["schedule.kind=polynomial"]["meta"]["pareto"] == [True]
    assert by_variant["schedule.kind=constant"]["meta"]["pareto"] == [False]
    assert by_variant["schedule.kind=polynomial"]["x"] == [pytest.approx(21_000)]
    assert by_variant["schedule.kind=polynomial"]["err"] == [pytest.approx(std)]
    assert page.evaluate("document.getElementById('chart-frontier').layout.shapes[0].y0") == pytest.approx(0.975)
    page.get_by_label("log scale (x)").check()
    page.wait_for_function("document.getElementById('chart-frontier').layout.xaxis.type === 'log'")

    # The parcoords: the grouped field against the metric's group means.
    parcoords = page.evaluate(
        "(() => { const t = document.getElementById('chart-parcoords').data[0];"
        " return {type: t.type, labels: t.dimensions.map(d => d.label), values: [...t.dimensions.at(-1).values]}; })()"
    )
    assert parcoords["type"] == "parcoords" and parcoords["labels"] == ["schedule.kind", "test_accuracy"]
    assert parcoords["values"] == [pytest.approx(np.mean(ACCURACY["constant"])), pytest.approx(mean)]
    report = page.request.get(f"{config.base_url}{page.locator('#report').get_attribute('href')}")
    assert report.ok and "Groups by schedule.kind" in report.text()
    shot(page, "compare-groups")


def test_an_unknown_group_field_is_said_on_the_page(stack: tuple[StackConfig, list[int], int], page: Page) -> None:
    config, _, _ = stack
    page.goto(f"{config.base_url}/compare.html?filter=kind:polynomial&by=schedule.knd")
    expect(page.locator("#group-message")).to_contain_text("'schedule.knd' is not a spec field")
    page.get_by_label("Group by").fill("seed")
    page.get_by_label("Group by").dispatch_event("change")
    expect(page.locator("#group-message")).to_contain_text("3 groups of 3 succeeded runs", timeout=30_000)
    expect(page.locator("#groups tbody tr")).to_have_count(3)


def test_the_runs_table_groups_the_runs_its_filter_matches(
    stack: tuple[StackConfig, list[int], int], page: Page
) -> None:
    config, _, _ = stack
    page.goto(f"{config.base_url}/index.html")
    page.get_by_label("Group by").fill("schedule.kind, sparsity")
    page.get_by_label("Group by").dispatch_event("change")
    rows = page.locator("#groups tbody tr")
    expect(rows).to_have_count(3, timeout=30_000)  # the dense run (sparsity 0) is a group of its own
    expect(rows.nth(1)).to_contain_text('"constant"0.75')
    expect(rows.nth(1).locator(".group-n")).to_have_text("3")
    mean, std = np.mean(ACCURACY["constant"]), np.std(ACCURACY["constant"], ddof=1)
    expect(rows.nth(1)).to_contain_text(f"{mean:.4f} ± {std:.2g}")
    page.get_by_label("Filter").fill("kind:polynomial")
    expect(rows).to_have_count(1, timeout=30_000)
    expect(page.locator("#group-compare")).to_have_attribute("href", re.compile(r"by=schedule\.kind%2Csparsity"))
    page.get_by_label("Group by").fill("shedule.kind")
    page.get_by_label("Group by").dispatch_event("change")
    expect(page.locator("#group-message")).to_contain_text("'shedule.kind' is not a spec field", timeout=30_000)
