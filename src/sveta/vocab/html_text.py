"""HTML as plain text, for product descriptions from stores and feeds; text any database can store."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# NUL, which PostgreSQL text refuses, and lone surrogates, which no UTF-8 encoder writes (JSON "\ud800" escapes).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def storable(text: str) -> str:
    """``text`` without NUL characters, its lone surrogates replaced: what SQLite and PostgreSQL both store."""
    if text.isascii() and "\x00" not in text:  # nearly every feed value: two C scans, no regex (a re-sync's cost)
        return text
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def html_to_text(html: object) -> str | None:
    """HTML (body_html, feed descriptions) as plain text: tags dropped, entities decoded, a line per block."""
    if not isinstance(html, str) or not html.strip():
        return None
    extractor = _TextExtractor()
    extractor.feed(storable(html))
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).splitlines())
    return "\n".join(line for line in lines if line) or None
