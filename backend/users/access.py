"""Who may do what, as one pure ASGI middleware, so a route added later is covered without a dependency.

For every API path (`/api/...` and the API docs) but the public ones:
1. identify: `Authorization: Bearer <token>` (the service token PRUNELAB_API_TOKEN or a user's
   API token; GET and HEAD may pass `?token=` instead, for download links) or the dashboard's
   session cookie; the principal goes into `scope["state"]` for routes that record an owner;
2. nobody identified: open while PruneLab has no users and no service token (the default, on
   loopback), else 401;
3. a state-changing request made with the cookie must come from PruneLab's own pages (CSRF);
4. a state-changing request to a route naming a run or an upload is for its owner or an admin.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import anyio.to_thread
from sqlalchemy.orm import Session
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from prunelab.server.db import session_scope
from prunelab.server.kit import identity, origin, ownership
from prunelab.server.kit.cookies import COOKIE_NAME, session_cookie
from prunelab.server.kit.identity import Principal
from prunelab.server.settings import Settings
from prunelab.server.users import service as users

MLFLOW_PREFIX = "/api/2.0/mlflow/"
MLFLOW_CODES = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
PUBLIC_API_PATHS = frozenset({"/api/health", "/api/auth/login", "/api/auth/logout"})
# FastAPI's own routes describe the API, and Prometheus' `/metrics` reads it: they are guarded like it.
GUARDED_DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/metrics"})


def route_path(scope: Scope) -> str:
    """The path the router matches: without the root path a proxy may have put in front."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/") or path in GUARDED_DOCS_PATHS


@dataclass(frozen=True)
class Credentials:
    bearer: str | None = None
    cookie: str | None = None


def presented_credentials(scope: Scope) -> Credentials:
    headers = Headers(scope=scope)
    bearer = None
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        bearer = value.strip()
    elif scope.get("method") in ("GET", "HEAD"):
        # A browser's download link and EventSource cannot set headers; URLs end up in logs, so prefer the header.
        bearer = next((v for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1")) if k == "token"), None)
    cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE_NAME)
    return Credentials(bearer or None, cookie or None)


@dataclass
class Refusal:
    status: int
    detail: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


UNAUTHENTICATED = Refusal(
    401,
    "sign in, or send an API token as Authorization: Bearer <token> (prunelab tokens create NAME makes one)",
    [(b"www-authenticate", b"Bearer")],
)
WRONG_TOKEN = Refusal(
    401, "missing or wrong API token (Authorization: Bearer <token>)", [(b"www-authenticate", b"Bearer")]
)
CROSS_SITE = Refusal(
    403,
    "a request that changes something with the session cookie must come from PruneLab's own pages "
    "(Origin or Sec-Fetch-Site); scripts use an API token instead",
)


class AccessControl:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.service_token = settings.api_token.encode()
        self.trusted_origins = frozenset(settings.cors_origin_list)
        self.settings = settings
        # Once a user exists, PruneLab stays closed for the life of this process (users are never all removed).
        self.users_exist = False
        self.owned: list[ownership.OwnedRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if not is_api_path(path) or path == "/api/health":
            await self.app(scope, receive, send)
            return
        if self.owned is None:
            self.owned = ownership.owned_routes(scope["app"].routes)
        credentials = presented_credentials(scope)
        outcome = await anyio.to_thread.run_sync(self._decide, scope, path, credentials)
        if isinstance(outcome, Refusal):
            await refuse(scope, send, outcome)
            return
        identity.store(scope, outcome)
        await self.app(scope, receive, send)

    def _decide(self, scope: Scope, path: str, credentials: Credentials) -> Principal | Refusal | None:
        """The principal to let in (None: anonymous, on a public path), or why not. Runs in a worker thread."""
        with session_scope() as session:
            principal = self._identify(session, credentials)
            if principal is None and not self._closed(session):
                principal = identity.OPEN
            if path in PUBLIC_API_PATHS:
                seen = origin.origin_header(scope)
                if path == "/api/auth/login" and seen and not origin.origin_trusted(scope, seen, self.trusted_origins):
                    return CROSS_SITE  # login CSRF: signing a victim in as the attacker
                return principal
            if principal is None:
                return WRONG_TOKEN if credentials.bearer else UNAUTHENTICATED
            if not origin.changes_state(scope):
                return principal
            if principal.via == "session" and not origin.from_own_pages(scope, self.trusted_origins):
                return CROSS_SITE
            for param, resource_id in ownership.targets(self.owned or [], scope["method"], path):
                reason = ownership.refusal(session, principal, param, resource_id)
                if reason is not None:
                    return Refusal(403, reason)
            return principal

    def _closed(self, session: Session) -> bool:
        if self.service_token or self.users_exist:
            return True
        self.users_exist = users.has_users(session)
        return self.users_exist

    def _identify(self, session: Session, credentials: Credentials) -> Principal | None:
        if credentials.bearer is not None:
            if self.service_token and hmac.compare_digest(credentials.bearer.encode(), self.service_token):
                return identity.SERVICE
            user = users.user_for_token(session, credentials.bearer)
            if user is None:
                return None
            return Principal(via="token", user_id=user.id, name=user.name, is_admin=user.is_admin)
        # The signing key is read (or made, in `home`) only when a cookie comes: open mode writes nothing.
        session_value = session_cookie(self.settings).value(credentials.cookie) if credentials.cookie else None
        if session_value is None:
            return None
        row = users.find_session(session, session_value)
        if row is None:
            return None
        return Principal(
            via="session", user_id=row.user.id, name=row.user.name, is_admin=row.user.is_admin, session_id=row.id
        )


async def refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    content: dict[str, str] = {"detail": refusal.detail}
    if route_path(scope).startswith(MLFLOW_PREFIX):
        # MLflow's clients read MLflow's error shape (their MLFLOW_TRACKING_TOKEN is the bearer token).
        content.update(error_code=MLFLOW_CODES.get(refusal.status, "BAD_REQUEST"), message=refusal.detail)
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers + refusal.headers})
    await send({"type": "http.response.body", "body": body})
