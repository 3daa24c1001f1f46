"""Recipes through the API (no worker): validation naming the field, linked runs, sensitivity proposals."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from prunelab.server.db import session_scope
from prunelab.server.models import Artifact, Run, RunStatus
from prunelab.server.runs import links
from tests.backend import hostile_files as hostile

SPEC: dict[str, Any] = {
    "name": "recipe",
    "dataset": "digits",
    "model": "mlp",
    "epochs": 2,
    "batch_size": 64,  # 21 steps per epoch
    "schedule": {"kind": "constant", "target_sparsity": 0.8, "frequency": 7},
}
SWEEP = {
    "baseline_accuracy": 0.9,
    "evaluated_on": "validation",
    "layers": {"dense": [[0.5, 0.9], [0.9, 0.8]], "logits": [[0.5, 0.85], [0.9, 0.5]]},
    "params": {"dense": 8192, "logits": 1280},
}


def post(client: TestClient, **fields: Any) -> Any:
    return client.post("/api/runs", json={**SPEC, **fields})


def fields_of(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {item["field"]: item["msg"] for item in response.json()["detail"]}


def succeed(run_id: int, summary: dict[str, Any] | None = None) -> None:
    """Mark a run succeeded with a .keras artifact, as a worker would."""
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == run_id).values(status=RunStatus.SUCCEEDED, summary=summary))
        session.add(
            Artifact(
                run_id=run_id,
                format="keras",
                storage_key=f"runs/{run_id}/attempt-1/model.keras",
                size_bytes=1,
                zip_size_bytes=1,
                sha256="0" * 64,
            )
        )


@pytest.mark.parametrize(
    ("recipe", "field", "fragment"),
    [
        ({"kind": "pretrained"}, "recipe", "exactly one of recipe.dense_epochs or recipe.base_run_id"),
        ({"kind": "pretrained", "dense_epochs": 1, "base_run_id": 1}, "recipe", "exactly one of"),
        ({"kind": "lottery_ticket", "rewind_epoch": 2}, "recipe.rewind_epoch", "must be before the end of pruning"),
        ({"kind": "lottery_ticket", "retrain_epochs": 0}, "recipe.retrain_epochs", "greater than or equal to 1"),
        ({"kind": "sensitivity", "sparsities": [0.5, 1.0]}, "recipe.sparsities", "sparsities[1] (1.0) must be in"),
        ({"kind": "sensitivity", "layers": ["flatten"]}, "recipe.layers", "not one the scope prunes"),
        ({"kind": "pretrained", "base_run_id": 999}, "recipe.base_run_id", "run 999 does not exist"),
        ({"kind": "uploaded_model", "upload_id": 1}, "recipe.upload_id", "upload 1 does not exist"),
        ({"kind": "cooking"}, "recipe", "does not match any of the expected tags"),
    ],
)
def test_recipe_fields_are_checked_and_named(client: TestClient, recipe: dict, field: str, fragment: str) -> None:
    messages = fields_of(post(client, recipe=recipe))
    assert fragment in messages[field], messages


def test_layer_targets_must_name_pruned_layers(client: TestClient) -> None:
    assert (
        "layer 'flatten' is not pruned (no weights)"
        in fields_of(post(client, layer_targets={"flatten": 0.5}))["layer_targets"]
    )
    assert "must be in range [0,1)" in fields_of(post(client, layer_targets={"dense": 1.0}))["layer_targets"]
    run = post(client, layer_targets={"dense": 0.9}).json()
    layers = run["plan"]["layer_schedules"]
    assert (
        layers["dense"]["schedule"]["target_sparsity"] == 0.9 and layers["logits"]["schedule"]["target_sparsity"] == 0.8
    )
    assert run["plan"]["target_sparsity"] == pytest.approx((8192 * 0.9 + 1280 * 0.8) / 9472)


def test_lottery_ticket_plan_continues_the_step_axis(client: TestClient) -> None:
    run = post(client, recipe={"kind": "lottery_ticket", "rewind_epoch": 1, "retrain_epochs": 3}).json()
    plan = run["plan"]
    assert plan["phase_steps"] == [42, 63] and plan["total_steps"] == 105 and plan["rewind_step"] == 21
    assert plan["schedule"]["end_step"] == 42  # -1 is the end of pruning, not of retraining


def test_pretrained_with_dense_epochs_stores_two_linked_runs(client: TestClient) -> None:
    created = post(client, recipe={"kind": "pretrained", "dense_epochs": 3})
    assert created.status_code == 201, created.text
    pruned = created.json()
    dense = client.get(f"/api/runs/{pruned['parent_run_id']}").json()
    assert pruned["plan"]["base_run_id"] == dense["id"] and pruned["status"] == dense["status"] == "queued"
    assert dense["name"] == "recipe (dense baseline)"
    assert dense["spec"]["recipe"] == {"kind": "dense"} and dense["spec"]["epochs"] == 3
    assert dense["plan"]["total_steps"] == 63 and dense["plan"]["last_pruning_step"] is None
    with session_scope() as session:
        assert links.waiting_run_ids(session, dense["id"]) == [pruned["id"]]
    client.post(f"/api/runs/{dense['id']}/cancel")
    failed = client.get(f"/api/runs/{pruned['id']}").json()
    assert failed["status"] == "failed"
    assert failed["error"] == f"its base run {dense['id']} was cancelled; it never started"


def test_base_run_must_be_a_succeeded_dense_run_of_the_same_data_and_model(client: TestClient) -> None:
    dense = post(client, recipe={"kind": "dense"}).json()
    pruned = post(client, recipe={"kind": "pretrained", "base_run_id": dense["id"]})
    assert "is queued; a base run must have succeeded" in fields_of(pruned)["recipe.base_run_id"]
    succeed(dense["id"])
    other_model = post(client, model="mnist_cnn", recipe={"kind": "pretrained", "base_run_id": dense["id"]})
    assert "trained model 'mlp', this spec asks for 'mnist_cnn'" in fields_of(other_model)["recipe.base_run_id"]
    scratch = post(client).json()
    not_dense = post(client, recipe={"kind": "pretrained", "base_run_id": scratch["id"]})
    assert "a base run must be a dense run" in fields_of(not_dense)["recipe.base_run_id"]
    linked = post(client, recipe={"kind": "pretrained", "base_run_id": dense["id"]})
    assert linked.status_code == 201 and linked.json()["parent_run_id"] == dense["id"]


def test_sensitivity_proposal_is_a_submittable_spec_at_the_target(client: TestClient) -> None:
    sweep = post(client, recipe={"kind": "sensitivity", "sparsities": [0.5, 0.9]}).json()
    assert sweep["plan"]["phase_steps"] == [42, 4]
    url = f"/api/runs/{sweep['id']}/sensitivity/proposal"
    assert client.get(url, params={"target_sparsity": 0.5}).status_code == 409  # not finished
    succeed(sweep["id"], {"sensitivity": SWEEP})
    proposal = client.get(url, params={"target_sparsity": 0.7}).json()
    sparsities = proposal["layer_sparsities"]
    assert (8192 * sparsities["dense"] + 1280 * sparsities["logits"]) / 9472 == pytest.approx(0.7, abs=1e-12)
    assert sparsities["dense"] > sparsities["logits"]  # dense loses less accuracy per pruned weight
    spec = proposal["spec"]
    assert spec["recipe"] == {"kind": "pretrained", "dense_epochs": None, "base_run_id": sweep["id"]}
    assert spec["layer_targets"] == sparsities and spec["schedule"]["target_sparsity"] == 0.7
    submitted = client.post("/api/runs", json=spec)
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["plan"]["target_sparsity"] == pytest.approx(0.7, abs=1e-9)
    too_high = client.get(url, params={"target_sparsity": 0.95})
    assert "above what the sweep measured" in fields_of(too_high)["target_sparsity"]
    too_lossy = client.get(url, params={"target_sparsity": 0.8, "max_accuracy_drop": 0.01})
    assert "above max_accuracy_drop (0.01)" in fields_of(too_lossy)["max_accuracy_drop"]


def test_an_uploaded_model_can_be_pruned_or_swept(client: TestClient) -> None:
    data = hostile.keras_archive()
    upload = client.post("/api/models", files={"file": ("mine.keras", data, "application/octet-stream")}).json()
    run = post(client, name="", recipe={"kind": "uploaded_model", "upload_id": upload["id"]})
    assert run.status_code == 201, run.text
    assert run.json()["name"] == f"uploaded model constant upload {upload['id']} on digits"
    assert run.json()["plan"]["phase_steps"] == [42]  # the worker's pre-flight checks the scope
    sweep = post(client, recipe={"kind": "sensitivity", "upload_id": upload["id"]}).json()
    assert sweep["plan"]["phase_steps"] == [0, 0] and sweep["plan"]["sensitivity_layers"] is None
    assert "decided by the worker" in sweep["plan"]["warnings"][0]
    targets = post(client, layer_targets={"dense": 0.5}, recipe={"kind": "uploaded_model", "upload_id": upload["id"]})
    assert "did not record" in fields_of(targets)["layer_targets"]
    dataset = client.post("/api/datasets", files={"file": ("d.npz", hostile.valid_npz(), "application/octet-stream")})
    not_a_model = post(client, recipe={"kind": "uploaded_model", "upload_id": dataset.json()["id"]})
    assert "is a dataset, not a model" in fields_of(not_a_model)["recipe.upload_id"]


def test_a_keras3_model_is_refused_by_tfmot_runs_with_a_422_that_names_the_keras_engine(client: TestClient) -> None:
    data = hostile.keras_archive(keras_version="3.15.1")
    upload = client.post("/api/models", files={"file": ("k3.keras", data, "application/octet-stream")}).json()
    for recipe in (
        {"kind": "uploaded_model", "upload_id": upload["id"]},
        {"kind": "sensitivity", "upload_id": upload["id"]},
    ):
        refused = fields_of(post(client, recipe=recipe))["recipe.upload_id"]
        assert f"upload {upload['id']} was saved by Keras 3.15.1" in refused
        assert 'Choose the keras engine for a Keras 3 model ("engine": "keras", and a "backend")' in refused
