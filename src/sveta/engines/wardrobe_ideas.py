"""Wardrobe extension ideas: the catalog items that would complete the most outfits with the photos a user owns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.catalog.queries import ProductCard, product_cards
from sveta.engines.complete import NEAR_COPY, Completer, Piece, piece_of_photo
from sveta.engines.wardrobe import collect_photos
from sveta.errors import InputError
from sveta.outfits.arrays import CatalogArrays, outfit_rules

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.engines.search import Searcher
    from sveta.settings import Settings

# An item completes an outfit with a piece when its slot completes the piece's slot and it scores at least the
# BEST_OF-th best score of its slot for that piece, ties included. A rank, not one threshold, because scores are not
# comparable across pieces (a casual piece's median complement scores about 0.75, a formal one's about 0.6); ties
# included because the scorer's parts saturate (many items share the top score) and a bare rank would cut among them
# by row order.
BEST_OF = 20
# ...and never below MIN_SCORE, which matters where a slot's best BEST_OF is most of it (a small catalog): an item
# whose occasion disagrees with the piece's loses 0.255 of the 0.3 occasion weight and stays below it (at most 0.675).
MIN_SCORE = 0.7
PER_CATEGORY = 2  # ideas of one category at most (and never two of one category and colour): a diverse list
# A category the wardrobe already shows OWNED_PLENTY times is not suggested again. Slots need no such rule: an item
# counts only for pieces of the slots it completes, so the slots a wardrobe lacks already complete the most outfits.
OWNED_PLENTY = 3
NAMED = 4  # pieces named in a reason before "and N more"
IDEA_KEYS = (
    "product_id", "source_id", "slot", "title", "category", "colour", "n_completes", "completes", "score", "reason",
    "price", "image_path",
)  # fmt: skip


@dataclass
class Idea:
    """A catalog item, the wardrobe photos it completes an outfit with, its mean score with them and why."""

    card: ProductCard
    slot: str
    completes: list[str]
    score: float
    reason: str

    @property
    def n_completes(self) -> int:
        return len(self.completes)

    def as_dict(self) -> dict[str, Any]:
        own = {"slot": self.slot, "n_completes": self.n_completes, "completes": self.completes}
        return self.card.pick(IDEA_KEYS, **own, score=round(self.score, 4), reason=self.reason)


@dataclass
class IdeasResult:
    pieces: list[Piece]
    ideas: list[Idea]
    skipped: list[dict[str, str]]  # photos that are no outfit piece or cannot be read: path and error

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_pieces": len(self.pieces),
            "ideas": [i.as_dict() for i in self.ideas],
            "skipped": self.skipped,
        }


def wardrobe_ideas(paths: Sequence[Path], settings: Settings, catalog: CatalogStore, n: int = 10) -> IdeasResult:
    """The photos (files or folders) named, through a searcher and completer built as `sveta complete` builds them."""
    from sveta.engines.search import Searcher

    searcher = Searcher(settings, catalog)
    completer = Completer(catalog, searcher.index, settings)
    return extension_ideas(completer, searcher, collect_photos(paths), n)


def extension_ideas(completer: Completer, searcher: Searcher, photos: Sequence[Path], n: int = 10) -> IdeasResult:
    """The n items that complete the most outfits with the photos, tie-broken by mean score, kept diverse."""
    pieces, skipped = read_pieces(completer, searcher, photos)
    if not pieces:
        return IdeasResult([], [], skipped)
    scores, member = completion(completer, pieces)
    rows = diverse(completer.arrays, ranked_rows(completer.arrays, pieces, scores, member), n)
    names = piece_names(pieces)
    return IdeasResult(pieces, _ideas(completer, pieces, names, rows, scores, member), skipped)


def read_pieces(
    completer: Completer, searcher: Searcher, photos: Sequence[Path]
) -> tuple[list[Piece], list[dict[str, str]]]:
    """Each photo as a piece; one that cannot be read or is no garment, shoes, bag or accessory is skipped."""
    pieces: list[Piece] = []
    skipped: list[dict[str, str]] = []
    for path in photos:
        try:
            pieces.append(piece_of_photo(completer, searcher, path))
        except InputError as exc:
            skipped.append({"path": str(path), "error": exc.message})
    return pieces, skipped


def piece_names(pieces: Sequence[Piece]) -> list[str]:
    """'white shirt': each piece's colour (the trained model's where it is sure) and category."""
    return [" ".join(v for v in (p.colour, p.category) if v).lower() or "piece" for p in pieces]


def completion(completer: Completer, pieces: Sequence[Piece]) -> tuple[np.ndarray, np.ndarray]:
    """Per piece (rows) and catalog item (columns): the item's score as a complement of the piece, and whether it
    completes an outfit with it."""
    a = completer.arrays
    scores = np.full((len(pieces), len(a)), -np.inf, np.float32)
    member = np.zeros(scores.shape, bool)
    for i, piece in enumerate(pieces):
        scores[i] = completer.score(piece)[0]
        member[i] = completes(a, piece.slot, scores[i])
    return scores, member


def completes(a: CatalogArrays, slot: str, score: np.ndarray) -> np.ndarray:
    """The items of each slot completing ``slot`` that reach that slot's BEST_OF-th best score and MIN_SCORE."""
    out = np.zeros(len(score), bool)
    for other in outfit_rules().completes.get(slot, []):
        rows = (a.slot == a.slots.get(other)) & np.isfinite(score)
        if other == slot or not rows.any():
            continue
        values = score[rows]
        k = min(BEST_OF, len(values))
        bar = max(MIN_SCORE, float(-np.partition(-values, k - 1)[k - 1]))
        out |= rows & (score >= bar)
    return out


