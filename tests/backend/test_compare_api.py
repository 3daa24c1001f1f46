"""The compare endpoint: several runs, their differences, the Pareto frontier and bounded series."""

from __future__ import annotations

from fastapi.testclient import TestClient

from prunelab.server.compare.service import frontier, pareto_front, size_points
from prunelab.server.db import session_scope
from prunelab.server.metrics.service import MetricPoint, record_points
from prunelab.server.runs.schemas import RunOut
from tests.backend.seed import SPEC, STAGED, seeded_run


def test_compare_returns_each_run_with_downsampled_series_and_what_differs(client: TestClient) -> None:
    constant = {**SPEC, "name": "const", "schedule": {"kind": "constant", "target_sparsity": 0.5, "frequency": 7}}
    first = seeded_run(client, steps=42, summary={"test_accuracy": 0.9, "keras_zip_bytes": 1000})
    second = seeded_run(client, constant, steps=42, summary={"test_accuracy": 0.95, "keras_zip_bytes": 2000})
    response = client.get("/api/compare", params={"runs": f"{first},{second}", "max_points": 10})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [run["id"] for run in body["runs"]] == [first, second]
    loss = body["series"][str(first)]["loss"]
    assert len(loss["steps"]) <= 10 and loss["steps"][0] == 1 and loss["steps"][-1] == 42
    assert body["planned"][str(second)]["target_sparsity"][-1] == 0.5
    differing = {row["parameter"] for row in body["differences"]}
    assert {"name", "schedule.kind", "schedule.target_sparsity", "schedule.final_sparsity"} <= differing
    assert "epochs" not in differing
    assert body["pareto_ids"] == [first, second]
    assert len(set(body["colors"].values())) == 2


def test_pareto_front_drops_runs_beaten_on_size_and_accuracy() -> None:
    points = {1: (100.0, 0.90), 2: (200.0, 0.95), 3: (150.0, 0.85), 4: (300.0, 0.95), 5: (50.0, 0.5)}
    assert pareto_front(points) == [5, 1, 2]


def test_each_compress_stage_is_its_own_point_on_the_frontier(client: TestClient) -> None:
    dense = seeded_run(client, summary={"test_accuracy": 0.993, "keras_zip_bytes": 1_600_000})
    beaten = seeded_run(client, summary={"test_accuracy": 0.95, "keras_zip_bytes": 200_000})
    staged = seeded_run(client, summary=STAGED)
    body = client.get("/api/compare", params={"runs": f"{dense},{beaten},{staged}"}).json()
    # The staged run's int8 file (76 kB) and clustered .h5 (109 kB) beat the 200 kB run; its own .keras zip
    # (390 kB) would not have; the reference int8 file of the pruned model is not a stage of the chain.
    assert body["pareto_ids"] == [staged, dense]
    runs = {run["id"]: RunOut.model_validate(run) for run in body["runs"]}
    assert [(point.stage, point.zipped) for point in frontier(list(runs.values()))] == [
        ("tflite_int8", 76_000),
        ("cluster", 109_000),
        (None, 1_600_000),
    ]
    assert [point.stage for point in size_points(runs[staged])] == ["pruned", "cluster", "tflite_int8"]


def test_bad_selections_get_404_or_422(client: TestClient) -> None:
    assert client.get("/api/compare").status_code == 422
    assert client.get("/api/compare", params={"runs": "1,x"}).json()["detail"][0]["field"] == "runs"
    too_many = ",".join(str(i) for i in range(1, 30))
    assert "at most 21" in client.get("/api/compare", params={"runs": too_many}).json()["detail"][0]["msg"]
    assert client.get("/api/compare", params={"runs": "9999"}).status_code == 404
    assert client.get("/api/compare", params={"runs": "1", "max_points": 2}).status_code == 422
    assert client.get("/api/compare/report", params={"runs": "9999"}).status_code == 404


def test_metrics_endpoint_honours_max_points(client: TestClient) -> None:
    run_id = seeded_run(client, steps=300)
    body = client.get(f"/api/runs/{run_id}/metrics", params={"keys": "loss", "max_points": 50}).json()
    loss = body["series"]["loss"]
    assert len(loss["steps"]) <= 50 and loss["values"][0] == 2.0 and loss["steps"][-1] == 300
    assert client.get(f"/api/runs/{run_id}/metrics", params={"max_points": 999_999}).status_code == 422


def test_compare_reduces_long_series_in_the_database_keeping_ends_extrema_and_gaps(client: TestClient) -> None:
    run_id = seeded_run(client, steps=42)
    values = [0.5 + 0.001 * step for step in range(1, 1001)]
    values[300], values[600], values[700] = 9.0, -9.0, float("nan")
    with session_scope() as session:
        record_points(session, run_id, [MetricPoint("spiky", i + 1, v, i * 0.5) for i, v in enumerate(values)])
    body = client.get("/api/compare", params={"runs": str(run_id), "keys": "spiky,loss", "max_points": 50}).json()
    spiky = body["series"][str(run_id)]["spiky"]
    assert len(spiky["steps"]) <= 50 and spiky["steps"] == sorted(set(spiky["steps"]))
    assert spiky["steps"][0] == 1 and spiky["values"][0] == 0.501
    assert spiky["steps"][-1] == 1000 and spiky["values"][-1] == 1.5
    assert {9.0, -9.0, None} <= set(spiky["values"])
    assert 701 in [step for step, value in zip(spiky["steps"], spiky["values"], strict=True) if value is None]
    assert body["series"][str(run_id)]["loss"]["steps"][-1] == 42


def test_run_ids_in_other_scripts_digits_are_a_422(client: TestClient) -> None:
    # str.isdigit() accepts '²' and '٣', which int() refuses: they must be a clear 422, not a 500.
    for ids in ("²", "1,٣"):
        response = client.get("/api/compare", params={"runs": ids})
        assert response.status_code == 422 and response.json()["detail"][0]["field"] == "runs"
