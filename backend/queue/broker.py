"""Which runs the broker still holds a message for: waiting in the queue or delivered and not yet acknowledged.

Reconciliation compares this with the runs queued in the database, so a queue entry lost
with a restarted broker is sent again. Reads Redis and kombu's SQLAlchemy transport
directly (Celery has no API for the content of a queue); any other broker answers None,
meaning "unknown", and the caller falls back to re-sending on a timer.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import create_engine, inspect, text

from prunelab.server.queue.client import TRAIN_TASK
from prunelab.server.settings import Settings

# kombu's Redis transport keeps messages a consumer took but has not acknowledged in this hash.
REDIS_UNACKED_KEY = "unacked"
# kombu's Redis transport files a priority other than 0 under the queue name plus this separator and the level.
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)


def run_id_of(payload: str | bytes) -> int | None:
    """The run id a serialized train-task message names, or None for any other message."""
    try:
        message: dict[str, Any] = json.loads(payload)
        if message.get("headers", {}).get("task") != TRAIN_TASK:
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return int(args[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _redis_queue_keys(queue: str) -> list[str]:
    return [queue] + [f"{queue}{REDIS_PRIORITY_SEPARATOR}{level}" for level in REDIS_PRIORITY_STEPS if level]


def _redis_run_ids(settings: Settings) -> set[int]:
    import redis

    client = redis.Redis.from_url(settings.broker_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        found: set[int] = set()
        for key in _redis_queue_keys(settings.queue):
            found.update(run_id for run_id in map(run_id_of, client.lrange(key, 0, -1)) if run_id is not None)
        for raw in client.hvals(REDIS_UNACKED_KEY):
            payload, _exchange, routing_key = json.loads(raw)
            if routing_key == settings.queue:
                run_id = run_id_of(json.dumps(payload))
                if run_id is not None:
                    found.add(run_id)
        return found
    finally:
        client.close()


def _sqlalchemy_run_ids(settings: Settings) -> set[int]:
    engine = create_engine(settings.broker_url.removeprefix("sqla+"))
    try:
        if not inspect(engine).has_table("kombu_message"):
            return set()  # kombu creates its tables with the first message or consumer
        with engine.connect() as connection:
            payloads = connection.execute(
                text(
                    "SELECT m.payload FROM kombu_message m JOIN kombu_queue q ON m.queue_id = q.id "
                    "WHERE q.name = :queue"
                ),
                {"queue": settings.queue},
            ).scalars()
            return {run_id for run_id in map(run_id_of, payloads) if run_id is not None}
    finally:
        engine.dispose()


def run_ids_in_broker(settings: Settings) -> set[int] | None:
    """Run ids with a message in the broker; None when this kind of broker cannot be inspected.

    Raises when the broker cannot be reached: an unreachable broker is not an empty one.
    """
    url = settings.broker_url
    if url.startswith(("redis://", "rediss://")):
        return _redis_run_ids(settings)
    if url.startswith("sqla+"):
        return _sqlalchemy_run_ids(settings)
    return None
