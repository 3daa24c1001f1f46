"""The FastAPI application: API under /api, the static frontend at /."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import text

from prunelab.server import __version__
from prunelab.server.compare.group_routes import router as groups_router
from prunelab.server.compare.routes import router as compare_router
from prunelab.server.errors import install_handlers
from prunelab.server.imports.routes import router as imports_router
from prunelab.server.kit.dependencies import SessionDep
from prunelab.server.kit.limits import BodySizeLimit, PathLimit
from prunelab.server.kit.route_table import api_methods
from prunelab.server.kit.static import install_frontend
from prunelab.server.mlflow_api.errors import install_handlers as install_mlflow_handlers
from prunelab.server.mlflow_api.routes import router as mlflow_router
from prunelab.server.previews.routes import router as previews_router
from prunelab.server.queue.routes import router as workers_router
from prunelab.server.runs.download_routes import router as downloads_router
from prunelab.server.runs.external_routes import router as external_router
from prunelab.server.runs.history import router as history_router
from prunelab.server.runs.monitoring import install_metrics
from prunelab.server.runs.reaper import ReaperThread
from prunelab.server.runs.routes import router as runs_router
from prunelab.server.settings import Settings, get_settings
from prunelab.server.sweeps.routes import router as sweeps_router
from prunelab.server.uploads.routes import router as uploads_router
from prunelab.server.users.access import AccessControl
from prunelab.server.users.routes import router as users_router
from prunelab.server.users.throttle import LoginThrottle


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The reaper lives with the API: the one process that is always up while runs are watched.
    reaper = ReaperThread(get_settings()).start()
    # What is loaded by now (modules, routes, models) lives as long as the process: moved out of the collector's
    # generations, a full collection no longer walks it (it added ~150 ms to every other 10,000-run group read).
    # Once a process: a process that starts many apps (the tests) freezes only what its first one found.
    if not gc.get_freeze_count():
        gc.collect()
        gc.freeze()
    try:
        yield
    finally:
        feed = getattr(app.state, "live_feed", None)
        if feed is not None:
            await feed.stop()
        reaper.stop()


def install_middleware(app: FastAPI, settings: Settings) -> None:
    # Added innermost first: CORS (answers preflights) -> access (who, CSRF, owner) -> body size -> the app.
    points = PathLimit(re.compile(r"/api/runs/[^/]+/points"), settings.max_points_bytes, "PRUNELAB_MAX_POINTS_BYTES")
    # MLflow's tracking API takes small JSON bodies too (its own server refuses log-batch bodies over 1 MB).
    mlflow = PathLimit(re.compile(r"/api/2\.0/mlflow/.+"), settings.max_points_bytes, "PRUNELAB_MAX_POINTS_BYTES")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes, path_limits=[points, mlflow])
    app.add_middleware(AccessControl, settings=settings)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=api_methods(app.routes),  # exactly the API's: read once every route is in
            allow_headers=["Authorization", "Content-Type"],
        )


def create_app() -> FastAPI:
    app = FastAPI(
        title="PruneLab",
        version=__version__,
        description="Experiment tracking for pruning Keras models with the TensorFlow Model Optimization Toolkit.",
        lifespan=lifespan,
    )
    install_handlers(app)
    # Per app (Redis-shared across an installation's API processes), so one test app never slows another.
    app.state.login_throttle = LoginThrottle(get_settings())
    routers = (
        runs_router,
        external_router,
        history_router,
        downloads_router,
        uploads_router,
        previews_router,
        compare_router,
        groups_router,
        workers_router,
        sweeps_router,
    )
    for router in (*routers, users_router, mlflow_router, imports_router):
        app.include_router(router)
    install_mlflow_handlers(app)  # MLflow's error shape on its paths

    @app.get("/api/health", tags=["health"])
    def health(session: SessionDep) -> dict[str, str]:
        """Liveness and database reachability."""
        session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    install_metrics(app)
    install_frontend(app)
    install_middleware(app, get_settings())
    return app


app = create_app()
