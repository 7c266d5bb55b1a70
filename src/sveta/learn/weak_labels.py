"""Weak labels no one wrote: sleeve length and dress / skirt length read from the pose and skin of a photo's model."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from sveta.images.body_cover import OTHER, SKIN, Point, along, cover_end, garment_palette, lab_pixels, skin_tone
from sveta.images.body_cover import skin_share as skin_share_in
from sveta.images.people import VISIBLE, Person, PoseFinder
from sveta.learn.labels import Example
from sveta.progress import Progress
from sveta.settings import Settings
from sveta.vocab.reading import canonical

VERSION = "weak-labels-v1"  # bump when the rules or thresholds change: cached labels are keyed by it
METHOD = (
    f"{VERSION}: weak labels from photos of a person. MediaPipe Pose (0.10.21, legacy full model, one person) gives "
    "the joints and the person mask; the skin tone is the median Lab colour below the nose (else of a hand); the "
    "garment's colours are the non-skin pixels of the torso's sides (for length: of the hips). 10 disk samples per "
    "segment along shoulder-elbow-wrist (hip-knee-ankle) are skin, garment or other, and where the garment stops "
    "for good gives sleeve_length (Sleeveless / Short / Three-Quarter / Long Sleeves) or a dress or skirt's length "
    "(Mini / Knee / Midi / Maxi). Both seen limbs must agree; an end between two values, no person, no face or "
    "hand, a skin-coloured garment or unseen joints abstain, and so do short sleeves on jackets and sweaters and "
    "three-quarter sleeves on shirts, T-shirts, sweatshirts, jackets and sweaters (layered, rolled up)."
)
SLEEVE, LENGTH = "sleeve_length", "length"
SLEEVE_CLASSES = ("Sleeveless", "Short Sleeves", "Three-Quarter Sleeves", "Long Sleeves")  # the vocabulary's names
LENGTH_CLASSES = ("Mini", "Knee", "Midi", "Maxi")
# the categories (the vocabulary's canonical names) each attribute is read for
SLEEVED = frozenset(
    {"T-Shirt", "Shirt", "Top", "Tunic", "Kurta", "Kurti", "Sweater", "Sweatshirt", "Shrug", "Lounge T-Shirt"}
    | {"Innerwear Vest", "Jacket", "Blazer", "Coat", "Dress", "Jumpsuit", "Romper", "Nightdress"}
)
LENGTHED = frozenset({"Dress", "Skirt"})
# what a photo can not tell for a category: worn over a T-shirt or shirt, a sleeveless jacket or sweater shows that
# garment's sleeves (so no "short" for them); long sleeves are often shown rolled or pushed up (so no "three-quarter")
LAYERED = frozenset({"Jacket", "Blazer", "Coat", "Shrug", "Sweater"})
ROLLED = frozenset({"Shirt", "T-Shirt", "Sweatshirt"}) | LAYERED
UNTOLD = {"Short Sleeves": LAYERED, "Three-Quarter Sleeves": ROLLED}
APPLIES = {SLEEVE: SLEEVED, LENGTH: LENGTHED}
SURE = 0.7  # landmark visibility a joint needs to be read (people.VISIBLE is what counts as seen at all)
SKIN_GARMENT = 0.35  # above this share of skin-coloured pixels the torso (or hips) is bare or a skin-like colour
# where the garment stops, in segments from the shoulder (1 = the elbow, 2 = the wrist) -> sleeve length
SLEEVE_ENDS = ((0.0, 0.2, "Sleeveless"), (0.4, 0.9, "Short Sleeves"), (1.2, 1.6, "Three-Quarter Sleeves"))
LONG_END = 1.8  # ... covered this far (a cuff stops short of the wrist point): long sleeves (a hem: maxi)
# ... from the hip (1 = the knee, 2 = the ankle) -> length
LENGTH_ENDS = ((0.0, 0.7, "Mini"), (0.8, 1.2, "Knee"), (1.3, 1.6, "Midi"))
SHOULDERS, ELBOWS, WRISTS, HIPS, KNEES, ANKLES = (11, 12), (13, 14), (15, 16), (23, 24), (25, 26), (27, 28)
NOSE, MOUTH, EARS, HANDS = 0, (9, 10), (7, 8), ((15, 17, 19, 21), (16, 18, 20, 22))
BETWEEN = "?"  # a limb whose garment ends between two values (a short sleeve or a rolled one?): it vetoes the rest
MIN_PALETTE = 20  # garment pixels needed to know the garment's colours
SAVE_EVERY = 200  # photos labelled between two writes of the cache


def applicable(category: str) -> tuple[str, ...]:
    """The weak attributes read for a category (any spelling the vocabulary knows: "Tshirts", "T-Shirt")."""
    name = canonical("category", category) if category else ""
    return tuple(attribute for attribute, categories in APPLIES.items() if name in categories)


def weak_labels(
    examples: Iterable[Example], settings: Settings, on_progress: Progress | None = None
) -> dict[int, dict[str, str]]:
    """Per example key, the weak labels its photo gives for its category's attributes; confident ones only.

    Examples whose category takes neither attribute are skipped; an example whose photo abstains on every
    attribute it takes, or whose photo can not be read, is left out. A photo's labels are cached in the data home by
    its sha256 and ``VERSION``; the first photo not cached loads MediaPipe (a ConfigError with the install command
    when it is missing).
    """
    todo = [e for e in examples if applicable(e.labels.get("category", ""))]
    cache = LabelCache(Path(settings.data_dir) / "weak_labels" / f"{VERSION}.json")
    finder: PoseFinder | None = None
    out: dict[int, dict[str, str]] = {}
    for done, example in enumerate(todo, 1):
        key = example.sha256 or _sha256(example.path)
        labels = cache.get(key) if key else {}
        if labels is None:
            finder = finder or PoseFinder()
            labels = photo_labels(finder, example.path)
            cache.put(key, labels)
        chosen = for_category(example.labels["category"], labels)
        if chosen:
            out[example.key] = chosen
        if on_progress:
            on_progress(done, len(todo))
    cache.save()
    return out


def for_category(category: str, labels: dict[str, str]) -> dict[str, str]:
    """A photo's weak labels that hold for a product of ``category``: its attributes, values a photo can tell."""
    name = canonical("category", category)
    return {a: labels[a] for a in applicable(category) if a in labels and name not in UNTOLD.get(labels[a], ())}


