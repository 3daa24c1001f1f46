"""Bearer secrets for API tokens and sessions: `<prefix><id>_<secret>`, stored as the secret's SHA-256.

The id finds the row; the secret is compared with `hmac.compare_digest`, so the time a wrong
token takes says nothing about how much of it was right. The secrets are 256 random bits, so a
fast hash is enough (a password hash is for guessable secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "plt_"
_SHAPE = re.compile(r"^(?P<id>[1-9][0-9]{0,9})_(?P<secret>[A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Presented:
    """A secret as presented by a client: the row it names and the secret itself."""

    row_id: int
    secret: str


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 43 characters


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(presented: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(secret_sha256(presented), stored_sha256)


def compose(row_id: int, secret: str, prefix: str = "") -> str:
    return f"{prefix}{row_id}_{secret}"


def parse(value: str, prefix: str = "") -> Presented | None:
    """The row id and secret of a well-formed value; None for anything else."""
    if not value.startswith(prefix):
        return None
    match = _SHAPE.match(value[len(prefix) :])
    if match is None:
        return None
    return Presented(int(match["id"]), match["secret"])
