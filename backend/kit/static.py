"""Serve the dashboard (the `frontend` package) and Plotly's JavaScript from the installed `plotly` package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles


def frontend_dir() -> Path:
    return Path(str(resources.files("prunelab.dashboard")))


def plotly_js_path() -> Path:
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def install_frontend(app: FastAPI) -> None:
    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="text/javascript")

    app.mount("/", StaticFiles(directory=frontend_dir(), html=True), name="frontend")
