"""`POST /api/look`: the garments a person wears in a photo (or a product shot's item), as `sveta look --json`."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query

from sveta.api.deps import Engines, get_engines, require_read, search_filter
from sveta.api.uploads import UploadedPhoto, label, uploaded_photo
from sveta.index.base import Filter

if TYPE_CHECKING:
    from sveta.look import Garment, Looker

router = APIRouter(prefix="/api", tags=["look"], dependencies=[Depends(require_read)])


@router.post("/look", summary="Garments in a photo of a person, each with its box, colour, category and matches")
def look(
    photo: UploadedPhoto = Depends(uploaded_photo),
    k: int = Query(5, ge=1, le=50, description="Matches per garment."),
    category: list[str] | None = Query(
        None, description="Search every garment in this category instead of its own likeliest ones; repeatable."
    ),
    flt: Filter = Depends(search_filter),
    engines: Engines = Depends(get_engines),
) -> dict[str, Any]:
    looker = engines.looker()
    with engines.look_lock:
        result = looker.look(photo.path, k)
        if category or not flt.is_empty():
            for garment in result.garments:
                _research(looker, garment, k, flt, category)
    filters = {"filters": _filter_summary(flt, category)} if category or not flt.is_empty() else {}
    return result.as_dict() | {"photo": photo.name, "upload": label(photo)} | filters


def _research(looker: Looker, garment: Garment, k: int, flt: Filter, category: list[str] | None) -> None:
    """The garment's matches again, from its masked crop, under the filters (in its own categories unless given)."""
    from sveta.images.prepare import standardise
    from sveta.look import WHITE

    if garment.crop is None:
        return
    embedder, searcher = looker.searcher.embedder, looker.searcher
    prepared = embedder.prepare(standardise(garment.crop, looker.settings.image_size, background=WHITE))
    vector = embedder.embed_prepared([prepared])[0]
    wanted = [_canonical(c) for c in category] if category else (garment.searched or None)
    garment.matches = searcher.search_vector(vector, garment.region, k, replace(flt, category=wanted), None).matches


def _canonical(name: str) -> str:
    from sveta.ingest.text_attributes import normalize_value

    return normalize_value("category", name) or name


def _filter_summary(flt: Filter, category: list[str] | None) -> dict[str, Any]:
    names = ("gender", "colour", "brand", "source", "price_min", "price_max", "available")
    summary = {n: getattr(flt, n) for n in names if getattr(flt, n) not in (None, [])}
    return ({"category": category} if category else {}) | summary
