"""The keys a run logged and the union over compared runs (the metric pickers read these), and the model column
of a run of an uploaded model: the uploaded file's name. On PostgreSQL and SQLite."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import event

from prunelab.server.db import engine_for, session_scope
from prunelab.server.metrics.service import MetricPoint, record_points
from prunelab.server.settings import get_settings
from tests.backend import hostile_files as hostile
from tests.backend.seed import SPEC, seeded_run

BUILT_IN = ["accuracy", "loss", "measured_sparsity", "target_sparsity"]


def log(run_id: int, keys: dict[str, int]) -> None:
    with session_scope() as session:
        record_points(session, run_id, [MetricPoint(key, step, 0.5, 1.0) for key, step in keys.items()])


def test_a_runs_keys_and_the_union_over_runs_each_in_one_query(client: TestClient) -> None:
    first, second = seeded_run(client), seeded_run(client)
    log(first, {"my_script/custom": 7, "layer_sparsity/dense": 42, "layer_sparsity/dense_1": 42, "val_loss": 21})
    log(second, {"layer_sparsity/dense": 40, "mask_churn/dense": 14})

    assert client.get(f"/api/runs/{first}/metric-keys").json() == [
        {"key": key, "last_step": step, "runs": 1}
        for key, step in sorted({**dict.fromkeys(BUILT_IN, 42), "my_script/custom": 7,
                                 "layer_sparsity/dense": 42, "layer_sparsity/dense_1": 42, "val_loss": 21}.items())
    ]  # fmt: skip

    statements: list[str] = []

    def listen(*args: object) -> None:  # before_cursor_execute(conn, cursor, statement, ...)
        statements.append(str(args[2]))

    engine = engine_for(get_settings().database_url)
    event.listen(engine, "before_cursor_execute", listen)
    try:
        union = client.get(f"/api/compare/metric-keys?runs={first},{second}").json()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert {row["key"]: (row["runs"], row["last_step"]) for row in union} == {
        **{key: (2, 42) for key in BUILT_IN},
        "layer_sparsity/dense": (2, 42),
        "layer_sparsity/dense_1": (1, 42),
        "my_script/custom": (1, 7),
        "val_loss": (1, 21),
        "mask_churn/dense": (1, 14),
    }
    assert [row["key"] for row in union] == sorted(row["key"] for row in union)
    assert sum("latest_metrics" in statement for statement in statements) == 1, statements


def test_metric_keys_of_unknown_or_malformed_runs_are_clear_errors(client: TestClient) -> None:
    run_id = seeded_run(client)
    missing = client.get(f"/api/compare/metric-keys?runs={run_id},999999")
    assert missing.status_code == 404 and "999999" in missing.text
    assert client.get("/api/runs/999999/metric-keys").status_code == 404
    malformed = client.get("/api/compare/metric-keys?runs=1,x")
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["field"] == "runs" and "comma-separated run ids" in malformed.text
    assert client.get("/api/compare/metric-keys").status_code == 422


def test_the_model_column_of_an_uploaded_model_run_is_the_files_name(client: TestClient) -> None:
    upload = client.post(
        "/api/models", files={"file": ("resnet_tiny.keras", hostile.keras_archive(), "application/octet-stream")}
    )
    assert upload.status_code == 201, upload.text
    spec = {
        **SPEC,
        "name": "pruned upload",
        "model": "mlp",
        "recipe": {"kind": "uploaded_model", "upload_id": upload.json()["id"]},
    }
    uploaded = client.post("/api/runs", json=spec)
    assert uploaded.status_code == 201, uploaded.text
    zoo = seeded_run(client)

    listed = {run["id"]: run for run in client.get("/api/runs").json()["runs"]}
    assert listed[uploaded.json()["id"]]["model_name"] == "resnet_tiny.keras"
    assert listed[zoo]["model_name"] == "mlp"
    assert client.get(f"/api/runs/{uploaded.json()['id']}").json()["model_name"] == "resnet_tiny.keras"
