"""Search insights: each search and click recorded (no address, no user id), pruned after a retention, reported."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Float, Integer, cast, delete, extract, func, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from sveta.catalog.models import ClickEvent, SearchEvent, utcnow
from sveta.catalog.store import CatalogStore

log = logging.getLogger("sveta.insights")
MAX_QUERY = 500  # characters of a query kept: the API takes no longer words
PRUNE_EVERY_S = 3600.0  # a process deletes expired rows at most this often per catalog
TEXT = "text"
WORDS = frozenset({TEXT, "photo"})  # kinds whose query is words (a photo search refined by them)
_pruned: dict[str, float] = {}  # catalog URL -> when this process last pruned it (time.monotonic)
_prune_lock = threading.Lock()


@dataclass(slots=True)
class SearchRecord:
    """What one search asked, understood and found; where it came from (surface, page), never who asked."""

    kind: str  # text | photo | url | similar | complete
    surface: str
    query: str | None
    results: int
    latency_ms: float
    understood: dict[str, Any] = field(default_factory=dict)
    page: str | None = None


@dataclass(slots=True)
class ClickRecord:
    """A shopper opened the result at ``position`` (1-based) of search ``search_id`` (None: not known)."""

    product_id: int
    position: int
    surface: str
    search_id: int | None = None
    page: str | None = None


def normalise(query: str | None) -> str | None:
    """Case-folded, spaces collapsed, capped: how "Red  Dress" and "red dress" become one query."""
    if query is None:
        return None
    words = " ".join(query.split()).casefold()[:MAX_QUERY]
    return words or None


def record_search(catalog: CatalogStore, days: int, record: SearchRecord) -> int | None:
    """The new search event's id; None when insights are off (``days`` 0) or the write failed (logged: a search
    never fails for its record)."""
    if days <= 0:
        return None
    event = SearchEvent(
        kind=record.kind,
        surface=record.surface,
        query=normalise(record.query) if record.kind in WORDS else _capped(record.query),
        understood=record.understood,
        results=record.results,
        latency_ms=round(record.latency_ms, 2),
        page=record.page,
    )
    return _add(catalog, days, event, "search")


def record_click(catalog: CatalogStore, days: int, record: ClickRecord) -> tuple[int, int | None] | None:
    """The click event's id and the search it is tied to (None when that search is unknown or expired: the click
    is kept without it); None when insights are off or the write failed (logged)."""
    if days <= 0:
        return None

    def work(s: Session) -> tuple[int, int | None]:
        search_id = record.search_id
        if search_id is not None and s.get(SearchEvent, search_id) is None:
            search_id = None
        event = ClickEvent(
            search_id=search_id,
            product_id=record.product_id,
            surface=record.surface,
            position=record.position,
            page=record.page,
        )
        s.add(event)
        s.flush()
        return event.id, search_id

    try:
        recorded = catalog.write(work)
    except Exception as exc:  # a click that cannot be kept is logged, never an error for the shopper
        log.warning("click not recorded: %s", exc)
        return None
    prune_due(catalog, days)
    return recorded


def _add(catalog: CatalogStore, days: int, event: SearchEvent, what: str) -> int | None:
    def work(s: Session) -> int:
        s.add(event)
        s.flush()
        return event.id

    try:
        event_id = catalog.write(work)
    except Exception as exc:  # the search answered; its record is not worth a failed answer
        log.warning("%s not recorded: %s", what, exc)
        return None
    prune_due(catalog, days)
    return event_id


def _capped(text: str | None) -> str | None:
    """A product reference or an address as sent (trimmed and capped): case may matter in them."""
    if text is None:
        return None
    return text.strip()[:MAX_QUERY] or None


# -- retention ---------------------------------------------------------------------------------------


def prune(catalog: CatalogStore, days: int, now: datetime | None = None) -> int:
    """Delete the searches and clicks older than ``days`` days (0: keep nothing); returns the rows deleted."""
    cutoff = (now or utcnow()) - timedelta(days=days)

    def work(s: Session) -> int:
        searches = s.execute(delete(SearchEvent).where(SearchEvent.at < cutoff))
        clicks = s.execute(delete(ClickEvent).where(ClickEvent.at < cutoff))
        return int(getattr(searches, "rowcount", 0) or 0) + int(getattr(clicks, "rowcount", 0) or 0)

    return catalog.write(work)


def prune_due(catalog: CatalogStore, days: int) -> None:
    """Prune when this process has not pruned this catalog in the last hour: one indexed DELETE per hour, not per
    search. A failure is logged: the next due time tries again."""
    key, now = str(catalog.engine.url), time.monotonic()
    with _prune_lock:
        last = _pruned.get(key)
        if last is not None and now - last < PRUNE_EVERY_S:
            return
        _pruned[key] = now
    try:
        deleted = prune(catalog, days)
    except Exception as exc:  # retention waits for the next hour; recording goes on
        log.warning("old insights not pruned: %s", exc)
        return
    if deleted:
        log.info("pruned %d insight records older than %d days", deleted, days)


# -- the report ----------------------------------------------------------------------------------------


def insights_report(
    catalog: CatalogStore, since: datetime, until: datetime | None = None, *, top: int = 20
) -> dict[str, Any]:
    """What was searched between ``since`` and ``until`` (default now), grouped on the database; the keys are a
    stable interface (``sveta report searches --json``, ``GET /api/insights``)."""
    until = until or utcnow()
    window = (SearchEvent.at >= since) & (SearchEvent.at <= until)
    with catalog.session() as s:
        searches = s.scalar(select(func.count(SearchEvent.id)).where(window)) or 0
        clicks = s.scalar(select(func.count(ClickEvent.id)).where(ClickEvent.at >= since, ClickEvent.at <= until))
        kinds = s.execute(select(SearchEvent.kind, func.count()).where(window).group_by(SearchEvent.kind))
        return {
            "window": {"since": since.astimezone(UTC).isoformat(), "until": until.astimezone(UTC).isoformat()},
            "searches": searches,
            "clicks": clicks or 0,
            "by_kind": dict(sorted(((kind, n) for kind, n in kinds), key=lambda kv: (-kv[1], kv[0]))),
            "zero_result_searches": s.scalar(select(func.count()).where(window, SearchEvent.results == 0)) or 0,
            "clicked_searches": _clicked_searches(s, window, since),
            "avg_latency_ms": _rounded(s.scalar(select(func.avg(SearchEvent.latency_ms)).where(window))),
            "top_queries": _top_queries(s, window, since, top),
            "zero_result_queries": _zero_result_queries(s, window, top),
            "no_click_queries": _no_click_queries(s, window, since, top),
            "by_surface": _by_surface(s, window, since, until),
            "busiest_hours": _busiest_hours(s, window),
        }


def _clicks_per_search(since: datetime) -> Any:
    """One row per clicked search: its id and its clicks (joined to searches without multiplying their rows); a
    click comes after its search, so only clicks since the window's start are read."""
    return (
        select(ClickEvent.search_id, func.count().label("clicks"))
        .where(ClickEvent.search_id.is_not(None), ClickEvent.at >= since)
        .group_by(ClickEvent.search_id)
        .subquery()
    )


