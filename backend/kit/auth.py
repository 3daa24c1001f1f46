"""API token: with `PRUNELAB_API_TOKEN` set, every route but /api/health and the static frontend needs it.

A pure ASGI middleware, so a route added later is covered without remembering a
dependency. The token travels as `Authorization: Bearer <token>`; GET requests may
also pass `?token=<token>`, because a browser's download link and EventSource cannot
set headers (such URLs can end up in logs: prefer the header wherever possible).
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_API_PATHS = frozenset({"/api/health"})
# FastAPI's own routes describe the API; they are guarded like it.
GUARDED_DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def requires_token(path: str) -> bool:
    """Everything under /api (but health) and the API docs; not the static frontend."""
    if path in PUBLIC_API_PATHS:
        return False
    return path == "/api" or path.startswith("/api/") or path in GUARDED_DOCS_PATHS


def presented_token(scope: Scope) -> str | None:
    headers = dict(scope["headers"])
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if scope.get("method") in ("GET", "HEAD"):
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query):
            if name == "token":
                return value
    return None


class TokenAuth:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not requires_token(scope["path"]):
            await self.app(scope, receive, send)
            return
        presented = presented_token(scope)
        if presented is not None and hmac.compare_digest(presented.encode(), self.expected):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": "missing or wrong API token (Authorization: Bearer <token>)"}).encode()
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
