"""Complete the look: per-catalog arrays loaded once, then a vectorised scorer and diverse picks per outfit slot."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.catalog.queries import ProductCard, product_cards, resolve_product
from sveta.catalog.rules import Rule, active_rules
from sveta.catalog.store import CatalogStore
from sveta.engines import merch
from sveta.engines.complete_photo import neighbour_votes, photo_colour
from sveta.engines.complete_reason import reason_of
from sveta.errors import InputError
from sveta.index.base import VectorIndex
from sveta.learn.store import ModelCache, has_model
from sveta.outfits.arrays import ADULT_GENDERS, KID_GENDERS, CatalogArrays, outfit_rules
from sveta.settings import Settings
from sveta.vocab import colour_harmony as ch

if TYPE_CHECKING:
    from sveta.engines.search import Searcher


# Weights of the score's parts (they sum to 1); two loud patterns then scale the sum down (colour_harmony).
WEIGHTS = {"occasion": 0.3, "colour": 0.2, "style": 0.2, "season": 0.1, "gender": 0.1, "price": 0.1}
GENDER_SCORES = {"same": 1.0, "unisex": 0.8, "unknown": 0.6}
SHORTLIST = 80  # per slot, the best-scored items the diverse picks are chosen from
COPY_PENALTY = 1.0  # times how far a candidate's style similarity to a pick exceeds NEAR_COPY
NEAR_COPY = 0.9  # tuned-space cosine above which two items of a slot look like copies (same-type pairs ~0.8)
REPEAT_PENALTY = (0.04, 0.02)  # per earlier pick of the same category, of the same colour: spreads a slot
LEARNED_WEIGHT = 0.3  # the trained outfit model's share of the score, when one was trained (sveta outfits train)


@dataclass
class Piece:
    """What is being completed: a catalog product or a photo, reduced to the fields the scorer compares."""

    label: str
    category: str | None
    slot: str
    gender: str | None
    kid: bool
    occasion: str | None
    season: str | None
    colour: str | None
    hue: float
    neutral: bool
    colour_known: bool
    loud: bool
    price: float | None
    vector: np.ndarray | None
    product_id: int | None = None
    image_path: str | None = None
    predicted: dict[str, str] = field(default_factory=dict)  # attribute -> how a photo's value was found
    outfit_vector: np.ndarray | None = None  # its place in the trained outfit model, when there is one

    def as_dict(self) -> dict[str, Any]:
        names = ("label", "product_id", "category", "slot", "gender", "occasion", "season", "colour", "price")
        out = {n: getattr(self, n) for n in names}
        return out | {
            "age_group": "Kids" if self.kid else "Adult",
            "loud_pattern": self.loud,
            "predicted": self.predicted,
        }


SUGGESTION_KEYS = (
    "product_id", "source_id", "slot", "title", "score", "reason", "category", "colour", "gender", "price",
    "image_path", "parts", "rule", "url", "handle", "currency",
)  # fmt: skip


@dataclass
class Suggestion:
    card: ProductCard
    slot: str
    score: float
    reason: str
    parts: dict[str, float]
    rule: merch.Note | None = None  # the merchandising rule that moved it

    def as_dict(self) -> dict[str, Any]:
        return self.card.pick(
            SUGGESTION_KEYS,
            slot=self.slot,
            score=round(self.score, 4),
            reason=self.reason,
            parts={k: round(v, 3) for k, v in self.parts.items()},
            rule=self.rule.as_dict() if self.rule else None,
        )


@dataclass
class CompleteResult:
    piece: Piece
    items: list[Suggestion]
    slots: list[str]
    ms: float  # the scoring and picking, once the arrays are loaded

    @property
    def looks(self) -> list[list[int]]:
        """Look n takes the n-th pick of every slot: several whole outfits, not one slot's near-copies."""
        by_slot: dict[str, list[int]] = defaultdict(list)
        for s in self.items:
            by_slot[s.slot].append(s.card.product_id)
        depth = max((len(v) for v in by_slot.values()), default=0)
        return [[by_slot[slot][n] for slot in self.slots if n < len(by_slot[slot])] for n in range(depth)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "piece": self.piece.as_dict(),
            "slots": self.slots,
            "items": [s.as_dict() for s in self.items],
            "looks": self.looks,
            "ms": round(self.ms, 2),
        }


