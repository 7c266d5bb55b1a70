"""A test outfit set from a labelled catalog folder: looks assembled by the outfit rules, clashes as negatives.

No outfit data ships offline, so this is what the outfit model's loading, training and metrics are tested on. The
rules see the seller's labels (gender, usage, colour); the model sees only photos. Train and test outfits draw on
disjoint items ("disjoint", as in Polyvore Outfits), so the test measures what the model learned of looks, not items.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sveta.errors import InputError
from sveta.outfits.data import FITB_CHOICES, SLOT_NAMES
from sveta.vocab import colour_harmony as ch

GENDERS = ("Men", "Women")
# Each look: the seed's slot first, then the slots that complete it; an optional slot joins half the looks.
TEMPLATES: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "Men": [(("top", "bottom", "footwear"), ("accessory",))],
    "Women": [(("top", "bottom", "footwear"), ("bag", "accessory")), (("one-piece", "footwear"), ("bag",))],
}
KIDS = re.compile(r"\b(kids?|boys?|girls?|infants?|baby)\b", re.IGNORECASE)  # titles say what gender hides
GOES_WITH = 0.75  # occasion agreement (outfit_slots.yaml) that counts as going together
CLASHES_WITH = 0.25  # ... and at or below which two occasions clash
BAD_COLOURS = (ch.CLASH,)


@dataclass(slots=True)
class Piece:
    item_id: str
    slot: str
    gender: str
    occasion: str
    colour: str
    hue: float
    neutral: bool
    known: bool
    loud: bool
    title: str
    image: Path
    category: str


def build_outfit_set(folder: Path, out: Path, n_outfits: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Write a Polyvore Outfits folder (80% train / 20% test outfits) built from FOLDER's styles.csv + images/."""
    pieces = _pieces(Path(folder))
    rng = random.Random(seed)
    pools = {split: _by_slot([p for p in pieces if _split(p.item_id) == split]) for split in ("train", "test")}
    n_test = max(1, n_outfits // 5)
    outfits = {
        "train": _looks(pools["train"], n_outfits - n_test, rng),
        "test": _looks(pools["test"], n_test, rng),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    used = {p.item_id: p for looks in outfits.values() for look in looks for p in look}
    questions, compat = _test_questions(outfits["test"], pools["test"], rng, used)
    _write(out, outfits, questions, compat, used)
    return {"folder": str(out), "train": len(outfits["train"]), "test": len(outfits["test"]), "items": len(used)}


def _pieces(folder: Path) -> list[Piece]:
    from sveta.ingest.styles import read_styles
    from sveta.outfits.arrays import outfit_rules
    from sveta.vocab.reading import canonical

    if not (folder / "styles.csv").is_file():
        raise InputError(f"no styles.csv in {folder}", "give a folder laid out like ../shared/datasets/myntra-small")
    rules = outfit_rules()
    rows, _ = read_styles(folder / "styles.csv")
    out = []
    for row in rows:
        category = canonical("category", row["articleType"])
        slot, image = rules.slot(category), folder / "images" / f"{row['id']}.jpg"
        adult = row["gender"] in (*GENDERS, "Unisex") and not KIDS.search(row["productDisplayName"])
        if slot and adult and row["usage"] and image.is_file():
            out.append(_piece(row, slot, category, image, rules.neutral_colours))
    if len(out) < 50:
        raise InputError(f"{folder}: too few labelled garments for outfits ({len(out)})", "give a bigger catalog")
    return out


def _piece(row: dict[str, str], slot: str, category: str, image: Path, neutrals: list[str]) -> Piece:
    hue, neutral, known = ch.colour_columns([row["baseColour"]], neutrals)
    loud = row["baseColour"] == "Multi"
    title = row["productDisplayName"]
    args = (row["gender"], row["usage"], row["baseColour"], float(hue[0]), bool(neutral[0]), bool(known[0]), loud)
    return Piece(row["id"], slot, *args, title, image, category)


def _split(item_id: str) -> str:
    return "test" if int(hashlib.sha1(item_id.encode()).hexdigest()[:8], 16) % 5 == 0 else "train"


def _by_slot(pieces: list[Piece]) -> dict[str, list[Piece]]:
    out: dict[str, list[Piece]] = defaultdict(list)
    for p in pieces:
        out[p.slot].append(p)
    return out


def occasion_score(a: str, b: str) -> float:
    from sveta.outfits.arrays import outfit_rules

    if a == b:
        return 1.0
    spec = outfit_rules().occasions
    for x, y, score in spec.get("pairs", []):
        if {x, y} == {a, b}:
            return float(score)
    return float(spec["other"])


def _colour_kinds(piece: Piece, others: list[Piece]) -> np.ndarray:
    hue, neutral, known = (np.array([getattr(o, a) for o in others]) for a in ("hue", "neutral", "known"))
    return ch.pairing(piece.hue, piece.neutral, piece.known, hue, neutral, known)


def fitting(candidates: list[Piece], look: list[Piece]) -> list[Piece]:
    """The rules' view: same gender (or unisex), occasions that agree, no clashing colours, one loud piece at most."""
    keep = np.ones(len(candidates), bool)
    for p in look:
        kinds = _colour_kinds(p, candidates)
        keep &= ~np.isin(kinds, BAD_COLOURS)
        keep &= [
            (c.gender == p.gender or "Unisex" in (c.gender, p.gender))
            and occasion_score(p.occasion, c.occasion) >= GOES_WITH
            and not (p.loud and c.loud)
            for c in candidates
        ]
    return [c for c, k in zip(candidates, keep, strict=True) if k]


def clashing(candidates: list[Piece], look: list[Piece]) -> list[Piece]:
    """Deliberate clashes with the look's first piece: the other gender, an occasion that disagrees, or colours
    that clash (a plain bad choice, not a subtle one)."""
    seed = look[0]
    kinds = _colour_kinds(seed, candidates)
    return [
        c
        for c, kind in zip(candidates, kinds, strict=True)
        if c not in look
        and (
            {c.gender, seed.gender} == set(GENDERS)
            or occasion_score(seed.occasion, c.occasion) <= CLASHES_WITH
            or kind in BAD_COLOURS
        )
    ]


def _looks(pool: dict[str, list[Piece]], n: int, rng: random.Random) -> list[list[Piece]]:
    looks: list[list[Piece]] = []
    for _ in range(n * 20):  # a seed without partners is skipped; enough tries for n looks on a small catalog
        if len(looks) == n:
            break
        gender = rng.choice(GENDERS)
        required, optional = rng.choice(TEMPLATES[gender])
        seeds = [p for p in pool[required[0]] if p.gender == gender]
        look = [rng.choice(seeds)] if seeds else []
        for slot in [*required[1:], *(s for s in optional if rng.random() < 0.5)]:
            fits = fitting(rng.sample(pool[slot], min(len(pool[slot]), 400)), look) if look else []
            if fits:
                look.append(rng.choice(fits))
            elif slot in required:
                look = []
        if look:
            looks.append(look)
    return looks


def _test_questions(
    looks: list[list[Piece]], pool: dict[str, list[Piece]], rng: random.Random, used: dict[str, Piece]
) -> tuple[list[dict[str, Any]], list[tuple[int, list[str]]]]:
    """Per test look: a FITB question whose wrong answers clash with the look, and a negative outfit in which one
    or two pieces are swapped for clashing ones of their slot."""
    questions, compat = [], []
    for n, look in enumerate(looks):
        refs = [f"t{n}_{i + 1}" for i in range(len(look))]
        blank = rng.randrange(1, len(look))
        wrong = _clashing(pool[look[blank].slot], look, FITB_CHOICES - 1, rng)
        if len(wrong) == FITB_CHOICES - 1:
            answers = [refs[blank], *(p.item_id for p in wrong)]
            rng.shuffle(answers)
            question = refs[:blank] + refs[blank + 1 :]
            questions.append({"question": question, "answers": answers, "blank_position": blank + 1})
            used.update({p.item_id: p for p in wrong})
        compat.append((1, refs))
        negative = list(look)
        for i in rng.sample(range(1, len(look)), min(len(look) - 1, rng.choice((1, 2)))):
            swap = _clashing(pool[look[i].slot], look, 1, rng)
            negative[i] = swap[0] if swap else negative[i]
        if negative != look:
            used.update({p.item_id: p for p in negative})
            compat.append((0, [p.item_id for p in negative]))
    return questions, compat


def _clashing(candidates: list[Piece], look: list[Piece], k: int, rng: random.Random) -> list[Piece]:
    return clashing(rng.sample(candidates, min(len(candidates), 300)), look)[:k]


def _write(
    out: Path,
    outfits: dict[str, list[list[Piece]]],
    questions: list[dict[str, Any]],
    compat: list[tuple[int, list[str]]],
    used: dict[str, Piece],
) -> None:
    """Polyvore's files; photos stay where they are (metadata ``image`` holds each one's absolute path)."""
    prefix = {"train": "s", "test": "t"}
    for split, looks in outfits.items():
        sets = [
            {
                "set_id": f"{prefix[split]}{n}",
                "items": [{"item_id": p.item_id, "index": i + 1} for i, p in enumerate(o)],
            }
            for n, o in enumerate(looks)
        ]
        (out / f"{split}.json").write_text(json.dumps(sets))
    meta = {i: _meta(p) for i, p in used.items()}
    (out / "polyvore_item_metadata.json").write_text(json.dumps(meta))
    (out / "fill_in_blank_test.json").write_text(json.dumps(questions))
    (out / "compatibility_test.txt").write_text("".join(f"{label} {' '.join(ids)}\n" for label, ids in compat))


def _entries(look: list[Piece]) -> list[dict[str, Any]]:
    return [{"item_id": p.item_id, "index": i + 1} for i, p in enumerate(look)]


def _meta(p: Piece) -> dict[str, Any]:
    return {
        "semantic_category": SLOT_NAMES[p.slot],
        "category": p.category,
        "title": p.title,
        "image": str(p.image.resolve()),
        "gender": p.gender,
        "usage": p.occasion,
        "colour": p.colour,
    }
