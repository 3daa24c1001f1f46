"""CSRF defence for requests authenticated by the session cookie, on top of SameSite=Strict.

A state-changing request that carries the cookie must come from PruneLab's own pages: its
`Origin` names this host (or an origin PRUNELAB_CORS_ORIGINS trusts), or, without an `Origin`,
the browser's `Sec-Fetch-Site` says `same-origin`. Browsers send one of them on every such
request; a request with neither is refused (a script should use a token, not a cookie).
OWASP's "verifying origin with standard headers" check.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import Scope

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def changes_state(scope: Scope) -> bool:
    return scope.get("method", "GET") not in SAFE_METHODS


def origin_header(scope: Scope) -> str | None:
    origin = Headers(scope=scope).get("origin")
    return None if origin in (None, "null") else origin


def from_own_pages(scope: Scope, trusted_origins: frozenset[str]) -> bool:
    headers = Headers(scope=scope)
    origin = origin_header(scope)
    if origin is None:
        return headers.get("sec-fetch-site") == "same-origin"
    return origin_trusted(scope, origin, trusted_origins)


def origin_trusted(scope: Scope, origin: str, trusted_origins: frozenset[str]) -> bool:
    """The origin is this server as the browser addressed it (its Host), or one the operator trusts.

    Host and port are compared, not the scheme: behind a TLS proxy the app may see http while the
    browser says https, and whoever serves plain http on this very host and port is this server.
    """
    if origin.rstrip("/") in trusted_origins:
        return True
    host = Headers(scope=scope).get("host")
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()
