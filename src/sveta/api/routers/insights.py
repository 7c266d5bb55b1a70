"""`/api/events/click` and `/api/insights`: clicks on results, and what shoppers searched (no address, no user id)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Query, Security
from pydantic import BaseModel, ConfigDict, Field

from sveta.api.deps import KEY_HEADER, AppState, api_key_header, app_state, get_settings, require_read
from sveta.api.errors import API, ApiError, documented
from sveta.api.recording import page_of, surface_of
from sveta.api.schemas_insights import ClickRecorded, InsightsReport
from sveta.catalog.insights import ClickRecord, record_click
from sveta.catalog.models import MAX_ID
from sveta.settings import Settings

router = APIRouter(prefix="/api", tags=["insights"], dependencies=[Depends(require_read)], responses=documented(*API))


class Click(BaseModel):
    """A shopper opened a result: the search that showed it (its answer's search_id) and where it was."""

    model_config = ConfigDict(extra="forbid")
    search_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="The answer's search_id; an unknown one is kept as null (not refused)."
    )
    product_id: int = Field(..., ge=0, le=MAX_ID, description="The product opened (its catalog id).")
    position: int = Field(..., ge=1, le=10_000, description="Its place in the results, from 1.")
    surface: str = Field(
        "api", max_length=64, description="web, widget-similar, widget-complete or widget-photo; anything else: api."
    )
    page: str | None = Field(None, max_length=8192, description="The page (kept as origin and path only).")


def require_owner(settings: Settings = Depends(get_settings), key: str | None = Security(api_key_header)) -> None:
    """The report shows what shoppers typed: with a public read key (SVETA_API_READ_KEY, in storefront pages) set,
    it needs the write key; otherwise it is a read like /api/stats."""
    if settings.api_read_key is None:
        return
    if settings.api_key is None:
        raise ApiError(
            403,
            "the search insights are closed while SVETA_API_READ_KEY is public and no SVETA_API_KEY is set",
            f"set SVETA_API_KEY on the server and send it in the {KEY_HEADER} header, or use `sveta report searches`",
        )
    if not key or not hmac.compare_digest(key.encode(), settings.api_key.get_secret_value().encode()):
        raise ApiError(401, "the search insights need the API key", f"send SVETA_API_KEY in the {KEY_HEADER} header")


@router.post(
    "/events/click",
    summary="Record a click on a search result (for the search insights)",
    responses=documented(400, 413, 507),
)
def click(body: Click, state: AppState = Depends(app_state)) -> ClickRecorded:
    """Kept for SVETA_INSIGHTS_DAYS days with no address or user id; with SVETA_INSIGHTS_DAYS=0 nothing is kept
    (recorded: false). A search_id that is not (or no longer) recorded is kept as null."""
    record = ClickRecord(body.product_id, body.position, surface_of(body.surface), body.search_id, page_of(body.page))
    kept = record_click(state.catalog(), state.settings.insights_days, record)
    if kept is None:
        return ClickRecorded(recorded=False, click_id=None, search_id=None)
    return ClickRecorded(recorded=True, click_id=kept[0], search_id=kept[1])


@router.get(
    "/insights",
    summary="What shoppers searched, found, missed and clicked (as `sveta report searches --json`)",
    dependencies=[Depends(require_owner)],
)
def insights(
    since: str = Query("7d", max_length=64, description="How far back: 30m, 12h, 7d, 4w, or a date (2026-12-01)."),
    top: int = Query(20, ge=1, le=1000, description="Rows per list (top, zero-result and no-click queries)."),
    state: AppState = Depends(app_state),
) -> InsightsReport:
    from sveta.ops.insights_report import searches_report

    return InsightsReport.model_validate(searches_report(state.catalog(), since, top=top))
