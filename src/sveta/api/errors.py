"""Every API error as JSON ``{"error": {"code", "message", "hint"}}``: SvetaError mapped once, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sveta.errors import BlockedURLError, CatalogError, ConfigError, InputError, SourceError, SvetaError

log = logging.getLogger("sveta.api")

# SvetaError subclass -> (HTTP status, code); the first class a raised error is an instance of wins.
SVETA_STATUS: list[tuple[type[SvetaError], int, str]] = [
    (InputError, 422, "input_error"),  # a photo, product or feed the client gave cannot be used
    (BlockedURLError, 400, "blocked_url"),  # the SSRF guard refused the URL
    (SourceError, 502, "source_error"),  # a remote store, feed or image failed
    (ConfigError, 503, "not_configured"),  # the server is not set up for this yet (no index, no model)
    (CatalogError, 503, "catalog_error"),  # the database is unreachable or refused a write
    (SvetaError, 400, "error"),
]
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
}


class ApiError(HTTPException):
    """An HTTP error with a code and a hint, raised by routers, dependencies and middleware."""

    def __init__(self, status: int, message: str, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(status, message)
        self.message, self.hint = message, hint
        self.code = code or HTTP_CODES.get(status, "error")


def error_body(code: str, message: str, hint: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "hint": hint}}


def error_response(status: int, code: str, message: str, hint: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, hint), status_code=status)


def status_of(exc: SvetaError) -> tuple[int, str]:
    return next((status, code) for cls, status, code in SVETA_STATUS if isinstance(exc, cls))


def install(app: FastAPI) -> None:
    """Register the handlers: SvetaError, HTTP errors, validation errors, and anything unexpected."""
    app.add_exception_handler(SvetaError, _sveta)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Exception, _unexpected)


async def _sveta(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SvetaError)
    status, code = status_of(exc)
    return error_response(status, code, exc.message, exc.hint)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, ApiError):
        response = error_response(exc.status_code, exc.code, exc.message, exc.hint)
    else:
        response = error_response(exc.status_code, HTTP_CODES.get(exc.status_code, "error"), str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(_problem(e) for e in exc.errors())
    hint = "see the endpoint's parameters at /docs"
    return error_response(422, "validation_error", f"invalid request: {problems}", hint)


def _problem(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "request"
    return f"{where}: {error.get('msg', 'invalid')}"


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    message = f"internal error ({type(exc).__name__})"
    return error_response(500, "internal_error", message, "the server log has the details; please report it")
