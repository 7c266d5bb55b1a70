"""A store's robots.txt: parsed by urllib.robotparser, matched as RFC 9309 says (wildcards, longest rule)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from urllib.robotparser import RobotFileParser

_MAX_BYTES = 512 * 1024  # RFC 9309 asks crawlers to read at least 500 KiB; beyond that is noise or abuse


class RobotsRules:
    """The rules of the robots.txt group that applies to our User-Agent (no file: everything allowed)."""

    def __init__(self, text: str | None, user_agent: str) -> None:
        parser = RobotFileParser()
        parser.parse((text or "")[:_MAX_BYTES].splitlines())
        self.crawl_delay = _to_float(parser.crawl_delay(user_agent))
        # robotparser matches rules as plain prefixes, first rule wins; stores write "*" and "$" patterns
        # (Shopify's default file does), so the group is re-read and matched the way RFC 9309 says.
        self._rules = [(_compile(rule.path), rule.allowance) for rule in _group(parser, user_agent)]

    def allows(self, url: str) -> bool:
        """Whether our crawler may fetch ``url`` (a path with query, or a full URL); not one it cannot read."""
        try:
            target = _path_of(url)
        except ValueError:  # "http://[::1" and the like: not a URL we would fetch, so not one we may
            return False
        best_len, allowed = -1, True
        for (pattern, length), allowance in self._rules:
            if pattern.match(target) and (length > best_len or (length == best_len and allowance)):
                best_len, allowed = length, allowance
        return allowed


def _group(parser: RobotFileParser, user_agent: str) -> list[Any]:
    # The parsed entries are not in typeshed's stub, but they have been robotparser's data model for decades.
    for entry in getattr(parser, "entries", []):
        if entry.applies_to(user_agent):
            return list(entry.rulelines)
    default = getattr(parser, "default_entry", None)
    return list(default.rulelines) if default is not None else []


def _compile(path: str) -> tuple[re.Pattern[str], int]:
    # robotparser stores the path percent-quoted, so "*" arrives as %2A and "$" as %24.
    anchored = path.endswith("%24")
    body = path[:-3] if anchored else path
    regex = ".*".join(re.escape(part) for part in body.split("%2A"))
    return re.compile(regex + ("$" if anchored else "")), len(path)


def _path_of(url: str) -> str:
    """The URL's path and query, quoted the way robotparser quotes rule paths."""
    parts = urlsplit(unquote(url))
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return quote(target)


def _to_float(value: object) -> float | None:
    try:
        return float(value) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
