"""Signing in to the dashboard: the session cookie, its end, CSRF, tokens, and throttled guessing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import select, update

from prunelab.server.db import session_scope
from prunelab.server.kit.cookies import COOKIE_NAME, SALT, signing_key
from prunelab.server.models import ApiToken, User, UserSession, utcnow
from prunelab.server.settings import get_settings
from tests.backend.team import ORIGIN, PASSWORD, Team, team_app

SAME_ORIGIN = {"Origin": ORIGIN}


@pytest.fixture
def team_client(settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Team]]:  # type: ignore[no-untyped-def]
    with team_app(monkeypatch) as client_and_team:
        yield client_and_team


def sign_in(client: TestClient, name: str, password: str = PASSWORD, **headers: str):  # type: ignore[no-untyped-def]
    return client.post("/api/auth/login", json={"name": name, "password": password}, headers=headers)


def cookie_header(value: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE_NAME}={value}"}


def set_cookie(answer) -> SimpleCookie:  # type: ignore[no-untyped-def]
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(answer.headers["set-cookie"])
    return cookie


def test_signing_in_sets_a_strict_http_only_cookie_that_lets_the_dashboard_in(
    team_client: tuple[TestClient, Team],
) -> None:
    client, _ = team_client
    assert client.get("/api/runs").status_code == 401
    answer = sign_in(client, "ana")
    assert answer.status_code == 200 and answer.json() == {"name": "ana", "is_admin": False, "via": "session"}
    morsel = set_cookie(answer)[COOKIE_NAME]
    assert morsel["httponly"] and morsel["samesite"] == "strict" and morsel["path"] == "/"
    assert int(morsel["max-age"]) == get_settings().session_max_age_s
    assert not morsel["secure"]  # plain http on loopback: a Secure cookie would never come back
    # The browser sends it on fetches, SSE and downloads alike.
    assert client.get("/api/runs").status_code == 200
    assert client.get("/openapi.json").status_code == 200  # the new-run form reads it
    assert client.get("/api/auth/me").json() == {"name": "ana", "is_admin": False, "via": "session"}
    with client.stream("GET", "/api/runs/events") as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")


def test_the_cookie_is_secure_over_https(settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    with team_app(monkeypatch, base_url="https://lab.example") as (client, _):
        morsel = set_cookie(sign_in(client, "ana"))[COOKIE_NAME]
        assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "strict"
        assert client.get("/api/auth/me").json()["name"] == "ana"


def test_signing_out_ends_the_session_on_the_server(team_client: tuple[TestClient, Team]) -> None:
    client, _ = team_client
    sign_in(client, "ana")
    kept = client.cookies[COOKIE_NAME]
    answer = client.post("/api/auth/logout", headers=SAME_ORIGIN)
    assert answer.status_code == 204
    assert set_cookie(answer)[COOKIE_NAME]["max-age"] == "0"  # the browser forgets it
    client.cookies.clear()
    with session_scope() as session:
        assert session.scalars(select(UserSession)).all() == []
    # A copy kept by whoever stole it is worth nothing now.
    assert client.get("/api/runs", headers=cookie_header(kept)).status_code == 401


def test_a_forged_an_expired_or_an_old_cookie_is_refused(team_client: tuple[TestClient, Team]) -> None:
    client, team = team_client
    settings = get_settings()
    ana = team["ana"]
    value = ana.cookie()
    assert client.get("/api/runs", headers=cookie_header(value)).status_code == 200
    session_part = TimestampSigner(signing_key(settings), salt=SALT).unsign(value).decode()
    forged = TimestampSigner("not the server's key", salt=SALT).sign(session_part).decode()
    assert client.get("/api/runs", headers=cookie_header(forged)).status_code == 401
    assert client.get("/api/runs", headers=cookie_header(session_part)).status_code == 401  # unsigned

    class SignedLongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - settings.session_max_age_s - 60

    old = SignedLongAgo(signing_key(settings), salt=SALT).sign(session_part).decode()
    assert client.get("/api/runs", headers=cookie_header(old)).status_code == 401
    with session_scope() as session:
        session.execute(update(UserSession).values(expires_at=utcnow()))
    assert client.get("/api/runs", headers=cookie_header(value)).status_code == 401  # the row expired


def test_changing_the_password_signs_the_user_out_everywhere_else(
    team_client: tuple[TestClient, Team],
) -> None:
    client, team = team_client
    elsewhere = team["ana"].cookie()  # another browser
    sign_in(client, "ana")
    weak = client.post(
        "/api/auth/password", json={"current_password": PASSWORD, "new_password": "short"}, headers=SAME_ORIGIN
    )
    assert weak.status_code == 422 and weak.json()["detail"][0]["field"] == "new_password"
    wrong = client.post(
        "/api/auth/password",
        json={"current_password": "not it at all", "new_password": "a new passphrase"},
        headers=SAME_ORIGIN,
    )
    assert wrong.status_code == 403
    answer = client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "a new passphrase"},
        headers=SAME_ORIGIN,
    )
    assert answer.status_code == 204
    assert client.get("/api/auth/me").json()["name"] == "ana"  # this browser got a new session
    client.cookies.clear()
    assert client.get("/api/runs", headers=cookie_header(elsewhere)).status_code == 401
    assert sign_in(client, "ana").status_code == 401
    assert sign_in(client, "ana", "a new passphrase").status_code == 200
    assert client.get("/api/runs", headers=team["ana"].token_headers()).status_code == 200  # tokens are kept


def test_state_changes_with_the_cookie_must_come_from_prunelab_pages(settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    with team_app(monkeypatch, cors_origins="https://trusted.example") as (client, team):
        ana = team["ana"]
        cookie = {"Cookie": f"{COOKIE_NAME}={ana.cookie()}"}
        spec = {"dataset": "digits", "epochs": 1, "schedule": {"kind": "constant", "frequency": 10}}

        def submit(**headers: str) -> int:
            return client.post("/api/runs", json=spec, headers={**cookie, **headers}).status_code

        assert submit() == 403  # neither Origin nor Sec-Fetch-Site: not a browser on our page
        assert submit(Origin="https://evil.example") == 403
        assert submit(**{"Sec-Fetch-Site": "cross-site"}) == 403
        refused = client.post("/api/runs", json=spec, headers={**cookie, "Origin": "https://evil.example"})
        assert "own pages" in refused.json()["detail"]
        assert submit(Origin=ORIGIN) == 201
        assert submit(**{"Sec-Fetch-Site": "same-origin"}) == 201
        assert submit(Origin="https://trusted.example") == 201  # PRUNELAB_CORS_ORIGINS is trusted
        # Reading needs no Origin; a token is not ambient, so a script's token write needs none either.
        assert client.get("/api/runs", headers=cookie).status_code == 200
        token_write = client.post(
            "/api/runs", json=spec, headers={**ana.token_headers(), "Origin": "https://evil.example"}
        )
        assert token_write.status_code == 201
        # Login CSRF: another site cannot sign a visitor in as someone else.
        assert sign_in(client, "bob", Origin="https://evil.example").status_code == 403


def test_user_tokens_are_stored_hashed_and_revocable(team_client: tuple[TestClient, Team]) -> None:
    client, team = team_client
    ana = team["ana"]
    assert client.get("/api/auth/me", headers=ana.token_headers()).json() == {
        "name": "ana",
        "is_admin": False,
        "via": "token",
    }
    assert client.get("/api/runs", params={"token": ana.token}).status_code == 200  # GET links may carry it
    assert client.post("/api/runs", params={"token": ana.token}, json={}).status_code == 401
    with session_scope() as session:
        token = session.scalars(select(ApiToken).where(ApiToken.user_id == ana.user_id)).one()
        user = session.scalars(select(User).where(User.name == "ana")).one()
        stored = (token.secret_sha256, token.label, user.password_hash)
        token.revoked_at = utcnow()
    assert all(ana.token.split("_")[-1] not in field for field in stored)
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert client.get("/api/runs", headers=ana.token_headers()).status_code == 401
    assert client.get("/api/runs", headers=team["bob"].token_headers()).status_code == 200


def test_repeated_failed_sign_ins_slow_down(team_client: tuple[TestClient, Team]) -> None:
    client, _ = team_client
    answers = [sign_in(client, "ana", f"guess {attempt}") for attempt in range(5)]
    assert [answer.status_code for answer in answers] == [401] * 5
    assert answers[0].json()["detail"] == "wrong user name or password"
    # Past the free attempts even the right password waits: a guesser cannot tell a hit from a miss.
    blocked = sign_in(client, "ana")
    assert blocked.status_code == 429
    retry_after = int(blocked.headers["retry-after"])
    assert 0 < retry_after <= 60 and f"try again in {retry_after} s" in blocked.json()["detail"]
    assert sign_in(client, "bob").status_code == 429  # the same address, another name
    assert "set-cookie" not in blocked.headers
    # From elsewhere (the same app, another client address), guessing ana's password is capped per name too.
    other = TestClient(client.app, base_url=ORIGIN, client=("203.0.113.7", 5000))
    assert sign_in(other, "bob").status_code == 200  # another name from another address is untouched
    other.cookies.clear()
    more = [sign_in(other, "ana", f"guess {attempt}").status_code for attempt in range(6)]
    assert more == [401] * 5 + [429]  # 5 + 5 misses: the name's 10 a minute
    # An unknown name is counted the same way as a wrong password (no hint that it does not exist).
    unknown = sign_in(client, "nobody")
    assert unknown.status_code == 429
