"""Merchandising rules applied to a ranked list: hide, bury, boost and pin; each moved result says which rule.

A rule applies to a result in a context when its target matches the result (the product, its brand, its category)
and its scope matches the context: everywhere always; a query when the request's words, normalised (case-folded,
punctuation dropped, spaces collapsed), equal the rule's; a category when the request is in that category (the
category searched or understood from the words, a similar product's own, a completed piece's) or, for all but a
pin, when the result is of that category. Where several rules apply to one result the latest (highest id) wins.

- hide: the result is left out.
- boost / bury: the result moves up / down ``weight`` places of the ranked list (ranks, not scores: the engines'
  scores are on different scales, and "up 5 places" is what a merchandiser can check). Several moves are applied
  together: each result's rank plus or minus its weight, the lists re-sorted.
- pin: the product is put at ``position`` (1 is the top), found by the search or not; a brand or category pin
  puts its best-ranked result there. A pinned product still obeys the request's hard filters (its gender, brand,
  price and category filters, the words' "not ..."), as every other result does. Of two pins on one place the
  later takes it and the earlier goes one down.

So that hiding and moving leave ``k`` results and can lift one from below the cut, the engines rank
``fetch_size(k)`` candidates when a rule could hide or move one, then cut to ``k`` after the rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sveta.catalog.queries import ProductCard, product_cards
from sveta.catalog.rules import Rule, normalise_words
from sveta.catalog.store import CatalogStore
from sveta.engines.intent import checker
from sveta.index.base import Filter
from sveta.vocab.reading import canonical

EXTRA = (10, 100)  # more candidates ranked when a rule could hide or move one: k more, at least 10, at most 100


class Steerable(Protocol):
    """What a rule can steer: a result with a product card (a search match, a complete suggestion)."""

    @property
    def card(self) -> ProductCard: ...


T = TypeVar("T", bound=Steerable)


@dataclass(frozen=True, slots=True)
class Context:
    """What a request is about: its normalised words (None without words) and the categories it is in."""

    words: str | None = None
    categories: frozenset[str] = frozenset()

    @classmethod
    def of(cls, words: str | None, *categories: str | None) -> Context:
        folded = frozenset(canonical("category", c).casefold() for c in categories if c and c.strip())
        return cls(normalise_words(words) if words else None, folded)


@dataclass(frozen=True, slots=True)
class Note:
    """The rule that moved a result, as the answer's ``rule`` field shows it."""

    id: int
    action: str
    says: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "says": self.says}


def relevant(rules: Sequence[Rule], context: Context) -> list[Rule]:
    """The rules that may apply to some result of this request, oldest first."""
    return sorted((r for r in rules if _may_apply(r, context)), key=lambda r: r.id)


def fetch_size(k: int, rules: Sequence[Rule], context: Context) -> int:
    """How many candidates to rank for ``k`` results: more when a rule could hide a result or move one up from
    below the cut (a product pin fetches its own product). The context's categories are not needed: a category
    predicted by the search itself is not known before it."""
    could = [r for r in rules if r.scope_kind != "query" or r.scope == context.words]
    if all(r.action == "pin" and r.target_kind == "product" for r in could):
        return k
    return k + min(max(k, EXTRA[0]), EXTRA[1])


def pinned_products(rules: Sequence[Rule], context: Context) -> list[int]:
    """The products that pins put into this request's results, found by the search or not."""
    return [int(r.target) for r in rules if r.action == "pin" and r.target_kind == "product" and _in(r, context)]


def pinned_cards(
    catalog: CatalogStore, rules: Sequence[Rule], context: Context, found: Sequence[Steerable], flt: Filter
) -> dict[int, ProductCard]:
    """The cards of pinned products the search did not find and that meet the request's filter ``flt``."""
    have = {item.card.product_id for item in found}
    wanted = [p for p in pinned_products(rules, context) if p not in have]
    allowed = checker(flt)
    return {pid: card for pid, card in product_cards(catalog, wanted).items() if allowed(card)}


def arrange(
    items: Sequence[T], rules: Sequence[Rule], context: Context, k: int, extra: Mapping[int, T] | None = None
) -> list[tuple[T, Note | None]]:
    """The first ``k`` of ``items`` (best first) after the rules, each with the note of the rule that moved it.

    ``extra``: pinned products the search did not find, by product id, as items (see ``pinned_cards``).
    """
    ordered = relevant(rules, context)
    keyed: list[tuple[float, int, int, T, Note | None]] = []
    pins: list[tuple[int, int, T, Note]] = []
    pinned: set[int] = set()  # a brand or category pin takes its best-ranked result only
    for n, item in enumerate(items):
        rule = _winner(ordered, context, item.card)
        if rule is None or (rule.action == "pin" and rule.id in pinned):
            keyed.append((n, 0, n, item, None))
        elif rule.action == "pin":
            pinned.add(rule.id)
            pins.append((rule.position or 1, rule.id, item, _note(rule)))
        elif rule.action != "hide":
            places = rule.weight or 0.0
            up = rule.action == "boost"
            keyed.append((n - places if up else n + places, -1 if up else 1, n, item, _note(rule)))
    have = {item.card.product_id for item in items}
    for pid, item in (extra or {}).items():
        rule = _winner(ordered, context, item.card)
        if pid not in have and rule is not None and rule.action == "pin" and rule.id not in pinned:
            pinned.add(rule.id)
            pins.append((rule.position or 1, rule.id, item, _note(rule)))
    keyed.sort(key=lambda t: t[:3])
    out: list[tuple[T, Note | None]] = [(item, note) for *_, item, note in keyed]
    for position, _, item, note in sorted(pins, key=lambda p: p[:2]):  # a later pin on a place pushes the earlier
        out.insert(min(position - 1, len(out)), (item, note))
    return out[:k]


def _winner(rules: Sequence[Rule], context: Context, card: ProductCard) -> Rule | None:
    """The latest of the rules that apply to this result in this context."""
    found = None
    for rule in rules:
        if _targets(rule, card) and (_in(rule, context) or _in_result_category(rule, card)):
            found = rule
    return found


def _targets(rule: Rule, card: ProductCard) -> bool:
    if rule.target_kind == "product":
        return rule.target == str(card.product_id)
    value = card.brand if rule.target_kind == "brand" else card.category
    return value is not None and value.casefold() == rule.target.casefold()


def _in(rule: Rule, context: Context) -> bool:
    """Whether the rule's scope is the request's."""
    if rule.scope_kind == "everywhere":
        return True
    if rule.scope_kind == "query":
        return context.words is not None and context.words == rule.scope
    return rule.scope is not None and rule.scope.casefold() in context.categories


def _in_result_category(rule: Rule, card: ProductCard) -> bool:
    """A category-scoped rule other than a pin also applies to the results of that category."""
    scoped = rule.scope_kind == "category" and rule.action != "pin" and rule.scope is not None
    return scoped and card.category is not None and card.category.casefold() == str(rule.scope).casefold()


def _may_apply(rule: Rule, context: Context) -> bool:
    return _in(rule, context) or (rule.scope_kind == "category" and rule.action != "pin")


def _note(rule: Rule) -> Note:
    if rule.action == "pin":
        did = f"pinned to {rule.position}"
    else:
        did = f"{'boosted' if rule.action == 'boost' else 'buried'} {rule.weight:g} places"
    return Note(rule.id, rule.action, f"{did} by rule {rule.id} ({rule.where})")


__all__ = ["Context", "Note", "arrange", "fetch_size", "pinned_cards", "pinned_products", "relevant"]
