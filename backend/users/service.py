"""Users, their API tokens and their dashboard sessions. Services flush; the caller's scope commits."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from prunelab.server.models import ApiToken, User, UserSession, utcnow
from prunelab.server.users import credentials, passwords

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class UserError(ValueError):
    """A user or token command that cannot be carried out; the message says why."""


def has_users(session: Session) -> bool:
    return bool(session.scalar(select(exists().where(User.id.is_not(None)))))


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise UserError(
            f"{name!r} is not a user name: 1 to 64 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def get_user(session: Session, name: str) -> User:
    user = find_user(session, name)
    if user is None:
        raise UserError(f"no user {name!r} (prunelab users list shows who there is)")
    return user


def _hash(password: str) -> str:
    try:
        return passwords.hash_password(password)
    except passwords.WeakPassword as weak:
        raise UserError(str(weak)) from None


def add_user(session: Session, name: str, password: str, is_admin: bool = False) -> User:
    check_name(name)
    if find_user(session, name) is not None:
        raise UserError(f"user {name!r} exists already")
    user = User(name=name, password_hash=_hash(password), is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[tuple[User, int]]:
    """Every user with the number of tokens it holds that are not revoked."""
    live_tokens = (
        select(func.count(ApiToken.id))
        .where(ApiToken.user_id == User.id, ApiToken.revoked_at.is_(None))
        .scalar_subquery()
    )
    return [(user, count) for user, count in session.execute(select(User, live_tokens).order_by(User.name))]


def set_password(session: Session, user: User, password: str) -> None:
    """A new password signs the user out everywhere: every session of theirs is deleted."""
    user.password_hash = _hash(password)
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    session.flush()


def authenticate_password(session: Session, name: str, password: str) -> User | None:
    user = find_user(session, name)
    if not passwords.verify_password(user.password_hash if user else None, password):
        return None
    assert user is not None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
        session.flush()
    return user


def create_token(session: Session, user: User, label: str = "") -> tuple[ApiToken, str]:
    """A new token for `user`, and its value: shown once, never stored."""
    secret = credentials.new_secret()
    token = ApiToken(user_id=user.id, label=label[:100], secret_sha256=credentials.secret_sha256(secret))
    session.add(token)
    session.flush()
    return token, credentials.compose(token.id, secret, credentials.TOKEN_PREFIX)


def list_tokens(session: Session, user: User | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query))


def revoke_token(session: Session, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise UserError(f"no token {token_id} (prunelab tokens list shows the tokens)")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token


def user_for_token(session: Session, value: str) -> User | None:
    presented = credentials.parse(value, credentials.TOKEN_PREFIX)
    if presented is None:
        return None
    token = session.get(ApiToken, presented.row_id)
    if token is None or token.revoked_at is not None:
        return None
    return token.user if credentials.secret_matches(presented.secret, token.secret_sha256) else None


def start_session(session: Session, user: User, max_age_s: int) -> str:
    """A new sign-in for `user`; returns the `<id>_<secret>` value its cookie carries (signed)."""
    now = utcnow()
    # A sign-in is a good moment to forget this user's expired sessions.
    session.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at < now))
    secret = credentials.new_secret()
    row = UserSession(
        user_id=user.id,
        secret_sha256=credentials.secret_sha256(secret),
        created_at=now,
        expires_at=now + timedelta(seconds=max_age_s),
    )
    session.add(row)
    session.flush()
    return credentials.compose(row.id, secret)


def find_session(session: Session, value: str) -> UserSession | None:
    """The live session a cookie's (already verified) value names; None if it ended, expired or never was."""
    presented = credentials.parse(value)
    if presented is None:
        return None
    row = session.get(UserSession, presented.row_id)
    if row is None or row.expires_at <= utcnow():
        return None
    return row if credentials.secret_matches(presented.secret, row.secret_sha256) else None


def end_session(session: Session, session_id: int) -> None:
    session.execute(delete(UserSession).where(UserSession.id == session_id))
    session.flush()
