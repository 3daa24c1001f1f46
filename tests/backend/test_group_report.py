"""The grouped report: group table, Welch comparisons, the frontier, parcoords and banded curves, offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from prunelab.server.cli import main
from prunelab.server.db import session_scope
from prunelab.server.models import Run, RunStatus, utcnow
from tests.backend.seed import SPEC, seeded_run
from tests.backend.test_report import traces_drawn_offline

SCHEDULES = {
    "constant": {"kind": "constant", "target_sparsity": 0.75, "frequency": 7},
    "polynomial": {"kind": "polynomial", "final_sparsity": 0.75, "frequency": 7},
}
ACCURACY = {"constant": (0.95, 0.96), "polynomial": (0.97, 0.98)}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_grouped_report_holds_the_table_the_sentence_and_the_frontier(client: TestClient, tmp_path: Path) -> None:
    run_ids = []
    for kind, schedule in SCHEDULES.items():
        for seed, accuracy in enumerate(ACCURACY[kind]):
            summary = {"test_accuracy": accuracy, "measured_sparsity": 0.75, "keras_zip_bytes": 1000 + seed}
            run_ids.append(seeded_run(client, {**SPEC, "seed": seed, "schedule": schedule}, summary=summary))
    run_ids.append(seeded_run(client, {**SPEC, "schedule": SCHEDULES["constant"]}, status=RunStatus.FAILED))
    dense = seeded_run(client, {**SPEC, "name": "dense"}, summary={"test_accuracy": 0.99, "measured_sparsity": 0.0})
    output = tmp_path / "report.html"
    command = ["report", *map(str, run_ids), "--baseline", str(dense), "--by", "schedule.kind", "-o", str(output)]
    assert main(command) == 0
    text = output.read_text()
    assert "<h2>Groups by schedule.kind</h2>" in text
    assert "<td>constant</td><td>2</td><td>1</td><td>0</td><td>0.955 ± 0.0071</td>" in text
    assert (
        "constant - polynomial: -2.00 pt [-5.04, +1.04], p = 0.11, n = 2 / 2: not resolved" in text
        and "1 failed run in constant not counted" in text
    )
    traces = traces_drawn_offline(output)
    by_metric = {trace["meta"]["metric"]: trace for trace in traces if trace["meta"] and "metric" in trace["meta"]}
    assert {"group_frontier", "group_parcoords", "group_mean", "group_band_lower"} <= set(by_metric)
    frontier = [trace for trace in traces if trace["meta"] and trace["meta"].get("metric") == "group_frontier"]
    assert sorted(trace["meta"]["variant"] for trace in frontier) == [
        "schedule.kind=constant",
        "schedule.kind=polynomial",
    ]
    means = [trace for trace in traces if trace["meta"] and trace["meta"].get("metric") == "group_mean"]
    assert all(max(trace["meta"]["n"]) == 2 for trace in means)


def test_report_groups_the_runs_a_filter_matches_and_names_a_bad_field(client: TestClient) -> None:
    for seed in range(2):
        seeded_run(client, {**SPEC, "seed": seed}, summary={"test_accuracy": 0.9 + seed / 100})
    response = client.get("/api/compare/report", params={"by": "model", "filter": "model:mlp"})
    assert response.status_code == 200, response.text
    assert "<h2>Groups by model</h2>" in response.text and "0.905 ± 0.0071" in response.text
    bad = client.get("/api/compare/report", params={"by": "modle"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "by"
    assert client.get("/api/compare/report").json()["detail"][0]["field"] == "runs"


def test_a_sweeps_report_holds_its_groups_comparisons_frontier_spec_and_points(client: TestClient) -> None:
    sweep = client.post(
        "/api/sweeps",
        json={
            "name": "schedules",
            "base": {"dataset": "digits", "model": "mlp", "epochs": 1, "schedule": {"frequency": 41}},
            "variants": {
                "constant": {"schedule": {"kind": "constant"}},
                "polynomial": {"schedule": {"kind": "polynomial"}},
            },
            "axes": [{"path": "sparsity", "values": [0.75]}],
            "seeds": [0, 1],
        },
    ).json()
    accuracy = {("constant", 0): 0.95, ("constant", 1): 0.96, ("polynomial", 0): 0.97, ("polynomial", 1): 0.98}
    with session_scope() as session:
        for point in sweep["points"]:
            run = session.get(Run, point["run_id"])
            assert run is not None
            run.status, run.finished_at = RunStatus.SUCCEEDED, utcnow()
            run.summary = {"test_accuracy": accuracy[point["variant"], point["seed"]], "measured_sparsity": 0.75}
    response = client.get("/api/compare/report", params={"sweep": sweep["id"]})
    assert response.status_code == 200, response.text
    assert f'filename="prunelab-sweep-{sweep["id"]}.html"' in response.headers["content-disposition"]
    text = response.text
    assert f"<title>PruneLab report: sweep #{sweep['id']} schedules</title>" in text
    assert "<h2>Groups by tag:variant, tag:sparsity</h2>" in text and "0.955 ± 0.0071" in text
    assert "-2.00 pt [-5.04, +1.04], p = 0.11, n = 2 / 2: not resolved" in text
    assert "<h2>The sweep's spec</h2>" in text and "&quot;final_sparsity&quot;" not in text
    assert "&quot;frequency&quot;: 41" in text
    assert "<td>variant polynomial, sparsity 0.75, seed 1</td>" in text and text.count("<td>succeeded</td>") == 4
    assert '"group_frontier"' in text and '"group_parcoords"' in text
    missing = client.get("/api/compare/report", params={"sweep": 999})
    assert missing.status_code == 404 and "999" in missing.json()["detail"]
