"""The trained outfit model as one part of complete-the-look's score: catalog products placed in its subspaces."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sveta.catalog.attributes import first_cached_photos
from sveta.learn.features import extract
from sveta.outfits.model import CompatModel, load_outfit_model

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.outfits.arrays import CatalogArrays
    from sveta.settings import Settings

NEUTRAL = 0.5  # the part's value where the model cannot judge (no photo, a slot it never saw)


class LearnedCompatibility:
    """Each catalog row's general embedding (from its first cached photo), and the piece-to-row compatibility."""

    def __init__(self, model: CompatModel, arrays: CatalogArrays, catalog: CatalogStore, settings: Settings) -> None:
        self.model = model
        self.settings = settings
        self.slot_names = arrays.slots.values
        self.vectors = np.zeros((len(arrays), model.weights["w2"].shape[0]), np.float32)
        self.has_vector = np.zeros(len(arrays), bool)
        photos = _first_photos(catalog, arrays.row_of)
        rows, features = extract(photos, settings)
        if rows:
            self.vectors[rows] = model.embed(features)
            self.has_vector[rows] = True

    @classmethod
    def load(cls, arrays: CatalogArrays, catalog: CatalogStore, settings: Settings) -> LearnedCompatibility | None:
        model = load_outfit_model(settings.data_dir)
        return None if model is None else cls(model, arrays, catalog, settings)

    def embed_photo(self, path: Path) -> np.ndarray | None:
        rows, features = extract([(0, path, None)], self.settings)
        return self.model.embed(features)[0] if rows else None

    def part(
        self, vector: np.ndarray | None, slot: str, row_slots: np.ndarray, codes: list[int] | None = None
    ) -> np.ndarray:
        """[0, 1] per row: 1 for the most compatible of its slot (5th-95th percentile of distances rescaled); only
        the slots ``codes`` when given (the others stay NEUTRAL)."""
        out = np.full(len(row_slots), NEUTRAL, np.float32)
        if vector is None or not self.model.knows(slot):
            return out
        present = np.unique(row_slots[self.has_vector])
        for code in present if codes is None else np.intersect1d(present, codes):
            name = self.slot_names[code]
            rows = self.has_vector & (row_slots == code)
            if not self.model.knows(name) or rows.sum() < 2:
                continue
            d = self.model.distance(vector, slot, self.vectors[rows], name)
            near, far = np.percentile(d, [5, 95])
            out[rows] = np.clip((far - d) / max(far - near, 1e-6), 0, 1)
        return out


def _first_photos(catalog: CatalogStore, row_of: Mapping[int, int]) -> list[tuple[int, Path, str | None]]:
    """(row, photo, sha256) of each product's first cached photo."""
    return [
        (row_of[p.product_id], Path(p.local_path), p.sha256)
        for p in first_cached_photos(catalog)
        if p.product_id in row_of
    ]
