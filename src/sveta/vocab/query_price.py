"""Prices in a query's words: "under 50", "below $40", "over 100", "between 20 and 40", "20-40", "3k"."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

from sveta.vocab.query_words import query_words

# More than this is a product code or a typo, not a price ("under 99999999999").
MAX_PRICE = 1e9
_AMOUNT = re.compile(r"(\d[\d,]*(?:\.\d+)?)(\s*k(?!\w))?", re.IGNORECASE)
_WORD_BEFORE = re.compile(r"([^\W_]+)[^\w]*$")


@dataclass(frozen=True, slots=True)
class Price:
    """A price the words state: its lower and upper bound (None: open), and the characters that state it."""

    low: float | None
    high: float | None
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Pattern:
    kind: str  # "range", "max" or "min"
    regex: re.Pattern[str]
    leading_amount: bool  # the match opens with the number, so a unit word may stand before it ("size 32-34")


def read_prices(text: str) -> list[Price]:
    """Every price the text states, in text order; a range before a bound, as the patterns are tried."""
    taken: list[tuple[int, int]] = []
    prices: list[Price] = []
    for pattern in _patterns():
        for match in pattern.regex.finditer(text):
            if any(a < match.end() and match.start() < b for a, b in taken):
                continue
            if pattern.leading_amount and _after_unit(text, match.start()):
                continue
            price = _price(pattern.kind, match)
            if price is not None:
                taken.append((match.start(), match.end()))
                prices.append(price)
    return sorted(prices, key=lambda p: p.start)


def _price(kind: str, match: re.Match[str]) -> Price | None:
    amounts = [_amount(number, thousands) for number, thousands in _AMOUNT.findall(match.group())]
    if not amounts or any(a is None for a in amounts):
        return None
    values = sorted(a for a in amounts if a is not None)
    if kind == "range":
        return Price(values[0], values[-1], match.start(), match.end())
    bound = values[0]
    return Price(None, bound, *match.span()) if kind == "max" else Price(bound, None, *match.span())


def _amount(number: str, thousands: str) -> float | None:
    try:
        value = float(number.replace(",", "")) * (1000 if thousands else 1)
    except ValueError:
        return None
    return value if math.isfinite(value) and value <= MAX_PRICE else None


def _after_unit(text: str, start: int) -> bool:
    before = _WORD_BEFORE.search(text, 0, start)
    return before is not None and before.group(1).casefold() in query_words().units


@functools.lru_cache(maxsize=1)
def _patterns() -> tuple[_Pattern, ...]:
    words = query_words().price
    alt = {kind: _alternation(values) for kind, values in words.items()}
    money = f"(?:{alt['currency_symbols']}|{alt['currency_words']})"
    amount = rf"(?:{money}\.?\s*)?\d[\d,]*(?:\.\d+)?(?:\s*k(?!\w))?(?:\s*(?:{money}|/-))?(?!\w)(?!\s*{alt['units']})"
    lead = r"(?<![\w.,])"
    specs = [
        ("range", rf"(?<!\w){alt['range_before']}\s*{amount}\s*{alt['range_joiners']}\s*{amount}", False),
        ("range", rf"{lead}{amount}\s*{alt['bare_joiners']}\s*{amount}", True),
        ("max", rf"(?<!\w){alt['max_before']}\s*{amount}", False),
        ("max", rf"{lead}{amount}\s*{alt['max_after']}", True),
        ("min", rf"(?<!\w){alt['min_before']}\s*{amount}", False),
        ("min", rf"{lead}{amount}\s*{alt['min_after']}", True),
    ]
    return tuple(_Pattern(kind, re.compile(regex, re.IGNORECASE), lead) for kind, regex, lead in specs)


def _alternation(words: list[str]) -> str:
    """Longest first, inner spaces as any whitespace, and a word that ends in a letter ends at a word's end."""
    ordered = sorted(words, key=len, reverse=True)
    escaped = [r"\s+".join(map(re.escape, w.split())) + (r"(?!\w)" if w[-1].isalnum() else "") for w in ordered]
    return "(?:" + "|".join(escaped) + ")"


def price_text(value: float) -> str:
    """A price as the chips show it: 50, 19.99."""
    return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0")
