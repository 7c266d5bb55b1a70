"""Merchandising rules in the catalog: checked and added, listed with contradictions, removed, read per request."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from sveta.catalog.models import MerchRule, Product, utcnow
from sveta.catalog.queries import product_cards, resolve_product
from sveta.catalog.store import CatalogStore
from sveta.errors import InputError
from sveta.vocab.reading import canonical, normalize_value

ACTIONS = ("pin", "boost", "bury", "hide")
TARGETS = ("product", "brand", "category")
SCOPES = ("query", "category", "everywhere")
DEFAULT_WEIGHT = 5.0  # boost / bury: the places a result moves when no weight is given
MAX_POSITION = 500  # a pin's place: no answer is longer (the API's k and the CLI's --k stop at 500)
MAX_WEIGHT = 1000.0
MAX_TEXT, MAX_NOTE = 512, 2000  # a target's and a scope's length (their columns'), a note's
_PUNCTUATION = re.compile(r"[^\w\s]+")


def normalise_words(text: str) -> str:
    """Query words as a query-scoped rule matches them: case-folded, punctuation dropped, spaces collapsed, so
    "Red  Dress!" is "red dress"."""
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


@dataclass(frozen=True, slots=True)
class Rule:
    """One stored rule; a product target is its catalog id (as text), a category its vocabulary name."""

    id: int
    action: str
    target_kind: str
    target: str
    scope_kind: str
    scope: str | None
    position: int | None
    weight: float | None
    starts_at: datetime | None
    ends_at: datetime | None
    note: str | None
    created_at: datetime

    @property
    def effect(self) -> tuple[str, int | None, float | None]:
        """What it does: two rules on one target and scope contradict when their effects differ."""
        return self.action, self.position, self.weight

    @property
    def where(self) -> str:
        """Its scope in words: the query's words, "in Dress" or "everywhere"."""
        if self.scope_kind == "query":
            return str(self.scope)
        return f"in {self.scope}" if self.scope_kind == "category" else "everywhere"

    def state(self, now: datetime) -> str:
        """scheduled (not started yet), active, or expired."""
        if self.starts_at is not None and self.starts_at > now:
            return "scheduled"
        return "expired" if self.ends_at is not None and self.ends_at <= now else "active"

    def as_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as a user asks for it (the CLI's flags, the API's body), before it is checked."""

    action: str
    target: str
    target_kind: str = "product"
    scope_kind: str = "everywhere"
    scope: str | None = None
    position: int | None = None
    weight: float | None = None
    starts_at: str | datetime | None = None
    ends_at: str | datetime | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ListedRule:
    """A rule as `sveta rules list` shows it: its state now, and which rule wins where two contradict."""

    rule: Rule
    state: str
    overridden_by: int | None  # a later rule on the same target and scope with another effect
    overrides: list[int]
    target_title: str | None  # a product target's source id and title

    def as_dict(self) -> dict[str, Any]:
        return self.rule.as_dict() | {
            "state": self.state,
            "overridden_by": self.overridden_by,
            "overrides": self.overrides,
            "target_title": self.target_title,
            "says": self.says,
        }

    @property
    def says(self) -> str:
        """The rule in one line, with the contradiction it is part of."""
        what = {"pin": f"pin to {self.rule.position}", "hide": "hide"}.get(self.rule.action)
        what = what or f"{self.rule.action} {self.rule.weight:g} places"
        target = self.target_title or self.rule.target
        line = f"{what}: {self.rule.target_kind} {target} ({self.rule.where})"
        if self.overridden_by is not None:
            line += f"; overridden by rule {self.overridden_by}"
        if self.overrides:
            line += "; overrides rule " + ", ".join(str(i) for i in self.overrides)
        return line


def add_rule(catalog: CatalogStore, spec: RuleSpec, *, now: datetime | None = None) -> Rule:
    """Check a rule (kinds, target, scope, place, weight, dates) and store it; its id orders it (later wins)."""
    now = now or utcnow()
    values = _checked(catalog, spec, now)

    def work(s: Session) -> Rule:
        row = MerchRule(**values, created_at=now)
        s.add(row)
        s.flush()
        return _rule(row)

    return catalog.write(work)


def remove_rule(catalog: CatalogStore, rule_id: int) -> Rule:
    """Delete a rule; the one removed, or an InputError when there is none."""

    def work(s: Session) -> Rule | None:
        row = s.get(MerchRule, rule_id)
        if row is None:
            return None
        gone = _rule(row)
        s.execute(delete(MerchRule).where(MerchRule.id == rule_id))
        return gone

    removed = catalog.write(work)
    if removed is None:
        raise InputError(f"no rule {rule_id}", "list them: sveta rules list --all (or GET /api/rules?all=true)")
    return removed


def active_rules(catalog: CatalogStore, at: datetime | None = None) -> list[Rule]:
    """The rules in force at ``at`` (default now), oldest first: one query on a small table."""
    at = at or utcnow()
    query = select(*_COLUMNS).where(
        or_(MerchRule.starts_at.is_(None), MerchRule.starts_at <= at),
        or_(MerchRule.ends_at.is_(None), MerchRule.ends_at > at),
    )
    with catalog.session() as s:  # columns, not ORM rows: a third of the time for 100 rules
        rows: list[Any] = list(s.execute(query.order_by(MerchRule.id)))
    return [Rule(*row) for row in rows]


def list_rules(catalog: CatalogStore, *, expired: bool = False, now: datetime | None = None) -> list[ListedRule]:
    """Active and scheduled rules (expired ones too with ``expired``), oldest first, contradictions named."""
    now = now or utcnow()
    with catalog.session() as s:
        rules = [_rule(row) for row in s.scalars(select(MerchRule).order_by(MerchRule.id))]
    live = [r for r in rules if r.state(now) != "expired"]
    winner = _overridden(live)
    products = [int(r.target) for r in rules if r.target_kind == "product"]
    cards = product_cards(catalog, products, photos=False)
    listed = []
    for r in rules:
        if r.state(now) == "expired" and not expired:
            continue
        card = cards.get(int(r.target)) if r.target_kind == "product" else None
        title = f"{card.source_id} {card.title}" if card else None
        overrides = sorted(i for i, w in winner.items() if w == r.id)
        listed.append(ListedRule(r, r.state(now), winner.get(r.id), overrides, title))
    return listed


def _overridden(rules: list[Rule]) -> dict[int, int]:
    """Rule id -> the latest rule that contradicts it: same target, another effect, scopes that meet (the same one,
    or either everywhere: a hide everywhere and a pin for "red dress" meet at "red dress") and times that overlap
    (the later rule wins where both apply)."""
    groups: dict[tuple[str, str], list[Rule]] = defaultdict(list)
    for r in rules:
        groups[(r.target_kind, r.target.casefold())].append(r)
    out: dict[int, int] = {}
    for group in groups.values():
        for n, early in enumerate(group):
            later = [r for r in group[n + 1 :] if r.effect != early.effect and _meet(early, r) and _overlap(early, r)]
            if later:
                out[early.id] = later[-1].id
    return out


def _meet(a: Rule, b: Rule) -> bool:
    everywhere = "everywhere" in (a.scope_kind, b.scope_kind)
    return everywhere or (a.scope_kind, a.scope) == (b.scope_kind, b.scope)


def _overlap(a: Rule, b: Rule) -> bool:
    start = max(a.starts_at or datetime.min.replace(tzinfo=UTC), b.starts_at or datetime.min.replace(tzinfo=UTC))
    end = min(a.ends_at or datetime.max.replace(tzinfo=UTC), b.ends_at or datetime.max.replace(tzinfo=UTC))
    return start < end


_COLUMNS = (
    MerchRule.id,
    MerchRule.action,
    MerchRule.target_kind,
    MerchRule.target,
    MerchRule.scope_kind,
    MerchRule.scope,
    MerchRule.position,
    MerchRule.weight,
    MerchRule.starts_at,
    MerchRule.ends_at,
    MerchRule.note,
    MerchRule.created_at,
)  # fmt: skip  (Rule's fields, in order)


def _rule(row: MerchRule) -> Rule:
    return Rule(
        row.id, row.action, row.target_kind, row.target, row.scope_kind, row.scope, row.position, row.weight,
        row.starts_at, row.ends_at, row.note, row.created_at,
    )  # fmt: skip


# -- checks ---------------------------------------------------------------------------------------


def _checked(catalog: CatalogStore, spec: RuleSpec, now: datetime) -> dict[str, Any]:
    """The columns of a new rule, each checked; an InputError names the first problem and its fix."""
    action = _one_of(spec.action, ACTIONS, "action")
    target_kind = _one_of(spec.target_kind, TARGETS, "target kind")
    scope_kind = _one_of(spec.scope_kind, SCOPES, "scope")
    starts_at, ends_at = _when(spec.starts_at, "start"), _when(spec.ends_at, "end", end=True)
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InputError(
            f"the rule ends ({ends_at:%Y-%m-%d %H:%M}) before it starts ({starts_at:%Y-%m-%d %H:%M})",
            "give an end (--until) after the start (--from)",
        )
    if ends_at is not None and ends_at <= now:
        raise InputError(f"the rule's end ({ends_at:%Y-%m-%d %H:%M} UTC) has passed", "give an end in the future")
    note = spec.note.strip() if spec.note and spec.note.strip() else None
    return {
        "action": action,
        "target_kind": target_kind,
        "target": _target(catalog, target_kind, spec.target),
        "scope_kind": scope_kind,
        "scope": _scope(catalog, scope_kind, spec.scope),
        "position": _position(action, spec.position),
        "weight": _weight(action, spec.weight),
        "starts_at": starts_at,
        "ends_at": ends_at,
        "note": _no_nul(note, "note", MAX_NOTE) if note else None,
    }


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    folded = value.strip().casefold()
    if folded not in allowed:
        raise InputError(f"unknown {what} {value[:40]!r}", f"give one of: {', '.join(allowed)}")
    return folded


def _no_nul(text: str, what: str, longest: int = MAX_TEXT) -> str:
    if "\x00" in text:  # PostgreSQL refuses text with one
        raise InputError(f"the {what} has a NUL character (\\x00)", f"remove it from the {what}")
    if len(text) > longest:  # the column's length: PostgreSQL refuses longer text
        raise InputError(f"the {what} is {len(text)} characters long", f"give at most {longest}")
    return text


def _target(catalog: CatalogStore, kind: str, target: str) -> str:
    text = _no_nul(target.strip(), "target")
    if not text:
        raise InputError(f"no {kind} given", f"name the {kind} the rule is about")
    if kind == "product":
        return str(resolve_product(catalog, text))
    return _brand(catalog, text) if kind == "brand" else _category(catalog, text)


def _scope(catalog: CatalogStore, kind: str, scope: str | None) -> str | None:
    if kind == "everywhere":
        if scope and scope.strip():
            raise InputError("a rule for everywhere takes no query or category", "leave --query / --in-category out")
        return None
    text = _no_nul((scope or "").strip(), "scope")
    if kind == "query":
        words = normalise_words(text)
        if not words:
            raise InputError("the rule's query has no words", 'give the words shoppers type, e.g. --query "red dress"')
        return words
    if not text:
        raise InputError("no category given for the rule's scope", "give one, e.g. --in-category Dress")
    return _category(catalog, text)


def _brand(catalog: CatalogStore, name: str) -> str:
    """The brand as the catalog spells it: a typo would make a rule that never applies."""
    found = _spelled(catalog, Product.brand, name)
    if found is None:
        raise InputError(f"no brand {name[:80]!r} in the catalog", "give a brand as products have it")
    return found


def _category(catalog: CatalogStore, name: str) -> str:
    """The vocabulary's name of a category (as products store it), or one a product of the catalog has."""
    if normalize_value("category", name) is not None:
        return canonical("category", name)
    found = _spelled(catalog, Product.category, name)
    if found is None:
        raise InputError(f"no category {name[:80]!r}", "give a category such as Dress or T-Shirt (sveta catalog stats)")
    return found


