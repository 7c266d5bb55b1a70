"""What covers a body line in a photo of a person (an arm, a leg): skin, the garment or something else, sampled."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image

from sveta.vocab.colours import rgb_to_lab

Point = tuple[float, float]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
SKIN, GARMENT, OTHER, UNSEEN = "S", "G", "O", "?"
SHADE = 0.5  # weight of Lab lightness in a distance: shading darkens skin and cloth alike
SKIN_DELTA = 14.0  # weighted Lab distance to the skin tone within which a pixel is skin
GARMENT_DELTA = 14.0  # ... to the nearest garment palette pixel within which a pixel is that garment
HAND_TAIL = 7  # samples ending a line that may cross the body after its skin (a hand on a hip)
SAMPLE_SHARE = 0.5  # share of a sample's pixels that must agree for it to be skin or garment
PALETTE_GAP = 20.0  # garment colours nearer the skin tone than this are left out: shaded cloth edges, blends
PALETTE_SIZE = 400  # garment pixels kept to compare against (an even subsample)
# skin in Lab: warm (a*, b* > 0) and neither black nor white; a face patch outside this is hair, a mask or shadow
SKIN_L, SKIN_A, SKIN_B = (25.0, 90.0), (4.0, 35.0), (5.0, 40.0)


def lab_pixels(image: Image.Image) -> np.ndarray:
    """The photo in CIE Lab, height x width x 3."""
    rgb = np.asarray(image.convert("RGB"))
    return rgb_to_lab(rgb).reshape(*rgb.shape[:2], 3)


def distance(pixels: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Shade-tolerant Lab distance of each pixel (N x 3) to its nearest colour (M x 3): N values."""
    if len(colours) == 0:
        return np.full(len(pixels), np.inf, np.float32)
    weight = np.array([SHADE, 1.0, 1.0], np.float32)
    p, c = pixels.astype(np.float32) * weight, colours.astype(np.float32) * weight
    squared = (p * p).sum(axis=1)[:, None] + (c * c).sum(axis=1)[None, :] - 2 * (p @ c.T)
    return np.sqrt(np.maximum(squared.min(axis=1), 0.0))


def disk(lab: np.ndarray, mask: np.ndarray, centre: Point, radius: float) -> np.ndarray:
    """The person's pixels (N x 3 Lab) within ``radius`` of ``centre``; none when it lies off the photo."""
    height, width = mask.shape
    x, y, r = centre[0], centre[1], max(1.0, radius)
    x0, x1 = max(0, int(x - r)), min(width, int(np.ceil(x + r)) + 1)
    y0, y1 = max(0, int(y - r)), min(height, int(np.ceil(y + r)) + 1)
    if x0 >= x1 or y0 >= y1:
        return np.empty((0, 3), np.float32)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    inside = ((xs - x) ** 2 + (ys - y) ** 2 <= r * r) & mask[y0:y1, x0:x1]
    return lab[y0:y1, x0:x1][inside]


def is_skin_tone(colour: np.ndarray) -> bool:
    """Could this Lab colour be human skin (any tone)?"""
    low, high = np.array([SKIN_L[0], SKIN_A[0], SKIN_B[0]]), np.array([SKIN_L[1], SKIN_A[1], SKIN_B[1]])
    return bool(((colour >= low) & (colour <= high)).all())


def skin_tone(lab: np.ndarray, mask: np.ndarray, patches: Sequence[tuple[Point, float]]) -> np.ndarray | None:
    """The median Lab colour of the first patch (centre, radius) that looks like skin, e.g. the face, then hands."""
    for centre, radius in patches:
        pixels = disk(lab, mask, centre, radius)
        if len(pixels) < 6:
            continue
        tone = np.median(pixels, axis=0)
        # most of the patch must be near its median: a face half in hair or shadow gives no clean tone
        if is_skin_tone(tone) and (distance(pixels, tone[None]) < SKIN_DELTA).mean() >= 0.6:
            return tone.astype(np.float32)
    return None


