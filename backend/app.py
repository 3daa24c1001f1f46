"""The FastAPI application: API under /api, the static frontend at /."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from backend import __version__
from backend.artifacts.routes import router as artifacts_router
from backend.catalog_routes import router as catalog_router
from backend.compare.routes import router as compare_router
from backend.db import SessionDep
from backend.errors import install_handlers
from backend.frontend import install_frontend
from backend.runs.routes import router as runs_router
from backend.schedules_routes import router as schedules_router


def create_app() -> FastAPI:
    app = FastAPI(
        title="PruneLab",
        version=__version__,
        description="Experiment tracking for pruning Keras models with the TensorFlow Model Optimization Toolkit.",
    )
    install_handlers(app)
    app.include_router(runs_router)
    app.include_router(artifacts_router)
    app.include_router(catalog_router)
    app.include_router(schedules_router)
    app.include_router(compare_router)

    @app.get("/api/health", tags=["health"])
    def health(session: SessionDep) -> dict[str, str]:
        """Liveness and database reachability."""
        session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    install_frontend(app)
    return app


app = create_app()
