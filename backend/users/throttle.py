"""Sign-in throttling: failed attempts are counted per client address and per user name, in tiers.

A few mistakes cost nothing; past them each key waits for its window to pass (minutes, then an
hour), so guessing slows down the more it fails. Counted with the `limits` library's moving
windows: in Redis when the broker is Redis, so every API process of an installation shares the
counts (keys are namespaced by a hash of the installation's signing key, which all its API
processes share); in memory otherwise (the embedded default runs one API process). While Redis
cannot be reached, counting falls back to this process's memory rather than failing sign-in.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from prunelab.server.kit.cookies import signing_key
from prunelab.server.settings import Settings

log = logging.getLogger(__name__)

PER_ADDRESS = parse_many("5/minute;30/hour")
# Higher than per address, so one attacker cannot lock a user out for long by guessing at their name.
PER_NAME = parse_many("10/minute;60/hour")


@dataclass(frozen=True)
class Wait:
    retry_after_s: int


def shared_storage(settings: Settings) -> Storage:
    """Redis (the broker's) when the broker is Redis, else this process's memory."""
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return RedisStorage(settings.broker_url)
    return MemoryStorage()


class LoginThrottle:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._limiter: MovingWindowRateLimiter | None = None
        self._fallback = MovingWindowRateLimiter(MemoryStorage())
        self._namespace = ""

    @property
    def limiter(self) -> MovingWindowRateLimiter:
        if self._limiter is None:  # made on first use: the signing key may be created in `home` then
            self._namespace = "prunelab-signin-" + hashlib.sha256(signing_key(self.settings).encode()).hexdigest()[:16]
            self._limiter = MovingWindowRateLimiter(shared_storage(self.settings))
        return self._limiter

    def _keys(self, address: str, name: str) -> list[tuple[RateLimitItem, str, str]]:
        return [(item, "address", address) for item in PER_ADDRESS] + [(item, "name", name) for item in PER_NAME]

    def _reset_times(self, limiter: MovingWindowRateLimiter, address: str, name: str) -> list[float]:
        return [
            limiter.get_window_stats(item, self._namespace, kind, key).reset_time
            for item, kind, key in self._keys(address, name)
            if not limiter.test(item, self._namespace, kind, key)
        ]

    def wait(self, address: str, name: str) -> Wait | None:
        """How long this client must wait before it may try again; None when it may try now."""
        try:
            reset_times = self._reset_times(self.limiter, address, name)
        except Exception:
            log.warning("sign-in throttle: shared counts unreachable; counting in this process", exc_info=True)
            reset_times = self._reset_times(self._fallback, address, name)
        if not reset_times:
            return None
        return Wait(max(1, math.ceil(max(reset_times) - time.time())))

    def failed(self, address: str, name: str) -> None:
        try:
            limiter = self.limiter
            for item, kind, key in self._keys(address, name):
                limiter.hit(item, self._namespace, kind, key)
        except Exception:
            log.warning("sign-in throttle: shared counts unreachable; counting in this process", exc_info=True)
            for item, kind, key in self._keys(address, name):
                self._fallback.hit(item, self._namespace, kind, key)
