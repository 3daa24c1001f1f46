"""The metric pickers in headless Chromium: any key a run logged charted on the run and compare pages (a script's own
key, a per-layer group as one chart), kept in the URL; and a sensitivity run's chart, whose "Prune to these targets"
opens the run form filled with the proposed per-layer targets.

The runs are written straight into PostgreSQL (no worker), so every trace can be checked against what was stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Page, expect

from harness.browser import screenshot as shot
from harness.stack import REDIS_URL, StackConfig, migrate, postgres_database, start_api
from prunelab.core.plans import resolve_plan
from prunelab.core.specs import RunSpec
from prunelab.server.db import engine_for, session_scope
from prunelab.server.metrics.service import MetricPoint, record_points
from prunelab.server.models import Run, RunStatus, utcnow

pytestmark = pytest.mark.integration

SPEC: dict[str, Any] = {"name": "seeded", "dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 64,
                        "schedule": {"kind": "constant", "target_sparsity": 0.8, "frequency": 7}}  # fmt: skip
SWEEP = {
    "baseline_accuracy": 0.9,
    "evaluated_on": "validation",
    "layers": {"dense": [[0.5, 0.9], [0.9, 0.8]], "logits": [[0.5, 0.85], [0.9, 0.5]]},
    "params": {"dense": 8192, "logits": 1280},
}
CUSTOM = [0.3, 0.1, 0.4, 0.1, 0.5]  # my_script/custom at steps 1..5
LAYERS = {"layer_sparsity/dense": [0.5, 0.8], "layer_sparsity/logits": [0.4, 0.6]}  # at steps 7, 14
WAIT_MS = 60_000  # a loaded machine: wait on the page's own state, never on time


def _run(url: str, name: str, spec: dict[str, Any], points: list[MetricPoint], summary: dict[str, Any] | None) -> int:
    valid = RunSpec.model_validate({**spec, "name": name})
    with session_scope(engine_for(url)) as session:
        run = Run(name=name, status=RunStatus.SUCCEEDED, spec=valid.model_dump(mode="json"),
                  plan=resolve_plan(valid).model_dump(mode="json"), summary=summary, finished_at=utcnow())  # fmt: skip
        session.add(run)
        session.flush()
        record_points(session, run.id, [MetricPoint("loss", step, 1 / step, step) for step in range(1, 43)] + points)
        return run.id


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    expect.set_options(timeout=WAIT_MS)
    yield
    expect.set_options(timeout=5_000)  # Playwright's default, for the other modules


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackConfig, dict[str, int]]]:
    home = tmp_path_factory.mktemp("e2e-picker")
    with postgres_database() as url:
        config = StackConfig(home=home, database_url=url, broker_url=REDIS_URL)
        migrate(config)
        custom = [MetricPoint("my_script/custom", step, value, step) for step, value in enumerate(CUSTOM, 1)]
        layers = [MetricPoint(key, step, value, step) for key, values in LAYERS.items()
                  for step, value in zip((7, 14), values, strict=True)]  # fmt: skip
        ids = {
            "first": _run(url, "first", SPEC, [*custom, *layers, MetricPoint("val_loss", 21, 0.7, 21)], None),
            "second": _run(url, "second", SPEC, [MetricPoint(key, 7, 0.25, 7) for key in LAYERS], None),
            "sweep": _run(
                url,
                "sweep",
                {**SPEC, "recipe": {"kind": "sensitivity", "sparsities": [0.5, 0.9]}},
                [],
                {"sensitivity": SWEEP},
            ),
        }
        api = start_api(config, home / "logs")
        try:
            yield config, ids
        finally:
            api.stop()


def traces(page: Page, metric: str) -> list[dict[str, Any]]:
    """The traces Plotly drew in the picked chart of `metric`, once it drew as many as the runs logged."""
    return page.evaluate(
        "(m) => document.querySelector(`.picked[data-metric='${m}'] .chart`).data"
        ".map((t) => ({ name: t.name, x: Array.from(t.x), y: Array.from(t.y), meta: t.meta }))",
        metric,
    )


def wait_for_traces(page: Page, metric: str, count: int) -> list[dict[str, Any]]:
    page.wait_for_function(
        "([m, n]) => document.querySelector(`.picked[data-metric='${m}'] .chart`)?.data?.length === n",
        arg=[metric, count],
        timeout=WAIT_MS,
    )
    return traces(page, metric)


def pick(page: Page, value: str) -> None:
    page.fill("#metric-pick", value[:4])  # search as you type: the datalist offers what matches
    page.fill("#metric-pick", value)
    page.press("#metric-pick", "Enter")


def test_any_key_and_a_per_layer_group_are_charted_on_the_run_page(
    page: Page, stack: tuple[StackConfig, dict[str, int]]
) -> None:
    config, ids = stack
    page.goto(f"{config.base_url}/run.html?id={ids['first']}")
    options = page.locator("#metric-keys option")
    expect(options).to_have_count(4)  # the two layer_sparsity/<layer> keys are one entry
    offered = options.evaluate_all("(nodes) => nodes.map((node) => node.value)")
    assert offered == ["layer_sparsity/*", "loss", "my_script/custom", "val_loss"]

    pick(page, "my_script/custom")
    [custom] = wait_for_traces(page, "my_script/custom", 1)
    assert custom["x"] == [1, 2, 3, 4, 5] and custom["y"] == pytest.approx(CUSTOM)
    assert custom["meta"] == {"metric": "my_script/custom"}

    pick(page, "layer_sparsity/*")
    drawn = {trace["name"]: trace for trace in wait_for_traces(page, "layer_sparsity/*", 2)}
    assert sorted(drawn) == ["dense", "logits"]
    for key, values in LAYERS.items():
        assert drawn[key.split("/")[1]]["x"] == [7, 14] and drawn[key.split("/")[1]]["y"] == pytest.approx(values)
    assert parse_qs(urlparse(page.url).query)["metrics"] == ["my_script/custom,layer_sparsity/*"]

    pick(page, "no_such_key")
    expect(page.locator("#metric-message")).to_contain_text('No metric "no_such_key"')
    shot(page, "run-metric-picker")

    # The picks are in the URL: a reload draws the same charts; removing one drops it from the URL.
    page.reload()
    wait_for_traces(page, "layer_sparsity/*", 2)
    page.get_by_role("button", name="remove the chart of my_script/custom").click()
    expect(page.locator(".picked")).to_have_count(1)
    assert parse_qs(urlparse(page.url).query)["metrics"] == ["layer_sparsity/*"]


def test_the_compare_page_charts_picked_keys_of_every_run_from_its_url(
    page: Page, stack: tuple[StackConfig, dict[str, int]]
) -> None:
    config, ids = stack
    page.goto(f"{config.base_url}/compare.html?runs={ids['first']},{ids['second']}&metrics=layer_sparsity/*,val_loss")
    layers = wait_for_traces(page, "layer_sparsity/*", 4)  # two runs x two layers
    assert sorted((trace["meta"]["run_id"], trace["meta"]["metric"]) for trace in layers) == sorted(
        (run_id, key) for run_id in (ids["first"], ids["second"]) for key in LAYERS
    )
    second = [trace for trace in layers if trace["meta"]["run_id"] == ids["second"]]
    assert all(trace["x"] == [7] and trace["y"] == [0.25] for trace in second)
    [val_loss] = wait_for_traces(page, "val_loss", 1)  # only the first run logged it
    assert val_loss["meta"] == {"run_id": ids["first"], "metric": "val_loss"} and val_loss["y"] == [0.7]
    offered = page.locator("#metric-keys option").evaluate_all("(nodes) => nodes.map((node) => node.value)")
    assert offered == ["layer_sparsity/*", "loss", "my_script/custom", "val_loss"]
    shot(page, "compare-metric-picker")


def test_sensitivity_chart_and_prune_to_these_targets_fill_the_form(
    page: Page, stack: tuple[StackConfig, dict[str, int]]
) -> None:
    config, ids = stack
    page.goto(f"{config.base_url}/run.html?id={ids['sweep']}")
    page.wait_for_function("() => document.getElementById('chart-sensitivity')?.data?.length === 3", timeout=WAIT_MS)
    drawn = page.evaluate(
        "() => document.getElementById('chart-sensitivity').data.map((t) => ({ name: t.name, x: t.x, y: t.y }))"
    )
    assert [trace["name"] for trace in drawn] == ["dense", "logits", "dense baseline"]
    assert drawn[0]["x"] == [0, 0.5, 0.9] and drawn[0]["y"] == [0.9, 0.9, 0.8]
    assert drawn[1]["x"] == [0, 0.5, 0.9] and drawn[1]["y"] == [0.9, 0.85, 0.5]

    page.fill("#sensitivity-target", "0.6")
    page.dispatch_event("#sensitivity-target", "change")
    proposal = httpx.get(
        f"{config.base_url}/api/runs/{ids['sweep']}/sensitivity/proposal?target_sparsity=0.6", timeout=30
    ).json()
    for layer, sparsity in proposal["layer_sparsities"].items():
        expect(page.locator(f"#sensitivity-targets tr[data-layer='{layer}'] td.num")).to_have_text(
            f"{100 * sparsity:.1f}%"
        )
    button = page.get_by_role("button", name="Prune to these targets")
    expect(button).to_be_enabled()
    button.click()
    page.wait_for_url(re.compile(r"/new\.html\?sensitivity="), timeout=WAIT_MS)
    field = page.locator("[name='layer_targets']")
    expect(field).not_to_have_value("")
    assert json.loads(field.input_value()) == pytest.approx(proposal["layer_sparsities"])
    assert page.locator("[name='recipe.kind']").input_value() == "pretrained"
    shot(page, "prune-to-these-targets")

    # A target the sweep cannot reach says why, and offers no button.
    page.go_back()
    page.fill("#sensitivity-target", "0.95")
    page.dispatch_event("#sensitivity-target", "change")
    expect(page.locator("#sensitivity-targets [role=alert]")).to_contain_text("above what the sweep measured")
    expect(button).to_be_disabled()
