"""Domain exceptions raised by services; `install_handlers` turns them into HTTP answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from backend.recipes import RECIPE_KINDS
from backend.specs import SCHEDULE_KINDS, STRUCTURE_KINDS


class ErrorMessage(BaseModel):
    detail: str


# Documented on routers whose services raise these, so the OpenAPI schema lists every answer they give.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorMessage, "description": "No such run, artifact or upload."}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorMessage, "description": "The run's state or stored file does not allow it."}
}

UNION_TAGS = frozenset(SCHEDULE_KINDS + STRUCTURE_KINDS + RECIPE_KINDS)


class PruneLabError(Exception):
    status_code = 400
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSpec(PruneLabError):
    """A spec that passes field validation but cannot run (its steps do not fit, say)."""

    status_code = 422

    def __init__(self, field: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidParameter(InvalidSpec):
    """A query parameter that cannot be used (a malformed list of run ids, say)."""


class RunNotFound(PruneLabError):
    status_code = 404

    def __init__(self, run_id: int) -> None:
        super().__init__(f"run {run_id} does not exist")


class ArtifactNotFound(PruneLabError):
    status_code = 404


class ArtifactCorrupted(PruneLabError):
    """The stored file no longer matches the size and sha256 recorded when it was written."""

    status_code = 409


class RangeNotSatisfiable(PruneLabError):
    """A Range that starts past the end of the file."""

    status_code = 416

    def __init__(self, size_bytes: int) -> None:
        super().__init__(f"the requested range starts past the end of the {size_bytes}-byte file")
        self.headers = {"Content-Range": f"bytes */{size_bytes}"}


class ArtifactStoreUnavailable(PruneLabError):
    """The artifact store did not answer (after retries); the message names it."""

    status_code = 503


class InvalidUpload(PruneLabError):
    """An uploaded file that is refused: wrong kind, unsafe content, or not what it claims to be."""

    status_code = 422
    field = ("file",)


class UploadNotFound(PruneLabError):
    status_code = 404

    def __init__(self, upload_id: int) -> None:
        super().__init__(f"upload {upload_id} does not exist")


class RunStateConflict(PruneLabError):
    """The run is not in a state that allows the action (deleting a running run, say)."""

    status_code = 409


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
        if isinstance(exc, InvalidSpec):
            detail: object = [_error_item(("body", *exc.field), exc.message)]
        elif isinstance(exc, InvalidUpload):
            detail = [_error_item(("body", *exc.field), exc.message, "invalid_upload")]
        else:
            detail = exc.message
        return JSONResponse(status_code=exc.status_code, content={"detail": detail}, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            _error_item(_drop_union_tags(tuple(error["loc"])), _pydantic_message(error), str(error.get("type", "")))
            for error in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": detail})
