"""The MLflow API subset in-process, on PostgreSQL and SQLite: MLflow's limits, error shapes and PruneLab's policies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.backend.team import Team, team_app

API = "/api/2.0/mlflow"


def post(client: TestClient, path: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(f"{API}/{path}", json=body, headers=headers)


def new_run(client: TestClient, **headers: str) -> str:
    answer = post(client, "runs/create", {"experiment_id": "0", "run_name": "r", "start_time": 1}, **headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["run"]["info"]["run_id"])


def history(client: TestClient, run_id: str, key: str, **params: Any) -> dict[str, Any]:
    answer = client.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": key, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def metric(key: str, step: int, value: Any, timestamp: int = 1_700_000_000_000) -> dict[str, Any]:
    return {"key": key, "value": value, "timestamp": timestamp, "step": step}


def assert_error(answer: Any, status: int, code: str, *fragments: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error_code"] == code, body
    for fragment in fragments:
        assert fragment in body["message"], body


def test_batch_limits_are_mlflows(client: TestClient) -> None:
    run_id = new_run(client)
    too_many = [metric("m", step, 1.0) for step in range(1001)]
    assert_error(post(client, "runs/log-batch", {"run_id": run_id, "metrics": too_many}), 400,
                 "INVALID_PARAMETER_VALUE", "at most 1000 metrics", "Got 1001")  # fmt: skip
    params = [{"key": f"p{i}", "value": "1"} for i in range(101)]
    assert_error(post(client, "runs/log-batch", {"run_id": run_id, "params": params}), 400,
                 "INVALID_PARAMETER_VALUE", "at most 100 params")  # fmt: skip
    tags = [{"key": f"t{i}", "value": "1"} for i in range(100)]
    mixed = {"run_id": run_id, "metrics": too_many[:901], "tags": tags}
    assert_error(post(client, "runs/log-batch", mixed), 400, "INVALID_PARAMETER_VALUE",
                 "at most 1000 metrics, params, and tags")  # fmt: skip
    long_value = {"run_id": run_id, "key": "p", "value": "x" * 6001}
    assert_error(post(client, "runs/log-parameter", long_value), 400, "INVALID_PARAMETER_VALUE", "6000")
    # Nothing of a refused batch was stored.
    assert history(client, run_id, "m") == {}
    at_the_limit = {"run_id": run_id, "metrics": too_many[:900], "params": params[:100]}
    assert post(client, "runs/log-batch", at_the_limit).status_code == 200
    assert post(client, "runs/log-batch", {"run_id": run_id, "metrics": too_many[:1000]}).status_code == 200
    assert len(history(client, run_id, "m")["metrics"]) == 1000


def test_error_shapes_and_statuses(client: TestClient) -> None:
    assert_error(client.get(f"{API}/experiments/get", params={"experiment_id": "424242"}), 404,
                 "RESOURCE_DOES_NOT_EXIST")  # fmt: skip
    assert_error(client.get(f"{API}/experiments/get-by-name", params={"experiment_name": "nope"}), 404,
                 "RESOURCE_DOES_NOT_EXIST", "nope")  # fmt: skip
    assert post(client, "experiments/create", {"name": "twice"}).status_code == 200
    assert_error(post(client, "experiments/create", {"name": "twice"}), 400, "RESOURCE_ALREADY_EXISTS")
    assert_error(post(client, "experiments/create", {}), 400, "INVALID_PARAMETER_VALUE", "'name'")
    assert_error(client.get(f"{API}/runs/get", params={"run_id": "abc"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(client.get(f"{API}/runs/get"), 400, "INVALID_PARAMETER_VALUE", "run_id")
    assert_error(post(client, "runs/log-metric", {"run_id": "1"}), 400, "INVALID_PARAMETER_VALUE", "key")
    run_id = new_run(client)
    bad_value = metric("loss", 1, "lots") | {"run_id": run_id}
    assert_error(post(client, "runs/log-metric", bad_value), 400, "INVALID_PARAMETER_VALUE", "'value'")
    assert_error(post(client, "runs/log-metric", metric("loss", -1, 1.0) | {"run_id": run_id}), 400,
                 "INVALID_PARAMETER_VALUE", "step")  # fmt: skip
    assert_error(post(client, "runs/search", {"experiment_ids": ["0"], "filter": "metrics.acc > 1 OR x"}), 400,
                 "INVALID_PARAMETER_VALUE", "AND")  # fmt: skip
    assert_error(post(client, "runs/search", {"experiment_ids": ["0"], "filter": "metrics.acc > 'x'"}), 400,
                 "INVALID_PARAMETER_VALUE", "number")  # fmt: skip
    assert_error(post(client, "registered-models/create", {"name": "m"}), 404, "ENDPOINT_NOT_FOUND")
    assert_error(client.get(f"{API}/metrics/get-history-bulk-interval", params={"run_ids": [run_id],
                 "metric_key": "loss", "start_step": 5}), 400, "INVALID_PARAMETER_VALUE", "both")  # fmt: skip
    # PruneLab's own routes keep their shape.
    assert "detail" in client.get("/api/runs/999999").json()


def test_one_value_per_step_first_write_wins_and_retries_are_idempotent(client: TestClient) -> None:
    run_id = new_run(client)
    batch = {"run_id": run_id, "metrics": [metric("loss", 1, 0.5), metric("loss", 2, 0.25)]}
    for _ in range(3):  # a client retrying a batch whose answer it lost
        assert post(client, "runs/log-batch", batch).status_code == 200
    later = metric("loss", 1, 9.0, timestamp=1_700_000_009_000) | {"run_id": run_id}
    assert post(client, "runs/log-metric", later).status_code == 200
    points = history(client, run_id, "loss")["metrics"]
    assert [(p["step"], p["value"], p["timestamp"]) for p in points] == [
        (1, 0.5, 1_700_000_000_000),
        (2, 0.25, 1_700_000_000_000),
    ]
    nan = metric("gap", 1, "NaN") | {"run_id": run_id}
    assert post(client, "runs/log-metric", nan).status_code == 200
    assert history(client, run_id, "gap")["metrics"][0]["value"] == "NaN"


def test_history_pages_and_bulk_interval_keeps_the_extremes(client: TestClient) -> None:
    run_id = new_run(client)
    values = {step: float(step % 97) for step in range(1, 5001)}
    values[2345] = 1000.0  # a spike a sampled chart must keep
    for start in range(1, 5001, 1000):
        chunk = [metric("acc", step, values[step]) for step in range(start, start + 1000)]
        assert post(client, "runs/log-batch", {"run_id": run_id, "metrics": chunk}).status_code == 200

    seen, token, pages = [], None, 0
    while True:
        page = history(client, run_id, "acc", max_results=1200, **({"page_token": token} if token else {}))
        seen += [p["step"] for p in page["metrics"]]
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == list(range(1, 5001)) and pages == 5

    sampled = client.get(
        f"{API}/metrics/get-history-bulk-interval",
        params={"run_ids": [run_id], "metric_key": "acc", "max_results": 100},
    ).json()["metrics"]
    assert 2 < len(sampled) <= 100
    assert {p["run_id"] for p in sampled} == {run_id}
    assert max(p["value"] for p in sampled) == 1000.0  # the spike survives sampling
    assert sampled[0]["step"] == 1 and sampled[-1]["step"] == 5000
    window = client.get(
        f"{API}/metrics/get-history-bulk-interval",
        params={"run_ids": [run_id], "metric_key": "acc", "start_step": 10, "end_step": 20, "max_results": 100},
    ).json()["metrics"]
    assert [p["step"] for p in window] == list(range(10, 21))


def test_search_runs_filters_orders_and_pages(client: TestClient) -> None:
    experiment = post(client, "experiments/create", {"name": "search"}).json()["experiment_id"]
    ids = []
    for index, (lr, acc) in enumerate([("0.1", 0.5), ("0.01", 0.9), ("0.01", 0.7)]):
        body = {"experiment_id": experiment, "run_name": f"run {index}", "start_time": 1000 + index}
        run_id = post(client, "runs/create", body).json()["run"]["info"]["run_id"]
        batch = {"run_id": run_id, "metrics": [metric("acc", 1, acc)], "params": [{"key": "lr", "value": lr}],
                 "tags": [{"key": "team", "value": "vision" if index else "audio"}]}  # fmt: skip
        assert post(client, "runs/log-batch", batch).status_code == 200
        ids.append(run_id)

    def found(filter_string: str = "", order_by: list[str] | None = None, **extra: Any) -> list[str]:
        body = {"experiment_ids": [experiment], "filter": filter_string, "order_by": order_by or [], **extra}
        answer = post(client, "runs/search", body)
        assert answer.status_code == 200, answer.text
        return [run["info"]["run_id"] for run in answer.json().get("runs", [])]

    assert found() == ids[::-1]  # newest first
    assert found("params.lr = '0.01'") == [ids[2], ids[1]]
    assert found("params.lr = '0.01' AND metrics.acc > 0.8") == [ids[1]]
    assert found("tags.team LIKE 'vis%'", ["metrics.acc DESC"]) == [ids[1], ids[2]]
    assert found("attributes.run_name = 'run 0'") == [ids[0]]
    assert found("tags.`mlflow.runName` IN ('run 1', 'run 2')", ["attributes.start_time ASC"]) == ids[1:]
    first = post(client, "runs/search", {"experiment_ids": [experiment], "max_results": 2}).json()
    assert len(first["runs"]) == 2 and first["next_page_token"]
    rest = found(page_token=first["next_page_token"], max_results=2)
    assert rest == [ids[0]]
    names = post(client, "experiments/search", {"filter": "name LIKE 'sea%'"}).json()["experiments"]
    assert [e["name"] for e in names] == ["search"]


def test_update_ends_the_prunelab_run(client: TestClient) -> None:
    run_id = new_run(client)
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "running"
    ended = post(client, "runs/update", {"run_id": run_id, "status": "FAILED", "end_time": int(time.time() * 1000)})
    assert ended.json()["run_info"]["status"] == "FAILED"
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "failed"


@pytest.fixture
def team_client(settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Team]]:  # type: ignore[no-untyped-def]
    with team_app(monkeypatch) as client_and_team:
        yield client_and_team


def test_writes_to_a_run_are_its_owners(team_client: tuple[TestClient, Team]) -> None:
    client, team = team_client
    ana, bob, carol = team["ana"], team["bob"], team["carol"]
    run_id = new_run(client, **ana.token_headers())
    point = metric("loss", 1, 0.5) | {"run_id": run_id}
    assert_error(post(client, "runs/log-metric", point), 401, "UNAUTHENTICATED")
    for path, body in [
        ("runs/log-metric", point),
        ("runs/log-batch", {"run_id": run_id, "metrics": [metric("loss", 2, 0.4)]}),
        ("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "1"}),
        ("runs/set-tag", {"run_id": run_id, "key": "k", "value": "v"}),
        ("runs/update", {"run_id": run_id, "status": "KILLED"}),
        ("runs/delete", {"run_id": run_id}),
    ]:
        assert_error(post(client, path, body, **bob.token_headers()), 403, "PERMISSION_DENIED", "belongs to ana")
    assert post(client, "runs/log-metric", point, **ana.token_headers()).status_code == 200
    by_admin = metric("loss", 3, 0.3) | {"run_id": run_id}
    # An admin, from PruneLab's own pages.
    assert post(client, "runs/log-metric", by_admin, **carol.cookie_headers()).status_code == 200
    read = client.get(f"{API}/runs/get", params={"run_id": run_id}, headers=bob.token_headers())
    assert read.status_code == 200 and read.json()["run"]["info"]["user_id"] == "ana"
    assert client.get(f"/api/runs/{run_id}", headers=ana.token_headers()).json()["owner"] == "ana"