def photo_labels(finder: PoseFinder, path: Path) -> dict[str, str]:
    """Both weak attributes of one photo, those it is sure of; {} for no person or an unreadable photo."""
    try:
        with Image.open(path) as raw:
            image = raw.convert("RGB")
    except OSError:
        return {}
    people = finder.find(image, max_people=1)
    return person_labels(people[0], lab_pixels(image)) if people else {}


def person_labels(person: Person, lab: np.ndarray) -> dict[str, str]:
    """The sleeve length and garment length one person's photo (Lab pixels) shows, those it is sure of."""
    skin = _skin_tone(person, lab)
    if skin is None:
        return {}
    found = {SLEEVE: sleeve_length(person, lab, skin), LENGTH: garment_length(person, lab, skin)}
    return {attribute: value for attribute, value in found.items() if value}


def sleeve_length(person: Person, lab: np.ndarray, skin: np.ndarray) -> str | None:
    """Where the top's sleeves stop on the seen arms; None unless the readable arms agree on a value."""
    if not _sure(person, SHOULDERS):
        return None
    lm = person.landmarks
    width = float(np.linalg.norm(lm[11, :2] - lm[12, :2]))
    top, torso = float(lm[list(SHOULDERS), 1].mean()), _torso(person, width)
    x0, x1 = sorted(lm[list(SHOULDERS), 0])
    # the torso's sides, not its middle: an open jacket or shirt shows what is under it there, and prints sit there
    flanks = [(x0, top + 0.25 * torso, x0 + 0.3 * width), (x1 - 0.3 * width, top + 0.25 * torso, x1)]
    boxes = [(a, y, b, top + 0.85 * torso) for a, y, b in flanks]
    # a flank mostly skin-coloured is a hand on it, a bare torso or a skin-coloured garment: it names no garment
    clothed = [box for box in boxes if skin_share_in(lab, person.mask, box, skin) <= SKIN_GARMENT]
    if not clothed:
        return None
    palette = np.concatenate([garment_palette(lab, person.mask, box, skin) for box in clothed])
    if len(palette) < MIN_PALETTE:
        return None
    votes = [_sleeve(person, lab, side, skin, palette, 0.1 * width) for side in (0, 1)]
    return _agreed(votes)


def _sleeve(
    person: Person, lab: np.ndarray, side: int, skin: np.ndarray, palette: np.ndarray, radius: float
) -> str | None:
    if not _sure(person, (SHOULDERS[side], ELBOWS[side])):
        return None
    joints = [SHOULDERS[side], ELBOWS[side]] + ([WRISTS[side]] if _sure(person, (WRISTS[side],)) else [])
    end = cover_end(along(lab, person.mask, _points(person, joints), radius, skin, palette))
    if end is None:
        return None  # an unreadable line (a limb across the body, a bag): the other limb decides
    if len(joints) == 3 and end >= LONG_END:
        return "Long Sleeves"
    limit = 0.8 if len(joints) == 2 else 2.0  # an arm read to the elbow only: short sleeves must end well before it
    return next((name for lo, hi, name in SLEEVE_ENDS if lo <= end <= min(hi, limit)), BETWEEN)


