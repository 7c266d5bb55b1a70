"""Cross-origin use: pages of SVETA_CORS_ORIGINS may call the API; any other page gets a 403 it can read and log."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from sveta.api.errors import ApiError
from sveta.api.overload import send_error
from sveta.api.uploads import MULTIPART_SLACK, drain

ALLOW_HEADERS = ("X-API-Key", "Content-Type", "X-Sveta-Surface", "X-Sveta-Page")
ALLOW_METHODS = ("GET", "POST")
MAX_AGE = 600  # seconds a browser may reuse a preflight's answer
PUBLIC = frozenset({"/widget.js"})  # public code any page may load: its own route says Access-Control-Allow-Origin: *


class CrossOrigin:
    """ASGI middleware for requests a browser sends from another origin's page (they carry an ``Origin`` header).

    An allowed origin gets the CORS headers (Starlette's middleware: preflights answered, the origin echoed). A
    foreign origin that is not allowed is refused here, before any route runs, with a 403 whose body says which
    origin and which setting; it carries ``Access-Control-Allow-Origin`` for that origin, and its preflight passes,
    only so that the widget on that page can read the refusal and log it: the request itself never reaches a route,
    and the answer holds nothing but the refusal. Same-origin requests and requests without ``Origin`` (curl, the
    CLI, ``<img>`` tags) pass untouched.
    """

    def __init__(self, app: ASGIApp, origins: list[str], max_body: int) -> None:
        self.app, self.origins, self.drain_most = app, frozenset(origins), max_body + MULTIPART_SLACK
        self.cors = CORSMiddleware(
            app, allow_origins=list(origins), allow_methods=ALLOW_METHODS, allow_headers=ALLOW_HEADERS, max_age=MAX_AGE
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else Headers()
        origin = headers.get("origin")
        if origin is None or scope["path"] in PUBLIC or same_origin(headers, origin):
            await self.app(scope, receive, send)
        elif origin.lower() in self.origins:
            await self.cors(scope, receive, send)
        elif scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _send_empty(send, 204, _readable_by(origin) + _preflight())
        else:
            await drain(receive, self.drain_most)  # a client still sending its upload would see a reset otherwise
            await send_error(send, refusal(origin))


def same_origin(headers: Headers, origin: str) -> bool:
    """Whether the page is the server's own: the browser says so (Sec-Fetch-Site), or the host is the same. The
    scheme is not compared: behind a TLS proxy the server sees http while the page is https."""
    if headers.get("sec-fetch-site") == "same-origin":
        return True
    host = headers.get("host", "").lower()
    return bool(host) and urlsplit(origin.lower()).netloc == host


def refusal(origin: str) -> ApiError:
    """The 403 a page of a foreign, not allowed origin gets, readable by that page so that the widget can log it."""
    shown = origin[:200]
    return ApiError(
        403,
        f"this page's origin {shown} is not allowed to use this sveta server",
        f"add {shown} to SVETA_CORS_ORIGINS on the server (comma-separated scheme://host[:port])",
        "origin_not_allowed",
        headers=dict(_readable_by(origin)),
    )


def _readable_by(origin: str) -> list[tuple[str, str]]:
    return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]


def _preflight() -> list[tuple[str, str]]:
    return [
        ("Access-Control-Allow-Methods", ", ".join(ALLOW_METHODS)),
        ("Access-Control-Allow-Headers", ", ".join(ALLOW_HEADERS)),
        ("Access-Control-Max-Age", str(MAX_AGE)),
    ]


async def _send_empty(send: Send, status: int, headers: list[tuple[str, str]]) -> None:
    raw = [(name.lower().encode(), value.encode("latin-1")) for name, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b""})
