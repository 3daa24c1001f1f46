"""External runs: created and finished by a client, fed points and files over the API, never queued or requeued."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

import prunelab.server.runs.reaper as reaper
from prunelab.server.db import session_scope
from prunelab.server.models import Run, RunStatus, utcnow
from prunelab.server.runs.external import MAX_POINTS_PER_REQUEST, create_external_run
from tests.backend.seed import seeded_run

LAYERS = [
    {"name": "conv2d", "class_name": "Conv2D", "params": 320, "prunable_params": 288, "wrapped": True},
    {"name": "max_pooling2d", "class_name": "MaxPooling2D", "params": 0, "wrapped": False, "reason": "no weights"},
    {"name": "dense", "class_name": "Dense", "params": 1290, "prunable_params": 1280, "wrapped": True},
]
SPEC: dict[str, Any] = {
    "source": "keras_callback",
    "name": "my script",
    "model": "functional",
    "dataset": "my pipeline",
    "epochs": 2,
    "batch_size": 250,
    "steps_per_epoch": 10,
    "schedule": {"kind": "constant", "target_sparsity": 0.875, "begin_step": 4, "end_step": -1, "frequency": 2},
    "layers": LAYERS,
    "params": {"optimizer": "adam"},
}


def external_run(client: TestClient, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/api/runs/external", json=spec or SPEC)
    assert response.status_code == 201, response.text
    return response.json()


def points(client: TestClient, run_id: int, batch: list[Any]) -> dict[str, Any]:
    # Python's json writes NaN and Infinity, as the callback's sender does; httpx's json= refuses them.
    body = json.dumps({"points": batch})
    response = client.post(f"/api/runs/{run_id}/points", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


def series(client: TestClient, run_id: int) -> dict[str, Any]:
    return client.get(f"/api/runs/{run_id}/metrics").json()["series"]


def test_an_external_run_is_running_planned_and_listed(client: TestClient) -> None:
    run = external_run(client)
    assert run["status"] == "running" and run["source"] == "keras_callback" and run["name"] == "my script"
    plan = run["plan"]
    assert plan["total_steps"] == 20 and plan["steps_per_epoch"] == 10
    assert plan["schedule"]["end_step"] == 20 and plan["target_sparsity"] == 0.875
    assert plan["last_pruning_step"] == 20 and plan["warnings"] == []
    assert run["spec"]["layers"][0]["name"] == "conv2d" and run["spec"]["model"] == "functional"
    listed = {row["id"]: row for row in client.get("/api/runs").json()["runs"]}
    assert listed[run["id"]]["source"] == "keras_callback"
    planned = client.get(f"/api/compare?runs={run['id']}").json()["planned"][str(run["id"])]
    assert max(planned["target_sparsity"]) == pytest.approx(0.875)


def test_points_are_stored_once_and_each_bad_point_is_named(client: TestClient) -> None:
    run_id = external_run(client)["id"]
    batch: list[Any] = [
        {"key": "loss", "step": 1, "value": 2.5, "wall_time": 0.1},
        {"key": "loss", "step": 2, "value": 2.0},
        {"key": "bad key!", "step": 3, "value": 1.0},
        {"key": "loss", "step": 3, "value": "high"},
        {"key": "loss", "step": -1, "value": 1.0},
        {"key": "loss", "step": 4, "value": True},
        {"key": "loss", "step": 1.5, "value": 1.0},
        "not a point",
        {"key": "loss", "step": 5, "value": 10**400},
        {"key": "loss", "step": 6, "value": 1.0, "wall_time": float("inf")},
        {"key": "diverged", "step": 1, "value": float("nan")},
    ]
    answer = points(client, run_id, batch)
    assert answer["accepted"] == 3 and not answer["cancel_requested"]
    errors = {row["index"]: row["error"] for row in answer["rejected"]}
    assert sorted(errors) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert "too large" in errors[8] and "wall_time" in errors[9]
    assert "key may hold only" in errors[2]
    assert "value must be a number" in errors[3] and "value must be a number" in errors[5]
    assert "step must be in range" in errors[4] and "whole number" in errors[6]
    assert answer["rejected"][0]["key"] == "bad key!" and answer["rejected"][0]["step"] == 3
    # A retried batch, with a different value for a stored step: nothing doubles, the first write wins.
    again = points(client, run_id, [{"key": "loss", "step": 1, "value": 9.0}, {"key": "loss", "step": 2, "value": 2.0}])
    assert again["accepted"] == 2
    loss = series(client, run_id)["loss"]
    assert loss["steps"] == [1, 2] and loss["values"] == [2.5, 2.0]
    assert loss["wall_times"][0] == 0.1
    assert series(client, run_id)["diverged"]["values"] == [None]  # a non-finite value is a gap


def test_too_many_points_are_rejected_one_by_one_and_big_bodies_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = external_run(client)["id"]
    batch = [{"key": "x", "step": step, "value": 1.0} for step in range(MAX_POINTS_PER_REQUEST + 2)]
    answer = points(client, run_id, batch)
    assert answer["accepted"] == MAX_POINTS_PER_REQUEST
    assert [row["index"] for row in answer["rejected"]] == [MAX_POINTS_PER_REQUEST, MAX_POINTS_PER_REQUEST + 1]
    assert "limit of 10000 points per request" in answer["rejected"][0]["error"]
    huge = {"points": [{"key": "y" * 150, "step": step, "value": 1.0} for step in range(60_000)]}
    refused = client.post(f"/api/runs/{run_id}/points", json=huge)
    assert refused.status_code == 413 and "PRUNELAB_MAX_POINTS_BYTES" in refused.json()["detail"]


def test_points_only_go_to_running_external_runs(client: TestClient) -> None:
    queued = seeded_run(client)
    refused = client.post(f"/api/runs/{queued}/points", json={"points": [{"key": "x", "step": 1, "value": 1}]})
    assert refused.status_code == 409 and "only external runs" in refused.json()["detail"]
    run_id = external_run(client)["id"]
    assert client.post(f"/api/runs/{run_id}/finish", json={"status": "succeeded"}).status_code == 200
    late = client.post(f"/api/runs/{run_id}/points", json={"points": [{"key": "x", "step": 1, "value": 1}]})
    assert late.status_code == 409 and "succeeded" in late.json()["detail"]
    assert client.post("/api/runs/999999/points", json={"points": []}).status_code == 404


def test_finish_builds_the_coverage_report_and_is_idempotent(client: TestClient) -> None:
    run_id = external_run(client)["id"]
    sparsity = [
        {"key": "layer_sparsity/conv2d", "step": 20, "value": 0.875},
        {"key": "layer_sparsity/dense", "step": 20, "value": 0.875},
        {"key": "measured_sparsity", "step": 20, "value": 0.875},
    ]
    points(client, run_id, sparsity)
    body = json.dumps({"status": "succeeded", "summary": {"test_accuracy": 0.9, "test_loss": float("nan")}})
    finished = client.post(f"/api/runs/{run_id}/finish", content=body, headers={"Content-Type": "application/json"})
    assert finished.status_code == 200, finished.text
    run = finished.json()
    assert run["status"] == "succeeded" and run["finished_at"] is not None
    summary = run["summary"]
    assert summary["test_accuracy"] == 0.9 and summary["measured_sparsity"] == 0.875 and summary["steps"] == 20
    assert summary["test_loss"] is None  # NaN: stored as null
    coverage = {layer["name"]: layer for layer in summary["coverage"]["layers"]}
    assert coverage["conv2d"]["pruned_params"] == 252 and coverage["dense"]["pruned_params"] == 1120
    assert not coverage["max_pooling2d"]["wrapped"] and coverage["max_pooling2d"]["reason"] == "no weights"
    assert summary["coverage"]["sparsity_prunable"] == pytest.approx(0.875)
    assert client.post(f"/api/runs/{run_id}/finish", json={"status": "succeeded"}).json()["summary"] == summary
    other = client.post(f"/api/runs/{run_id}/finish", json={"status": "failed"})
    assert other.status_code == 409
    assert client.post(f"/api/runs/{run_id}/finish", json={"status": "cancelled"}).status_code == 422


def test_a_failed_script_says_why(client: TestClient) -> None:
    run_id = external_run(client)["id"]
    run = client.post(f"/api/runs/{run_id}/finish", json={"status": "failed", "error": "loss diverged"}).json()
    assert run["status"] == "failed" and run["error"] == "loss diverged"


def test_an_uploaded_model_is_checked_stored_and_downloaded(client: TestClient) -> None:
    run_id = external_run(client)["id"]
    body = b"PK\x03\x04 a stripped model"
    digest = hashlib.sha256(body).hexdigest()
    url = f"/api/runs/{run_id}/artifacts/keras"
    damaged = client.put(url, files={"file": ("m.keras", body)}, data={"sha256": "0" * 64})
    assert damaged.status_code == 422 and "sha256" in damaged.text
    stored = client.put(url, files={"file": ("../../etc/passwd", body)}, data={"sha256": digest})
    assert stored.status_code == 200, stored.text
    assert stored.json()["sha256"] == digest and stored.json()["size_bytes"] == len(body)
    assert client.get(f"/api/runs/{run_id}/model?format=keras").content == body
    run = client.get(f"/api/runs/{run_id}").json()
    assert [a["format"] for a in run["artifacts"]] == ["keras"] and run["summary"]["keras_size_bytes"] == len(body)
    unknown = client.put(f"/api/runs/{run_id}/artifacts/passwd", files={"file": ("m", body)}, data={"sha256": digest})
    assert unknown.status_code == 422
    not_tflite = client.put(
        f"/api/runs/{run_id}/artifacts/tflite", files={"file": ("m", body)}, data={"sha256": digest}
    )
    assert not_tflite.status_code == 422 and "TFL3" in not_tflite.text
    queued = seeded_run(client)
    to_worker_run = client.put(
        f"/api/runs/{queued}/artifacts/keras", files={"file": ("m.keras", body)}, data={"sha256": digest}
    )
    assert to_worker_run.status_code == 409


def test_cancelling_an_external_run_ends_it_and_stops_its_points(client: TestClient) -> None:
    run_id = external_run(client)["id"]
    cancelled = client.post(f"/api/runs/{run_id}/cancel").json()
    assert cancelled["status"] == "cancelled"
    refused = client.post(f"/api/runs/{run_id}/points", json={"points": [{"key": "x", "step": 1, "value": 1}]})
    assert refused.status_code == 409 and "cancelled" in refused.json()["detail"]
    assert client.delete(f"/api/runs/{run_id}").status_code == 204


def test_a_run_with_only_a_name_is_shown(client: TestClient) -> None:
    with session_scope() as session:
        run_id = create_external_run(session, "an mlflow run", None, None, source="mlflow").id
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["source"] == "mlflow" and run["spec"]["schedule"] is None and run["plan"]["total_steps"] == 0
    assert run["name"] == "an mlflow run"
    assert client.get(f"/api/compare?runs={run_id}").status_code == 200


def test_bad_specs_name_the_field(client: TestClient) -> None:
    for body, field in (
        ({"epochs": 0}, "epochs"),
        ({"source": "worker"}, "source"),
        ({"layers": [{"name": "a"}, {"name": "a"}]}, "layers"),
        ({"schedule": {"kind": "constant", "target_sparsity": 1.5}}, "schedule"),
        ({"params": {"lr": float("nan")}}, "params"),
    ):
        response = client.post(
            "/api/runs/external", content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["field"].startswith(field), response.json()


def test_the_reaper_never_requeues_an_external_run_and_fails_a_silent_one(
    settings, monkeypatch: pytest.MonkeyPatch, client: TestClient
) -> None:  # type: ignore[no-untyped-def]
    sent: list[int] = []
    monkeypatch.setattr(reaper, "enqueue_run", sent.append)
    run_id = external_run(client)["id"]

    def silent_for(seconds: float) -> None:
        with session_scope() as session:
            session.get(Run, run_id).heartbeat_at = utcnow() - timedelta(seconds=seconds)

    silent_for(settings.heartbeat_timeout_s * 10)  # long dead for a worker's run: an external one waits
    report = reaper.reap_once(settings)
    assert run_id not in report.requeued + report.failed and sent == []
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "running"
    silent_for(settings.external_run_timeout_s + 1)
    report = reaper.reap_once(settings)
    assert report.failed == [run_id] and sent == []
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == RunStatus.FAILED and "nothing heard from the script" in run["error"]


def test_a_schedule_past_the_scripts_last_step_is_stored_with_a_warning(client: TestClient) -> None:
    late = {**SPEC, "schedule": {"kind": "constant", "target_sparsity": 0.5, "begin_step": 500, "frequency": 10}}
    run = external_run(client, late)
    assert run["plan"]["warnings"] and "cannot be drawn over its 20 steps" in run["plan"]["warnings"][0]
    assert run["spec"]["schedule"]["begin_step"] == 500  # what the script did, as it did it