def _clicked_searches(s: Session, window: ColumnElement[bool], since: datetime) -> int:
    clicked = _clicks_per_search(since)
    return (
        s.scalar(
            select(func.count())
            .select_from(SearchEvent)
            .join(clicked, clicked.c.search_id == SearchEvent.id)
            .where(window)
        )
        or 0
    )


def _top_queries(s: Session, window: ColumnElement[bool], since: datetime, top: int) -> list[dict[str, Any]]:
    clicked = _clicks_per_search(since)
    searches = func.count(SearchEvent.id)
    rows = s.execute(
        select(
            SearchEvent.query,
            searches,
            func.avg(cast(SearchEvent.results, Float)),
            func.coalesce(func.sum(clicked.c.clicks), 0),
        )
        .outerjoin(clicked, clicked.c.search_id == SearchEvent.id)
        .where(window, SearchEvent.kind == TEXT, SearchEvent.query.is_not(None))
        .group_by(SearchEvent.query)
        .order_by(searches.desc(), SearchEvent.query)
        .limit(top)
    )
    return [{"query": q, "searches": n, "avg_results": _rounded(avg), "clicks": int(c)} for q, n, avg, c in rows]


def _zero_result_queries(s: Session, window: ColumnElement[bool], top: int) -> list[dict[str, Any]]:
    searches = func.count(SearchEvent.id)
    rows = s.execute(
        select(SearchEvent.query, searches, func.max(SearchEvent.at))
        .where(window, SearchEvent.kind == TEXT, SearchEvent.query.is_not(None), SearchEvent.results == 0)
        .group_by(SearchEvent.query)
        .order_by(searches.desc(), SearchEvent.query)
        .limit(top)
    )
    return [{"query": q, "searches": n, "last": _iso(last)} for q, n, last in rows]


