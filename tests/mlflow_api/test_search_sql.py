"""MLflow's `runs/search` on PostgreSQL and SQLite: filters and orders agree with a brute-force evaluation of the
seeded runs, pages list each run once, and malformed searches are MLflow's INVALID_PARAMETER_VALUE."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.seed_runs import SeededMlflowRun, insert_mlflow_runs
from prunelab.server.mlflow_api.search import Order, parse_filter, parse_order_by
from prunelab.server.mlflow_api.service import TO_MLFLOW
from prunelab.server.models import RunStatus
from prunelab.server.runs.filters import All, Filter, KeyCompare
from tests.mlflow_api.test_api import API, assert_error

RUNS = 80


@pytest.fixture(autouse=True)
def no_reaper(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seeded `running` runs have no client: the API's reaper would fail them while the tests read."""
    monkeypatch.setenv("PRUNELAB_REAPER_INTERVAL_S", "0")


@pytest.fixture
def seeded(client: TestClient) -> list[SeededMlflowRun]:
    return insert_mlflow_runs(RUNS, experiment_id=0, seed=20)


# --- the brute force: MLflow's meaning of a search, evaluated in Python over what the seeder wrote ---


def value_of(run: SeededMlflowRun, source: str, key: str) -> Any:
    if source == "latest":
        return run.run.latest.get(key)
    if source == "param":
        return run.params.get(key)
    if source == "tag":
        return run.tags.get(key)
    return {
        "run_id": str(run.id),
        "run_name": run.run.name,
        "status": TO_MLFLOW.get(RunStatus(run.run.status), "RUNNING"),
        "start_time": run.start_time_ms,
        "end_time": run.end_time_ms,
        "user_id": run.user_id,
        "experiment_id": str(run.experiment_id),
        "lifecycle_stage": "active",
    }[key]


def like(pattern: str, value: str, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.S | (re.I if ignore_case else 0)) is not None


def holds(parsed: Filter | None, run: SeededMlflowRun) -> bool:
    if parsed is None:
        return True
    if isinstance(parsed, All):
        return all(holds(part, run) for part in parsed.parts)
    assert isinstance(parsed, KeyCompare), parsed
    value, other = value_of(run, parsed.source, parsed.key), parsed.value
    if value is None:
        return False
    if parsed.op in ("IN", "NOT IN"):
        assert isinstance(other, tuple)
        return (value in other) == (parsed.op == "IN")
    if parsed.op.endswith("LIKE"):
        assert isinstance(other, str)
        return like(other, value, "ILIKE" in parsed.op) != parsed.op.startswith("NOT")
    return {
        "=": value == other,
        "!=": value != other,
        "<": value < other,
        "<=": value <= other,
        ">": value > other,
        ">=": value >= other,
    }[parsed.op]


def expected_order(runs: list[SeededMlflowRun], orders: list[Order]) -> list[str]:
    """Each order key with blanks last, then newest start first, then newest id first (stable sorts, last key first)."""
    found = sorted(runs, key=lambda run: (-run.start_time_ms, -run.id))
    for order in reversed(orders):
        present = [run for run in found if value_of(run, order.source, order.key) is not None]
        absent = [run for run in found if value_of(run, order.source, order.key) is None]
        present.sort(key=lambda run: value_of(run, order.source, order.key), reverse=order.descending)
        found = present + absent
    return [str(run.id) for run in found]


def search(client: TestClient, filter_string: str = "", order_by: list[str] | None = None, **extra: Any) -> Any:
    body = {"experiment_ids": ["0"], "filter": filter_string, "order_by": order_by or [], **extra}
    return client.post(f"{API}/runs/search", json=body)


def every_page(client: TestClient, filter_string: str, order_by: list[str], max_results: int) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        answer = search(client, filter_string, order_by, max_results=max_results, page_token=token)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        ids += [run["info"]["run_id"] for run in page.get("runs", [])]
        token = page.get("next_page_token")
        if token is None:
            return ids
        assert len(page["runs"]) == max_results


FILTERS = [
    "metrics.accuracy > 0.95 and params.kind = 'polynomial' and tags.sweep = 'yes'",
    "metrics.loss <= 0.5",
    "metrics.accuracy != 0.95 AND metrics.measured_sparsity >= 0.3",
    "params.lr = '0.01'",
    "params.lr != '0.01'",
    'params.`kind` = "constant"',
    "params.lr IN ('0.1', '1e-3')",
    "params.lr NOT IN ('0.1')",
    "tags.team LIKE 'vis%'",  # case-sensitive: not 'Vision'
    "tags.team ILIKE 'VIS%'",
    "tags.team LIKE 'vis_ion'",  # '_' is any one character
    "tags.team = 'v%s'",  # '%' taken literally by =
    "tags.team NOT LIKE '%ion'",
    "tags.`mlflow.runName` LIKE '% %'",
    "tags.mlflow.runName ILIKE '%-1%'",
    "attributes.status = 'FINISHED'",
    "attributes.status IN ('FAILED', 'KILLED')",
    "attributes.run_name ILIKE 'ALPHA%'",
    "attributes.user_id = 'ana'",
    "attributes.start_time >= 1700000010000 and attributes.end_time < 1700000020000",
    "run_name LIKE '%a%' and status != 'RUNNING'",
]
ORDERS = [
    [],
    ["metrics.accuracy DESC"],
    ["params.kind", "metrics.loss ASC"],
    ["attributes.end_time DESC"],
    ["attributes.status ASC", "params.lr DESC"],  # upper-case words and digits: every collation orders them alike
]


