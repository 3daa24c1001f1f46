"""Request and response shapes of sign-in."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from prunelab.server.kit.identity import Via
from prunelab.server.users.passwords import MAX_LENGTH, check_strength

Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LENGTH)]


def _strong(password: str) -> str:
    check_strength(password)
    return password


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64)]
    password: Password


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Password
    new_password: Annotated[str, AfterValidator(_strong)]


class MeOut(BaseModel):
    """Who the request was made as; `name` is null while PruneLab is open (no users) or for the service token."""

    name: str | None
    is_admin: bool
    via: Via
