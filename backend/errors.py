"""The one place domain errors (`core.errors`) become HTTP answers, and request validation errors get their shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from prunelab.core.errors import (
    ArtifactCorrupted,
    ArtifactNotFound,
    ArtifactStoreUnavailable,
    InvalidFilter,
    InvalidSpec,
    InvalidUpload,
    PruneLabError,
    RangeNotSatisfiable,
    RunNotFound,
    RunStateConflict,
    SweepNotFound,
    UploadNotFound,
)
from prunelab.core.specs import UNION_TAGS
from prunelab.core.sweeps import InvalidSweep


class ErrorMessage(BaseModel):
    detail: str


# Documented on routers whose services raise these, so the OpenAPI schema lists every answer they give.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorMessage, "description": "No such run, sweep, artifact or upload."}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorMessage, "description": "The run's state or stored file does not allow it."}
}

# Most specific first: InvalidParameter is an InvalidSpec.
STATUS_CODES: tuple[tuple[type[PruneLabError], int], ...] = (
    (InvalidSpec, 422),
    (InvalidUpload, 422),
    (RunNotFound, 404),
    (UploadNotFound, 404),
    (SweepNotFound, 404),
    (ArtifactNotFound, 404),
    (ArtifactCorrupted, 409),
    (RunStateConflict, 409),
    (RangeNotSatisfiable, 416),
    (ArtifactStoreUnavailable, 503),
)


def status_code(error: PruneLabError) -> int:
    return next((code for kind, code in STATUS_CODES if isinstance(error, kind)), 400)


def _error_item(loc: tuple[str | int, ...], message: str, error_type: str = "value_error") -> dict[str, object]:
    # `loc`, `msg` and `type` keep FastAPI's documented ValidationError shape; `field` is for people.
    field = ".".join(str(part) for part in loc if part not in ("body", "query", "path"))
    return {"loc": list(loc), "field": field, "msg": message, "type": error_type}


def _pydantic_message(error: dict[str, object]) -> str:
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _drop_union_tags(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    # A discriminated union puts the tag ("constant") into the location; users name the field.
    return tuple(part for part in loc if part not in UNION_TAGS)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(PruneLabError)
    async def _domain_error(_: Request, exc: PruneLabError) -> JSONResponse:
        if isinstance(exc, InvalidFilter):  # the column lets a page put the caret where the mistake is
            item = _error_item(("query", *exc.field), exc.message, "invalid_filter")
            detail: object = [{**item, "column": exc.column}]
        elif isinstance(exc, InvalidSweep):  # every bad point or path, each named
            detail = [_error_item(("body", *field), message) for field, message in exc.problems]
        elif isinstance(exc, InvalidSpec):
            detail = [_error_item(("body", *exc.field), exc.message)]
        elif isinstance(exc, InvalidUpload):
            detail = [_error_item(("body", *exc.field), exc.message, "invalid_upload")]
        else:
            detail = exc.message
        headers = {"Content-Range": f"bytes */{exc.size_bytes}"} if isinstance(exc, RangeNotSatisfiable) else None
        return JSONResponse(status_code=status_code(exc), content={"detail": detail}, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            _error_item(_drop_union_tags(tuple(error["loc"])), _pydantic_message(error), str(error.get("type", "")))
            for error in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": detail})
