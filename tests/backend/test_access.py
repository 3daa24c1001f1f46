"""Who gets in: the API token on every route, CORS off unless configured, bodies over the limit refused early.

Users, sessions and owners are walked route by route in test_access_walk.py.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.routing import Mount, Route

from prunelab.server.kit.limits import BodySizeLimit
from prunelab.server.settings import Settings

TOKEN = "s3cret-token"


@pytest.fixture
def guarded_client(settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from prunelab.server.app import create_app
    from prunelab.server.settings import get_settings

    monkeypatch.setenv("PRUNELAB_API_TOKEN", TOKEN)
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        yield client
    get_settings.cache_clear()


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def walk_routes(routes: list[object]) -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every route; FastAPI keeps included routers as one entry holding their routes."""
    for route in routes:
        if isinstance(route, Mount):
            continue  # the static frontend
        if hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                yield context.path, set(context.methods or {"GET"})
            continue
        assert isinstance(route, APIRoute | Route), route
        yield route.path, set(route.methods or {"GET"})


# Signing in and out needs no credentials; an empty body is a 422, a sign-out without a session a 204.
SIGN_IN_ROUTES = {("POST", "/api/auth/login"): 422, ("POST", "/api/auth/logout"): 204}


def test_every_route_but_health_and_static_files_needs_the_token(guarded_client: TestClient) -> None:
    checked = []
    for route_path, methods in walk_routes(guarded_client.app.routes):  # type: ignore[attr-defined]
        for method in sorted(methods - {"HEAD"}):
            path = concrete(route_path)
            answer = guarded_client.request(method, path)
            if route_path in ("/api/health", "/vendor/plotly.min.js"):
                assert answer.status_code == 200, (method, path)
                continue
            if (method, route_path) in SIGN_IN_ROUTES:
                assert answer.status_code == SIGN_IN_ROUTES[method, route_path], (method, path)
                continue
            checked.append((method, route_path))
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert answer.headers["www-authenticate"] == "Bearer"
            wrong = guarded_client.request(method, path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401, (method, path)
    assert ("POST", "/api/runs") in checked and ("POST", "/api/models") in checked
    assert ("GET", "/openapi.json") in checked
    schema = guarded_client.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    documented = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    assert documented - {("GET", "/api/health"), *SIGN_IN_ROUTES} <= set(checked)  # every documented operation


def test_the_token_lets_requests_in(guarded_client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded_client.get("/api/runs", headers=headers).status_code == 200
    assert guarded_client.get("/api/runs", params={"token": TOKEN}).status_code == 200  # downloads, EventSource
    # A query token is for GETs only: a form or script cannot post with it.
    assert guarded_client.post("/api/runs", params={"token": TOKEN}, json={}).status_code == 401
    assert guarded_client.get("/").status_code == 200  # the static frontend


def test_without_a_token_everything_is_open_on_loopback(client: TestClient) -> None:
    assert client.get("/api/runs").status_code == 200
    assert Settings().host == "127.0.0.1"


def test_cors_is_off_unless_origins_are_configured(client: TestClient) -> None:
    answer = client.options(
        "/api/runs", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in answer.headers
    assert (
        "access-control-allow-origin" not in client.get("/api/runs", headers={"Origin": "https://evil.example"}).headers
    )


def test_configured_cors_allows_only_those_origins(settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from prunelab.server.app import create_app
    from prunelab.server.settings import get_settings

    monkeypatch.setenv("PRUNELAB_CORS_ORIGINS", "https://lab.example, http://localhost:5173")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        good = client.get("/api/runs", headers={"Origin": "https://lab.example"})
        bad = client.get("/api/runs", headers={"Origin": "https://evil.example"})
    assert good.headers["access-control-allow-origin"] == "https://lab.example"
    assert "access-control-allow-credentials" not in good.headers
    assert "access-control-allow-origin" not in bad.headers


def test_cors_allows_exactly_the_methods_the_api_has(settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from prunelab.server.app import create_app
    from prunelab.server.settings import get_settings

    monkeypatch.setenv("PRUNELAB_CORS_ORIGINS", "https://lab.example")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        used = {method for _, methods in walk_routes(client.app.routes) for method in methods} - {"HEAD"}  # type: ignore[attr-defined]

        def preflight(method: str) -> int:
            headers = {"Origin": "https://lab.example", "Access-Control-Request-Method": method}
            return client.options("/api/runs/1", headers=headers).status_code

        assert {"GET", "POST", "PATCH", "DELETE"} <= used  # PATCH sets tags and notes
        assert {method: preflight(method) for method in sorted(used)} == dict.fromkeys(sorted(used), 200)
        unused = sorted({"PUT", "TRACE", "CONNECT"} - used)
        assert unused and {method: preflight(method) for method in unused} == dict.fromkeys(unused, 400)


def test_wildcard_cors_with_credentials_is_refused() -> None:
    with pytest.raises(ValidationError, match="cannot be combined"):
        Settings(cors_origins="*", cors_allow_credentials=True)


class RecordingApp:
    """The app behind the limit: records whether it ran and how many body bytes reached it."""

    def __init__(self) -> None:
        self.called = False
        self.received = 0

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        self.called = True
        while True:
            message = await receive()
            self.received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})


def call(limit: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[RecordingApp, list[dict]]:  # type: ignore[type-arg]
    app = RecordingApp()
    sent: list[dict] = []  # type: ignore[type-arg]
    pending = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]

    async def receive() -> dict:  # type: ignore[type-arg]
        return pending.pop(0)

    async def send(message: dict) -> None:  # type: ignore[type-arg]
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/models", "headers": headers}
    asyncio.run(BodySizeLimit(app, max_bytes=limit)(scope, receive, send))
    return app, sent


def test_a_declared_oversized_body_is_refused_before_the_app_reads_a_byte() -> None:
    app, sent = call(1000, [(b"content-length", b"5000")], [b"x" * 5000])
    assert sent[0]["status"] == 413
    assert not app.called and app.received == 0


def test_a_chunked_oversized_body_is_cut_off_at_the_limit() -> None:
    app, sent = call(1000, [(b"transfer-encoding", b"chunked")], [b"x" * 600] * 10)
    statuses = [message["status"] for message in sent if message["type"] == "http.response.start"]
    assert statuses == [413]  # the app's own answer to the cut-off body is never sent
    assert app.received <= 1000


def test_a_body_within_the_limit_reaches_the_app() -> None:
    app, sent = call(1000, [(b"content-length", b"600")], [b"x" * 600])
    assert app.received == 600 and sent[0]["status"] == 400


def test_oversized_upload_gets_413_and_nothing_is_written(settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from prunelab.server.app import create_app
    from prunelab.server.settings import get_settings

    monkeypatch.setenv("PRUNELAB_MAX_UPLOAD_BYTES", str(64 * 1024))
    get_settings.cache_clear()
    body = b"x" * (1 << 20)
    with TestClient(create_app()) as client:
        declared = client.post("/api/models", files={"file": ("big.keras", body)})

        def stream() -> Iterator[bytes]:
            for start in range(0, len(body), 8192):
                yield body[start : start + 8192]

        chunked = client.post(
            "/api/models", content=stream(), headers={"content-type": "multipart/form-data; boundary=x"}
        )
    assert declared.status_code == 413 and "limit" in declared.json()["detail"]
    assert chunked.status_code == 413
    assert (
        not any(path.is_file() for path in settings.artifact_dir.rglob("*")) if settings.artifact_dir.exists() else True
    )
