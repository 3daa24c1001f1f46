"""Sign-in throttling: failed attempts are counted per client address and per user name, in tiers.

A few mistakes cost nothing; past them each key waits for its window to pass (minutes, then an
hour), so guessing slows down the more it fails. Counted in memory with the `limits` library's
moving windows: per API process, forgotten on restart.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

PER_ADDRESS = parse_many("5/minute;30/hour")
# Higher than per address, so one attacker cannot lock a user out for long by guessing at their name.
PER_NAME = parse_many("10/minute;60/hour")


@dataclass(frozen=True)
class Wait:
    retry_after_s: int


class LoginThrottle:
    def __init__(self) -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def _keys(self, address: str, name: str) -> list[tuple[RateLimitItem, str, str]]:
        return [(item, "address", address) for item in PER_ADDRESS] + [(item, "name", name) for item in PER_NAME]

    def wait(self, address: str, name: str) -> Wait | None:
        """How long this client must wait before it may try again; None when it may try now."""
        reset_times = [
            self.limiter.get_window_stats(item, kind, key).reset_time
            for item, kind, key in self._keys(address, name)
            if not self.limiter.test(item, kind, key)
        ]
        if not reset_times:
            return None
        return Wait(max(1, math.ceil(max(reset_times) - time.time())))

    def failed(self, address: str, name: str) -> None:
        for item, kind, key in self._keys(address, name):
            self.limiter.hit(item, kind, key)
