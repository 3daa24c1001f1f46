"""`GET /api/runs` on PostgreSQL and SQLite: filters and sorts agree with a brute-force evaluation, pages hold."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.seed_runs import SeededRun, insert_runs
from prunelab.server.runs.filters import (
    All,
    Any_,
    CreatedCompare,
    FieldIs,
    Filter,
    IdCompare,
    MetricCompare,
    Not,
    Word,
    parse_filter,
)
from tests.backend.team import Team, make_team

RUNS = 90


@pytest.fixture(autouse=True)
def no_reaper(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seeded `running` runs have no worker: the API's reaper would fail them while the tests read."""
    monkeypatch.setenv("PRUNELAB_REAPER_INTERVAL_S", "0")


@pytest.fixture
def seeded(client: TestClient) -> tuple[Team, list[SeededRun], dict[str, str]]:
    team = make_team("ana", "bob")
    runs = insert_runs(RUNS, seed=14, owner_ids=(team["ana"].user_id, team["bob"].user_id, None))
    return team, runs, team["ana"].token_headers()


# --- the brute force: the filter's meaning, evaluated in Python over what the seeder wrote ---


def final_value(run: SeededRun, key: str) -> float | None:
    if key == "target":
        return run.target_sparsity
    key = {"final_sparsity": "measured_sparsity", "sparsity": "measured_sparsity"}.get(key, key)
    summary = (run.summary or {}).get(key)
    if isinstance(summary, int | float) and not isinstance(summary, bool):
        return float(summary)
    return run.latest.get(key)


def compare(value: Any, op: str, other: Any) -> bool:
    if value is None:
        return False
    return {
        ">": value > other,
        ">=": value >= other,
        "<": value < other,
        "<=": value <= other,
        "=": value == other,
        "!=": value != other,
    }[op]


def holds(parsed: Filter | None, run: SeededRun, owners: dict[int, str]) -> bool:
    match parsed:
        case None:
            return True
        case All(parts):
            return all(holds(part, run, owners) for part in parts)
        case Any_(parts):
            return any(holds(part, run, owners) for part in parts)
        case Not(part):
            return not holds(part, run, owners)
        case Word(text):
            return text.lower() in run.name.lower() or text.lower() in run.note.lower()
        case MetricCompare(key, op, number):
            return compare(final_value(run, key), op, number)
        case IdCompare(op, number):
            return compare(run.id, op, number)
        case CreatedCompare(op, moment):
            return compare(run.created_at, op, moment)
        case FieldIs("tag", value):
            return value.lower() in [tag.lower() for tag in run.tags]
        case FieldIs("status", value):
            return run.status == value.lower()
        case FieldIs("kind", value):
            return run.kind == value.lower()
        case FieldIs("owner", value):
            return run.owner_id is not None and owners[run.owner_id].lower() == value.lower()
        case FieldIs("dataset", value):
            return value.lower() == "digits"
        case FieldIs("model", value):
            return value.lower() == "mlp"
        case FieldIs("name", value):
            return value.lower() in run.name.lower()
    raise AssertionError(parsed)


def all_pages(client: TestClient, headers: dict[str, str], limit: int = 17, **params: str) -> Iterator[dict[str, Any]]:
    cursor = None
    while True:
        query = {**params, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/runs", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        yield page
        cursor = page["next_cursor"]
        if cursor is None:
            return


def listed_ids(client: TestClient, headers: dict[str, str], **params: str) -> list[int]:
    return [run["id"] for page in all_pages(client, headers, 17, **params) for run in page["runs"]]


EXAMPLES = [
    "accuracy > 0.98 kind:polynomial tag:sweep",
    "test_accuracy>=0.95",
    "final_sparsity < 0.8",
    "target = 0.5",
    "keras_zip_bytes < 100000 or not test_loss > 0.1",
    "tag:SWEEP2 or tag:best",
    "tag:p_1",  # LIKE's wildcard in a tag, taken literally (pX1 is another tag)
    'tag:p%1 or tag:"p_1"',
    "not tag:sweep",
    "status:succeeded owner:ana",
    "not owner:ana",
    'name:"my run"',
    "mnist",
    "created>2026-10-22 created<=2026-10-23",
    "created:2026-10-21",
    "id > 40 id != 45",
    "(status:failed or status:cancelled) and kind:constant",
    "coverage > 0",  # an object in the summary: never a number
    "dataset:digits model:mlp",
    "50%",  # LIKE's wildcard, taken literally
]


@pytest.mark.parametrize("text", EXAMPLES)
def test_filters_match_the_brute_force(
    client: TestClient, seeded: tuple[Team, list[SeededRun], dict[str, str]], text: str
) -> None:
    team, runs, headers = seeded
    owners = {member.user_id: member.name for member in team.members.values()}
    parsed = parse_filter(text)
    expected = sorted((run for run in runs if holds(parsed, run, owners)), key=lambda r: (r.created_at, r.id))
    got = listed_ids(client, headers, filter=text)
    assert got == [run.id for run in reversed(expected)]
    first = client.get("/api/runs", params={"filter": text, "limit": 5}, headers=headers).json()
    assert first["total"] == len(expected)


ATOMS = st.sampled_from(
    [
        "accuracy > 0.95",
        "test_accuracy <= 0.97",
        "loss >= 1",
        "sparsity != 0.5",
        "tag:sweep",
        "tag:dense",
        "status:running",
        "status:succeeded",
        "kind:constant",
        "owner:bob",
        "alpha",
        '"my run"',
        "created < 2026-10-21",
        "id <= 30",
    ]
)


def combined(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from([" ", " and ", " or ", " AND "]), children).map(
            lambda t: f"{t[0]}{t[1]}{t[2]}"
        ),
        children.map(lambda text: f"not ({text})"),
        children.map(lambda text: f"({text})"),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.recursive(ATOMS, combined, max_leaves=6))
