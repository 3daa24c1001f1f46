"""Whatever `POST /api/runs` accepts is stored so that it validates again to the same spec, and can be re-submitted."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from prunelab.core.specs import RunSpec

sparsity = st.floats(min_value=0.0, max_value=0.95).map(lambda value: round(value, 3))
window = st.one_of(
    st.fixed_dictionaries({}, optional={"begin_step": st.integers(0, 20), "end_step": st.sampled_from([-1, 60, 84])}),
    st.fixed_dictionaries(
        {}, optional={"begin_fraction": st.sampled_from([0.0, 0.2, 0.5]), "end_fraction": st.sampled_from([0.8, 1.0])}
    ),
    # The tutorial's "from 20% of training" with the step left at its default, as the README's example does.
    st.just({"begin_step": 0, "begin_fraction": 0.2}),
)


def schedule_of(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    if kind == "constant":
        fields["target_sparsity"] = sparsity
    elif kind == "polynomial":
        fields |= {"initial_sparsity": st.just(0.0), "final_sparsity": sparsity, "power": st.sampled_from([1, 2, 3])}
    else:
        fields["points"] = st.just([[0, 0.0], [0.5, 0.4], [1.0, 0.7]])
    required = {"kind": st.just(kind), "frequency": st.integers(1, 10)}  # the default (100) outgrows short runs
    return st.tuples(st.fixed_dictionaries(required, optional=fields), window).map(
        lambda parts: {**parts[0], **parts[1]}
    )


schedules = st.sampled_from(["constant", "polynomial", "piecewise"]).flatmap(schedule_of)
structures = st.one_of(
    st.just({"kind": "unstructured"}),
    st.fixed_dictionaries(
        {"kind": st.just("block")},
        optional={
            "block_size": st.sampled_from([[1, 4], [2, 2]]),
            "block_pooling_type": st.sampled_from(["AVG", "MAX"]),
        },
    ),
    st.just({"kind": "m_by_n", "m": 2, "n": 4}),
)
recipes = st.one_of(
    st.just({"kind": "from_scratch"}),
    st.just({"kind": "dense"}),
    st.fixed_dictionaries({"kind": st.just("lottery_ticket"), "rewind_epoch": st.integers(0, 1)}),
    st.fixed_dictionaries({"kind": st.just("sensitivity"), "sparsities": st.just([0.5, 0.9])}),
)


def without_conflicts(spec: dict[str, Any]) -> dict[str, Any]:
    # Per-layer targets mean nothing to a run that prunes nothing or has one sparsity (m_by_n): a 422 by design.
    prunes_by_schedule = spec.get("recipe", {}).get("kind") not in ("dense", "sensitivity")
    if not prunes_by_schedule or spec.get("structure", {}).get("kind") == "m_by_n":
        spec.pop("layer_targets", None)
    return spec


specs = st.fixed_dictionaries(
    {
        "dataset": st.just("digits"),
        "epochs": st.integers(1, 3),
        "batch_size": st.sampled_from([32, 64]),
        "schedule": schedules,
    },
    optional={
        "name": st.text(st.characters(categories=["L", "N", "Zs"]), max_size=20),
        "model": st.sampled_from(["mlp", "mnist_cnn"]),
        "structure": structures,
        "scope": st.fixed_dictionaries({}, optional={"keep_last_dense": st.booleans()}),
        "recipe": recipes,
        "layer_targets": st.just({"dense": 0.9}),
        "exports": st.lists(st.sampled_from(["keras", "h5", "tflite", "tflite_int8"]), min_size=1, unique=True),
    },
).map(without_conflicts)


@hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs)
def test_an_accepted_spec_is_stored_as_the_same_spec_and_can_be_resubmitted(client: TestClient, spec: dict) -> None:  # type: ignore[type-arg]
    created = client.post("/api/runs", json=spec)
    assert created.status_code in (201, 422), created.text
    assume(created.status_code == 201)
    stored = client.get(f"/api/runs/{created.json()['id']}").json()
    assert RunSpec.model_validate(stored["spec"]) == RunSpec.model_validate(spec)
    again = client.post("/api/runs", json=stored["spec"])
    assert again.status_code == 201, again.text
    assert again.json()["spec"] == stored["spec"] and again.json()["plan"] == stored["plan"]


def test_the_tutorial_window_from_20_percent_round_trips(client: TestClient) -> None:
    # Was a 500 that lost the run: the stored default begin_step beside begin_fraction failed re-validation.
    spec = {"dataset": "digits", "epochs": 2, "schedule": {"kind": "constant", "begin_fraction": 0.2, "frequency": 10}}
    created = client.post("/api/runs", json=spec)
    assert created.status_code == 201, created.text
    assert created.json()["plan"]["schedule"]["begin_step"] == 16  # round(0.2 * 82): 41 steps per epoch
    assert client.get(f"/api/runs/{created.json()['id']}").status_code == 200
    assert client.get("/api/runs").json()["total"] == 1
