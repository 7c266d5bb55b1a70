"""Why a complete-the-look suggestion fits, in words: occasion, gender, colour pairing, style, season, patterns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sveta.catalog.queries import ProductCard
from sveta.outfits.arrays import CatalogArrays
from sveta.vocab import colour_harmony as ch

if TYPE_CHECKING:
    from sveta.engines.complete import Piece


def reason_of(piece: Piece, card: ProductCard, parts: dict[str, float], a: CatalogArrays, row: int, kind: int) -> str:
    """The parts that made the score, in words: occasion, gender, colour, style, season, patterns."""
    what = (piece.category or "piece").lower()
    occasion = a.occasions.values[a.occasion[row]]
    bits = []
    if piece.occasion and parts["occasion"] >= 1.0:
        bits.append(f"{occasion.lower()} like the {what}")
    elif piece.occasion and occasion and parts["occasion"] >= 0.5:
        bits.append(f"{occasion.lower()} goes with {piece.occasion.lower()}")
    if card.gender:
        bits.append("unisex" if card.gender == "Unisex" else f"{card.gender.lower()}'s")
    colour, theirs = (card.colour or a.colour_names[row] or "").lower(), (piece.colour or "").lower()
    if kind == ch.NEUTRAL:
        neutral = colour if a.neutral[row] else theirs
        bits.append(f"{neutral} is a neutral that goes with anything")
    elif kind != ch.UNKNOWN:
        bits.append(f"{colour} with {theirs}: {ch.KIND_WORDS[kind]}")
    if parts["style"] >= 0.8:
        bits.append("close in style")
    if parts.get("learned", 0.0) >= 0.8:
        bits.append("the outfit model pairs them")
    if piece.season and parts["season"] >= 1.0:
        bits.append(f"for {piece.season.lower()} too")
    if a.loud[row] and piece.loud:
        bits.append("but both are patterned")
    return "; ".join(bits) or "fills the slot"
