"""`/api/stats` (catalog counts and cross-tabs for the charts) and `/api/map` (the index's vectors in 2-D, cached)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Depends, Query, Response

from sveta.api.deps import AppState, app_state, require_read
from sveta.api.errors import API, documented
from sveta.api.overload import Heavy
from sveta.api.schemas import CatalogMap, CatalogStats
from sveta.api.schemas_insights import CatalogCrosstab

if TYPE_CHECKING:
    from sveta.index.projection import MapCache

router = APIRouter(prefix="/api", tags=["stats"], dependencies=[Depends(require_read)], responses=documented(*API))
_MAP_LOCK = threading.Lock()  # one map cache per app


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


@router.get("/stats/crosstab", summary="Products per category and gender, and per category and colour")
def crosstab(state: AppState = Depends(app_state)) -> CatalogCrosstab:
    from sveta.catalog.stats import catalog_crosstab

    return CatalogCrosstab.model_validate(catalog_crosstab(state.catalog()))


@router.get(
    "/map",
    summary="A 2-D map of the catalog's photos (PCA or t-SNE of the index's vectors)",
    responses=documented(503, overloaded=True),
)
async def catalog_map(
    heavy: Heavy,
    response: Response,
    method: Literal["pca", "tsne"] = Query("pca", description="'pca' or 'tsne' (made in the background)."),
    limit: int | None = Query(
        None, ge=1, description="At most this many products (default and most: 5,000; t-SNE: SVETA_MAP_POINTS)."
    ),
    state: AppState = Depends(app_state),
) -> CatalogMap:
    """Each method's map is made once per index version; a limit takes a smaller sample of it. The t-SNE map is made
    in the background: until it is there the answer is the PCA map, with status 'computing'."""
    return await heavy.run(lambda: _map(state, response, method, limit))


def _map(state: AppState, response: Response, method: str, limit: int | None) -> CatalogMap:
    from sveta.index.projection import PCA_POINTS

    engines = state.engines()
    index = engines.searcher().index  # the live version's index, reloaded when CURRENT changes
    key, maps = (engines.current_version(), len(index)), _map_cache(state)
    found = maps.tsne(key, state.catalog(), index) if method == "tsne" else None
    status = "computing" if method == "tsne" and found is None else "ready"
    if status == "computing":
        response.headers["Retry-After"] = "2"
    found = found or maps.pca(key, state.catalog(), index)
    most = maps.tsne_points if method == "tsne" else PCA_POINTS
    asked = most if limit is None else limit
    answer = found.head(min(asked, most)).as_dict() | {"version": key[0], "status": status}
    return CatalogMap.model_validate(answer | {"max_points": most, "clamped": asked > most})


def _map_cache(state: AppState) -> MapCache:
    """The app's maps of the live index version (made on first use)."""
    from sveta.index.projection import MapCache

    with _MAP_LOCK:
        maps: MapCache | None = state.cache.get("maps")
        if maps is None:
            maps = state.cache["maps"] = MapCache(state.settings.index_dir, state.settings.map_points)
        return maps
