"""Named colours: the palette (data/colours.yaml, Myntra's baseColour names) and sRGB -> CIE Lab."""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import yaml


def _srgb_linear_table() -> np.ndarray:
    c = np.arange(256, dtype=np.float32) / 255.0
    return np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92).astype(np.float32)


_LINEAR = _srgb_linear_table()  # a lookup instead of a power per channel: half the descriptor's time


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8, ...x3) -> CIE Lab (D65), float32."""
    linear = _LINEAR[rgb.reshape(-1, 3).astype(np.uint8, copy=False)]
    matrix = np.array([[0.4124, 0.2126, 0.0193], [0.3576, 0.7152, 0.1192], [0.1805, 0.0722, 0.9505]], np.float32)
    xyz = (linear @ matrix) / np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    lab = np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)
    return lab.astype(np.float32)


@functools.lru_cache(maxsize=1)
def palette() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The palette's names, their Lab values and their sRGB values, in the file's order."""
    data = yaml.safe_load(resources.files("sveta.vocab").joinpath("data/colours.yaml").read_text())
    names = list(data)
    rgbs = np.array([data[n] for n in names], dtype=np.uint8)
    return names, rgb_to_lab(rgbs), rgbs
