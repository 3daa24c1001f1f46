"""The form's live preview: the schedule's target sparsity over the run's steps, validated as submitting is."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.backend.seed import SPEC


def test_preview_of_a_polynomial_schedule_rises_to_its_target_at_the_last_pruning_step(client: TestClient) -> None:
    body = client.post("/api/schedules/preview", json=SPEC).json()
    assert body["total_steps"] == 42 and body["steps_per_epoch"] == 21
    assert body["pruning_steps"] == [7, 14, 21, 28, 35, 42]
    assert body["steps"][0] == 0 and body["target_sparsity"][0] == 0.0
    assert body["steps"][-1] == 42 and abs(body["target_sparsity"][-1] - 0.8) < 1e-6
    assert body["target_sparsity"] == sorted(body["target_sparsity"])
    assert body["warnings"] == []


def test_get_with_the_spec_as_json_gives_the_same_preview(client: TestClient) -> None:
    posted = client.post("/api/schedules/preview", json=SPEC).json()
    assert client.get("/api/schedules/preview", params={"spec": json.dumps(SPEC)}).json() == posted


def test_a_window_that_misses_its_target_warns(client: TestClient) -> None:
    spec = {**SPEC, "schedule": {"kind": "constant", "target_sparsity": 0.5, "begin_step": 5, "frequency": 10}}
    body = client.post("/api/schedules/preview", json=spec).json()
    assert body["pruning_steps"] == [5, 15, 25, 35]
    assert body["steps"] == [0, 5, 42] and body["target_sparsity"] == [0.0, 0.5, 0.5]


def test_invalid_specs_get_422_naming_the_field(client: TestClient) -> None:
    bad = {**SPEC, "schedule": {"kind": "polynomial", "final_sparsity": 1.5}}
    for response in (
        client.post("/api/schedules/preview", json=bad),
        client.get("/api/schedules/preview", params={"spec": json.dumps(bad)}),
    ):
        assert response.status_code == 422
        assert response.json()["detail"][0]["field"] == "schedule.final_sparsity"
    beyond = {**SPEC, "schedule": {"kind": "constant", "end_step": 500}}
    detail = client.post("/api/schedules/preview", json=beyond).json()["detail"]
    assert detail[0]["field"] == "schedule.end_step" and "beyond the last training step (42)" in detail[0]["msg"]
    not_json = client.get("/api/schedules/preview", params={"spec": "{nope"})
    assert not_json.status_code == 422 and not_json.json()["detail"][0]["field"] == "spec"
    assert client.get("/api/schedules/preview").status_code == 422
