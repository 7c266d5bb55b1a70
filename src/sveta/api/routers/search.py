"""`/api/search/*` and `/api/products/{ref}/similar`: visual and text search with filters, as `sveta search --json`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Query
from pydantic import BaseModel, Field

from sveta.api.deps import Engines, get_engines, product_or_404, require_read, search_filter
from sveta.api.errors import API, documented
from sveta.api.overload import Heavy
from sveta.api.recording import Recorder, Recording, Stopwatch, page_of, word_matches
from sveta.api.schemas_search import PhotoSearchAnswer, SearchAnswer
from sveta.api.uploads import UploadedPhoto, label, uploaded_photos
from sveta.index.base import Filter
from sveta.net import check_url

router = APIRouter(prefix="/api", tags=["search"], dependencies=[Depends(require_read)], responses=documented(*API))

K = Query(10, ge=1, le=500, description="How many products.")
CATEGORY_AUTO = Query("auto", description="'auto' (predicted from the neighbours), a category name, or 'any'.")


class UrlQuery(BaseModel):
    url: str = Field(
        ..., max_length=8192, description="An http(s) image URL; fetched through the SSRF guard and the image cache."
    )


@router.post(
    "/search/photo",
    summary="Products that look like uploaded photos, refined by words",
    responses=documented(400, 413, 415, 503, 507, overloaded=True),
)
async def search_photo(
    heavy: Heavy,
    recorder: Recording,
    photos: list[UploadedPhoto] = Depends(uploaded_photos),
    text: str | None = Form(
        None, max_length=500, description="Words that refine the photos' look, e.g. 'in red', 'with long sleeves'."
    ),
    k: int = K,
    category: str = CATEGORY_AUTO,
    flt: Filter = Depends(search_filter),
    engines: Engines = Depends(get_engines),
) -> PhotoSearchAnswer:
    """One photo, or several (results look like any of them); with ``text``, what the words ask for too (a colour,
    a brand, a price, "not black"), with what they were understood as and why each result matched."""
    return await heavy.run(lambda: _search_photo(engines, recorder, photos, text, k, _category(category), flt))


def _search_photo(
    engines: Engines,
    recorder: Recorder,
    photos: list[UploadedPhoto],
    text: str | None,
    k: int,
    category: str | None,
    flt: Filter,
) -> PhotoSearchAnswer:
    words = text if text and text.strip() else None  # as sent: the understood spans index these very characters
    with Stopwatch() as took:
        result = engines.searcher().search_photo([photo.path for photo in photos], k, flt, category, text=words)
    names = ", ".join(photo.name for photo in photos)
    result.query = f"{names} + {words.strip()}" if words else names
    labels = [label(photo) for photo in photos]
    search_id = recorder.search("photo", words, result.understood, len(result.matches), took)
    answer = result.as_dict() | {"photo": labels[0], "photos": labels, "search_id": search_id}
    return PhotoSearchAnswer.model_validate(answer)


@router.post(
    "/search/url",
    summary="Products that look like the photo at a URL",
    responses=documented(400, 413, 502, 503, 507, overloaded=True),
)
async def search_url(
    heavy: Heavy,
    recorder: Recording,
    body: UrlQuery,
    k: int = K,
    category: str = CATEGORY_AUTO,
    flt: Filter = Depends(search_filter),
    engines: Engines = Depends(get_engines),
) -> SearchAnswer:
    return await heavy.run(lambda: _search_url(engines, recorder, body.url.strip(), k, _category(category), flt))


def _search_url(
    engines: Engines, recorder: Recorder, url: str, k: int, category: str | None, flt: Filter
) -> SearchAnswer:
    check_url(url, engines.settings.allowed_private_hosts)  # only http(s), never a server path or a file:// URL
    with Stopwatch() as took:
        result = engines.searcher().search_photo(url, k, flt, category)
    search_id = recorder.search("url", page_of(url), result.understood, len(result.matches), took)  # no query string
    return SearchAnswer.model_validate(result.as_dict() | {"search_id": search_id})


@router.get("/search/text", summary="Products that match a description")
def search_text(
    recorder: Recording,
    q: str = Query(..., min_length=1, max_length=500, description="The description, e.g. 'navy blue formal shirt'."),
    k: int = K,
    category: str = Query("any", description="'any' (default) or a category name."),
    flt: Filter = Depends(search_filter),
    engines: Engines = Depends(get_engines),
) -> SearchAnswer:
    wanted = None if category in ("any", "auto") else category  # a description names its category itself
    with Stopwatch() as took:
        result = engines.searcher().search_text(q, k, flt, wanted)
    search_id = recorder.search("text", q, result.understood, word_matches(result.matches), took)
    return SearchAnswer.model_validate(result.as_dict() | {"search_id": search_id})


@router.get("/products/{ref}/similar", summary="Products that look like a catalog product", responses=documented(404))
def similar(
    ref: str,
    recorder: Recording,
    k: int = K,
    category: str = Query("any", description="'any' (default), 'auto', or a category name."),
    flt: Filter = Depends(search_filter),
    engines: Engines = Depends(get_engines),
) -> SearchAnswer:
    product_or_404(engines.catalog, ref)  # an unknown product is a 404 even before there is an index
    with Stopwatch() as took:
        result = engines.searcher().similar(ref, k, flt, _category(category))
    search_id = recorder.search("similar", ref, result.understood, len(result.matches), took)
    return SearchAnswer.model_validate(result.as_dict() | {"search_id": search_id})


def _category(value: str) -> str | None:
    return None if value == "any" else value
