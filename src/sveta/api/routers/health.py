"""`/healthz` (the process answers), `/readyz` (catalog reachable, index present), `/metrics` (Prometheus text)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse

from sveta._version import __version__
from sveta.api.deps import AppState, app_state
from sveta.api.errors import error_body
from sveta.api.schemas import Health, NotReady, Readiness
from sveta.errors import SvetaError

router = APIRouter(tags=["health"])
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> Health:
    return Health(status="ok", version=__version__)


@router.get(
    "/readyz",
    summary="Readiness: the catalog answers and the index exists",
    response_model=Readiness,
    responses={503: {"model": NotReady, "description": "Not ready: the failed checks and the error."}},
)
def readyz(state: AppState = Depends(app_state)) -> JSONResponse:
    checks = {"catalog": _catalog_check(state), "index": _index_check(state)}
    failed = [f"{name}: {c['error']}" for name, c in checks.items() if not c["ok"]]
    if not failed:
        return JSONResponse({"ready": True, "checks": checks})
    body = error_body(
        "not_ready", "; ".join(failed), "build the catalog and its index: sveta ingest, sveta index build"
    )
    return JSONResponse({"ready": False, "checks": checks, **body}, status_code=503)


def _catalog_check(state: AppState) -> dict[str, Any]:
    try:
        return {"ok": True, "products": state.catalog().count_products()}
    except SvetaError as exc:
        return {"ok": False, "error": exc.message}


def _index_check(state: AppState) -> dict[str, Any]:
    from sveta.index.catalog_index import index_config

    try:
        config = index_config(state.settings)
    except SvetaError as exc:
        return {"ok": False, "error": exc.message}
    if config is None:
        return {"ok": False, "error": "the catalog has no index yet"}
    return {"ok": True, "vectors": config.count, "embedder": config.embedder, "kind": config.kind}


@router.get(
    "/metrics",
    summary="Request counts, latencies and sizes in the Prometheus text format",
    response_class=PlainTextResponse,
)
def metrics(state: AppState = Depends(app_state)) -> PlainTextResponse:
    index, catalog = _index_check(state), _catalog_check(state)
    crawls = state.crawls.running() if state.crawls else 0
    gauges = {
        "sveta_index_vectors": ("Vectors in the live index.", float(index.get("vectors", 0))),
        "sveta_catalog_products": ("Products in the catalog.", float(catalog.get("products", 0))),
        "sveta_catalog_up": ("1 when the catalog database answers.", 1.0 if catalog["ok"] else 0.0),
        "sveta_crawls_running": ("Crawls this process is running.", float(crawls)),
    }
    return PlainTextResponse(state.metrics.render(gauges), media_type=PROMETHEUS_TYPE)