def test_random_filters_match_the_brute_force(
    client: TestClient, seeded: tuple[Team, list[SeededRun], dict[str, str]], text: str
) -> None:
    team, runs, headers = seeded
    owners = {member.user_id: member.name for member in team.members.values()}
    parsed = parse_filter(text)
    expected = {run.id for run in runs if holds(parsed, run, owners)}
    response = client.get("/api/runs", params={"filter": text, "limit": 500}, headers=headers)
    assert response.status_code == 200, response.text
    assert {run["id"] for run in response.json()["runs"]} == expected, text


def sort_key(sort: str) -> Callable[[SeededRun], Any]:
    return {
        "created": lambda run: run.created_at,
        "id": lambda run: run.id,
        "name": lambda run: run.name,
        "status": lambda run: run.status,
    }.get(sort, lambda run: final_value(run, sort))


@pytest.mark.parametrize("sort", ["created", "id", "name", "status", "test_accuracy", "accuracy", "keras_zip_bytes"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorts_page_by_page_with_blanks_last(
    client: TestClient, seeded: tuple[Team, list[SeededRun], dict[str, str]], sort: str, order: str
) -> None:
    _, runs, headers = seeded
    value = sort_key(sort)
    present = [run for run in runs if value(run) is not None]
    blank = [run for run in runs if value(run) is None]
    descending = order == "desc"
    expected = sorted(present, key=lambda run: (value(run), run.id), reverse=descending)
    expected += sorted(blank, key=lambda run: run.id, reverse=descending)
    assert listed_ids(client, headers, sort=sort, order=order) == [run.id for run in expected]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_each_run_is_listed_once_while_runs_are_added(
    client: TestClient, seeded: tuple[Team, list[SeededRun], dict[str, str]], order: str
) -> None:
    _, runs, headers = seeded
    stop, added = threading.Event(), list[int]()

    def add_runs() -> None:
        index = 1000
        while not stop.is_set() and index < 1200:
            added.extend(run.id for run in insert_runs(3, seed=index, first_index=index))
            index += 3

    writer = threading.Thread(target=add_runs)
    writer.start()
    try:
        pages = list(all_pages(client, headers, limit=4, order=order))
    finally:
        stop.set()
        writer.join()
    assert added, "no run was added while paging"
    ids = [run["id"] for page in pages for run in page["runs"]]
    assert len(ids) == len(set(ids)), "a run was listed twice"
    assert {run.id for run in runs} <= set(ids), "a run that existed throughout was skipped"
    assert set(ids) <= {run.id for run in runs} | set(added)


def test_bad_filters_cursors_and_sorts_are_422s_that_say_why(
    client: TestClient, seeded: tuple[Team, list[SeededRun], dict[str, str]]
) -> None:
    _, _, headers = seeded
    bad = client.get("/api/runs", params={"filter": "accuracy > 0.9 and (tag:x"}, headers=headers)
    assert bad.status_code == 422
    (item,) = bad.json()["detail"]
    assert item["field"] == "filter" and item["column"] == 26
    assert item["msg"] == "column 26: found the end of the filter, expected ')'"
    first = client.get("/api/runs", params={"limit": 2, "filter": "tag:sweep"}, headers=headers).json()
    other = client.get("/api/runs", params={"cursor": first["next_cursor"]}, headers=headers)
    assert other.status_code == 422 and "another filter or sort" in other.json()["detail"][0]["msg"]
    for cursor in ("garbage", "e30", "eyJmIjoxfQ", "x" * 1999):
        response = client.get("/api/runs", params={"cursor": cursor}, headers=headers)
        assert response.status_code == 422 and response.json()["detail"][0]["field"] == "cursor", cursor
    assert client.get("/api/runs", params={"sort": "a b"}, headers=headers).status_code == 422
    assert client.get("/api/runs", params={"limit": 501}, headers=headers).status_code == 422


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(max_size=60)
    | st.lists(
        st.sampled_from(
            ["a", " ", "(", ")", '"', ":", ">", "=", "!", "and", "not", "or", "tag", "0.5", "created", "id", "-", "\\"]
        )
    ).map("".join),
    sort=st.sampled_from(["created", "name", "accuracy", "test_accuracy", "x\x00"]) | st.text(max_size=10),
)
def test_any_filter_or_sort_is_a_page_or_a_422(
    client: TestClient, seeded: tuple[Team, list[SeededRun], dict[str, str]], text: str, sort: str
) -> None:
    _, _, headers = seeded
    response = client.get("/api/runs", params={"filter": text, "sort": sort, "limit": 3}, headers=headers)
    assert response.status_code in (200, 422), (text, sort, response.text)
    if response.status_code == 422:
        assert response.json()["detail"][0]["field"] in ("filter", "sort"), response.text
    elif response.json()["next_cursor"]:
        cursor = response.json()["next_cursor"]
        again = client.get(
            "/api/runs", params={"filter": text, "sort": sort, "limit": 3, "cursor": cursor}, headers=headers
        )
        assert again.status_code == 200, again.text
