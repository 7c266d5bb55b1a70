"""`/api/complete`: complete the look for a catalog product or a photo, as `sveta complete --json`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from sveta.api.deps import Engines, get_engines, product_or_404, require_read
from sveta.api.schemas import Completion, PhotoCompletion
from sveta.api.uploads import UploadedPhoto, label, uploaded_photo

router = APIRouter(prefix="/api", tags=["complete"], dependencies=[Depends(require_read)])

K = Query(3, ge=1, le=50, description="How many items per slot.")


@router.get("/complete/{ref}", summary="The best items of each slot that completes a catalog product")
def complete_product(ref: str, k: int = K, engines: Engines = Depends(get_engines)) -> Completion:
    product_or_404(engines.catalog, ref)  # an unknown product is a 404 even before there is an index
    completer = engines.completer()
    return Completion.model_validate(completer.complete(completer.piece_of_product(ref), k).as_dict())


@router.post("/complete", summary="The best items of each slot that completes the piece in a photo")
def complete_photo(
    photo: UploadedPhoto = Depends(uploaded_photo), k: int = K, engines: Engines = Depends(get_engines)
) -> PhotoCompletion:
    from sveta.engines.complete import piece_of_photo

    completer, searcher = engines.completer(), engines.searcher()
    piece = piece_of_photo(completer, searcher, photo.path)
    piece.label, piece.image_path = photo.name, None  # the temp file is gone once answered
    return PhotoCompletion.model_validate(completer.complete(piece, k).as_dict() | {"photo": label(photo)})
