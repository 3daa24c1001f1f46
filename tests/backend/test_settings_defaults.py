"""Defaults that promises in the README rest on."""

from __future__ import annotations

import inspect

from prunelab.server.settings import Settings
from prunelab.worker.db_reporter import DatabaseReporter


def test_default_reaper_releases_a_dead_run_within_90_s() -> None:
    # The last heartbeat is at most one flush before death; the run is stale heartbeat_timeout_s later and
    # the next reaper pass comes at most reaper_interval_s after that.
    settings = Settings()
    flush_interval = inspect.signature(DatabaseReporter).parameters["flush_interval"].default
    assert settings.heartbeat_timeout_s + settings.reaper_interval_s + flush_interval <= 90
    assert settings.heartbeat_timeout_s >= 10 * flush_interval  # a busy worker is never presumed dead


def test_redis_never_redelivers_a_run_still_within_its_time_limit() -> None:
    settings = Settings()
    assert settings.run_soft_time_limit_s < settings.run_time_limit_s < settings.broker_visibility_timeout_s
