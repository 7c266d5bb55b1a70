"""`GET /widget.js`: the storefront widget's web components, for a shop's theme (CORS by SVETA_CORS_ORIGINS)."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Header, Response

from sveta.web import STATIC

router = APIRouter(tags=["widget"], include_in_schema=False)
WIDGET = STATIC / "widget.js"
MAX_AGE = 300  # five minutes: an upgrade reaches the shops soon, and a revisit costs a 304 at most


@router.get("/widget.js")
def widget(if_none_match: str | None = Header(None)) -> Response:
    """The module, loadable from any origin: it is public code, and a page whose origin SVETA_CORS_ORIGINS does not
    name must run it to be told so (its API calls are the ones refused, with a message it logs)."""
    body = WIDGET.read_bytes()  # read per request (30 KB at most): a new file is served at once, no restart
    etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={MAX_AGE}",
        "Access-Control-Allow-Origin": "*",
    }
    if if_none_match and etag in {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
