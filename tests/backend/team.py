"""A team in the database for access tests: users, their tokens, signed session cookies, owned runs and uploads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import pytest
from fastapi.testclient import TestClient

from prunelab.core.plans import resolve_plan
from prunelab.core.specs import RunSpec
from prunelab.server.db import session_scope
from prunelab.server.kit.cookies import COOKIE_NAME, session_cookie
from prunelab.server.models import Run, RunStatus, Sweep, SweepPoint, Upload, User
from prunelab.server.settings import get_settings
from prunelab.server.users import service
from prunelab.server.users.passwords import hash_password
from tests.backend.seed import SPEC

PASSWORD = "correct horse battery"
SERVICE_TOKEN = "service-token-for-scripts"
ORIGIN = "http://testserver"  # TestClient's base URL: the dashboard's own origin


@dataclass
class Member:
    name: str
    user_id: int
    token: str
    is_admin: bool = False

    def cookie(self) -> str:
        """A fresh signed session cookie (each request may end its session: logout)."""
        settings = get_settings()
        with session_scope() as session:
            user = service.get_user(session, self.name)
            value = service.start_session(session, user, settings.session_max_age_s)
        return session_cookie(settings).signer.sign(value).decode()

    def cookie_headers(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE_NAME}={self.cookie()}", "Origin": ORIGIN}

    def token_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Team:
    members: dict[str, Member] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Member:
        return self.members[name]


@cache
def password_hash() -> str:
    """One real argon2id hash of PASSWORD for every member: hashing costs most of a second by design."""
    return hash_password(PASSWORD)


def make_team(*names: str, admins: tuple[str, ...] = ()) -> Team:
    team = Team()
    with session_scope() as session:
        for name in names:
            user = User(name=service.check_name(name), password_hash=password_hash(), is_admin=name in admins)
            session.add(user)
            session.flush()
            _, token = service.create_token(session, user, "tests")
            team.members[name] = Member(name, user.id, token, user.is_admin)
    return team


def owned_run(owner_id: int | None, status: RunStatus = RunStatus.SUCCEEDED) -> int:
    """A run row owned by `owner_id`, written straight into the database (no queue)."""
    spec = RunSpec.model_validate(SPEC)
    with session_scope() as session:
        run = Run(
            name="owned",
            status=status,
            spec=spec.model_dump(mode="json"),
            plan=resolve_plan(spec).model_dump(mode="json"),
            owner_id=owner_id,
        )
        session.add(run)
        session.flush()
        return run.id


def owned_sweep(owner_id: int | None) -> int:
    """A sweep of one queued point owned by `owner_id`, written straight into the database (no queue)."""
    run_id = owned_run(owner_id, RunStatus.QUEUED)
    with session_scope() as session:
        sweep = Sweep(name="owned", spec={"base": SPEC}, point_count=1, owner_id=owner_id)
        session.add(sweep)
        session.flush()
        session.add(SweepPoint(sweep_id=sweep.id, index=0, values={}, seed=0, run_id=run_id))
        return sweep.id


def owned_upload(owner_id: int | None) -> int:
    with session_scope() as session:
        upload = Upload(
            kind="model",
            original_filename="model.keras",
            storage_key="uploads/none",
            size_bytes=1,
            sha256="0" * 64,
            meta={},
            owner_id=owner_id,
        )
        session.add(upload)
        session.flush()
        return upload.id


@contextmanager
def team_app(
    monkeypatch: pytest.MonkeyPatch, base_url: str = ORIGIN, **environment: str
) -> Iterator[tuple[TestClient, Team]]:
    """An app with users ana, bob and carol (admin), and the service token; PRUNELAB_<KEY> from `environment`."""
    from prunelab.server.app import create_app

    monkeypatch.setenv("PRUNELAB_API_TOKEN", SERVICE_TOKEN)
    for key, value in environment.items():
        monkeypatch.setenv(f"PRUNELAB_{key.upper()}", value)
    get_settings.cache_clear()
    team = make_team("ana", "bob", "carol", admins=("carol",))
    with TestClient(create_app(), base_url=base_url) as client:
        yield client, team
    get_settings.cache_clear()