def _spelled(catalog: CatalogStore, column: Any, name: str) -> str | None:
    """How the catalog spells ``name`` in ``column`` (any case), or None when no product has it."""
    with catalog.session() as s:
        found = s.scalar(select(column).where(func.lower(column) == name.lower()).limit(1))
    return None if found is None else str(found)


def _position(action: str, position: int | None) -> int | None:
    if action != "pin":
        if position is not None:
            raise InputError(f"a {action} rule takes no position", "give a position (--position) to pin only")
        return None
    if position is None:
        return 1
    if not 1 <= position <= MAX_POSITION:
        raise InputError(f"position {position} is out of range", f"give a place from 1 (the top) to {MAX_POSITION}")
    return position


def _weight(action: str, weight: float | None) -> float | None:
    if action not in ("boost", "bury"):
        if weight is not None:
            raise InputError(f"a {action} rule takes no weight", "give a weight (--weight) to boost or bury only")
        return None
    if weight is None:
        return DEFAULT_WEIGHT
    if not 0 < weight <= MAX_WEIGHT:  # NaN fails this too
        raise InputError(
            f"weight {weight} is out of range", f"give the places to move, above 0 and up to {MAX_WEIGHT:g}"
        )
    return float(weight)


def _when(value: str | datetime | None, what: str, *, end: bool = False) -> datetime | None:
    """A rule's start or end: an ISO date or date and time; no zone is UTC; a date alone as an end means the end
    of that day (``--until 2026-12-24`` includes the 24th)."""
    if value is None or isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC) if value else None
    text = value.strip()
    try:
        if len(text) == 10:  # a date alone
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC) + (timedelta(days=1) if end else timedelta())
        parsed = datetime.fromisoformat(text)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # not a date, or past year 9999 once in UTC
        raise InputError(
            f"the {what} {text[:40]!r} is not a date", "give YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC unless a zone follows)"
        ) from None
