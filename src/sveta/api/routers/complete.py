"""`/api/complete`: complete the look for a catalog product or a photo, as `sveta complete --json`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from sveta.api.deps import Engines, get_engines, product_or_404, require_read
from sveta.api.errors import API, documented
from sveta.api.overload import Heavy
from sveta.api.schemas import Completion, PhotoCompletion
from sveta.api.uploads import UploadedPhoto, label, uploaded_photo

router = APIRouter(prefix="/api", tags=["complete"], dependencies=[Depends(require_read)], responses=documented(*API))

K = Query(3, ge=1, le=50, description="How many items per slot.")


@router.get(
    "/complete/{ref}",
    summary="The best items of each slot that completes a catalog product",
    responses=documented(404),
)
def complete_product(ref: str, k: int = K, engines: Engines = Depends(get_engines)) -> Completion:
    product_or_404(engines.catalog, ref)  # an unknown product is a 404 even before there is an index
    completer = engines.completer()
    return Completion.model_validate(completer.complete(completer.piece_of_product(ref), k).as_dict())


@router.post(
    "/complete",
    summary="The best items of each slot that completes the piece in a photo",
    responses=documented(400, 413, 415, 503, 507, overloaded=True),
)
async def complete_photo(
    heavy: Heavy, photo: UploadedPhoto = Depends(uploaded_photo), k: int = K, engines: Engines = Depends(get_engines)
) -> PhotoCompletion:
    return await heavy.run(lambda: _complete_photo(engines, photo, k))


def _complete_photo(engines: Engines, photo: UploadedPhoto, k: int) -> PhotoCompletion:
    from sveta.engines.complete import piece_of_photo

    completer, searcher = engines.completer(), engines.searcher()
    piece = piece_of_photo(completer, searcher, photo.path)
    piece.label, piece.image_path = photo.name, None  # the temp file is gone once answered
    return PhotoCompletion.model_validate(completer.complete(piece, k).as_dict() | {"photo": label(photo)})
