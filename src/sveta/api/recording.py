"""Searches recorded for the insights: the engine call timed, the surface and page from the caller's headers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Header

from sveta.api.deps import AppState, app_state
from sveta.catalog.insights import SearchRecord, record_search
from sveta.catalog.store import CatalogStore

SURFACE_HEADER, PAGE_HEADER = "X-Sveta-Surface", "X-Sveta-Page"
SURFACES = frozenset({"api", "web", "widget-similar", "widget-complete", "widget-photo"})
MAX_PAGE = 512  # characters of a page address kept


def surface_of(value: str | None) -> str:
    """A known surface as sent (case and spaces aside); anything else, or none, is "api"."""
    name = (value or "").strip().lower()
    return name if name in SURFACES else "api"


def page_of(value: str | None) -> str | None:
    """The page's origin and path only: no query string or fragment (they can carry a shopper's data), no user
    name or password, capped at MAX_PAGE characters. None when nothing usable was sent."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number, a bracket left open
        return None
    if parts.scheme in ("http", "https") and host:
        host = f"[{host}]" if ":" in host else host
        page = f"{parts.scheme}://{host}{port}{parts.path or '/'}"
    elif not parts.scheme and not parts.netloc and parts.path.startswith("/"):
        page = parts.path  # a bare path, e.g. from a page that sends location.pathname
    else:
        return None
    return page[:MAX_PAGE]


class Stopwatch:
    """``with Stopwatch() as took: ...`` then ``took.ms``: the milliseconds the block ran."""

    def __init__(self) -> None:
        self.ms = 0.0
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.ms = (time.perf_counter() - self._start) * 1000


@dataclass
class Recorder:
    """Where a request came from (surface, page) and the catalog its searches are recorded in."""

    catalog: Callable[[], CatalogStore]
    days: int
    surface: str
    page: str | None

    def search(
        self, kind: str, query: str | None, understood: dict[str, Any], results: int, took: Stopwatch
    ) -> int | None:
        """The recorded search's id (an answer's ``search_id``); None when insights are off or the write failed."""
        if self.days <= 0:
            return None
        record = SearchRecord(kind, self.surface, query, results, took.ms, understood, self.page)
        return record_search(self.catalog(), self.days, record)


def word_matches(matches: Sequence[Any]) -> int:
    """The results a text search's words found (a title word, a category, a colour, a brand...): the look-alikes
    the vector part adds to any query, even "qqqq", are not an answer, so a query that found only those is recorded
    as finding nothing (a zero-result query: what the catalog lacks, or words it does not know)."""
    return sum(any(not w.startswith(LOOKS_LIKE) and not _rule_note(m, w) for w in m.why) for m in matches)


def _rule_note(match: Any, why: str) -> bool:
    return match.rule is not None and why == match.rule.says


LOOKS_LIKE = "looks like:"


def recorder(
    state: AppState = Depends(app_state),
    surface: str | None = Header(
        None,
        alias=SURFACE_HEADER,
        description="Where the call comes from: web, widget-similar, widget-complete or widget-photo (else api); "
        "recorded in the search insights.",
    ),
    page: str | None = Header(
        None,
        alias=PAGE_HEADER,
        description="The page the call comes from (origin and path; a query string is dropped before recording).",
    ),
) -> Recorder:
    return Recorder(state.catalog, state.settings.insights_days, surface_of(surface), page_of(page))


Recording = Annotated[Recorder, Depends(recorder)]