class Completer:
    """Holds the catalog arrays (loaded once); ``complete`` is then one vectorised pass over them."""

    def __init__(
        self,
        catalog: CatalogStore,
        index: VectorIndex | None,
        settings: Settings | None = None,
        models: ModelCache | None = None,
    ) -> None:
        self.catalog = catalog
        self.arrays = CatalogArrays(catalog, index)
        self.models = models or ModelCache()  # the attribute model that tags photo pieces, loaded on the first one
        self.learned = None
        if settings is not None:  # the trained outfit model joins the score where the data home has one
            from sveta.outfits.scorer import LearnedCompatibility

            self.learned = LearnedCompatibility.load(self.arrays, catalog, settings)

    def piece_of_product(self, ref: str | int) -> Piece:
        product_id = resolve_product(self.catalog, ref)
        a = self.arrays
        row = a.row_of.get(product_id)
        if row is None:  # resolve_product saw it, so it was added after the arrays were loaded
            raise InputError(f"product {ref} is newer than the loaded catalog", "run the command again")
        category = a.categories.values[a.category[row]] or None
        slot = outfit_rules().slot(category)
        if slot is None:
            raise InputError(
                f"product {ref} ({category or 'no category'}) is not part of an outfit",
                "give a garment, shoes, a bag or an accessory",
            )
        return Piece(
            label=f"product {ref}",
            category=category,
            slot=slot,
            gender=a.genders.values[a.gender[row]] or None,
            kid=bool(a.kid[row]),
            occasion=a.occasions.values[a.occasion[row]] or None,
            season=a.seasons.values[a.season[row]] or None,
            colour=a.colour_names[row],
            hue=float(a.hue[row]),
            neutral=bool(a.neutral[row]),
            colour_known=bool(a.colour_known[row]),
            loud=bool(a.loud[row]),
            price=None if np.isnan(a.price[row]) else float(a.price[row]),
            vector=a.vectors[row] if a.has_vector[row] else None,
            product_id=product_id,
            outfit_vector=self.learned.vectors[row] if self.learned and self.learned.has_vector[row] else None,
        )

    def complete(self, piece: Piece, k: int = 3) -> CompleteResult:
        start = time.perf_counter()
        slots = [s for s in outfit_rules().completes.get(piece.slot, []) if s != piece.slot]
        score, parts, kinds = self.score(piece, slots)
        rules, context = active_rules(self.catalog), merch.Context.of(None, piece.category)
        picks: list[tuple[int, str]] = []
        for slot in slots:
            in_slot = self.arrays.slot == self.arrays.slots.get(slot)
            picks += [(row, slot) for row in self._pick(score, in_slot, merch.fetch_size(k, rules, context))]
        pinned = self._pinned(rules, context, score, slots, {r for r, _ in picks})
        picks += pinned
        ms = (time.perf_counter() - start) * 1000
        rows = [r for r, _ in picks]
        cards = product_cards(self.catalog, [int(self.arrays.product_ids[r]) for r in rows])
        items = []
        for row, slot in picks:
            card = cards.get(int(self.arrays.product_ids[row]))
            if card is not None:
                row_parts = {name: float(values[row]) for name, values in parts.items()}
                reason = reason_of(piece, card, row_parts, self.arrays, row, int(kinds[row]))
                items.append(Suggestion(card, slot, float(score[row]), reason, row_parts))
        extra = {int(self.arrays.product_ids[row]) for row, _ in pinned}
        return CompleteResult(piece, _steer(items, extra, rules, context, k, slots), slots, ms)

    def _pinned(
        self, rules: list[Rule], context: merch.Context, score: np.ndarray, slots: list[str], picked: set[int]
    ) -> list[tuple[int, str]]:
        """The rows of products pinned in this context that were not picked, in a completing slot, allowed."""
        a = self.arrays
        rows = [a.row_of[p] for p in merch.pinned_products(rules, context) if p in a.row_of]
        out = [(row, a.slots.values[a.slot[row]]) for row in rows if row not in picked and np.isfinite(score[row])]
        return [(row, slot) for row, slot in out if slot in slots]

    def score(
        self, piece: Piece, slots: list[str] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """Every product's score as a complement of ``piece`` (-inf where it may not be suggested), its parts, and
        its colour pairing kind. With ``slots``, only products of those slots are scored (the others: -inf, parts
        0): at a million products, work on the candidates alone, not the catalog."""
        a = self.arrays
        gender = _gender_scores(piece.gender, a)
        allowed = a.available & (gender > 0) & (a.kid == piece.kid) & (a.slot != a.slots.get(piece.slot))
        if piece.product_id is not None:
            allowed &= a.product_ids != piece.product_id
        codes = None if slots is None else [a.slots.get(s) for s in slots]
        rows = np.arange(len(a)) if codes is None else np.flatnonzero(allowed & np.isin(a.slot, codes))
        kinds = ch.pairing(
            piece.hue, piece.neutral, piece.colour_known, a.hue[rows], a.neutral[rows], a.colour_known[rows]
        )
        parts = {
            "occasion": a.occasion_match[a.occasions.get(piece.occasion), a.occasion[rows]],
            "colour": ch.KIND_SCORES[kinds],
            "style": _style(piece.vector, a, rows, allowed[rows]),
            "season": a.season_match[a.seasons.get(piece.season), a.season[rows]],
            "gender": gender[rows],
            "price": _price(piece.price, a.price[rows]),
        }
        total = sum(WEIGHTS[name] * values for name, values in parts.items())
        if self.learned is not None:
            parts["learned"] = self.learned.part(piece.outfit_vector, piece.slot, a.slot, codes)[rows]
            total = (1 - LEARNED_WEIGHT) * total + LEARNED_WEIGHT * parts["learned"]
        total = np.where(allowed[rows], total * ch.pattern_factor(piece.loud, a.loud[rows]), -np.inf)
        if codes is None:
            return total, parts, kinds
        return (
            _spread(len(a), rows, total, -np.inf),
            {n: _spread(len(a), rows, v, 0) for n, v in parts.items()},
            (_spread(len(a), rows, kinds, ch.UNKNOWN)),
        )

    def _pick(self, score: np.ndarray, in_slot: np.ndarray, k: int) -> list[int]:
        """k diverse rows of one slot: greedy best score less penalties for near-copies and repeats of a pick."""
        a = self.arrays
        rows = np.flatnonzero(in_slot & np.isfinite(score))
        if not len(rows):
            return []
        if len(rows) > SHORTLIST:  # the shortlist without sorting the whole slot: the SHORTLIST-th best score,
            worst = np.partition(score[rows], len(rows) - SHORTLIST)[len(rows) - SHORTLIST]  # then what beats it,
            better = rows[score[rows] > worst]  # and of its ties the first rows, as a stable sort gave them
            rows = np.sort(np.concatenate([better, rows[score[rows] == worst][: SHORTLIST - len(better)]]))
        rows = rows[np.argsort(-score[rows], kind="stable")]
        adjusted = score[rows].astype(np.float64)
        vectors = a.vectors[rows]
        chosen: list[int] = []
        copies, repeats = np.zeros(len(rows)), np.zeros(len(rows))
        taken = np.zeros(len(rows), bool)
        for _ in range(min(k, len(rows))):
            best = int(np.argmax(np.where(taken, -np.inf, adjusted - copies - repeats)))
            chosen.append(int(rows[best]))
            taken[best] = True
            if a.has_vector[rows[best]]:  # a near-copy of a pick loses in proportion to how near it is
                copies = np.maximum(copies, np.maximum(vectors @ vectors[best] - NEAR_COPY, 0) * COPY_PENALTY)
            repeats += REPEAT_PENALTY[0] * (a.category[rows] == a.category[rows[best]])
            repeats += REPEAT_PENALTY[1] * (a.colour[rows] == a.colour[rows[best]])
        return chosen


def _steer(
    items: list[Suggestion], pinned: set[int], rules: list[Rule], context: merch.Context, k: int, slots: list[str]
) -> list[Suggestion]:
    """Each slot's k items after the merchandising rules (``pinned``: products added only because a rule pins
    them); a moved item's reason ends with the rule."""
    out = []
    for slot in slots:
        extra = {s.card.product_id: s for s in items if s.slot == slot and s.card.product_id in pinned}
        found = [s for s in items if s.slot == slot and s.card.product_id not in pinned]
        for s, note in merch.arrange(found, rules, context, k, extra):
            out.append(replace(s, reason=f"{s.reason}; {note.says}", rule=note) if note else s)
    return out


def _gender_scores(gender: str | None, a: CatalogArrays) -> np.ndarray:
    """1 for the same gender, less for unisex or unknown, 0 (never suggested) for the other gender."""
    scores = np.zeros(len(a.genders.values), np.float32)
    scores[0] = GENDER_SCORES["unknown"]
    if not gender:
        scores[:] = GENDER_SCORES["unknown"]
    elif gender == "Unisex":
        scores[[a.genders.get(g) for g in ADULT_GENDERS]] = GENDER_SCORES["unisex"]
        scores[[a.genders.get(g) for g in KID_GENDERS]] = GENDER_SCORES["unisex"]  # a kid's piece: kid filter
    else:
        scores[a.genders.get("Unisex")] = GENDER_SCORES["unisex"]
    if gender:
        scores[a.genders.code(gender)] = GENDER_SCORES["same"]
    return scores[a.gender]


def _style(vector: np.ndarray | None, a: CatalogArrays, rows: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Closeness in the index's embedding of ``rows``, rescaled per slot to [0, 1] over its ``allowed`` rows: raw
    cosines across categories are small."""
    out = np.full(len(rows), 0.5, np.float32)
    if vector is None or a.vectors.shape[1] != len(vector):
        return out
    usable = allowed & a.has_vector[rows]
    cos = np.zeros(len(rows), np.float32)
    cos[usable] = a.vectors.dot(rows[usable], vector)
    slots = a.slot[rows]
    for code in np.unique(slots[usable]):
        mine = usable & (slots == code)
        lo, hi = np.percentile(cos[mine], [5, 95]) if mine.sum() > 1 else (cos[mine][0] - 1, cos[mine][0])
        out[mine] = np.clip((cos[mine] - lo) / max(hi - lo, 1e-6), 0, 1)
    return out


def _spread(n: int, rows: np.ndarray, values: np.ndarray, fill: float) -> np.ndarray:
    """``values`` of ``rows`` placed in an array of all ``n`` rows, ``fill`` elsewhere."""
    out = np.full(n, fill, values.dtype)
    out[rows] = values
    return out


def _price(price: float | None, prices: np.ndarray) -> np.ndarray:
    """1 for the same price band, halving about every 2.5x apart; 0.5 when either price is unknown."""
    if price is None or price <= 0:
        return np.full(len(prices), 0.5, np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(np.log(prices / price)) / np.log(2.5)
    return np.where(np.isfinite(ratio), np.exp2(-ratio), 0.5).astype(np.float32)


def piece_of_photo(completer: Completer, searcher: Searcher, path: Path) -> Piece:
    """A photo as a piece: the index's embedder's vector, the trained model's (else the neighbours') category,
    gender, occasion and colour, the neighbours' season."""
    vector = searcher.embed_photo(path)
    predicted: dict[str, str] = {}
    values: dict[str, str | None] = {}
    if has_model(searcher.settings):
        from sveta.learn.heads import UNKNOWN
        from sveta.learn.tagging import tag_photos

        for name, p in tag_photos([path], searcher.settings, models=completer.models)[0].items():
            if p.value != UNKNOWN:
                values[name], predicted[name] = p.value, "model"
    if not values.get("category"):
        values["category"], predicted["category"] = searcher.predict_category(vector), "neighbours"
    neighbours = neighbour_votes(completer.arrays, searcher, vector)
    for name in ("gender", "occasion", "season"):
        if not values.get(name) and neighbours.get(name):
            values[name], predicted[name] = neighbours[name], "neighbours"
    if values["category"]:  # the model's classes are the seller's words ("Shirts"): the vocabulary's name
        from sveta.vocab.reading import canonical

        values["category"] = canonical("category", values["category"])
    slot = outfit_rules().slot(values["category"])
    if slot is None:
        raise InputError(
            f"the photo looks like {values['category'] or 'nothing the catalog knows'}, not part of an outfit",
            "give a photo of a garment, shoes, a bag or an accessory",
        )
    colour, hue, neutral, multi, origin = photo_colour(path, values.get("colour"))
    quiet = outfit_rules().quiet_patterns
    learned = completer.learned
    return Piece(
        label=str(path),
        category=values["category"],
        slot=slot,
        gender=values.get("gender"),
        kid=values.get("gender") in KID_GENDERS,
        occasion=values.get("occasion"),
        season=values.get("season"),
        colour=colour,
        hue=hue,
        neutral=neutral,
        colour_known=True,  # a named colour, or the garment's median Lab: a hue either way
        loud=multi or values.get("pattern", "Solid") not in quiet,
        price=None,
        vector=vector,
        image_path=str(path),
        predicted=predicted | {"colour": origin},
        outfit_vector=learned.embed_photo(path) if learned is not None else None,
    )
