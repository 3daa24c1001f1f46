"""Property-based: no spec makes the API answer 5xx; metric ingestion stores exactly the unique points."""

from __future__ import annotations

import math

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from prunelab.server.db import session_scope
from prunelab.server.metrics.service import MetricPoint, read_series, record_points
from prunelab.server.models import Metric
from tests.worker.test_db_reporter import queued_run

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
schedules = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["constant", "polynomial", "cubic", ""]),
        "target_sparsity": json_scalars,
        "initial_sparsity": json_scalars,
        "final_sparsity": json_scalars,
        "begin_step": json_scalars,
        "end_step": json_scalars,
        "frequency": json_scalars,
        "power": json_scalars,
    },
)
specs = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=250),
        "dataset": st.sampled_from(["digits", "mnist", "cifar", ""]),
        "model": st.sampled_from(["mlp", "mnist_cnn", "resnet"]),
        "epochs": json_scalars,
        "batch_size": json_scalars,
        "learning_rate": json_scalars,
        "validation_split": json_scalars,
        "seed": json_scalars,
        "schedule": st.one_of(schedules, json_scalars),
        "unknown_field": json_scalars,
    },
)


@PROPERTY_SETTINGS
@given(spec=specs)
def test_no_spec_makes_the_api_fail(client: TestClient, spec: dict) -> None:  # type: ignore[type-arg]
    response = client.post("/api/runs", json=spec)
    assert response.status_code in (201, 422), (spec, response.status_code, response.text)
    if response.status_code == 422:
        assert all(item["msg"] for item in response.json()["detail"])


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0]),
    st.integers(min_value=-(2**53), max_value=2**53).map(float),
)
points = st.lists(
    st.builds(
        MetricPoint,
        key=st.sampled_from(["loss", "accuracy", "measured_sparsity", "layer_sparsity/dense"]),
        step=st.integers(min_value=0, max_value=2**62),
        value=values,
        wall_time=st.floats(min_value=0, max_value=1e9),
    ),
    max_size=60,
)


@PROPERTY_SETTINGS
@given(batches=st.lists(points, min_size=1, max_size=4))
def test_ingestion_stores_exactly_the_unique_points_first_write_wins(settings, batches) -> None:  # type: ignore[no-untyped-def]
    run_id = queued_run()
    expected: dict[tuple[str, int], float | None] = {}
    for batch in batches:  # out of order, duplicated within and across batches
        for point in batch:
            expected.setdefault((point.key, point.step), point.value if math.isfinite(point.value) else None)
        with session_scope() as session:
            record_points(session, run_id, batch)
    with session_scope() as session:
        stored = {
            (key, step): value
            for key, step, value in session.execute(
                select(Metric.key, Metric.step, Metric.value).where(Metric.run_id == run_id)
            )
        }
        series = read_series(session, run_id, None)
    assert stored == expected
    for entry in series.values():
        assert entry.steps == sorted(entry.steps)
        assert all(value is None or math.isfinite(value) for value in entry.values)


@PROPERTY_SETTINGS
@given(batch=points)
def test_non_finite_values_never_break_the_metrics_endpoint(client: TestClient, batch) -> None:  # type: ignore[no-untyped-def]
    run_id = queued_run()
    with session_scope() as session:
        record_points(session, run_id, batch)
    response = client.get(f"/api/runs/{run_id}/metrics")
    assert response.status_code == 200
    assert sum(len(entry["steps"]) for entry in response.json()["series"].values()) == len(
        {(point.key, point.step) for point in batch}
    )
    assert client.get(f"/api/runs/{run_id}").status_code == 200
