"""Serve the dashboard (the `frontend` package) and Plotly's JavaScript from the installed `plotly` package.

Both go out compressed and cached. The dashboard's files are gzipped by Starlette's GZipMiddleware
and revalidated with their ETags (`Cache-Control: no-cache`: a browser asks, and gets 304 when the
file did not change). Plotly's 4.8 MB bundle is gzipped once per process (about 1.4 MB on the wire)
and named by a hash of its content in its ETag, so a browser keeps it for a day and then
revalidates it; an upgraded `plotly` package changes the hash.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

PLOTLY_CACHE_CONTROL = "public, max-age=86400"
GZIP_MIN_SIZE = 500


def frontend_dir() -> Path:
    return Path(str(resources.files("prunelab.dashboard")))


def plotly_js_path() -> Path:
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


@dataclass(frozen=True)
class Bundle:
    plain: bytes
    gzipped: bytes
    etag: str  # a hash of the content, for the plain form; the gzipped form's ETag has `-gzip` appended


@lru_cache(maxsize=4)
def bundle(path: Path) -> Bundle:
    plain = path.read_bytes()
    return Bundle(plain, gzip.compress(plain, compresslevel=6), f'"{hashlib.sha256(plain).hexdigest()[:32]}"')


def accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "").lower()


def bundle_response(request: Request, path: Path, media_type: str) -> Response:
    """A file kept in memory in plain and gzipped form, answered 304 when the client's ETag still matches."""
    served = bundle(path)
    zipped = accepts_gzip(request)
    etag = served.etag[:-1] + '-gzip"' if zipped else served.etag
    headers = {"ETag": etag, "Cache-Control": PLOTLY_CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    if zipped:
        headers["Content-Encoding"] = "gzip"
    return Response(served.gzipped if zipped else served.plain, media_type=media_type, headers=headers)


class RevalidatedFiles(StaticFiles):
    """Starlette's static files (ETag, Last-Modified, 304 on a match), which the browser must revalidate."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def install_frontend(app: FastAPI) -> None:
    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js(request: Request) -> Response:
        return bundle_response(request, plotly_js_path(), "text/javascript")

    dashboard = RevalidatedFiles(directory=frontend_dir(), html=True)
    app.mount("/", GZipMiddleware(dashboard, minimum_size=GZIP_MIN_SIZE), name="frontend")
