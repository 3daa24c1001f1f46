"""The dashboard's session cookie: HttpOnly, SameSite=Strict, Secure over HTTPS, signed and time-limited.

The value is `<session id>_<secret>` signed with itsdangerous (timestamped, so an old cookie is
refused before any lookup); the session row decides whether it is still live (logout and a
password change delete rows).
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from itsdangerous import BadSignature, TimestampSigner
from starlette.responses import Response

from prunelab.server.settings import Settings

COOKIE_NAME = "prunelab_session"
SALT = "prunelab.session"


def signing_key(settings: Settings) -> str:
    """PRUNELAB_SECRET_KEY, else a random key made once and kept in `home`/secret_key, readable by its owner only."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.home) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()  # made by an earlier start, or by a process starting beside this one
    with os.fdopen(descriptor, "w") as key_file:
        key_file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class SessionCookie:
    def __init__(self, key: str, max_age_s: int) -> None:
        self.signer = TimestampSigner(key, salt=SALT)
        self.max_age_s = max_age_s

    def value(self, cookie: str | None) -> str | None:
        """The session value of a cookie whose signature holds and which is younger than the maximum age."""
        if not cookie:
            return None
        try:
            return self.signer.unsign(cookie, max_age=self.max_age_s).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    def set(self, response: Response, session_value: str, https: bool) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self.signer.sign(session_value).decode(),
            max_age=self.max_age_s,
            path="/",
            secure=https,
            httponly=True,
            samesite="strict",
        )

    def clear(self, response: Response, https: bool) -> None:
        response.delete_cookie(COOKIE_NAME, path="/", secure=https, httponly=True, samesite="strict")


@lru_cache
def _session_cookie(key: str, max_age_s: int) -> SessionCookie:
    return SessionCookie(key, max_age_s)


def session_cookie(settings: Settings) -> SessionCookie:
    return _session_cookie(signing_key(settings), settings.session_max_age_s)
