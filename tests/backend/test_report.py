"""The report is one HTML file that opens with no network and draws one trace per run and metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright

from harness.browser import launch_chromium
from prunelab.server.cli import main
from tests.backend.seed import SPEC, STAGED, seeded_run


def traces_drawn_offline(path: Path) -> list[dict[str, Any]]:
    """Open the file in Chromium with every non-file request refused; every drawn trace's meta, name and x."""
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()

            def refuse_network(route) -> None:  # type: ignore[no-untyped-def]
                if route.request.url.startswith("file:"):
                    route.continue_()
                else:
                    requested.append(route.request.url)
                    route.abort()

            page.route("**/*", refuse_network)
            page.goto(path.as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5")
            traces = page.evaluate(
                "[...document.querySelectorAll('.js-plotly-plot')].flatMap(gd => gd.data.map("
                "t => ({meta: t.meta, name: t.name, x: t.x ? [...t.x] : null})))"
            )
        finally:
            browser.close()
    assert requested == []
    return traces


def test_cli_report_opens_offline_with_one_trace_per_run_and_metric(
    client: TestClient, tmp_path: Path, capsys: object
) -> None:
    summary = {"test_accuracy": 0.9, "keras_zip_bytes": 1000}
    constant = {**SPEC, "schedule": {"kind": "constant", "target_sparsity": 0.5, "frequency": 7}}
    run_ids = [seeded_run(client, summary=summary), seeded_run(client, constant, summary=summary)]
    output = tmp_path / "report.html"
    assert main(["report", *map(str, run_ids), "-o", str(output)]) == 0
    text = output.read_text()
    assert "<script src=" not in text and text.count("Plotly.newPlot") >= 5  # embedded, nothing fetched
    metas = [trace["meta"] for trace in traces_drawn_offline(output)]
    per_run_metrics = [
        (m["run_id"], m["metric"]) for m in metas if m and m["metric"] not in ("pareto", "pareto_frontier")
    ]
    metrics_seen = {metric for _, metric in per_run_metrics}
    assert {"measured_sparsity", "planned_sparsity", "loss", "accuracy"} <= metrics_seen
    for metric in metrics_seen:  # exactly one trace per (run, metric)
        assert sorted(run for run, seen in per_run_metrics if seen == metric) == sorted(run_ids), metric
    assert any(m and m["metric"] == "pareto_frontier" for m in metas)


def test_the_report_draws_each_compress_stage_as_a_point_on_the_frontier(client: TestClient, tmp_path: Path) -> None:
    dense = seeded_run(client, summary={"test_accuracy": 0.993, "keras_zip_bytes": 1_600_000})
    staged = seeded_run(client, summary=STAGED)
    output = tmp_path / "report.html"
    assert main(["report", str(dense), str(staged), "-o", str(output)]) == 0
    traces = traces_drawn_offline(output)
    pareto = [trace for trace in traces if trace["meta"] and trace["meta"]["metric"] == "pareto"]
    assert [trace["meta"]["run_id"] for trace in pareto] == [dense, staged]
    # The staged run is drawn as its three stages (the reference int8 file of the pruned model is not one);
    # the frontier runs through its int8 file, its clustered file, then the dense run.
    assert pareto[1]["x"] == [383_000, 109_000, 76_000]
    frontier = next(trace for trace in traces if trace["name"] == "Pareto frontier")
    assert frontier["x"] == [76_000, 109_000, 1_600_000]


def test_report_endpoint_serves_a_download_and_cli_refuses_unknown_runs(client: TestClient, tmp_path: Path) -> None:
    run_id = seeded_run(client)
    response = client.get("/api/compare/report", params={"runs": str(run_id)})
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    assert "<html" in response.text
    assert main(["report", "9999", "-o", str(tmp_path / "r.html")]) == 2
    assert not (tmp_path / "r.html").exists()
