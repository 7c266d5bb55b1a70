"""`POST /api/tag`: the attributes a photo shows, with calibrated confidences, as `sveta tag --json`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from sveta.api.deps import AppState, app_state, require_read
from sveta.api.schemas import TagAnswer
from sveta.api.uploads import UploadedPhoto, label, uploaded_photo

router = APIRouter(prefix="/api", tags=["tag"], dependencies=[Depends(require_read)])


@router.post("/tag", summary="Category, colour, gender, occasion... of a photo, each with its confidence")
def tag(photo: UploadedPhoto = Depends(uploaded_photo), state: AppState = Depends(app_state)) -> TagAnswer:
    from sveta.learn.tagging import tag_query

    result = tag_query(str(photo.path), state.settings, state.catalog, models=state.models)
    return TagAnswer.model_validate(result | {"query": photo.name, "photo": label(photo)})
