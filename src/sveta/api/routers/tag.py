"""`POST /api/tag`: the attributes a photo shows, with calibrated confidences, as `sveta tag --json`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from sveta.api.deps import AppState, app_state, require_read
from sveta.api.errors import API, documented
from sveta.api.overload import Heavy
from sveta.api.schemas import TagAnswer
from sveta.api.uploads import UploadedPhoto, label, uploaded_photo

router = APIRouter(prefix="/api", tags=["tag"], dependencies=[Depends(require_read)], responses=documented(*API))


@router.post(
    "/tag",
    summary="Category, colour, gender, occasion... of a photo, each with its confidence",
    responses=documented(400, 413, 415, 503, 507, overloaded=True),
)
async def tag(
    heavy: Heavy, photo: UploadedPhoto = Depends(uploaded_photo), state: AppState = Depends(app_state)
) -> TagAnswer:
    return await heavy.run(lambda: _tag(state, photo))


def _tag(state: AppState, photo: UploadedPhoto) -> TagAnswer:
    from sveta.learn.tagging import tag_query

    result = tag_query(str(photo.path), state.settings, state.catalog, models=state.models)
    return TagAnswer.model_validate(result | {"query": photo.name, "photo": label(photo)})
