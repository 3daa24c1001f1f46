"""Engine and sessions: the unit of work that commits (requests get it through `kit.dependencies.SessionDep`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from prunelab.server.settings import get_settings


def _configure_sqlite(dbapi_connection: Any, _: Any) -> None:
    # WAL lets the API read while a worker writes; the busy timeout makes writers queue, not fail.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _json_loads(text: str | bytes) -> Any:
    """JSON columns decoded by orjson, several times faster than the json module (a group of 10,000 runs reads
    that many values); SQLite may hold what the json module wrote and orjson refuses (NaN, Infinity): that text
    is read by the json module, as before."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


@lru_cache
def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, json_deserializer=_json_loads
        )
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True, json_deserializer=_json_loads)


def one_off_engine(url: str) -> Engine:
    """An engine that pools nothing: for a process that forks children later (Celery's main process)."""
    connect_args = {"check_same_thread": False, "timeout": 30} if url.startswith("sqlite") else {}
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _configure_sqlite)
    return engine


@lru_cache
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=engine_for(url), expire_on_commit=False)


def new_session() -> Session:
    return _session_factory(get_settings().database_url)()


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the session's transaction has committed (never if it rolls back)."""
    session.info.setdefault("after_commit", []).append(action)


@contextmanager
def session_scope(bind: Engine | None = None) -> Iterator[Session]:
    """The unit of work: commit on success, roll back on error, then run after-commit actions."""
    session = Session(bind=bind, expire_on_commit=False) if bind is not None else new_session()
    try:
        yield session
        session.commit()
        actions = session.info.pop("after_commit", [])
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    for action in actions:
        action()