def _no_click_queries(s: Session, window: ColumnElement[bool], since: datetime, top: int) -> list[dict[str, Any]]:
    """Text queries that showed results and whose searches got no click at all."""
    clicked = _clicks_per_search(since)
    searches = func.count(SearchEvent.id)
    rows = s.execute(
        select(SearchEvent.query, searches, func.avg(cast(SearchEvent.results, Float)))
        .outerjoin(clicked, clicked.c.search_id == SearchEvent.id)
        .where(window, SearchEvent.kind == TEXT, SearchEvent.query.is_not(None), SearchEvent.results > 0)
        .group_by(SearchEvent.query)
        .having(func.count(clicked.c.search_id) == 0)
        .order_by(searches.desc(), SearchEvent.query)
        .limit(top)
    )
    return [{"query": q, "searches": n, "avg_results": _rounded(avg)} for q, n, avg in rows]


def _by_surface(s: Session, window: ColumnElement[bool], since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per surface: its searches, the clicks made on it, and its click-through (the share of its searches that got
    at least one click)."""
    clicked = _clicks_per_search(since)
    searched = s.execute(
        select(SearchEvent.surface, func.count(SearchEvent.id), func.count(clicked.c.search_id))
        .outerjoin(clicked, clicked.c.search_id == SearchEvent.id)
        .where(window)
        .group_by(SearchEvent.surface)
    )
    clicks = dict(
        s.execute(
            select(ClickEvent.surface, func.count())
            .where(ClickEvent.at >= since, ClickEvent.at <= until)
            .group_by(ClickEvent.surface)
        ).all()
    )
    rows = {surface: (n, hit) for surface, n, hit in searched}
    out = [
        {
            "surface": surface,
            "searches": rows.get(surface, (0, 0))[0],
            "clicks": clicks.get(surface, 0),
            "ctr": round(rows[surface][1] / rows[surface][0], 4) if rows.get(surface, (0, 0))[0] else 0.0,
        }
        for surface in {*rows, *clicks}
    ]
    return sorted(out, key=lambda row: (-row["searches"], -row["clicks"], row["surface"]))


def _busiest_hours(s: Session, window: ColumnElement[bool]) -> list[dict[str, Any]]:
    """Searches per hour of the day (UTC), all 24 hours in order (a chart's bars)."""
    hour = _hour_utc(s)
    counts = dict(s.execute(select(hour, func.count()).where(window).group_by(hour)).all())
    return [{"hour": h, "searches": int(counts.get(h, 0))} for h in range(24)]


def _hour_utc(s: Session) -> ColumnElement[int]:
    if s.get_bind().dialect.name == "sqlite":  # stored as UTC text: 'YYYY-MM-DD HH:MM:SS.ffffff'
        return cast(func.strftime("%H", SearchEvent.at), Integer)
    # timestamptz's hour is the session's time zone's unless asked for UTC
    return cast(extract("hour", func.timezone(literal_column("'UTC'"), SearchEvent.at)), Integer)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).isoformat()
