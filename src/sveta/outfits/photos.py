"""Photo features of outfit items for the outfit model, through the cached feature extractor."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sveta.learn.features import Features, extract
from sveta.outfits.data import OutfitSet
from sveta.progress import Advance

if TYPE_CHECKING:
    from sveta.settings import Settings


def item_features(data: OutfitSet, settings: Settings, on_progress: Advance | None = None) -> dict[str, Features]:
    """Each item's features (one row); items whose photo cannot be read are left out."""
    ids = sorted(data.items)
    keys, features = extract(
        [(n, data.items[i].image, None) for n, i in enumerate(ids)], settings, on_progress=on_progress
    )
    return {ids[key]: features.take(np.array([row])) for row, key in enumerate(keys)}
