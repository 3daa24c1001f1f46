"""schemathesis against the app's own OpenAPI schema: no 5xx, no response that breaks the schema."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

# A schema-valid spec may still not run (no pruning step in its window, say): the API answers 422 naming
# the field, which this check would call a rejected valid request. Every other check runs.
EXCLUDED_CHECKS = [positive_data_acceptance]
# Live streams never end: schemathesis keeps what a stream sent until its read timeout (10 s by default, for each
# example that opens one). The status, headers and first read come within milliseconds, and a failure in the read
# fails the call, so a few seconds see all that an example checks; the keepalive alone would come after 15 s.
STREAMS = {"/api/runs/events", "/api/runs/{run_id}/events"}
STREAM_WINDOW_S = 3.0


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """PostgreSQL only: it is the stricter of the two (32-bit integers); both cost 2 minutes each."""
    return postgres_url


def test_every_operation_honours_the_schema(settings) -> None:  # type: ignore[no-untyped-def]
    from prunelab.server.app import create_app

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        started = time.monotonic()

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def honours_schema(case) -> None:  # type: ignore[no-untyped-def]
            window = {"timeout": STREAM_WINDOW_S} if case.operation.path in STREAMS else {}
            case.call_and_validate(excluded_checks=EXCLUDED_CHECKS, **window)

        honours_schema()
        checked.append(f"{operation.method.upper()} {operation.path} ({time.monotonic() - started:.1f} s)")
    print("\n".join(checked))
    assert len(checked) >= 10
    assert {line.split()[1] for line in checked} >= STREAMS  # the streams are still there, and were checked
