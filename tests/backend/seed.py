"""Runs with metrics written straight into the database, for API tests without a worker."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from prunelab.server.db import session_scope
from prunelab.server.metrics.service import MetricPoint, record_points
from prunelab.server.models import Run, RunStatus, utcnow

SPEC = {
    "name": "seeded",
    "dataset": "digits",
    "model": "mlp",
    "epochs": 2,
    "batch_size": 64,  # 21 steps per epoch, 42 in all
    "schedule": {"kind": "polynomial", "final_sparsity": 0.8, "frequency": 7},
}


# A pruned run's summary with compress stages (the pruned model's own int8 file is a reference, not a stage).
STAGED = {
    "test_accuracy": 0.99,
    "keras_zip_bytes": 390_000,
    "compression": {
        "stages": [
            {"stage": "pruned", "reference": False, "zip_bytes": 383_000, "test_accuracy": 0.990},
            {"stage": "cluster", "reference": False, "zip_bytes": 109_000, "test_accuracy": 0.992},
            {"stage": "pruned_int8", "reference": True, "zip_bytes": 107_000, "test_accuracy": 0.999},
            {"stage": "tflite_int8", "reference": False, "zip_bytes": 76_000, "test_accuracy": 0.991},
        ]
    },
}


def seeded_run(
    client: TestClient,
    spec: dict[str, Any] | None = None,
    steps: int = 42,
    status: RunStatus = RunStatus.SUCCEEDED,
    summary: dict[str, Any] | None = None,
) -> int:
    """Submit a run, then write `steps` steps of sparsity, loss and accuracy and finish it as `status`."""
    response = client.post("/api/runs", json=spec or SPEC)
    assert response.status_code == 201, response.text
    run_id = int(response.json()["id"])
    points = []
    for step in range(1, steps + 1):
        points += [
            MetricPoint("measured_sparsity", step, min(0.8, step / steps), step * 0.1),
            MetricPoint("target_sparsity", step, min(0.8, step / steps), step * 0.1),
            MetricPoint("loss", step, 2.0 / step, step * 0.1),
            MetricPoint("accuracy", step, 1 - 1.0 / step, step * 0.1),
        ]
    with session_scope() as session:
        record_points(session, run_id, points)
        run = session.get(Run, run_id)
        assert run is not None
        run.status = status
        run.summary = summary
        if status != RunStatus.RUNNING:
            run.finished_at = utcnow()
    return run_id
