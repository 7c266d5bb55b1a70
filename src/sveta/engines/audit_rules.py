"""When the audit's disagreements become findings: per-attribute rules chosen on held-out data, and type witnesses."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sveta.engines.audit import Finding

DEFAULT_MIN_CONFIDENCE = 0.9  # Settings.audit_min_confidence's default, for callers without settings
UNISEX = "Unisex"
MIN_TYPE_LISTINGS = 10  # fewer other listings of a type: its witnesses are the fallbacks below
# Types whose gender a photo rarely shows (the catalog's own listings decide for every type it has enough of;
# this short list only speaks for types it has fewer than MIN_TYPE_LISTINGS of). Canonical category names.
GENDERLESS_TYPES = frozenset(
    {"Watch", "Sunglasses", "Backpack", "Bag", "Laptop Bag", "Duffel Bag", "Messenger Bag", "Belt", "Socks", "Cap",
     "Hat", "Scarf", "Muffler", "Umbrella", "Wallet", "Key Chain", "Water Bottle", "Gloves", "Travel Accessory"}
)  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """When a disagreement on one attribute becomes a finding. Designed for precision: a human reviews every flag.

    The stated value must be implausible for the photo (its own calibrated probability tiny, not merely second
    best). The listing's title is a second, independent witness: when it names the photo's value, a less certain
    photo suffices; when it names the stated value, the listing is consistent and nothing is flagged. A
    contradiction the catalog makes often (titles saying "slippers" of items filed under Sandals) is a convention
    and is skipped above ``max_convention``. The listing's type is a third witness, read from the catalog itself:
    how often the photo model agrees with the catalog on this attribute for the other listings of that type
    (``min_agreement``), and for gender how often the catalog files the type as Unisex (``max_unisex``): a
    "Unisex" watch is no error, and a photo's guess at a watch's gender is no evidence.
    """

    min_confidence: float = DEFAULT_MIN_CONFIDENCE  # the photo's answer, when nothing else backs it
    max_stated: float = 0.0001  # the stated value's probability, when nothing else backs the photo
    corroborated_min_confidence: float = 0.7  # the photo's answer, when the title names it too
    corroborated_max_stated: float = 0.02
    max_convention: float = 0.02
    min_agreement: float = 0.0  # the photo agrees with the catalog on the type's other listings at least this often
    max_unisex: float = 1.0  # gender only: the type's other listings are filed Unisex at most this often

    def accepts(self, c: Candidate) -> bool:
        if c.title_agrees_with == "stated" or not self.visible(c):
            return False
        if c.title_agrees_with == "photo":
            return (
                c.confidence >= self.corroborated_min_confidence
                and c.stated_probability <= self.corroborated_max_stated
                and c.convention_rate <= self.max_convention
            )
        return c.confidence >= self.min_confidence and c.stated_probability <= self.max_stated

    def visible(self, c: Candidate) -> bool:
        """Whether the photo can judge this attribute on a listing of this type at all."""
        return c.type_agreement >= self.min_agreement and c.type_unisex <= self.max_unisex


@dataclass(slots=True)
class Candidate:
    """A stated value that is not the photo's answer, with what a rule weighs."""

    finding: Finding
    confidence: float
    stated_probability: float
    title_agrees_with: str | None  # "photo", "stated" or None (the title names neither, or is the statement)
    convention_rate: float
    type_agreement: float = 1.0  # the photo agrees with the catalog on this attribute for the type's other listings
    type_unisex: float = 0.0  # gender: the share of the type's other listings filed Unisex


# Chosen by ``sveta.eval.audit.calibrate`` on the validation part only (/tmp/split3/val and val-thumbs, made by
# benchmarks/make_split.py --three, the model trained on /tmp/split3/train; 6 corruption seeds each, titles kept
# and removed): the most true flags whose precision is at least 0.9 + a 0.04 margin in each of those four
# conditions; ``calibrate(held_out_conditions(train, [val, val_thumbs], settings))["rules"]`` gives them again.
# Gender's ``max_unisex`` is a policy, not tuned: a type the catalog files Unisex more than one time in ten has no
# gender a photo can contradict. Occasion is never corrupted by the eval, so nothing measures it: it keeps
# the rule every attribute had before.
RULES: dict[str, Rule] = {
    "category": Rule(corroborated_min_confidence=0.5, corroborated_max_stated=0.005),
    "colour": Rule(corroborated_min_confidence=0.5, max_convention=0.1, min_agreement=0.7),
    "gender": Rule(corroborated_max_stated=0.1, max_convention=0.1, min_agreement=0.7, max_unisex=0.1),
    "occasion": Rule(),
}


def rules_with(min_confidence: float, rules: Mapping[str, Rule] | None = None) -> dict[str, Rule]:
    """``rules`` (default ``RULES``) with the photo-alone threshold a user set (``Settings.audit_min_confidence``)."""
    return {a: dataclasses.replace(r, min_confidence=min_confidence) for a, r in (rules or RULES).items()}


def type_witnesses(
    attribute: str, stated: Sequence[str | None], photo: Sequence[str], types: Sequence[str]
) -> list[tuple[float, float]]:
    """Per listing, (agreement, Unisex share) over the other listings of its type that state ``attribute``.

    Agreement is the share whose stated value is the photo's answer; the listing itself is left out, so its own
    slip does not vouch for or against it. A type with fewer than ``MIN_TYPE_LISTINGS`` others borrows the
    catalog's overall agreement, and for gender counts as Unisex when it is one of ``GENDERLESS_TYPES``.
    """
    n: Counter[str] = Counter()
    agree: Counter[str] = Counter()
    unisex: Counter[str] = Counter()
    for value, best, kind in zip(stated, photo, types, strict=True):
        if value is not None:
            n[kind] += 1
            agree[kind] += value == best
            unisex[kind] += value == UNISEX
    total = max(sum(n.values()), 1)
    overall, overall_unisex = sum(agree.values()) / total, sum(unisex.values()) / total
    out = []
    for value, best, kind in zip(stated, photo, types, strict=True):
        own = value is not None
        others = n[kind] - own
        if others < MIN_TYPE_LISTINGS:
            fallback = 1.0 if attribute == "gender" and kind in GENDERLESS_TYPES else overall_unisex
            out.append((overall, fallback if attribute == "gender" else 0.0))
            continue
        rate = (agree[kind] - (own and value == best)) / others
        share = (unisex[kind] - (own and value == UNISEX)) / others if attribute == "gender" else 0.0
        out.append((rate, share))
    return out