def box_pixels(lab: np.ndarray, mask: np.ndarray, box: Box) -> np.ndarray:
    """The person's pixels (N x 3 Lab) inside ``box``, clipped to the photo."""
    height, width = mask.shape
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x0 >= x1 or y0 >= y1:
        return np.empty((0, 3), np.float32)
    return lab[y0:y1, x0:x1][mask[y0:y1, x0:x1]]


def garment_palette(lab: np.ndarray, mask: np.ndarray, box: Box, skin: np.ndarray) -> np.ndarray:
    """An even subsample of the person's pixels in ``box`` that are far from skin: the garment's colours."""
    pixels = box_pixels(lab, mask, box)
    pixels = pixels[distance(pixels, skin[None]) >= PALETTE_GAP]
    return pixels[:: max(1, len(pixels) // PALETTE_SIZE)]


def skin_share(lab: np.ndarray, mask: np.ndarray, box: Box, skin: np.ndarray) -> float:
    """The share of the person's pixels in ``box`` that are skin-coloured (1.0 when the box holds none)."""
    pixels = box_pixels(lab, mask, box)
    return float((distance(pixels, skin[None]) < SKIN_DELTA).mean()) if len(pixels) else 1.0


def classify(to_skin: np.ndarray, to_garment: np.ndarray) -> str:
    """One sample from its pixels' distances: mostly skin, mostly the garment, something else, or unseen."""
    if len(to_skin) < 3:
        return UNSEEN
    if ((to_skin < SKIN_DELTA) & (to_skin <= to_garment)).mean() >= SAMPLE_SHARE:
        return SKIN
    if ((to_garment < GARMENT_DELTA) & (to_garment < to_skin)).mean() >= SAMPLE_SHARE:
        return GARMENT
    return OTHER


def along(
    lab: np.ndarray,
    mask: np.ndarray,
    joints: Sequence[Point],
    radius: float,
    skin: np.ndarray,
    palette: np.ndarray,
    steps: int = 10,
) -> list[str]:
    """The states of ``steps`` samples per segment of the line through ``joints`` (shoulder, elbow, wrist ...)."""
    samples = [
        disk(lab, mask, (ax + t * (bx - ax), ay + t * (by - ay)), radius)
        for (ax, ay), (bx, by) in itertools.pairwise(joints)
        for t in (np.arange(steps) + 0.5) / steps
    ]
    pixels = np.concatenate(samples) if samples else np.empty((0, 3), np.float32)
    to_skin, to_garment = distance(pixels, skin[None]), distance(pixels, palette)
    cuts = np.cumsum([len(s) for s in samples])[:-1]
    return [classify(s, g) for s, g in zip(np.split(to_skin, cuts), np.split(to_garment, cuts), strict=True)]


def cover_end(states: Sequence[str], steps: int = 10, bare: Sequence[str] = (SKIN,)) -> float | None:
    """Where the garment stops along the line, in segments (1.0 = the second joint); None when unclear.

    The first place after which the line stays bare: before it the garment (its first sample may be anything),
    after it at least four in five samples ``bare`` (skin, or what the caller accepts), half of them skin. Either
    part may hold lone samples of the other, never two in a row. A tail after a run of skin is left out: the hand
    in front of the body. A line covered to its end gives its full length.
    """
    if sum(s == UNSEEN for s in states) > 0.3 * len(states):
        return None
    line = "".join(states)
    tail = re.search(f"{SKIN}{{3}}([^{SKIN}]{{1,{HAND_TAIL}}})$", line)
    line = line[: tail.start(1)] if tail else line
    for end in range(len(line) + 1):
        before, after = line[1:end].replace(UNSEEN, ""), line[end:].replace(UNSEEN, "")
        if _mostly(before, GARMENT) and not (after and after[0] == GARMENT) and _mostly(after, *bare):
            if not after or after.count(SKIN) >= 0.5 * len(after):
                return end / steps
            return None
    return None


def _mostly(part: str, *allowed: str) -> bool:
    """Are at least four in five of ``part``'s samples ``allowed``, with no two others in a row?"""
    other = "".join("x" if s not in allowed else "." for s in part)
    return "xx" not in other and other.count("x") <= max(1, len(part) // 5)
