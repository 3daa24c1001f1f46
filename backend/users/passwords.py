"""Password hashes: argon2id through argon2-cffi, with its current recommended parameters."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 1024

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified when the name is unknown, so a wrong name costs as long as a wrong password (no user enumeration).
    return _hasher.hash("prunelab: no such user")


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; `None` (no such user) is checked against a dummy hash and fails."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True once argon2-cffi's recommended parameters have moved past the ones this hash was made with."""
    return _hasher.check_needs_rehash(password_hash)
