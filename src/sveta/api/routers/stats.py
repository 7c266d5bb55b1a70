"""`/api/stats` (catalog counts for the charts) and `/api/map` (the index's vectors in 2-D, cached per version)."""

from __future__ import annotations

import threading
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from sveta.api.deps import AppState, app_state, require_read
from sveta.api.schemas import CatalogMap, CatalogStats

router = APIRouter(prefix="/api", tags=["stats"], dependencies=[Depends(require_read)])
_MAP_LOCK = threading.Lock()  # one projection at a time: a t-SNE takes seconds of CPU


@router.get("/stats", summary="Catalog counts by category, gender, colour, source; frequent title words")
def stats(
    top_words: int = Query(25, ge=0, le=200, description="How many frequent title words."),
    state: AppState = Depends(app_state),
) -> CatalogStats:
    from sveta.catalog.stats import catalog_stats
    from sveta.index.catalog_index import index_config
    from sveta.index.versions import read_current

    config = index_config(state.settings)
    index = None
    if config is not None:
        version = read_current(state.settings.index_dir)
        index = {"vectors": config.count, "embedder": config.embedder, "kind": config.kind, "version": version}
    return CatalogStats.model_validate(catalog_stats(state.catalog(), top_words=top_words) | {"index": index})


@router.get("/map", summary="A 2-D map of the catalog's photos (PCA or t-SNE of the index's vectors)")
def catalog_map(
    method: Literal["pca", "tsne"] = Query("pca", description="'pca' (fast, up to 5,000 points) or 'tsne'."),
    limit: int = Query(5000, ge=1, le=5000, description="At most this many products (t-SNE: 1,000)."),
    state: AppState = Depends(app_state),
) -> CatalogMap:
    from sveta.index.projection import catalog_map as project

    engines = state.engines()
    searcher = engines.searcher()  # the live version's index, reloaded when CURRENT changes
    key = (engines.current_version(), len(searcher.index), method, limit)
    with _MAP_LOCK:
        cached: dict[tuple[Any, ...], CatalogMap] = state.cache.setdefault("map", {})
        if key not in cached:
            for old in [k for k in cached if k[:2] != key[:2]]:
                del cached[old]  # another index version: its maps are stale
            answer = project(state.catalog(), searcher.index, method, limit).as_dict() | {"version": key[0]}
            cached[key] = CatalogMap.model_validate(answer)
        return cached[key]
