"""The web page at `/` and its static files at `/static/{name}`, from the sveta.web package."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from sveta.api.errors import ApiError
from sveta.web import STATIC

router = APIRouter(tags=["web"], include_in_schema=False)
NO_CACHE = {"Cache-Control": "no-cache"}  # revalidated each load: an upgrade shows at once


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=NO_CACHE)


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    """Only the files that are in the folder: no sub-paths, no dot-dot."""
    names = {p.name for p in STATIC.iterdir() if p.is_file()}
    if name not in names:
        raise ApiError(404, f"no static file {name!r}")
    media = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    return FileResponse(STATIC / name, media_type=media.get(STATIC.joinpath(name).suffix), headers=NO_CACHE)
