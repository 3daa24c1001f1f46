"""Every route walked as every kind of caller, with the code each must get.

The table is generated from `app.routes`. Each (method, path template) is classified by the
rules in ACCESS_RULES (method + path pattern); a route that no rule classifies fails the test,
so a route added later cannot slip by unexamined. What each class means:

- public: answers everyone alike (health, Plotly's JavaScript, signing in and out);
- signed in: 401 for anonymous callers and wrong tokens, open to every user, token or cookie;
- owner: as signed in, but another user gets 403; the owner, an admin and the service token pass.

"Passes" means the route answers exactly as it answers the service token, from the same
state: each request gets a fresh run and upload owned by ana, so a DELETE by one caller
leaves nothing changed for the next. The table is written to test-output/auth-walk-<db>.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from prunelab.server.kit.route_table import route_templates
from tests.backend.team import SERVICE_TOKEN, Team, owned_run, owned_sweep, owned_upload, team_app

PUBLIC, SIGNED_IN, OWNER = "public", "signed in", "owner"
READ = frozenset({"GET"})
WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ACCESS_RULES: list[tuple[frozenset[str], str, str]] = [
    (READ, r"/api/health", PUBLIC),
    (READ, r"/vendor/[^/]+\.js", PUBLIC),
    (frozenset({"POST"}), r"/api/auth/(login|logout)", PUBLIC),
    # Anything that changes one run or one upload is its owner's, whatever the route.
    (WRITE, r"/api/runs/\{run_id\}(/.+)?", OWNER),
    (WRITE, r"/api/uploads/\{upload_id\}(/.+)?", OWNER),
    (WRITE, r"/api/sweeps/\{sweep_id\}(/.+)?", OWNER),
    # Creating things (and one's own password) is for anyone signed in.
    (
        frozenset({"POST"}),
        r"/api/(runs|runs/external|sweeps|models|datasets|schedules/preview|auth/password|imports/[a-z]+)",
        SIGNED_IN,
    ),
    # MLflow's tracking API names runs in the body, not the path: anyone signed in may call it, and the service
    # refuses writes to another user's run (PERMISSION_DENIED; tests/mlflow_api/test_api.py walks that).
    (frozenset({"POST"}), r"/api/2\.0/mlflow/.+", SIGNED_IN),
    # Anyone signed in reads everything, the API's own description included.
    (READ, r"/api/.+|/openapi\.json|/docs|/docs/oauth2-redirect|/redoc|/metrics", SIGNED_IN),
]

IDENTITIES = [
    "anonymous",
    "wrong token",
    "service token",
    "owner token",
    "owner cookie",
    "other token",
    "other cookie",
    "admin cookie",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


def classify(method: str, path: str) -> str:
    for methods, pattern, access in ACCESS_RULES:
        if method in methods and re.fullmatch(pattern, path):
            return access
    raise AssertionError(
        f"{method} {path} matches no rule in ACCESS_RULES: decide who may call it (public, signed in, owner) "
        "and add a rule, then make the access middleware agree"
    )


def expected_refusal(access: str, identity: str) -> int | None:
    """The code this caller must be refused with; None when it passes."""
    if access == PUBLIC:
        return None
    if identity in ("anonymous", "wrong token"):
        return 401
    if access == OWNER and identity.startswith("other"):
        return 403
    return None


def identity_headers(team: Team, wrong_token: str) -> dict[str, Callable[[], dict[str, str]]]:
    ana, bob, carol = team["ana"], team["bob"], team["carol"]
    return {
        "anonymous": dict,
        "wrong token": lambda: {"Authorization": f"Bearer {wrong_token}"},
        "service token": lambda: {"Authorization": f"Bearer {SERVICE_TOKEN}"},
        "owner token": ana.token_headers,
        "owner cookie": ana.cookie_headers,
        "other token": bob.token_headers,
        "other cookie": bob.cookie_headers,
        "admin cookie": carol.cookie_headers,
    }


def concrete(template: str, run_id: int, upload_id: int, sweep_id: int = 1) -> str:
    values = {"run_id": run_id, "upload_id": upload_id, "sweep_id": sweep_id, "layer_index": 0, "step": 1}
    return re.sub(r"\{([^}:]+)(:[^}]+)?\}", lambda m: str(values.get(m[1], 1)), template)


def walked(client: TestClient) -> Iterator[tuple[str, str]]:
    for path, methods in sorted(route_templates(client.app.routes)):  # type: ignore[attr-defined]
        for method in sorted(methods - {"HEAD"}):
            yield method, path


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """Status and the start of the body; an event stream is left after its status (it never ends by itself)."""
    with client.stream(method, path, headers=headers) as answer:
        if answer.headers.get("content-type", "").startswith("text/event-stream"):
            return answer.status_code, ""
        return answer.status_code, answer.read().decode(errors="replace")[:200]


@pytest.fixture
def team_client(settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Team]]:  # type: ignore[no-untyped-def]
    with team_app(monkeypatch) as client_and_team:
        yield client_and_team


def test_every_route_as_every_caller(team_client: tuple[TestClient, Team], database_url: str) -> None:
    client, team = team_client
    ana = team["ana"]
    wrong_token = ana.token[:-1] + ("B" if ana.token.endswith("A") else "A")  # ana's token id, a wrong secret
    headers_of = identity_headers(team, wrong_token)
    table: list[tuple[str, str, str, dict[str, int]]] = []
    mismatches = []
    for method, template in walked(client):
        access = classify(method, template)
        codes: dict[str, int] = {}
        details: dict[str, str] = {}
        for identity in IDENTITIES:
            path = concrete(template, owned_run(ana.user_id), owned_upload(ana.user_id), owned_sweep(ana.user_id))
            codes[identity], details[identity] = call(client, method, path, headers_of[identity]())
            client.cookies.clear()  # a sign-in answer sets a cookie; each caller brings its own
        baseline = codes["anonymous" if access == PUBLIC else "service token"]
        if baseline in (401, 403) or baseline >= 500:
            mismatches.append(f"{method} {template}: the baseline caller got {baseline}: {details}")
        for identity in IDENTITIES:
            want = expected_refusal(access, identity) or baseline
            if codes[identity] != want:
                mismatches.append(f"{method} {template} as {identity}: {codes[identity]}, expected {want}")
            if want == 403 and "only its owner or an admin" not in details[identity]:
                mismatches.append(f"{method} {template} as {identity}: 403 without its reason: {details[identity]}")
        table.append((method, template, access, codes))
    write_table(table, "postgresql" if database_url.startswith("postgresql") else "sqlite")
    assert mismatches == []

    walked_operations = {(method, template) for method, template, _, _ in table}
    schema = client.get("/openapi.json", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}).json()
    documented = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    assert documented <= walked_operations
    classes = {access for _, _, access, _ in table}
    assert classes == {PUBLIC, SIGNED_IN, OWNER}
    owner_only = {(method, template) for method, template, access, _ in table if access == OWNER}
    run = "/api/runs/{run_id}"
    assert {("PATCH", run), ("DELETE", run), ("POST", f"{run}/cancel")} <= owner_only
    sweep = "/api/sweeps/{sweep_id}"
    assert {("POST", f"{sweep}/cancel"), ("POST", f"{sweep}/retry")} <= owner_only
    # An external run's points, files and end are its owner's, like any write to a run.
    assert {("POST", f"{run}/points"), ("POST", f"{run}/finish"), ("PUT", f"{run}/artifacts/{{export_format}}")} <= (
        owner_only
    )


def write_table(table: list[tuple[str, str, str, dict[str, int]]], database: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    lines = [
        f"# Access walk ({database}): {len(table)} routes x {len(IDENTITIES)} callers",
        "",
        "| method | route | class | " + " | ".join(IDENTITIES) + " |",
        "|---|---|---|" + "---|" * len(IDENTITIES),
    ]
    for method, template, access, codes in table:
        lines.append(f"| {method} | `{template}` | {access} | " + " | ".join(str(codes[i]) for i in IDENTITIES) + " |")
    (OUTPUT / f"auth-walk-{database}.md").write_text("\n".join(lines) + "\n")


def test_an_unclassified_route_fails_the_walk() -> None:
    with pytest.raises(AssertionError, match="matches no rule"):
        classify("PUT", "/api/settings")
    with pytest.raises(AssertionError, match="matches no rule"):
        classify("POST", "/api/runs/batch")  # not a run id: someone must decide who may call it
    assert classify("POST", "/api/runs/{run_id}/metrics") == OWNER  # a new action on a run: the owner's by rule


def test_with_no_users_nothing_is_refused_on_loopback(client: TestClient) -> None:
    refused = []
    for method, template in walked(client):
        path = concrete(template, owned_run(None), owned_upload(None), owned_sweep(None))
        code, _ = call(client, method, path, {})
        if code in (401, 403):
            refused.append((method, template, code))
    assert refused == []
