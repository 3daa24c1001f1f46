"""`/metrics` in Prometheus' text format (prometheus-client): runs, queue, workers, training speed, latency.

The gauges are read from the database when Prometheus scrapes (one short transaction, a few
aggregate queries), never kept in step by hand; request latency is a histogram this process
observes, to the first byte of each response (a live stream's latency is its time to open).
The route is guarded like the API (backend/users/access.py): a scraper sends an API token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prunelab.server.db import session_scope
from prunelab.server.models import LatestMetric, Run, RunStatus, utcnow
from prunelab.server.queue import workers
from prunelab.server.settings import Settings, get_settings

METRICS_PATH = "/metrics"


class DatabaseCollector(Collector):
    """Gauges read at scrape time: runs by status, queue depth, workers online, training steps per second."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        with session_scope() as session:
            by_status = dict(session.execute(select(Run.status, func.count()).group_by(Run.status)).all())
            depth = workers.queue_length(session)
            online = workers.online_count(session, self.settings, now)
            running = session.execute(
                select(Run.started_at, func.max(LatestMetric.step))
                .join(LatestMetric, LatestMetric.run_id == Run.id)
                .where(Run.status == RunStatus.RUNNING, Run.started_at.is_not(None))
                .group_by(Run.id, Run.started_at)
            ).all()
        runs = GaugeMetricFamily("prunelab_runs", "Runs by status.", labels=["status"])
        for status in RunStatus:
            runs.add_metric([status.value], by_status.get(status.value, 0))
        yield runs
        yield _gauge("prunelab_queue_depth", "Runs queued for a worker.", depth)
        yield _gauge("prunelab_workers_online", "Workers whose heartbeat is younger than two intervals.", online)
        rate = sum(
            float(step) / max(1e-3, (now - started).total_seconds())
            for started, step in running
            if started is not None and step
        )
        yield _gauge(
            "prunelab_training_steps_per_second",
            "Training steps per second, summed over running runs (each run's steps since its start).",
            rate,
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class RequestLatency:
    """ASGI middleware: seconds from a request's arrival to its response's first byte, per route template."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                self.histogram.labels(scope["method"], template).observe(time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, timed_send)


def install_metrics(app: FastAPI) -> None:
    """A registry of this app's own (so two apps in one process never share series) and the `/metrics` route."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(get_settings()))
    latency = Histogram(
        "prunelab_request_duration_seconds",
        "Time to the first byte of the response, by method and route template.",
        ["method", "route"],
        registry=registry,
    )
    app.add_middleware(RequestLatency, histogram=latency)

    @app.get(METRICS_PATH, include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