def test_filters_match_the_brute_force(client: TestClient, seeded: list[SeededMlflowRun]) -> None:
    assert len(seeded) == RUNS
    for text in FILTERS:
        matching = [run for run in seeded if holds(parse_filter(text), run)]
        assert 0 < len(matching) < RUNS, (text, len(matching))  # each filter tells runs apart
        answer = search(client, text, max_results=1000)
        assert answer.status_code == 200, (text, answer.text)
        found = [run["info"]["run_id"] for run in answer.json().get("runs", [])]
        assert found == expected_order(matching, []), text


def test_orders_and_pages_list_each_run_once(client: TestClient, seeded: list[SeededMlflowRun]) -> None:
    for text in ("", "metrics.accuracy > 0.95", "tags.team ILIKE 'vis%'"):
        matching = [run for run in seeded if holds(parse_filter(text), run)]
        for order_by in ORDERS:
            expected = expected_order(matching, parse_order_by(order_by))
            pages = every_page(client, text, order_by, max_results=7)
            assert pages == expected, (text, order_by)
            assert len(set(pages)) == len(pages) == len(matching)
    # The runs MLflow shows are the seeded ones, with their params, tags and latest values.
    first = search(client, "params.lr = '0.01'", ["metrics.accuracy DESC"], max_results=1).json()["runs"][0]
    run = next(run for run in seeded if str(run.id) == first["info"]["run_id"])
    assert {p["key"]: p["value"] for p in first["data"]["params"]} == run.params
    assert {t["key"]: t["value"] for t in first["data"]["tags"]} == run.tags
    assert first["info"]["start_time"] == run.start_time_ms


def forged(token: str, **fields: Any) -> str:
    decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw = json.dumps(decoded | fields).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MALFORMED = [
    ("metrics.acc > 1 OR metrics.acc < 0", "AND only"),
    ("metrics.acc > 'x'", "number"),
    ("metrics.acc LIKE '1%'", "comparator"),
    ("params.lr > '0.1'", "comparator '>'"),
    ("params.lr = 0.1", "quoted string"),
    ("foo.x = 1", "entity type 'foo'"),
    ("attributes.bogus = 'x'", "attribute key 'bogus'"),
    ("(metrics.acc > 1)", "'('"),
    ("metrics.acc > 1 and", "the end"),
    ("metrics.acc", "comparator"),
    ("params.lr = 'open", "unexpected"),
    ("tags.x IN ()", "')'"),
    ("tags.x IN 'a'", "'('"),
    ("metrics.acc > 1e999", "finite"),
    ("params.lr = 'a\x00b'", "NUL"),
    (" AND ".join(f"metrics.m{index} > 0" for index in range(17)), "at most 16"),
]


def test_malformed_searches_are_invalid_parameter_values(client: TestClient, seeded: list[SeededMlflowRun]) -> None:
    for text, fragment in MALFORMED:
        assert_error(search(client, text), 400, "INVALID_PARAMETER_VALUE", fragment)
    for order_by, fragment in [
        (["metrics.acc SIDEWAYS"], "order_by"),
        (["bogus.acc"], "entity type"),
        (["metrics.acc > 1"], "order_by"),
    ]:
        assert_error(search(client, "", order_by), 400, "INVALID_PARAMETER_VALUE", fragment)
    first = search(client, "metrics.accuracy > 0.9", ["metrics.loss DESC"], max_results=3).json()
    token = first["next_page_token"]
    for bad_token in (
        "garbage",
        "e30",  # {}
        forged(token, v=["not a number", 1_700_000_000_000]),  # a string where the loss was
        forged(token, v=[0.5]),  # one value short
        forged(token, i="1"),
        forged(token, f="0" * 16),  # another search's
    ):
        answer = search(client, "metrics.accuracy > 0.9", ["metrics.loss DESC"], max_results=3, page_token=bad_token)
        assert_error(answer, 400, "INVALID_PARAMETER_VALUE", "page_token")
    other_search = search(client, "metrics.accuracy > 0.5", ["metrics.loss DESC"], page_token=token)
    assert_error(other_search, 400, "INVALID_PARAMETER_VALUE", "same search")
    experiments = client.post(f"{API}/experiments/search", json={"filter": "params.x = 'y'"})
    assert_error(experiments, 400, "INVALID_PARAMETER_VALUE", "name only")
