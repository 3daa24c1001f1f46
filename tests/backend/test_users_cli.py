"""`prunelab users` and `prunelab tokens`, and the refusal to listen beyond loopback with nobody to sign in."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from prunelab.server.cli import main
from prunelab.server.db import session_scope
from prunelab.server.models import ApiToken, User
from prunelab.server.settings import get_settings


def prunelab(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, in a child process, with `password` on its standard input."""
    return subprocess.run(
        [sys.executable, "-m", "prunelab.server.cli", *args],
        input=password,
        capture_output=True,
        text=True,
        timeout=120,
    )


def in_process(capsys: pytest.CaptureFixture[str], *args: str, password: str = "") -> tuple[int, str, str]:
    """The same command in this process (quicker), with `password` on its standard input."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(password))
        code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_users_are_added_with_a_hashed_password_and_listed(settings, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    added = prunelab("users", "add", "ana", "--admin", "--password-stdin", password="a long passphrase\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout == "added ana (admin)\n"
    with session_scope() as session:
        user = session.scalars(select(User)).one()
        assert user.is_admin and user.password_hash.startswith("$argon2id$")
        assert "a long passphrase" not in user.password_hash
    code, out, _ = in_process(capsys, "users", "list")
    assert code == 0 and out.startswith("ana\tadmin\t0 tokens\tsince ")

    for args, password, message in [
        (("users", "add", "ana"), "another passphrase", "user 'ana' exists already"),
        (("users", "add", "Ana Smith"), "another passphrase", "is not a user name"),
        (("users", "add", "bob"), "short", "at least 8 characters"),
    ]:
        refused = prunelab(*args, "--password-stdin", password=password)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    with session_scope() as session:
        assert session.scalars(select(User.name)).all() == ["ana"]


def test_a_token_is_printed_once_works_and_is_revoked(settings, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from prunelab.server.app import create_app

    assert in_process(capsys, "users", "add", "ana", "--password-stdin", password="a long passphrase")[0] == 0
    created = prunelab("tokens", "create", "ana", "--label", "nightly sweep")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("plt_") and created.stdout.count("\n") == 1  # alone on stdout: TOKEN=$(...)
    assert "not shown again" in created.stderr
    code, listing, _ = in_process(capsys, "tokens", "list")
    assert code == 0 and "\tana\tnightly sweep\tlive\t" in listing and token.split("_")[-1] not in listing
    with session_scope() as session:
        token_id = session.scalars(select(ApiToken.id)).one()
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/auth/me", headers=bearer).json()["name"] == "ana"
        assert in_process(capsys, "tokens", "revoke", str(token_id))[1] == f"revoked token {token_id} of ana\n"
        assert client.get("/api/runs", headers=bearer).status_code == 401
    code, _, err = in_process(capsys, "tokens", "create", "nobody")
    assert code == 2 and "no user 'nobody'" in err


def test_a_new_password_from_the_command_line_ends_every_session(settings, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from prunelab.server.app import create_app

    assert in_process(capsys, "users", "add", "ana", "--password-stdin", password="a long passphrase")[0] == 0
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        login = {"name": "ana", "password": "a long passphrase"}
        assert client.post("/api/auth/login", json=login).status_code == 200
        assert client.get("/api/runs").status_code == 200
        code, out, _ = in_process(
            capsys, "users", "passwd", "ana", "--password-stdin", password="the next passphrase\n"
        )
        assert code == 0 and "sessions have ended" in out
        assert client.get("/api/runs").status_code == 401
        assert client.post("/api/auth/login", json={**login, "password": "the next passphrase"}).status_code == 200


def test_listening_beyond_loopback_needs_a_user(
    settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    from prunelab.server.users.exposure import is_loopback, open_exposure

    monkeypatch.setenv("PRUNELAB_HOST", "0.0.0.0")
    get_settings.cache_clear()
    refused = prunelab("api")  # refused before uvicorn starts: nothing listens
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0" in refused.stderr and "prunelab users add NAME" in refused.stderr
    code, _, err = in_process(capsys, "run")  # migrates, then refuses before starting the API or a worker
    assert code == 2 and "refusing to listen" in err
    assert open_exposure(get_settings().model_copy(update={"host": "127.0.0.1"})) is None
    assert open_exposure(get_settings().model_copy(update={"api_token": "t"})) is None  # scripts only
    assert open_exposure(get_settings().model_copy(update={"allow_open_access": True})) is None  # a container
    assert in_process(capsys, "users", "add", "ana", "--password-stdin", password="a long passphrase")[0] == 0
    assert open_exposure(get_settings()) is None
    assert [is_loopback(host) for host in ("127.0.0.1", "::1", "[::1]", "localhost", "127.3.4.5")] == [True] * 5
    assert [is_loopback(host) for host in ("0.0.0.0", "::", "10.0.0.5", "lab.example")] == [False] * 4
