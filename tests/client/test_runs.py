"""Runs through the client: create (dict or the spec model), list and page, get, wait, events, cancel, delete, tags."""

from __future__ import annotations

import pytest

from core.specs import RunSpec
from harness.stack import free_port
from prunelab import Client, PruneLabError, Run, ServerUnreachable, WaitTimeout
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
    # Each point once, in order. (The stream reads live points; once the worker compacts the finished run,
    # the history is read with metrics(), so the very last steps may arrive only there.)
    assert steps == sorted(set(steps)) and set(steps) <= set(range(1, 22)) and len(steps) >= 5, steps
    statuses = [data["status"] for name, data in events if name == "status"]
    assert statuses[-1] == "succeeded" and "running" in statuses, statuses


def test_listing_pages_through_every_run_once(client: Client, trained: Run) -> None:
    everything = client.list_runs()
    assert trained.id in {run.id for run in everything}
    assert [run.id for run in everything] == sorted((run.id for run in everything), reverse=True)  # newest first
    paged = [run.id for run in client.iter_runs(page_size=2)]
    assert paged == [run.id for run in everything] and len(paged) == len(set(paged)) >= 3
    assert [run.id for run in client.list_runs(limit=2)] == [run.id for run in everything][:2]


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
