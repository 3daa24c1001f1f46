"""Sign-in throttling is shared by an installation's API processes when the broker is Redis.

Two real API processes on one PostgreSQL database and one Redis: guesses spread over both are
counted together, so the sixth wrong password from one address is refused by either.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import httpx
import pytest

from harness.stack import REDIS_URL, REPO, StackConfig, free_port, migrate, postgres_database, prunelab, start_api

pytestmark = pytest.mark.integration


def sign_in(base: str, password: str) -> int:
    return httpx.post(f"{base}/api/auth/login", json={"name": "ana", "password": password}, timeout=30).status_code


def test_failed_sign_ins_are_counted_across_two_api_processes(tmp_path: Path) -> None:
    with postgres_database() as database_url:
        first = StackConfig(home=tmp_path, database_url=database_url, broker_url=REDIS_URL)
        second = dataclasses.replace(first, port=free_port())  # same home: the same signing key, as one installation
        migrate(first)
        added = subprocess.run(
            prunelab("users", "add", "ana", "--password-stdin"),
            input="correct horse battery", env=first.env(), cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        apis = [start_api(first, tmp_path / "logs-1"), start_api(second, tmp_path / "logs-2")]
        try:
            bases = [first.base_url, second.base_url]
            misses = [sign_in(bases[attempt % 2], f"guess {attempt}") for attempt in range(5)]
            assert misses == [401] * 5  # 3 on one process, 2 on the other: each alone is under the 5 a minute
            assert [sign_in(base, "correct horse battery") for base in bases] == [429, 429]
        finally:
            for api in apis:
                api.stop()
