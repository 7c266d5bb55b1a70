"""`POST /api/look`: the garments a person wears in a photo (or a product shot's item), as `sveta look --json`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from sveta.api.deps import Engines, get_engines, require_read
from sveta.api.uploads import UploadedPhoto, label, uploaded_photo

router = APIRouter(prefix="/api", tags=["look"], dependencies=[Depends(require_read)])


@router.post("/look", summary="Garments in a photo of a person, each with its box, colour, category and matches")
def look(
    photo: UploadedPhoto = Depends(uploaded_photo),
    k: int = Query(5, ge=1, le=50, description="Matches per garment."),
    engines: Engines = Depends(get_engines),
) -> dict[str, Any]:
    looker = engines.looker()
    with engines.look_lock:
        result = looker.look(photo.path, k)
    return result.as_dict() | {"photo": photo.name, "upload": label(photo)}
