"""`/api/sources` and `/api/crawl-runs`: register Shopify stores and feeds, crawl them in the background."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from sveta.api.crawls import CrawlOptions
from sveta.api.deps import AppState, RowId, app_state, get_catalog, require_read, require_write
from sveta.api.errors import API, ApiError, documented
from sveta.api.schemas import CrawlStarted, ListedSource, Source, SourceCrawlRun
from sveta.catalog import browse
from sveta.catalog.store import CatalogStore
from sveta.errors import ConfigError, InputError
from sveta.settings import Settings

router = APIRouter(prefix="/api", tags=["sources"], responses=documented(*API))
READ, WRITE = [Depends(require_read)], [Depends(require_write)]


class SourceIn(BaseModel):
    kind: Literal["shopify", "csv", "jsonl", "folder"] = Field("shopify", description="What the source is.")
    location: str = Field(..., min_length=1, description="A store URL (https://shop.example) or a server path.")
    name: str | None = Field(None, max_length=255, description="Feeds and folders only (a store is named by host).")


class CrawlIn(BaseModel):
    images: str | None = Field(None, description="Feeds: folder of photos (default: images/ beside the file).")
    mapping: dict[str, str] = Field(default_factory=dict, description="Feeds: FIELD -> COLUMN, as --map does.")


@router.get("/sources", summary="Sources with their product counts and latest crawl", dependencies=READ)
def sources(catalog: CatalogStore = Depends(get_catalog)) -> list[ListedSource]:
    return [ListedSource.model_validate(s) for s in browse.list_sources(catalog)]


@router.post(
    "/sources",
    status_code=201,
    summary="Register a Shopify store or a feed (201; 200 when it was registered already)",
    dependencies=WRITE,
    responses=documented(400, 409, 413, 507) | {200: {"model": Source, "description": "Registered already."}},
)
def add_source(body: SourceIn, response: Response, state: AppState = Depends(app_state)) -> Source:
    name, location = _where(body, state.settings)
    catalog = state.catalog()
    existing = browse.find_source(catalog, name)
    if existing is not None and existing.kind != body.kind:
        raise _taken(existing.kind, name)
    # One call registers the name: of several at once, one gets 201 and the others 200 (the same source).
    source_id, created = catalog.register_source(name, body.kind, location)
    source = browse.get_source(catalog, source_id)
    assert source is not None
    if source.kind != body.kind:  # registered by another kind between the check and the call
        raise _taken(source.kind, name)
    if not created:
        response.status_code = 200
    return Source.model_validate(browse.source_dict(source))


def _taken(kind: str, name: str) -> ApiError:
    return ApiError(409, f"a {kind} source is already named {name}", "give another name")


def _no_nul(value: str | None, what: str) -> None:
    """A NUL cannot be in a server path (the OS refuses it) nor in the catalog's text (PostgreSQL refuses it)."""
    if value is not None and "\x00" in value:
        raise InputError(f"the {what} has a NUL character (\\x00)", f"remove it from the {what}")


def _where(body: SourceIn, settings: Settings) -> tuple[str, str]:
    """(name, location) as `sveta ingest` names and locates the source."""
    _no_nul(body.location, "location")
    _no_nul(body.name, "name")
    if body.kind == "shopify":
        from sveta.ingest.shopify import normalize_base_url, source_name
        from sveta.net import check_url

        try:
            base = normalize_base_url(body.location)
        except ConfigError as exc:
            raise ApiError(422, exc.message, exc.hint, "input_error") from None
        check_url(base, settings.allowed_private_hosts)
        return source_name(base), base
    path = Path(body.location).expanduser().resolve()
    if body.kind == "folder":
        if not path.is_dir():
            raise InputError(f"folder not found on the server: {path}", "give a folder of category sub-folders")
        return body.name or f"folder:{path.name}", str(path)
    if not path.is_file():
        raise InputError(f"feed file not found on the server: {path}", "give the path of a CSV or JSONL file")
    return body.name or f"{body.kind}:{path.parent.name}/{path.name}", str(path)


@router.post(
    "/sources/{source_id}/crawl",
    status_code=202,
    summary="Start a crawl of the source in the background; returns its crawl run",
    dependencies=WRITE,
    responses=documented(400, 404, 409, 413, 502, 504, 507),
)
def crawl(source_id: RowId, body: CrawlIn | None = None, state: AppState = Depends(app_state)) -> CrawlStarted:
    _no_nul(body.images if body else None, "images folder")
    source = browse.get_source(state.catalog(), source_id)
    if source is None:
        raise ApiError(404, f"no source {source_id}", "list them: GET /api/sources")
    assert state.crawls is not None
    options = CrawlOptions(body.images, dict(body.mapping)) if body else None
    run_id = state.crawls.start(source, options)
    href = f"/api/crawl-runs/{run_id}"
    return CrawlStarted(run_id=run_id, source_id=source.id, source=source.name, status="running", href=href)


@router.get("/crawl-runs", summary="Crawl runs, newest first", dependencies=READ)
def crawl_runs(
    source: str | None = Query(None, description="Only this source's runs (its name)."),
    limit: int = Query(20, ge=1, le=500),
    catalog: CatalogStore = Depends(get_catalog),
) -> list[SourceCrawlRun]:
    return [SourceCrawlRun.model_validate(run) for run in browse.list_runs(catalog, source, limit)]


@router.get(
    "/crawl-runs/{run_id}",
    summary="One crawl run: status, counts, errors",
    dependencies=READ,
    responses=documented(404),
)
def crawl_run(run_id: RowId, catalog: CatalogStore = Depends(get_catalog)) -> SourceCrawlRun:
    run = browse.get_run(catalog, run_id)
    if run is None:
        raise ApiError(404, f"no crawl run {run_id}", "list them: GET /api/crawl-runs")
    return SourceCrawlRun.model_validate(run)
