"""`POST /api/look`: the garments a person wears in a photo (or a product shot's item), as `sveta look --json`."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Depends, Query

from sveta.api.deps import Engines, get_engines, require_read, search_filter
from sveta.api.errors import API, documented
from sveta.api.overload import Heavy
from sveta.api.schemas_look import LookAnswer
from sveta.api.uploads import UploadedPhoto, label, uploaded_photo
from sveta.index.base import Filter

router = APIRouter(prefix="/api", tags=["look"], dependencies=[Depends(require_read)], responses=documented(*API))


@router.post(
    "/look",
    response_model_exclude_unset=True,  # `filters` is in the answer only when filters were given
    summary="Garments in a photo of a person, each with its box, colour, category and matches",
    responses=documented(400, 413, 415, 503, 507, overloaded=True),
)
async def look(
    heavy: Heavy,
    photo: UploadedPhoto = Depends(uploaded_photo),
    k: int = Query(5, ge=1, le=50, description="Matches per garment."),
    category: list[str] | None = Query(
        None, description="Search every garment in this category instead of its own likeliest ones; repeatable."
    ),
    flt: Filter = Depends(search_filter),
    assume: bool = Query(
        True, description="Put the gender the wearer seems to be first (a gender filter overrides it); see `assumed`."
    ),
    engines: Engines = Depends(get_engines),
) -> LookAnswer:
    return await heavy.run(lambda: _look(engines, photo, k, replace(flt, category=category or None), assume))


def _look(engines: Engines, photo: UploadedPhoto, k: int, flt: Filter, assume: bool) -> LookAnswer:
    looker = engines.looker()
    with engines.look_lock:
        result = looker.look(photo.path, k, flt, assume)
    return LookAnswer.model_validate(result.as_dict() | {"photo": photo.name, "upload": label(photo)})
