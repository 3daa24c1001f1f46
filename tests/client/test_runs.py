"""Runs through the client: create (dict or the spec model), list and page, get, wait, events, cancel, delete, tags."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from harness.stack import free_port, migrate, sqlite_stack, start_api
from prunelab import Client, PruneLabError, Run, ServerUnreachable, WaitTimeout
from prunelab.core.specs import RunSpec
from tests.client.conftest import LONG, TINY


def test_a_run_is_created_from_a_dict_or_the_spec_model_and_reads_back(client: Client) -> None:
    from_dict = client.create_run({**TINY, "name": "from a dict", "exports": ["keras"]})
    from_model = client.create_run(RunSpec.model_validate({**TINY, "name": "from the model", "exports": ["keras"]}))
    assert from_dict.status == "queued" and from_dict.total_steps == 21
    assert from_model.spec == {**from_dict.spec, "name": "from the model"}
    again = client.get_run(from_model.id)
    assert isinstance(again, Run) and again.id == from_model.id and again.name == "from the model"
    for run in (from_dict, from_model):
        client.cancel(run.id)


def test_a_bad_spec_raises_the_servers_message_naming_the_field(client: Client) -> None:
    with pytest.raises(PruneLabError) as refused:
        client.create_run({**TINY, "schedule": {"kind": "constant", "target_sparsity": 1.5}})
    assert refused.value.status_code == 422
    assert "schedule.target_sparsity" in str(refused.value) and "[0,1)" in str(refused.value), refused.value
    assert isinstance(refused.value.detail, list)


def test_a_missing_run_is_a_404_with_the_servers_message(client: Client) -> None:
    with pytest.raises(PruneLabError) as missing:
        client.get_run(987654)
    assert missing.value.status_code == 404 and "987654" in missing.value.message


def test_nothing_listening_raises_server_unreachable_not_an_httpx_error() -> None:
    with Client(f"http://127.0.0.1:{free_port()}") as nowhere, pytest.raises(ServerUnreachable) as refused:
        nowhere.list_runs()
    assert "cannot reach PruneLab" in str(refused.value) and refused.value.status_code is None


SERVICE_TOKEN = "client-test-service-token-0123456789"


@pytest.fixture(scope="module")
def guarded_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API (no worker needed) that answers only requests carrying its service token."""
    config = sqlite_stack(tmp_path_factory.mktemp("guarded"))
    config.extra = {"PRUNELAB_API_TOKEN": SERVICE_TOKEN}
    migrate(config)
    api = start_api(config, config.home / "logs")
    try:
        yield config.base_url
    finally:
        api.stop()


def test_the_token_is_sent_and_a_missing_one_gets_the_servers_401(guarded_url: str) -> None:
    with Client(guarded_url, SERVICE_TOKEN) as signed:
        assert signed.list_runs() == []
    with Client(guarded_url) as anonymous, pytest.raises(PruneLabError) as refused:
        anonymous.list_runs()
    assert refused.value.status_code == 401
    assert "Authorization: Bearer" in refused.value.message and "PRUNELAB_TOKEN" in refused.value.message


def test_url_and_token_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, client: Client) -> None:
    monkeypatch.setenv("PRUNELAB_URL", client.url + "/")
    monkeypatch.setenv("PRUNELAB_TOKEN", "not-a-token")
    with Client() as from_env:
        assert from_env.url == client.url
        assert from_env._http.client.headers["authorization"] == "Bearer not-a-token"


