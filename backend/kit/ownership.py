"""Writes to a run, an upload or a sweep are its owner's (or an admin's): the rule, by route template.

Any route whose path names a `{run_id}`, `{upload_id}` or `{sweep_id}` is covered for every method that
changes state, so a route added later (a new action on a run, say) is owner-only without a
line of its own. The id is read from the path as FastAPI will read it (lax int), so `+7`,
` 7` and `007` name run 7 here exactly as they do in the route.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute, compile_path

from prunelab.server.kit.identity import Principal
from prunelab.server.kit.origin import SAFE_METHODS
from prunelab.server.kit.route_table import route_templates
from prunelab.server.models import Run, Sweep, Upload, User

OWNED_PARAMS: dict[str, tuple[type[Run] | type[Upload] | type[Sweep], str]] = {
    "run_id": (Run, "run"),
    "upload_id": (Upload, "upload"),
    "sweep_id": (Sweep, "sweep"),
}
_PATH_INT = TypeAdapter(int)


@dataclass(frozen=True)
class OwnedRoute:
    pattern: re.Pattern[str]
    methods: frozenset[str]
    param: str


def owned_routes(routes: Iterable[BaseRoute]) -> list[OwnedRoute]:
    owned = []
    for path, methods in route_templates(routes):
        changing = methods - SAFE_METHODS
        for param in OWNED_PARAMS:
            if changing and (f"{{{param}}}" in path or f"{{{param}:" in path):
                owned.append(OwnedRoute(compile_path(path)[0], frozenset(changing), param))
    return owned


def targets(owned: Iterable[OwnedRoute], method: str, path: str) -> list[tuple[str, int]]:
    """(param, id) of every owned thing a request to `path` may change; ids that do not parse are the route's 422."""
    found = []
    for route in owned:
        if method not in route.methods:
            continue
        match = route.pattern.match(path)
        if match is None:
            continue
        try:
            found.append((route.param, _PATH_INT.validate_python(match[route.param])))
        except ValidationError:
            continue
    return found


def refusal(session: Session, principal: Principal, param: str, resource_id: int) -> str | None:
    """Why `principal` may not change this run or upload; None when it may (or when it does not exist: 404 follows)."""
    if principal.manages_everything:
        return None
    model, noun = OWNED_PARAMS[param]
    row = session.execute(
        select(model.owner_id, User.name).outerjoin(User, User.id == model.owner_id).where(model.id == resource_id)
    ).first()
    if row is None or row.owner_id == principal.user_id:
        return None
    owner = f"belongs to {row.name}" if row.name else "has no owner (it was submitted before PruneLab had users)"
    return f"{noun} {resource_id} {owner}: only its owner or an admin may change it"
