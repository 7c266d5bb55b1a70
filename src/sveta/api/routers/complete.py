"""`/api/complete`: complete the look for a catalog product or a photo, as `sveta complete --json`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from sveta.api.deps import Engines, get_engines, product_or_404, require_read
from sveta.api.errors import API, documented
from sveta.api.overload import Heavy
from sveta.api.recording import Recorder, Recording, Stopwatch
from sveta.api.schemas import Completion, PhotoCompletion
from sveta.api.uploads import UploadedPhoto, label, uploaded_photo

router = APIRouter(prefix="/api", tags=["complete"], dependencies=[Depends(require_read)], responses=documented(*API))

UNDERSTOOD = ("category", "slot", "gender", "colour")  # of the piece, recorded with a completion
K = Query(3, ge=1, le=50, description="How many items per slot.")


@router.get(
    "/complete/{ref}",
    summary="The best items of each slot that completes a catalog product",
    responses=documented(404),
)
def complete_product(ref: str, recorder: Recording, k: int = K, engines: Engines = Depends(get_engines)) -> Completion:
    product_or_404(engines.catalog, ref)  # an unknown product is a 404 even before there is an index
    completer = engines.completer()
    with Stopwatch() as took:
        answer = completer.complete(completer.piece_of_product(ref), k).as_dict()
    return Completion.model_validate(answer | {"search_id": _record(recorder, ref, answer, took)})


@router.post(
    "/complete",
    summary="The best items of each slot that completes the piece in a photo",
    responses=documented(400, 413, 415, 503, 507, overloaded=True),
)
async def complete_photo(
    heavy: Heavy,
    recorder: Recording,
    photo: UploadedPhoto = Depends(uploaded_photo),
    k: int = K,
    engines: Engines = Depends(get_engines),
) -> PhotoCompletion:
    return await heavy.run(lambda: _complete_photo(engines, recorder, photo, k))


def _complete_photo(engines: Engines, recorder: Recorder, photo: UploadedPhoto, k: int) -> PhotoCompletion:
    from sveta.engines.complete import piece_of_photo

    completer, searcher = engines.completer(), engines.searcher()
    with Stopwatch() as took:
        piece = piece_of_photo(completer, searcher, photo.path)
        piece.label, piece.image_path = photo.name, None  # the temp file is gone once answered
        answer = completer.complete(piece, k).as_dict()
    search_id = _record(recorder, None, answer, took)
    return PhotoCompletion.model_validate(answer | {"photo": label(photo), "search_id": search_id})


def _record(recorder: Recorder, ref: str | None, answer: dict[str, Any], took: Stopwatch) -> int | None:
    """A completion in the insights: what the piece was read as (its category, slot, gender, colour), and its
    items; the query is the product it started from (None for a photo)."""
    piece = answer.get("piece") or {}
    understood = {key: piece[key] for key in UNDERSTOOD if piece.get(key) is not None}
    return recorder.search("complete", ref, understood, len(answer.get("items") or []), took)