def ranked_rows(a: CatalogArrays, pieces: Sequence[Piece], scores: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Rows that complete at least one outfit, most outfits first, then by mean score; plenty-owned categories out."""
    counts = member.sum(axis=0)
    mean = np.where(member, scores, 0).sum(axis=0) / np.maximum(counts, 1)
    owned = Counter(p.category for p in pieces if p.category)
    plenty = {a.categories.get(c) for c, k in owned.items() if k >= OWNED_PLENTY} - {0}
    rows = np.flatnonzero((counts > 0) & ~np.isin(a.category, list(plenty)))
    return rows[np.lexsort((-mean[rows], -counts[rows]))]


def diverse(a: CatalogArrays, rows: np.ndarray, n: int) -> list[int]:
    """The first n rows, skipping a category picked PER_CATEGORY times, a repeat of a picked category and colour,
    and a near-copy of a pick (complete's NEAR_COPY in the index's embedding)."""
    picked: list[int] = []
    per_category: Counter[int] = Counter()
    for row in rows.tolist():
        if len(picked) == n:
            break
        category, colour = int(a.category[row]), int(a.colour[row])
        repeat = any(int(a.category[p]) == category and int(a.colour[p]) == colour for p in picked)
        if per_category[category] >= PER_CATEGORY or repeat or _near_copy(a, row, picked):
            continue
        picked.append(row)
        per_category[category] += 1
    return picked


def _near_copy(a: CatalogArrays, row: int, picked: list[int]) -> bool:
    if not picked or not a.has_vector[row]:
        return False
    sims = a.vectors[picked] @ a.vectors[row]
    return bool(np.any((sims > NEAR_COPY) & a.has_vector[picked]))


def _ideas(
    completer: Completer,
    pieces: Sequence[Piece],
    names: list[str],
    rows: list[int],
    scores: np.ndarray,
    member: np.ndarray,
) -> list[Idea]:
    a = completer.arrays
    cards = product_cards(completer.catalog, [int(a.product_ids[r]) for r in rows])
    out = []
    for row in rows:
        card = cards.get(int(a.product_ids[row]))
        if card is None:  # gone since the arrays were loaded
            continue
        went = np.flatnonzero(member[:, row]).tolist()
        reason = _reason([names[i] for i in went], len(pieces), a.occasions.values[a.occasion[row]])
        completed = [pieces[i].image_path or pieces[i].label for i in went]
        score = float(scores[went, row].mean())
        out.append(Idea(card, a.slots.values[a.slot[row]], completed, score, reason))
    return out


def _reason(names: Sequence[str], n_pieces: int, occasion: str) -> str:
    """'goes with 2 of your 3 pieces: white shirt, blue shirt; formal'."""
    shown = ", ".join(names[:NAMED]) + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")
    yours = f"{n_pieces} piece{'s' if n_pieces > 1 else ''}"
    return f"goes with {len(names)} of your {yours}: {shown}" + (f"; {occasion.lower()}" if occasion else "")