def garment_length(person: Person, lab: np.ndarray, skin: np.ndarray) -> str | None:
    """Where a dress or skirt stops on the seen legs; None unless the readable legs agree on a value."""
    if not _sure(person, (*SHOULDERS, *HIPS, *KNEES)):
        return None
    lm = person.landmarks
    torso = _torso(person, float(np.linalg.norm(lm[11, :2] - lm[12, :2])))
    hip_y = float(lm[list(HIPS), 1].mean())
    x0, x1 = sorted(lm[list(HIPS), 0])
    box = (x0, hip_y - 0.05 * torso, x1, hip_y + 0.2 * torso)
    if skin_share_in(lab, person.mask, box, skin) > SKIN_GARMENT:
        return None
    palette = garment_palette(lab, person.mask, box, skin)
    if len(palette) < MIN_PALETTE:
        return None
    return _agreed([_length(person, lab, side, skin, palette, 0.08 * torso) for side in (0, 1)])


def _length(
    person: Person, lab: np.ndarray, side: int, skin: np.ndarray, palette: np.ndarray, radius: float
) -> str | None:
    joints = [HIPS[side], KNEES[side]] + ([ANKLES[side]] if _sure(person, (ANKLES[side],)) else [])
    end = cover_end(along(lab, person.mask, _points(person, joints), radius, skin, palette), bare=(SKIN, OTHER))
    if end is None:
        return None  # an unreadable line (a hand or bag in front of the leg): the other leg decides
    if len(joints) == 3 and end >= LONG_END:
        return "Maxi"
    limit = 0.9 if len(joints) == 2 else 2.0  # a leg read to the knee only: the hem must end above it
    return next((name for lo, hi, name in LENGTH_ENDS if lo <= end <= min(hi, limit)), BETWEEN)


def _agreed(votes: Sequence[str | None]) -> str | None:
    """The one value the limbs read (None: not seen or unreadable); no value when one is between or two disagree."""
    read = {v for v in votes if v}
    return read.pop() if len(read) == 1 and BETWEEN not in read else None


def _skin_tone(person: Person, lab: np.ndarray) -> np.ndarray | None:
    """The person's skin colour: from the face below the nose when it is seen, else from a hand."""
    lm = person.landmarks
    patches: list[tuple[Point, float]] = []
    if _sure(person, (NOSE, *MOUTH)):
        centre = (lm[NOSE, :2] + lm[list(MOUTH), :2].mean(axis=0)) / 2
        span = float(np.linalg.norm(lm[EARS[0], :2] - lm[EARS[1], :2])) if _sure(person, EARS) else 0.0
        reach = max(span * 0.2, 2.0 * float(np.linalg.norm(lm[NOSE, :2] - centre)))
        patches.append(((float(centre[0]), float(centre[1])), reach))
    for hand in (h for h in HANDS if _sure(person, h)):
        centre = lm[list(hand), :2].mean(axis=0)
        reach = 0.5 * float(np.linalg.norm(lm[hand[0], :2] - lm[hand[2], :2]))  # half the wrist to the index finger
        patches.append(((float(centre[0]), float(centre[1])), reach))
    return skin_tone(lab, person.mask, patches)


def _torso(person: Person, shoulder_width: float) -> float:
    """Shoulders to hips in pixels (estimated from the shoulders' width when the hips are not seen)."""
    lm = person.landmarks
    if _sure(person, HIPS):
        return max(float(lm[list(HIPS), 1].mean() - lm[list(SHOULDERS), 1].mean()), 0.5 * shoulder_width)
    return 1.3 * shoulder_width


def _sure(person: Person, points: Sequence[int]) -> bool:
    return bool((person.landmarks[list(points), 2] >= max(SURE, VISIBLE)).all())


def _points(person: Person, joints: Sequence[int]) -> list[Point]:
    return [(float(person.landmarks[j, 0]), float(person.landmarks[j, 1])) for j in joints]


def _sha256(path: Path) -> str:
    """The photo file's sha256, or "" when it can not be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


class LabelCache:
    """Weak labels by photo sha256 in one JSON file per ``VERSION`` ({} records an abstention), written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rows: dict[str, dict[str, str]] = self._read()
        self._unsaved = 0

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # none yet, or damaged: it only costs recomputation
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> dict[str, str] | None:
        return self._rows.get(key)

    def put(self, key: str, labels: dict[str, str]) -> None:
        self._rows[key] = labels
        self._unsaved += 1
        if self._unsaved >= SAVE_EVERY:
            self.save()

    def save(self) -> None:
        if not self._unsaved:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = self._read() | self._rows  # keep what another process saved meanwhile
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".json.tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(rows, handle, sort_keys=True)
        os.replace(tmp, self.path)
        self._unsaved = 0
