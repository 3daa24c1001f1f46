"""The sweeps API against migrated PostgreSQL and SQLite (no worker: runs stay queued unless a test moves them)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from prunelab.server.db import session_scope
from prunelab.server.models import Run, RunStatus, Sweep, utcnow

TUTORIAL = {
    "name": "constant vs polynomial",
    "base": {"dataset": "digits", "model": "mlp", "epochs": 1, "schedule": {"frequency": 41}},
    "variants": {"constant": {"schedule": {"kind": "constant"}}, "polynomial": {"schedule": {"kind": "polynomial"}}},
    "axes": [{"path": "sparsity", "values": [0.5, 0.75, 0.875, 0.95]}],
    "seeds": [0, 1, 2],
}


def run_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Run)) or 0


def submit(client: TestClient, payload: dict) -> dict:
    answer = client.post("/api/sweeps", json=payload)
    assert answer.status_code == 201, answer.text
    return answer.json()


def set_status(run_id: int, status: RunStatus) -> None:
    with session_scope() as session:
        finished = utcnow() if RunStatus(status).finished else None
        session.execute(update(Run).where(Run.id == run_id).values(status=status, finished_at=finished))


def test_constant_vs_polynomial_is_one_sweep_of_24_tagged_runs(client: TestClient) -> None:
    sweep = submit(client, TUTORIAL)
    assert "runs" not in sweep
    sweep = client.get(f"/api/sweeps/{sweep['id']}").json()
    assert sweep["progress"] == {
        "total": 24, "queued": 24, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0, "missing": 0,
    }  # fmt: skip
    assert sweep["status"] == "running"
    assert [run["id"] for run in sweep["runs"]] == [point["run_id"] for point in sweep["points"]]
    by_point = {
        (p["variant"], p["values"]["sparsity"], p["seed"]): run
        for p, run in zip(sweep["points"], sweep["runs"], strict=True)
    }
    assert len(by_point) == 24
    constant = by_point[("constant", 0.875, 2)]
    assert constant["spec"]["schedule"]["kind"] == "constant"
    assert constant["spec"]["schedule"]["target_sparsity"] == 0.875
    assert constant["spec"]["schedule"]["frequency"] == 41  # the base's schedule fields reach every variant
    assert constant["spec"]["seed"] == 2
    assert constant["tags"] == [f"sweep:{sweep['id']}", "variant:constant", "sparsity:0.875", "seed:2"]
    polynomial = by_point[("polynomial", 0.95, 0)]
    assert polynomial["spec"]["schedule"]["final_sparsity"] == 0.95
    assert polynomial["plan"]["target_sparsity"] == pytest.approx(0.95)
    # The runs filter finds a sweep's runs, and a group of them, by these tags.
    tagged = client.get("/api/runs", params={"filter": f'tag:"sweep:{sweep["id"]}" tag:"sparsity:0.875"'}).json()
    assert sorted(run["id"] for run in tagged["runs"]) == sorted(
        run["id"] for (_, sparsity, _), run in by_point.items() if sparsity == 0.875
    )
    listed = client.get("/api/sweeps").json()["sweeps"]
    assert [(s["id"], s["progress"]["queued"]) for s in listed] == [(sweep["id"], 24)]


def test_a_point_that_is_not_a_valid_spec_refuses_the_whole_sweep(client: TestClient) -> None:
    payload = {**TUTORIAL, "axes": [{"path": "sparsity", "values": [0.5, 1.0]}], "seeds": [0]}
    answer = client.post("/api/sweeps", json=payload)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert [item["field"] for item in detail] == ["points.1", "points.3"]
    assert detail[0]["msg"] == (
        "point 1 (variant constant, sparsity 1.0, seed 0): schedule.target_sparsity: "
        "target_sparsity must be in range [0,1)"
    )
    assert "final_sparsity must be in range [0,1)" in detail[1]["msg"]
    assert run_count() == 0
    assert client.get("/api/sweeps").json()["sweeps"] == []


def test_engine_and_backend_axes_refuse_the_tfmot_jax_point_by_name_and_suggest_variants(client: TestClient) -> None:
    axes = [{"path": "engine", "values": ["tfmot", "keras"]}, {"path": "backend", "values": ["tensorflow", "jax"]}]
    base = {**TUTORIAL["base"], "schedule": {"kind": "constant", "frequency": 41}}
    answer = client.post("/api/sweeps", json={**TUTORIAL, "base": base, "variants": {}, "axes": axes, "seeds": [0]})
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["field"] == "points.1" and problem["msg"].startswith("point 1 (engine tfmot, backend jax, seed 0)")
    assert '"variants": {"tfmot": {"engine": "tfmot"}, "keras-tf"' in problem["msg"]
    assert run_count() == 0
    variants = {"tfmot": {"engine": "tfmot"}, "keras-jax": {"engine": "keras", "backend": "jax"}}
    submit(client, {**TUTORIAL, "base": base, "variants": variants, "axes": [], "seeds": [0]})
    assert run_count() == 2


def test_a_point_whose_plan_cannot_run_refuses_the_whole_sweep(client: TestClient) -> None:
    payload = {**TUTORIAL, "axes": [{"path": "schedule.frequency", "values": [41, 5000]}], "seeds": [0]}
    answer = client.post("/api/sweeps", json=payload)
    assert answer.status_code == 422
    assert [item["field"] for item in answer.json()["detail"]] == ["points.1", "points.3"]
    assert "frequency (5000) is larger than the pruning window" in answer.json()["detail"][0]["msg"]
    assert run_count() == 0


def test_an_axis_path_that_is_not_a_spec_field_is_named(client: TestClient) -> None:
    payload = {**TUTORIAL, "axes": [{"path": "schedule.sparsity_target", "values": [0.5]}]}
    answer = client.post("/api/sweeps", json=payload)
    assert answer.status_code == 422
    [item] = answer.json()["detail"]
    assert item["field"] == "axes.0"
    assert item["msg"].startswith("axis path 'schedule.sparsity_target' is not a spec field: 'sparsity_target'")
    assert run_count() == 0


def test_a_sweep_over_the_cap_says_how_many_runs_it_would_make(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = {**TUTORIAL, "axes": [{"path": "learning_rate", "values": [0.001 * (i + 1) for i in range(200)]}]}
    answer = client.post("/api/sweeps", json=payload)  # 2 variants x 200 x 3 seeds
    assert answer.status_code == 422
    [item] = answer.json()["detail"]
    assert item["msg"].startswith("this sweep would make 1200 runs; at most 1000 are allowed per sweep")
    assert run_count() == 0


def test_random_mode_samples_the_grid_reproducibly(client: TestClient) -> None:
    payload = {
        **TUTORIAL,
        "axes": [*TUTORIAL["axes"], {"path": "learning_rate", "values": [0.001, 0.003, 0.01]}],
        "mode": "random", "samples": 5, "sample_seed": 7,
    }  # fmt: skip
    first = submit(client, payload)
    second = submit(client, payload)
    assert first["progress"]["total"] == 15  # 5 combinations x 3 seeds
    key = [(p["variant"], p["values"], p["seed"]) for p in first["points"]]
    assert key == [(p["variant"], p["values"], p["seed"]) for p in second["points"]]
    assert len({(v, tuple(values.values())) for v, values, _ in key}) == 5


def test_thousand_points_are_accepted_quickly(client: TestClient) -> None:
    payload = {
        "base": {"dataset": "digits", "model": "mlp", "epochs": 1, "schedule": {"kind": "constant", "frequency": 41}},
        "axes": [{"path": "sparsity", "values": [i / 100 for i in range(50)]},
                 {"path": "learning_rate", "values": [0.001, 0.002, 0.003, 0.004, 0.005]}],
        "seeds": [0, 1, 2, 3],
    }  # fmt: skip
    started = time.perf_counter()
    sweep = submit(client, payload)
    elapsed = time.perf_counter() - started
    assert sweep["progress"]["total"] == 1000
    assert run_count() == 1000
    print(f"1000-point sweep accepted and queued in {elapsed:.2f} s")


def test_cancel_drops_queued_runs_and_keeps_finished_ones(client: TestClient) -> None:
    sweep = submit(client, {**TUTORIAL, "seeds": [0]})
    done, failed, *rest = [point["run_id"] for point in sweep["points"]]
    set_status(done, RunStatus.SUCCEEDED)
    set_status(failed, RunStatus.FAILED)
    answer = client.post(f"/api/sweeps/{sweep['id']}/cancel")
    assert answer.status_code == 200, answer.text
    cancelled = answer.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["progress"]["succeeded"] == 1 and cancelled["progress"]["failed"] == 1
    assert cancelled["progress"]["cancelled"] == len(rest) == 6
    assert client.get(f"/api/runs/{done}").json()["status"] == "succeeded"


def test_retry_runs_failed_points_again_and_delete_marks_a_point_missing(client: TestClient) -> None:
    sweep = submit(client, {**TUTORIAL, "seeds": [0]})
    first, second, third, *_ = [point["run_id"] for point in sweep["points"]]
    set_status(first, RunStatus.FAILED)
    set_status(second, RunStatus.SUCCEEDED)
    retried = client.post(f"/api/sweeps/{sweep['id']}/retry").json()
    assert retried["status"] == "running"
    new_run = retried["points"][0]["run_id"]
    assert new_run not in (first, second, third)
    assert retried["points"][0]["status"] == "queued"
    assert retried["points"][1]["run_id"] == second  # only failed points are run again
    assert retried["progress"]["failed"] == 0
    assert client.get(f"/api/runs/{new_run}").json()["tags"][:2] == [f"sweep:{sweep['id']}", "variant:constant"]
    assert client.get(f"/api/runs/{first}").json()["tags"] == [f"retried:sweep:{sweep['id']}"]

    assert client.delete(f"/api/runs/{second}").status_code == 204
    after = client.get(f"/api/sweeps/{sweep['id']}").json()
    assert after["points"][1] == {**retried["points"][1], "run_id": None, "status": "missing"}
    assert after["progress"]["missing"] == 1 and after["progress"]["succeeded"] == 0
    assert second not in [run["id"] for run in after["runs"]]


def test_unknown_sweep_is_404_and_bad_input_is_422(client: TestClient) -> None:
    assert client.get("/api/sweeps/999").json() == {"detail": "sweep 999 does not exist"}
    assert client.post("/api/sweeps/999/cancel").status_code == 404
    assert client.get("/api/sweeps/99999999999").status_code == 422
    answer = client.post("/api/sweeps", json={**TUTORIAL, "mode": "random"})
    assert answer.status_code == 422
    assert "mode random needs samples" in answer.json()["detail"][0]["msg"]
    answer = client.post("/api/sweeps", json={**TUTORIAL, "axes": [{"path": "seed", "values": [1, 2]}]})
    assert answer.json()["detail"][0]["msg"] == "seed is not an axis: list the seeds in `seeds`"
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Sweep)) == 0