def test_wait_follows_a_run_to_its_end_with_a_progress_bar(
    client: Client, trained: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run = client.wait(trained.id, progress=True)
    assert run.status == "succeeded" and run.summary is not None
    shown = capsys.readouterr().err
    assert f"run {trained.id} succeeded" in shown and "21/21" in shown and "sparsity 0.5" in shown, shown


def test_events_stream_a_live_run_step_by_step_until_the_end(client: Client) -> None:
    run = client.create_run({**TINY, "name": "streamed", "exports": ["keras"]})
    events = list(client.events(run.id, timeout=300))
    assert [name for name, _ in events][-1] == "end"
    steps = [step for name, data in events if name == "metrics" for step in data.get("loss", {}).get("steps", [])]
    # Each point once, in order. The stream reads live points when the change feed wakes it; a 21-step run on
    # a quiet machine can train and be compacted between two wakes, so how many steps arrive live is not
    # fixed (tests/backend/test_run_events.py checks the wake-ups themselves). Together with the stored
    # history, nothing is missing and nothing is repeated.
    assert steps == sorted(set(steps)) and set(steps) <= set(range(1, 22)), steps
    stored = client.metrics(run.id, ["loss"])["loss"]["steps"]
    assert stored == list(range(1, 22)) and set(steps) <= set(stored), (steps, stored)
    statuses = [data["status"] for name, data in events if name == "status"]
    assert statuses[-1] == "succeeded" and "running" in statuses, statuses


def test_listing_pages_through_every_run_once(client: Client, trained: Run) -> None:
    for name in ("listed 1", "listed 2"):
        client.cancel(client.create_run({**LONG, "name": name}))
    everything = client.list_runs()
    assert trained.id in {run.id for run in everything}
    assert [run.id for run in everything] == sorted((run.id for run in everything), reverse=True)  # newest first
    paged = [run.id for run in client.iter_runs(page_size=2)]
    assert paged == [run.id for run in everything] and len(paged) == len(set(paged)) >= 3
    assert [run.id for run in client.list_runs(limit=2)] == [run.id for run in everything][:2]


def test_a_filter_is_evaluated_by_the_server(client: Client, trained: Run) -> None:
    client.add_tags(trained.id, "filtered")
    try:
        found = client.list_runs("tag:filtered")
    except PruneLabError as error:  # a server from before runs were filtered and paged by a cursor (issue 14)
        assert "predates filtering" in str(error) and error.status_code is None
    else:
        assert [run.id for run in found] == [trained.id]
    finally:
        client.remove_tags(trained.id, "filtered")


def test_cursor_pages_are_followed_with_the_filter_and_sort_sent_each_time() -> None:
    # The paging protocol of GET /api/runs ({"runs", "next_cursor"}), scripted: each request is checked.
    def run(run_id: int) -> dict[str, object]:
        return {"id": run_id, "name": f"r{run_id}", "status": "succeeded"}

    pages = {None: ([run(5), run(4)], "c1"), "c1": ([run(3), run(2)], "c2"), "c2": ([run(1)], None)}
    asked: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        asked.append(params)
        runs, next_cursor = pages[params.get("cursor")]
        return httpx.Response(200, content=json.dumps({"runs": runs, "next_cursor": next_cursor, "total": 5}))

    with Client("http://scripted", transport=httpx.MockTransport(answer)) as scripted:
        assert [r.id for r in scripted.iter_runs("tag:sweep", sort="accuracy", page_size=2)] == [5, 4, 3, 2, 1]
        assert [r.id for r in scripted.list_runs(limit=3)] == [5, 4, 3]
    assert [params.get("cursor") for params in asked[:3]] == [None, "c1", "c2"]
    assert all(params["filter"] == "tag:sweep" and params["sort"] == "accuracy" for params in asked[:3])
    assert len(asked) == 5  # the limit stopped the second listing after two pages


def test_cancel_wait_with_a_timeout_and_delete(client: Client) -> None:
    long = client.create_run(LONG)
    with pytest.raises(WaitTimeout):
        client.wait(long.id, timeout=1.5)
    client.cancel(long.id)
    ended = client.wait(long.id, timeout=120)
    assert ended.status == "cancelled"
    client.delete(long.id)
    with pytest.raises(PruneLabError) as gone:
        client.get_run(long.id)
    assert gone.value.status_code == 404


def test_tags_and_note(client: Client, trained: Run) -> None:
    assert client.add_tags(trained.id, "sweep", "client").tags == ["sweep", "client"]
    assert client.add_tags(trained.id, "client", "best").tags == ["sweep", "client", "best"]
    assert client.remove_tags(trained.id, "sweep").tags == ["client", "best"]
    noted = client.update(trained.id, note="from the client")
    assert noted.note == "from the client" and noted.tags == ["client", "best"]
    with pytest.raises(PruneLabError) as refused:
        client.add_tags(trained.id, "has space")
    assert refused.value.status_code == 422 and "tags" in refused.value.message
    client.update(trained.id, tags=[])
