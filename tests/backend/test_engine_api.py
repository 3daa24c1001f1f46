"""The run spec's engine and backend through the API: stored as sent, and every refusal a 422 naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.backend import hostile_files as hostile

SPEC: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "epochs": 1,
    "batch_size": 64,
    "schedule": {"kind": "constant", "target_sparsity": 0.5, "frequency": 7},
}


def fields_of(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {item["field"]: item["msg"] for item in response.json()["detail"]}


def upload(client: TestClient, version: str, extra_layers: list[dict[str, Any]] | None = None) -> int:
    data = hostile.keras_archive(hostile.dense_config(extra_layers), keras_version=version)
    response = client.post("/api/models", files={"file": ("m.keras", data, "application/octet-stream")})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_a_keras_engine_run_is_stored_with_its_backend_and_that_engine_s_exports(client: TestClient) -> None:
    response = client.post("/api/runs", json={**SPEC, "engine": "keras", "backend": "jax"})
    assert response.status_code == 201, response.text
    spec = response.json()["spec"]
    assert (spec["engine"], spec["backend"]) == ("keras", "jax")
    assert spec["exports"] == ["keras", "tflite", "tflite_int8"]  # no tf-keras .h5 by default
    default = client.post("/api/runs", json=SPEC).json()["spec"]
    assert (default["engine"], default["backend"]) == ("tfmot", None)
    assert "h5" in default["exports"]


def test_readme_s_keras_run_is_accepted_as_written(client: TestClient) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    sentence = 'same spec with `{"engine": "keras", "backend": "jax"}`'
    line = next(line for line in readme.splitlines() if sentence in line)
    added = json.loads(line[line.index("`{") + 1 : line.index("}`") + 1])
    response = client.post("/api/runs", json={**SPEC, **added})
    assert response.status_code == 201, response.text
    assert response.json()["spec"]["backend"] == "jax"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"backend": "jax"}, "backend", "backend 'jax': the tfmot engine runs on tf-keras (TensorFlow) only"),
        ({"engine": "keras", "exports": ["keras", "h5"]}, "exports", "h5: the keras engine exports keras, tflite"),
        (
            {"engine": "keras", "exports": ["saved_model"]},
            "exports",
            "saved_model: the keras engine exports keras, tflite, tflite_int8 only",
        ),
        (
            {"engine": "keras", "compress": [{"kind": "cluster"}, {"kind": "qat", "scheme": "pcqat"}]},
            "compress",
            "cluster, qat: compress stages need the tfmot engine",
        ),
        (
            {"engine": "keras", "recipe": {"kind": "lottery_ticket"}},
            "recipe",
            "recipe lottery_ticket: the keras engine runs the from_scratch, dense, uploaded_model recipes",
        ),
        (
            {"engine": "keras", "int8_quantization": "full_integer"},
            "int8_quantization",
            "full_integer: the keras engine's tflite_int8 is Keras 3's dynamic-range LiteRT export",
        ),
        ({"engine": "pytorch"}, "engine", "Input should be 'tfmot' or 'keras'"),
        ({"engine": "keras", "backend": "mxnet"}, "backend", "Input should be 'tensorflow', 'jax' or 'torch'"),
    ],
)
def test_what_an_engine_cannot_do_is_a_422_naming_the_field(
    client: TestClient, fields: dict[str, Any], field: str, message: str
) -> None:
    assert message in fields_of(client.post("/api/runs", json={**SPEC, **fields}))[field]


def test_uploads_go_to_the_engine_of_the_keras_that_saved_them(client: TestClient) -> None:
    keras3 = upload(client, "3.15.1")
    recipe = {"kind": "uploaded_model", "upload_id": keras3}
    refused = fields_of(client.post("/api/runs", json={**SPEC, "recipe": recipe}))["recipe.upload_id"]
    assert f"upload {keras3} was saved by Keras 3.15.1: the tfmot engine trains tf-keras" in refused
    assert 'Choose the keras engine for a Keras 3 model ("engine": "keras"' in refused
    accepted = client.post("/api/runs", json={**SPEC, "recipe": recipe, "engine": "keras", "backend": "jax"})
    assert accepted.status_code == 201, accepted.text
    tf_keras = upload(client, "2.21.0")
    wrong = {**SPEC, "recipe": {"kind": "uploaded_model", "upload_id": tf_keras}, "engine": "keras"}
    refused_by_keras = fields_of(client.post("/api/runs", json=wrong))["recipe.upload_id"]
    assert f"upload {tf_keras} was saved by tf-keras 2.21.0: the keras engine trains Keras 3 models" in refused_by_keras


def test_a_layer_the_keras_engine_cannot_prune_is_named_at_submit(client: TestClient) -> None:
    lstm = {"module": "keras.layers", "class_name": "LSTM", "config": {"name": "lstm", "units": 4}}
    model = upload(client, "3.15.1", [lstm])
    spec = {**SPEC, "engine": "keras", "recipe": {"kind": "uploaded_model", "upload_id": model}}
    refused = fields_of(client.post("/api/runs", json=spec))["scope"]
    assert f"upload {model}: the keras engine cannot prune LSTM layers, and the scope selects them" in refused
    assert "this model's prunable types: Dense" in refused
    dense_only = client.post("/api/runs", json={**spec, "scope": {"layer_types": ["Dense"]}})
    assert dense_only.status_code == 201, dense_only.text


def add_worker(settings: Any, name: str, backends: list[str] | None, *, age_s: float = 0, queue: str = "") -> None:
    """A worker's presence row as worker/presence.py writes it, heard from `age_s` seconds ago."""
    from datetime import timedelta

    from prunelab.server.db import engine_for, session_scope
    from prunelab.server.models import Worker, utcnow

    beat = utcnow() - timedelta(seconds=age_s)
    with session_scope(engine_for(settings.database_url)) as session:
        session.add(
            Worker(name=name, host="h", pid=1, queues=[queue or settings.queue], concurrency=1,
                   started_at=beat, heartbeat_at=beat, keras_backends=backends)
        )  # fmt: skip


