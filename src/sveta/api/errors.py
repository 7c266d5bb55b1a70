"""Every API error as JSON ``{"error": {code, message, hint}}``, never a traceback, and as each route declares it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sveta.api.schemas import ErrorBody
from sveta.errors import (
    BlockedURLError,
    CatalogError,
    ConfigError,
    InputError,
    SourceError,
    StorageError,
    SvetaError,
    database_storage_error,
    storage_error,
)

log = logging.getLogger("sveta.api")

# SvetaError subclass -> (HTTP status, code); the first class a raised error is an instance of wins.
SVETA_STATUS: list[tuple[type[SvetaError], int, str]] = [
    (InputError, 422, "input_error"),  # a photo, product or feed the client gave cannot be used
    (BlockedURLError, 400, "blocked_url"),  # the SSRF guard refused the URL
    (SourceError, 502, "source_error"),  # a remote store, feed or image failed
    (ConfigError, 503, "not_configured"),  # the server is not set up for this yet (no index, no model)
    (CatalogError, 503, "catalog_error"),  # the database is unreachable or refused a write
    (StorageError, 507, "insufficient_storage"),  # the disk is full or read-only: nothing was half-written
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
    429: "too_many_requests",
    503: "unavailable",
}

# What each error status means, for the OpenAPI document (every route declares those it can answer).
MEANING = {
    400: "Refused: a body that cannot be parsed, a blocked URL (the SSRF guard) or an unusable value.",
    401: "No API key, or a wrong one (X-API-Key).",
    403: "Writes (or, with SVETA_API_READ_KEY_REQUIRED, reads) are disabled: no API key is configured; or the "
    "calling page's origin is not in SVETA_CORS_ORIGINS.",
    404: "Not found.",
    409: "Conflict: a source of another kind has the name, or a crawl of the source is running.",
    413: "The body is over SVETA_MAX_UPLOAD_BYTES.",
    415: "The upload is not an image.",
    422: "Invalid request: a parameter, a body field or a photo that cannot be used.",
    429: "Over the rate limit (SVETA_API_RATE_LIMIT); Retry-After says when to retry.",
    502: "The store, feed or photo URL failed.",
    503: "Not configured yet (no index, no model) or the catalog is unavailable.",
    504: "The crawl did not start in time.",
    507: "The disk is full or read-only: nothing was half-written.",
}
OVERLOADED = "Overloaded: every place for heavy requests is taken (Retry-After says when to retry); or not configured."
RETRY_AFTER = {"description": "Whole seconds to wait before trying again.", "schema": {"type": "integer"}}


def documented(*statuses: int, overloaded: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router that can answer these error statuses, each with the error body (a 429
    with its Retry-After; ``overloaded``: a heavy route, whose 503 may carry one too)."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        heavy = overloaded and status == 503
        declared[status] = {"model": ErrorBody, "description": OVERLOADED if heavy else MEANING[status]}
        if status == 429 or heavy:
            declared[status]["headers"] = {"Retry-After": RETRY_AFTER | {"required": status == 429}}
    return declared


API = (401, 403, 429, 503)  # any /api route: a read key may be required, the rate limit, the catalog may be down


class ApiError(HTTPException):
    """An HTTP error with a code and a hint, raised by routers, dependencies and middleware."""

    def __init__(
        self,
        status: int,
        message: str,
        hint: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers)
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
    storage = storage_error(exc) if isinstance(exc, OSError) else database_storage_error(exc)
    if storage is not None:  # a full or read-only disk is the operator's to fix, not a bug: say so
        log.error("%s on %s %s", storage.message, request.method, request.url.path)
        return error_response(507, "insufficient_storage", storage.message, storage.hint)
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    message = f"internal error ({type(exc).__name__})"
    return error_response(500, "internal_error", message, "the server log has the details; please report it")
