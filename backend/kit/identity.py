"""Who is asking: the principal the access middleware (backend/users/access.py) found for a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from starlette.types import Scope

Via = Literal["open", "service", "token", "session"]


@dataclass(frozen=True)
class Principal:
    """`open`: no users and no service token (loopback only); `service`: PRUNELAB_API_TOKEN;
    `token` / `session`: a user, by API token or by the dashboard's session cookie."""

    via: Via
    user_id: int | None = None
    name: str | None = None
    is_admin: bool = False
    session_id: int | None = None

    @property
    def manages_everything(self) -> bool:
        """Cancel, delete, tag and annotate any run: admins, the service token, and everyone while PruneLab is open."""
        return self.via in ("open", "service") or self.is_admin


OPEN = Principal(via="open")
SERVICE = Principal(via="service", is_admin=True)
STATE_KEY = "principal"


def store(scope: Scope, principal: Principal | None) -> None:
    scope.setdefault("state", {})[STATE_KEY] = principal


def current_principal(request: Request) -> Principal:
    principal = request.scope.get("state", {}).get(STATE_KEY)
    if principal is None:
        # Only reachable if a route reads it on a path the middleware lets through anonymously: fail closed.
        raise RuntimeError("no principal: the access middleware did not identify this request")
    return principal


def optional_principal(request: Request) -> Principal | None:
    return request.scope.get("state", {}).get(STATE_KEY)


PrincipalDep = Annotated[Principal, Depends(current_principal)]