def test_with_no_live_worker_a_keras_run_on_any_backend_waits_for_one(client: TestClient, settings: Any) -> None:
    add_worker(settings, "gone@h", ["tensorflow"], age_s=3 * settings.worker_heartbeat_s)  # missed two beats
    add_worker(settings, "elsewhere@h", ["tensorflow"], queue="another-queue")
    response = client.post("/api/runs", json={**SPEC, "engine": "keras", "backend": "torch"})
    assert response.status_code == 201, response.text


def test_a_backend_no_live_worker_offers_is_a_422_naming_it_and_what_to_install(
    client: TestClient, settings: Any
) -> None:
    add_worker(settings, "a@h", ["tensorflow", "jax"])
    add_worker(settings, "b@h", [])  # no Keras 3 installed
    add_worker(settings, "gone@h", ["torch"], age_s=3 * settings.worker_heartbeat_s)
    refused = fields_of(client.post("/api/runs", json={**SPEC, "engine": "keras", "backend": "torch"}))
    assert refused["backend"] == (
        "backend 'torch': no live worker can run the keras engine on torch (the live workers' Keras backends: "
        "jax, tensorflow); choose one of those, or install it on a worker with "
        "pip install 'prunelab[worker,keras3]' torch (PyTorch's CPU or CUDA build) and restart the worker"
    )
    for backend in ("jax", "tensorflow", None):
        accepted = client.post("/api/runs", json={**SPEC, "engine": "keras", "backend": backend})
        assert accepted.status_code == 201, accepted.text
    assert client.post("/api/runs", json=SPEC).status_code == 201  # tfmot: not a Keras 3 backend
    shown = {worker["name"]: worker["keras_backends"] for worker in client.get("/api/workers").json()["workers"]}
    assert shown == {"a@h": ["tensorflow", "jax"], "b@h": [], "gone@h": ["torch"]}


def test_only_keras_3_less_workers_name_none_and_an_unrecorded_worker_is_not_refused_on(
    client: TestClient, settings: Any
) -> None:
    add_worker(settings, "bare@h", [])
    refused = fields_of(client.post("/api/runs", json={**SPEC, "engine": "keras", "backend": "jax"}))
    assert "(the live workers' Keras backends: none)" in refused["backend"]
    assert "pip install 'prunelab[worker,keras3]' and restart the worker" in refused["backend"]
    add_worker(settings, "older@h", None)  # a worker from before backends were recorded: it may have jax
    accepted = client.post("/api/runs", json={**SPEC, "engine": "keras", "backend": "jax"})
    assert accepted.status_code == 201, accepted.text


def test_a_keras_run_may_prune_depthwise_layers_and_a_tfmot_run_may_not(client: TestClient) -> None:
    spec = {**SPEC, "dataset": "cifar10", "model": "mobilenet_tiny", "batch_size": 512, "engine": "keras"}
    scoped = client.post("/api/runs", json={**spec, "scope": {"layer_types": ["DepthwiseConv2D"]}})
    assert scoped.status_code == 201, scoped.text
    targets = client.post("/api/runs", json={**spec, "layer_targets": {"dw1": 0.8}})
    assert targets.status_code == 201, targets.text
    assert targets.json()["plan"]["layer_schedules"]["dw1"]["prunable_params"] == 3 * 3 * 16
    tfmot = {**spec, "engine": "tfmot", "exports": ["keras"], "scope": {"layer_types": ["DepthwiseConv2D"]}}
    assert "the scope selects no layer to prune" in fields_of(client.post("/api/runs", json=tfmot))["scope"]
