"""MLflow's error shape, `{"error_code": ..., "message": ...}`, with the HTTP status MLflow's server gives each code.

MLflow clients read `error_code` (`get_experiment_by_name` treats RESOURCE_DOES_NOT_EXIST as "none")
and retry 429 and 5xx for minutes, so every refusal of bad input here is a 4xx.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PREFIX = "/api/2.0/mlflow"

# mlflow/exceptions.py ERROR_CODE_TO_HTTP_STATUS, the codes this API gives.
HTTP_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "INVALID_STATE": 500,
}


class MlflowApiError(Exception):
    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message

    @property
    def status_code(self) -> int:
        return HTTP_STATUS[self.error_code]


def invalid(message: str) -> MlflowApiError:
    return MlflowApiError("INVALID_PARAMETER_VALUE", message)


def not_found(message: str) -> MlflowApiError:
    return MlflowApiError("RESOURCE_DOES_NOT_EXIST", message)


def answer(error_code: str, message: str, status_code: int | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status_code or HTTP_STATUS[error_code], content={"error_code": error_code, "message": message}
    )


def _is_mlflow(request: Request) -> bool:
    return request.url.path.startswith(PREFIX + "/") or request.url.path == PREFIX


def _field(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in ("body", "query", "path"))


async def _call(handler: Callable[..., Any], request: Request, exc: Exception) -> Response:
    answer = handler(request, exc)
    return await answer if inspect.isawaitable(answer) else answer


def install_handlers(app: FastAPI) -> None:
    """MLflow's error shape on MLflow paths; the app's own handlers everywhere else."""
    app_validation = app.exception_handlers[RequestValidationError]
    app_http = app.exception_handlers.get(StarletteHTTPException)

    @app.exception_handler(MlflowApiError)
    async def _mlflow_error(_: Request, exc: MlflowApiError) -> JSONResponse:
        return answer(exc.error_code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        if not _is_mlflow(request):
            return await _call(app_validation, request, exc)
        first = exc.errors()[0]
        field = _field(tuple(first["loc"]))
        if first.get("type") == "missing":
            return answer("INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{field}'.")
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        return answer(
            "INVALID_PARAMETER_VALUE", f"Invalid value {first.get('input')!r} for parameter '{field}': {message}"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_mlflow(request) and exc.status_code in (404, 405):
            return answer(
                "ENDPOINT_NOT_FOUND",
                f"{request.method} {request.url.path} is not part of PruneLab's MLflow API subset "
                "(experiments, runs, logging and metric history; see README)",
            )
        return await _call(app_http or http_exception_handler, request, exc)
