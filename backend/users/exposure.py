"""Safe defaults: an open PruneLab (no users, no service token) only listens on loopback."""

from __future__ import annotations

import ipaddress

from sqlalchemy.exc import OperationalError, ProgrammingError

from prunelab.server.db import session_scope
from prunelab.server.settings import Settings
from prunelab.server.users.service import has_users


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def open_exposure(settings: Settings) -> str | None:
    """Why PruneLab must not start on `settings.host`; None when it may."""
    if is_loopback(settings.host) or settings.api_token or settings.allow_open_access:
        return None
    try:
        with session_scope() as session:
            if has_users(session):
                return None
    except (OperationalError, ProgrammingError):
        return "the database has no schema yet: run `prunelab migrate` first"
    return (
        f"refusing to listen on {settings.host}: PruneLab has no users, so anyone who can reach "
        f"{settings.host}:{settings.port} could run and delete anything. Add a user first:\n"
        "    prunelab users add NAME            (prompts for a password; --admin to manage every run)\n"
        "then start it again (scripts: prunelab tokens create NAME). Or listen on 127.0.0.1 only "
        "(PRUNELAB_HOST=127.0.0.1, the default)."
    )
