"""`sveta report searches`: the window parsed, the insights report made, and laid out as titled tables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sveta.catalog.insights import insights_report
from sveta.catalog.models import utcnow
from sveta.catalog.store import CatalogStore
from sveta.errors import InputError

UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
SINCE_HINT = "give a duration back from now (30m, 12h, 7d, 4w) or a date (2026-12-01, or 2026-12-01T08:00)"
_DURATION = re.compile(r"\s*(\d{1,6})\s*([mhdw])\s*", re.IGNORECASE)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """'30m', '12h', '7d', '4w' back from now, or an ISO date or time (UTC unless it names a zone)."""
    now = now or utcnow()
    if match := _DURATION.fullmatch(text):
        amount, unit = int(match.group(1)), match.group(2).lower()
        try:
            return now - amount * UNITS[unit]
        except OverflowError:
            raise InputError(f"since {text!r} reaches back before year 1", SINCE_HINT) from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"since {text!r} is neither a duration nor a date", SINCE_HINT) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment > now:
        raise InputError(f"since {text!r} is in the future", SINCE_HINT)
    return moment


def searches_report(catalog: CatalogStore, since: str = "7d", *, top: int = 20) -> dict[str, Any]:
    """The insights report of the window ``since`` (a duration or a date) until now."""
    if not 1 <= top <= 1000:
        raise InputError(f"--top {top} is out of range", "give a number from 1 to 1000")
    return insights_report(catalog, parse_since(since), top=top)


@dataclass(slots=True)
class Table:
    """One table of the report: a title, its column names and its rows (numbers right-aligned by the printer)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


def summary(report: dict[str, Any]) -> str:
    """One line: the window, searches, clicks, zero-result searches and the mean latency."""
    searches, clicks = report["searches"], report["clicks"]
    kinds = ", ".join(f"{kind} {n}" for kind, n in report["by_kind"].items()) or "none"
    latency = report["avg_latency_ms"]
    return (
        f"{searches} searches ({kinds}), {clicks} clicks, {report['zero_result_searches']} found nothing"
        + (f", {latency:.0f} ms on average" if latency is not None else "")
        + f"; {report['window']['since'][:16]} to {report['window']['until'][:16]} UTC"
    )


def report_tables(report: dict[str, Any], top: int = 20) -> list[Table]:
    """The report as tables: top queries, zero-result queries, queries with no clicks, surfaces, busiest hours."""
    hours = sorted((h for h in report["busiest_hours"] if h["searches"]), key=lambda h: (-h["searches"], h["hour"]))
    return [
        Table(
            "top queries",
            ["query", "searches", "avg results", "clicks"],
            [[q["query"], q["searches"], _num(q["avg_results"]), q["clicks"]] for q in report["top_queries"]],
        ),
        Table(
            "queries that found nothing",
            ["query", "searches", "last"],
            [[q["query"], q["searches"], (q["last"] or "")[:16]] for q in report["zero_result_queries"]],
        ),
        Table(
            "queries with results but no clicks",
            ["query", "searches", "avg results"],
            [[q["query"], q["searches"], _num(q["avg_results"])] for q in report["no_click_queries"]],
        ),
        Table(
            "click-through by surface",
            ["surface", "searches", "clicks", "ctr"],
            [[s["surface"], s["searches"], s["clicks"], f"{100 * s['ctr']:.0f}%"] for s in report["by_surface"]],
        ),
        Table(
            "busiest hours (UTC)",
            ["hour", "searches"],
            [[f"{h['hour']:02d}:00", h["searches"]] for h in hours[:top]],
        ),
    ]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
