"""The colour descriptor: garment foreground, dominant colours in Lab, a colour histogram, the colour's name."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from sveta.vocab.colours import palette, rgb_to_lab

SIDE = 56  # colours survive downsampling; a quarter of a 224 px photo, so a box average gets there
L_EDGES = np.array([30.0, 55.0, 80.0])  # 4 lightness bins: dark, mid, light, very light
AB_EDGES = np.array([-40.0, -15.0, -5.0, 5.0, 15.0, 40.0])  # 7 bins per opponent axis, finer near grey
HIST_DIM = 4 * 7 * 7
BACKGROUND_DELTA = 12.0  # Lab distance from the border colour above which a pixel is garment
MIN_FOREGROUND = 0.05  # below this share the "background" was not plain: use the whole image


@dataclass
class ColourInfo:
    name: str
    rgb: tuple[int, int, int]
    lab: tuple[float, float, float]
    share: float  # of the foreground covered by the named colour
    dominant: list[tuple[str, float]]  # (name, share of foreground), largest first
    histogram: np.ndarray


def describe(image: Image.Image) -> ColourInfo:
    """Name, dominant colours and histogram of the garment in a product photo (or of the whole image)."""
    return describe_lab(_foreground_lab(image))


def describe_lab(lab: np.ndarray) -> ColourInfo:
    """Name, dominant colours and histogram of garment pixels already in Lab (e.g. a person mask's)."""
    names = _nearest_names(lab)
    counts = np.bincount(names, minlength=len(palette()[0]))
    order = np.argsort(counts)[::-1]
    shares = counts / max(len(names), 1)
    dominant = [(palette()[0][i], round(float(shares[i]), 3)) for i in order[:3] if counts[i]]
    name = dominant[0][0] if dominant and dominant[0][1] >= 0.35 else "Multi"
    median = np.median(lab, axis=0)
    return ColourInfo(
        name=name,
        rgb=_lab_to_rgb(median),
        lab=tuple(round(float(v), 1) for v in median),  # type: ignore[arg-type]
        share=dominant[0][1] if dominant else 0.0,
        dominant=dominant,
        histogram=_histogram(lab),
    )


def colour_histogram(image: Image.Image) -> np.ndarray:
    """The search vector: a smoothed Lab histogram of the foreground, Hellinger-normalised (unit L2 norm)."""
    return _histogram(_foreground_lab(image))


def _foreground_lab(image: Image.Image) -> np.ndarray:
    lab = rgb_to_lab(np.asarray(_small(image))).reshape(SIDE, SIDE, 3)
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    background = np.median(border, axis=0)
    plain = np.median(_squared_distance(border, background)) < (BACKGROUND_DELTA / 2) ** 2
    pixels = lab.reshape(-1, 3)
    if not plain:
        return pixels
    mask = _squared_distance(pixels, background) > BACKGROUND_DELTA**2
    return pixels[mask] if mask.mean() >= MIN_FOREGROUND else pixels


def _small(image: Image.Image) -> Image.Image:
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    factor = min(rgb.size) // SIDE
    if factor > 1:  # a box average by an integer factor costs a tenth of a filtered resize
        rgb = rgb.reduce(factor)
    return rgb if rgb.size == (SIDE, SIDE) else rgb.resize((SIDE, SIDE), Image.Resampling.BILINEAR)


def _squared_distance(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    delta = points - centre
    return np.einsum("ij,ij->i", delta, delta)


def _histogram(lab: np.ndarray) -> np.ndarray:
    li = np.searchsorted(L_EDGES, lab[:, 0])
    ai = np.searchsorted(AB_EDGES, lab[:, 1])
    bi = np.searchsorted(AB_EDGES, lab[:, 2])
    hist = np.bincount((li * 7 + ai) * 7 + bi, minlength=HIST_DIM).astype(np.float32).reshape(4, 7, 7)
    for axis in range(3):  # neighbour smoothing: a colour near a bin edge still meets its twin
        hist = 0.5 * hist + 0.25 * (np.roll(hist, 1, axis) + np.roll(hist, -1, axis))
    vector = np.sqrt(hist.reshape(-1) / max(hist.sum(), 1e-9))
    return (vector / max(float(np.linalg.norm(vector)), 1e-9)).astype(np.float32)


def _lab_to_rgb(lab: np.ndarray) -> tuple[int, int, int]:
    _, labs, rgbs = palette()
    return tuple(int(v) for v in rgbs[int(np.argmin(np.linalg.norm(labs - lab, axis=1)))])  # type: ignore[return-value]


def _nearest_names(lab: np.ndarray) -> np.ndarray:
    _, labs, _ = palette()
    return np.argmin(((lab[:, None, :] - labs[None, :, :]) ** 2).sum(axis=2), axis=1)


PROFILE_L_EDGES = np.array([20.0, 40.0, 60.0, 80.0])
PROFILE_AB_EDGES = np.array([-40.0, -20.0, -10.0, -4.0, 4.0, 10.0, 20.0, 40.0])  # finer near grey: navy vs black
PROFILE_DIM = 5 * 9 * 9 + 13
_CENTRE_SIGMA = 0.3  # of the side: the garment is mostly in the middle, props and hands at the edges


def colour_profile(image: Image.Image) -> np.ndarray:
    """What the colour heads learn from: a finer, centre-weighted foreground Lab histogram plus Lab quantiles."""
    lab = rgb_to_lab(np.asarray(_small(image))).reshape(SIDE, SIDE, 3)
    pixels = lab.reshape(-1, 3)
    weights = _foreground_mask(lab) * _centre_weights()
    bins = [
        np.searchsorted(e, pixels[:, j]) for j, e in enumerate((PROFILE_L_EDGES, PROFILE_AB_EDGES, PROFILE_AB_EDGES))
    ]
    flat = (bins[0] * 9 + bins[1]) * 9 + bins[2]
    hist = np.bincount(flat, weights=weights, minlength=5 * 81).reshape(5, 9, 9)
    for axis in range(3):
        hist = 0.5 * hist + 0.25 * (np.roll(hist, 1, axis) + np.roll(hist, -1, axis))
    vector = np.sqrt(hist.reshape(-1) / max(hist.sum(), 1e-9))
    vector /= max(float(np.linalg.norm(vector)), 1e-9)
    chroma = np.hypot(pixels[:, 1], pixels[:, 2])
    stats = [q for v in (*pixels.T, chroma) for q in _weighted_quantiles(v, weights + 1e-9, (0.1, 0.5, 0.9))]
    stats.append(100 * float((weights > 0).mean()))
    return np.concatenate([vector, np.array(stats) / 100.0]).astype(np.float32)


def _foreground_mask(lab: np.ndarray) -> np.ndarray:
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    background = np.median(border, axis=0)
    mask = _squared_distance(lab.reshape(-1, 3), background) > BACKGROUND_DELTA**2
    plain = np.median(_squared_distance(border, background)) < (BACKGROUND_DELTA / 2) ** 2
    return mask if plain and mask.mean() >= MIN_FOREGROUND else np.ones(len(mask), bool)


@functools.lru_cache(maxsize=1)
def _centre_weights() -> np.ndarray:
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    centre = (SIDE - 1) / 2
    return np.exp(-((yy - centre) ** 2 + (xx - centre) ** 2) / (2 * (_CENTRE_SIGMA * SIDE) ** 2)).reshape(-1)


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    cumulative /= cumulative[-1]
    picks = np.minimum(np.searchsorted(cumulative, qs), len(values) - 1)
    return [float(v) for v in values[order][picks]]
