"""The insights' bodies: a click recorded, the searches report, and the catalog's cross-tabs."""

from __future__ import annotations

from pydantic import Field

from sveta.api.schemas import Schema


class ClickRecorded(Schema):
    """The answer to a click: whether it was kept, and the search it was tied to."""

    recorded: bool = Field(description="False when SVETA_INSIGHTS_DAYS is 0 (nothing is recorded) or the write failed.")
    click_id: int | None
    search_id: int | None = Field(description="The search the click is tied to; null when the one sent is unknown.")


class InsightsWindow(Schema):
    since: str = Field(description="ISO 8601, UTC.")
    until: str


class QueryCount(Schema):
    query: str
    searches: int


class TopQuery(QueryCount):
    avg_results: float | None
    clicks: int


class ZeroResultQuery(QueryCount):
    last: str | None = Field(description="When it last found nothing (ISO 8601, UTC).")


class NoClickQuery(QueryCount):
    avg_results: float | None


class SurfaceCount(Schema):
    surface: str = Field(description="api | web | widget-similar | widget-complete | widget-photo")
    searches: int
    clicks: int
    ctr: float = Field(description="The share of its searches that got at least one click.")


class HourCount(Schema):
    hour: int = Field(description="Hour of the day, UTC (0-23).")
    searches: int


class InsightsReport(Schema):
    """What shoppers searched, found, missed and clicked in a window (`sveta report searches --json`)."""

    window: InsightsWindow
    searches: int
    clicks: int
    by_kind: dict[str, int] = Field(description="Searches by kind: text, photo, url, similar, complete.")
    zero_result_searches: int
    clicked_searches: int = Field(description="Searches that got at least one click.")
    avg_latency_ms: float | None
    top_queries: list[TopQuery] = Field(
        description="Text queries (case-folded, spaces collapsed), most searched first."
    )
    zero_result_queries: list[ZeroResultQuery]
    no_click_queries: list[NoClickQuery] = Field(description="Queries that showed results and got no click.")
    by_surface: list[SurfaceCount]
    busiest_hours: list[HourCount] = Field(description="All 24 hours of the day (UTC), in order.")


class CatalogCrosstab(Schema):
    """Products per category and gender, and per category and colour (the first seed's cross-tab)."""

    gender_by_category: dict[str, dict[str, int]] = Field(description="Category -> gender -> products.")
    colour_by_category: dict[str, dict[str, int]] = Field(description="Category -> colour -> products.")
