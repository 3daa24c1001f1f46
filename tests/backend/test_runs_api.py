"""The runs API against migrated PostgreSQL and SQLite (no worker: runs stay queued)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from prunelab.server.db import session_scope
from prunelab.server.metrics.service import MetricPoint, record_points
from prunelab.server.models import Metric, Run, RunStatus

POLYNOMIAL = {
    "name": "poly",
    "dataset": "digits",
    "model": "mlp",
    "epochs": 2,
    "batch_size": 32,
    "schedule": {"kind": "polynomial", "final_sparsity": 0.75, "frequency": 41},
}


def submit(client: TestClient, payload: dict | None = None) -> dict:
    response = client.post("/api/runs", json=payload or POLYNOMIAL)
    assert response.status_code == 201, response.text
    return response.json()


def test_submit_returns_the_queued_run_with_its_resolved_plan(client: TestClient) -> None:
    run = submit(client)
    assert run["status"] == "queued"
    assert run["spec"]["schedule"]["end_step"] == -1
    assert run["plan"]["total_steps"] == 82
    assert run["plan"]["schedule"]["end_step"] == 82
    assert run["plan"]["last_pruning_step"] == 82
    assert client.get(f"/api/runs/{run['id']}").json()["plan"] == run["plan"]
    assert [r["id"] for r in client.get("/api/runs").json()["runs"]] == [run["id"]]


def test_invalid_spec_gets_422_naming_each_field(client: TestClient) -> None:
    response = client.post(
        "/api/runs",
        json={"dataset": "cifar100", "schedule": {"kind": "polynomial", "final_sparsity": 1.0, "frequency": 0}},
    )
    assert response.status_code == 422
    messages = {item["field"]: item["msg"] for item in response.json()["detail"]}
    assert messages == {
        "dataset": "unknown dataset 'cifar100'; choose one of: cifar10, digits, fashion_mnist, mnist",
        "schedule.final_sparsity": "final_sparsity must be in range [0,1)",
        "schedule.frequency": "frequency should be > 0",
    }
    assert client.get("/api/runs").json()["runs"] == []


def test_schedule_beyond_the_run_gets_422(client: TestClient) -> None:
    response = client.post("/api/runs", json={**POLYNOMIAL, "schedule": {"kind": "constant", "end_step": 1000}})
    assert response.status_code == 422
    [item] = response.json()["detail"]
    assert item["field"] == "schedule.end_step"
    assert "beyond the last training step (82)" in item["msg"]


def test_malformed_json_is_a_422_not_a_500(client: TestClient) -> None:
    response = client.post("/api/runs", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_unknown_run_is_404(client: TestClient) -> None:
    assert client.get("/api/runs/999").status_code == 404
    assert client.get("/api/runs/999/metrics").json() == {"detail": "run 999 does not exist"}


def test_metrics_endpoint_returns_series_in_step_order(client: TestClient) -> None:
    run = submit(client)
    with session_scope() as session:
        points = [MetricPoint("loss", step, 1.0 / step, step * 0.1) for step in (3, 1, 2)]
        points.append(MetricPoint("loss", 2, 99.0, 0.0))  # a duplicate: the first write wins
        points.append(MetricPoint("accuracy", 1, float("nan"), 0.1))
        record_points(session, run["id"], points)
    body = client.get(f"/api/runs/{run['id']}/metrics", params={"keys": "loss,accuracy"}).json()
    assert body["series"]["loss"]["steps"] == [1, 2, 3]
    assert body["series"]["loss"]["values"] == [1.0, 0.5, 1 / 3]
    assert body["series"]["accuracy"]["values"] == [None]
    detail = client.get(f"/api/runs/{run['id']}").json()
    assert detail["step"] == 3
    assert detail["latest"]["loss"] == 1 / 3


def test_cancel_queued_run_is_final_and_repeatable(client: TestClient) -> None:
    run = submit(client)
    first = client.post(f"/api/runs/{run['id']}/cancel").json()
    second = client.post(f"/api/runs/{run['id']}/cancel").json()
    assert first["status"] == second["status"] == "cancelled"
    assert first["finished_at"] == second["finished_at"]


def test_cancel_running_run_requests_a_stop(client: TestClient) -> None:
    run = submit(client)
    with session_scope() as session:
        session.get(Run, run["id"]).status = RunStatus.RUNNING  # as a worker's claim would
    answer = client.post(f"/api/runs/{run['id']}/cancel").json()
    assert answer["status"] == "running"
    assert answer["cancel_requested"] is True


def test_delete_removes_run_and_metrics_but_not_running_runs(client: TestClient) -> None:
    run = submit(client)
    with session_scope() as session:
        record_points(session, run["id"], [MetricPoint("loss", 1, 0.5, 0.0)])
        session.get(Run, run["id"]).status = RunStatus.RUNNING
    conflict = client.delete(f"/api/runs/{run['id']}")
    assert conflict.status_code == 409
    assert "cancel it first" in conflict.json()["detail"]
    with session_scope() as session:
        session.get(Run, run["id"]).status = RunStatus.FAILED
    assert client.delete(f"/api/runs/{run['id']}").status_code == 204
    assert client.get(f"/api/runs/{run['id']}").status_code == 404
    assert client.get("/api/runs").json()["runs"] == []
    with session_scope() as session:  # hot rows have no foreign key to cascade: delete_run removes them itself
        assert session.scalar(select(func.count()).select_from(Metric).where(Metric.run_id == run["id"])) == 0


def test_model_download_before_success_is_a_clear_404(client: TestClient) -> None:
    run = submit(client)
    response = client.get(f"/api/runs/{run['id']}/model", params={"format": "keras"})
    assert response.status_code == 404
    assert "models exist once a run has succeeded" in response.json()["detail"]
    assert client.get(f"/api/runs/{run['id']}/model", params={"format": "exe"}).status_code == 422


def test_health_catalog_and_openapi(client: TestClient) -> None:
    assert client.get("/api/health").json()["status"] == "ok"
    assert {d["name"] for d in client.get("/api/datasets").json()} == {"digits", "mnist", "fashion_mnist", "cifar10"}
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert set(models) == {"mlp", "mnist_cnn", "tutorial_cnn", "tutorial_mnist_cnn", "mobilenet_tiny"}
    assert models["tutorial_mnist_cnn"]["param_counts"]["mnist"]["params"] == 431_242
    assert "digits" not in models["tutorial_mnist_cnn"]["param_counts"]  # 8x8 is too small for it
    assert models["tutorial_cnn"]["source"] == "zoo"
    assert models["tutorial_cnn"]["param_counts"]["mnist"] == {
        "params": 20410,
        "prunable_params": 108 + 20280,
        "prunable_params_by_engine": {"tfmot": 108 + 20280, "keras": 108 + 20280},
    }
    # The Keras engine also prunes the depthwise kernels (3x3x16 and 3x3x32) that tfmot cannot.
    mobilenet = models["mobilenet_tiny"]["param_counts"]["cifar10"]["prunable_params_by_engine"]
    assert mobilenet["keras"] == mobilenet["tfmot"] + 3 * 3 * (16 + 32)
    assert models["mobilenet_tiny"]["param_counts"]["cifar10"]["prunable_params"] == mobilenet["tfmot"]
    assert models["mlp"]["param_counts"]["digits"]["params"] == 64 * 128 + 128 + 128 * 10 + 10
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/metrics", "/api/runs/{run_id}/model"} <= set(paths)
    assert "/api/runs/{run_id}/manifest" in paths


def test_frontend_and_local_plotly_are_served(client: TestClient) -> None:
    assert "PruneLab" in client.get("/").text
    plotly = client.get("/vendor/plotly.min.js")
    assert plotly.status_code == 200
    assert len(plotly.content) > 1_000_000


def test_control_characters_in_free_text_are_a_422_not_a_500(client: TestClient) -> None:
    # PostgreSQL text cannot hold NUL: found by schemathesis as a 500 on POST /api/runs.
    response = client.post("/api/runs", json={**POLYNOMIAL, "name": "a\x00b"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "name"
    assert "control characters" in response.json()["detail"][0]["msg"]
    run = submit(client)
    for patch in ({"note": "x\x00"}, {"tags": ["a\x00"]}):
        assert client.patch(f"/api/runs/{run['id']}", json=patch).status_code == 422
    assert client.patch(f"/api/runs/{run['id']}", json={"note": "two\nlines\tok"}).status_code == 200


def test_static_files_go_out_compressed_and_are_revalidated_with_their_etag(client: TestClient) -> None:
    plain = client.get("/vendor/plotly.min.js", headers={"Accept-Encoding": "identity"})
    zipped = client.get("/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == plain.content  # httpx unzips
    assert int(zipped.headers["content-length"]) < len(plain.content) / 3  # 4.8 MB to about 1.4 MB on the wire
    assert (
        zipped.headers["cache-control"] == "public, max-age=86400" and zipped.headers["etag"] != plain.headers["etag"]
    )
    again = client.get(
        "/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]}
    )
    assert (again.status_code, again.content) == (304, b"")

    page = client.get("/js/common.js", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200 and page.headers["content-encoding"] == "gzip"
    assert page.headers["cache-control"] == "no-cache" and page.headers["etag"]
    revalidated = client.get("/js/common.js", headers={"If-None-Match": page.headers["etag"]})
    assert revalidated.status_code == 304
