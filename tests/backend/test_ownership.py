"""Runs and uploads record who submitted them; anyone signed in reads them; the owner or an admin changes them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from prunelab.server.models import RunStatus
from tests.backend import hostile_files as hostile
from tests.backend.team import SERVICE_TOKEN, Team, owned_run, team_app

SPEC = {"dataset": "digits", "epochs": 1, "schedule": {"kind": "constant", "frequency": 10}}


@pytest.fixture
def team_client(settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Team]]:  # type: ignore[no-untyped-def]
    with team_app(monkeypatch) as client_and_team:
        yield client_and_team


def test_runs_and_uploads_record_who_submitted_them(team_client: tuple[TestClient, Team]) -> None:
    client, team = team_client
    ana, bob = team["ana"], team["bob"]
    by_token = client.post("/api/runs", json=SPEC, headers=ana.token_headers()).json()
    by_cookie = client.post("/api/runs", json=SPEC, headers=bob.cookie_headers()).json()
    by_service = client.post("/api/runs", json=SPEC, headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}).json()
    assert (by_token["owner"], by_cookie["owner"], by_service["owner"]) == ("ana", "bob", None)
    pretrained = {**SPEC, "recipe": {"kind": "pretrained", "dense_epochs": 1}}
    pruned = client.post("/api/runs", json=pretrained, headers=ana.token_headers()).json()
    dense = client.get(f"/api/runs/{pruned['parent_run_id']}", headers=bob.token_headers()).json()
    assert pruned["owner"] == dense["owner"] == "ana"  # the dense baseline is the submitter's too
    # Anyone signed in reads everything, owner included.
    listed = client.get("/api/runs", headers=bob.token_headers()).json()["runs"]
    assert [(run["id"], run["owner"]) for run in listed] == [
        (pruned["id"], "ana"),
        (dense["id"], "ana"),
        (by_service["id"], None),
        (by_cookie["id"], "bob"),
        (by_token["id"], "ana"),
    ]
    files = {"file": ("mine.keras", hostile.keras_archive(), "application/octet-stream")}
    upload = client.post("/api/models", files=files, headers=bob.cookie_headers())
    assert upload.status_code == 201 and upload.json()["owner"] == "bob"
    assert client.get(f"/api/uploads/{upload.json()['id']}", headers=ana.token_headers()).json()["owner"] == "bob"


def test_only_the_owner_or_an_admin_changes_a_run(team_client: tuple[TestClient, Team]) -> None:
    client, team = team_client
    ana, bob, carol = team["ana"], team["bob"], team["carol"]
    run_id = owned_run(ana.user_id, RunStatus.QUEUED)

    refused = client.patch(f"/api/runs/{run_id}", json={"tags": ["bob-was-here"]}, headers=bob.token_headers())
    assert refused.status_code == 403
    assert refused.json()["detail"] == f"run {run_id} belongs to ana: only its owner or an admin may change it"
    assert client.post(f"/api/runs/{run_id}/cancel", headers=bob.cookie_headers()).status_code == 403
    assert client.delete(f"/api/runs/{run_id}", headers=bob.token_headers()).status_code == 403
    # The same run however its id is spelled: FastAPI reads "+7", " 7" and "007" as 7, and so does the check.
    for spelling in (f"+{run_id}", f"%20{run_id}", f"00{run_id}"):
        assert client.delete(f"/api/runs/{spelling}", headers=bob.token_headers()).status_code == 403, spelling
    unchanged = client.get(f"/api/runs/{run_id}", headers=bob.token_headers()).json()
    assert unchanged["tags"] == [] and unchanged["status"] == "queued"

    tagged = client.patch(f"/api/runs/{run_id}", json={"tags": ["mine"], "note": "ana's"}, headers=ana.cookie_headers())
    assert tagged.status_code == 200 and tagged.json()["tags"] == ["mine"]
    admin = client.patch(f"/api/runs/{run_id}", json={"note": "checked"}, headers=carol.cookie_headers())
    assert admin.status_code == 200 and admin.json()["note"] == "checked"
    assert client.post(f"/api/runs/{run_id}/cancel", headers=ana.token_headers()).json()["status"] == "cancelled"
    assert client.delete(f"/api/runs/{run_id}", headers=carol.cookie_headers()).status_code == 204
    assert client.get(f"/api/runs/{run_id}", headers=ana.token_headers()).status_code == 404
    # A run that does not exist is the route's 404 for everyone, not a 403 that would hint at anything.
    assert client.delete(f"/api/runs/{run_id}", headers=bob.token_headers()).status_code == 404


def test_runs_from_before_there_were_users_are_for_admins(team_client: tuple[TestClient, Team]) -> None:
    client, team = team_client
    run_id = owned_run(None)
    refused = client.delete(f"/api/runs/{run_id}", headers=team["ana"].token_headers())
    assert refused.status_code == 403 and "has no owner" in refused.json()["detail"]
    service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    assert client.patch(f"/api/runs/{run_id}", json={"tags": ["old"]}, headers=service).status_code == 200
    assert client.delete(f"/api/runs/{run_id}", headers=team["carol"].token_headers()).status_code == 204


def test_while_open_runs_have_no_owner_and_anyone_changes_them(client: TestClient) -> None:
    run = client.post("/api/runs", json=SPEC).json()
    assert run["owner"] is None
    assert client.get("/api/auth/me").json() == {"name": None, "is_admin": False, "via": "open"}
    assert client.patch(f"/api/runs/{run['id']}", json={"tags": ["open"]}).status_code == 200
