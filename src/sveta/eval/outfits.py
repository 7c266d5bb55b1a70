"""Outfit sets end to end: train the compatibility model, measure FITB and AUC on the test split, keep the model.

`sveta outfits train` keeps it for complete-the-look.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.outfits.data import OutfitSet, read_outfits
from sveta.outfits.metrics import compat_auc, cosine_distance, fitb_accuracy, model_distance
from sveta.outfits.model import CompatModel
from sveta.outfits.train import OutfitRecipe, fit_outfit_model
from sveta.progress import Progress, StageProgress

if TYPE_CHECKING:
    from sveta.learn.features import Features
    from sveta.settings import Settings


def evaluate_outfits(
    path: Path, settings: Settings, items_folder: Path | None = None, on_progress: StageProgress | None = None
) -> dict[str, Any]:
    """FITB accuracy and compatibility AUC of the type-aware model, of the same model with one shared space
    (no types), and of untrained photo features (cosine), all on the set's test questions."""
    start = time.perf_counter()
    data, features = load_with_features(path, settings, items_folder, on_progress)
    typed = fit_outfit_model(data, features, settings, on_epoch=_epochs(on_progress, "training (typed)"))
    untyped_recipe = OutfitRecipe(typed=False)
    untyped = fit_outfit_model(data, features, settings, untyped_recipe, _epochs(on_progress, "training (untyped)"))
    pooled = {i: f.pooled[0] for i, f in features.items()}
    result = data.summary() | measure(typed, data, features)
    result |= {f"{k}_untyped": v for k, v in measure(untyped, data, features).items()}
    result |= {"fitb_baseline": fitb_accuracy(data, cosine_distance(pooled))}
    result |= {"auc_baseline": compat_auc(data, cosine_distance(pooled))}
    result = {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}
    return result | {"chance_fitb": round(1 / _choices(data), 4), "seconds": round(time.perf_counter() - start, 1)}


def train_outfit_model(
    path: Path, settings: Settings, items_folder: Path | None = None, on_progress: StageProgress | None = None
) -> dict[str, Any]:
    """Fit on the set's train split, measure on its test split, save to the data home (complete then uses it)."""
    from sveta.outfits.model import model_dir

    data, features = load_with_features(path, settings, items_folder, on_progress)
    model = fit_outfit_model(data, features, settings, on_epoch=_epochs(on_progress, "training"))
    metrics = {k: round(v, 4) for k, v in measure(model, data, features).items()}
    model.card |= {"test": metrics}
    folder = model_dir(settings.data_dir)
    model.save(folder)
    return data.summary() | metrics | {"model": str(folder), "model_id": model.model_id, "types": model.types}


def measure(model: CompatModel, data: OutfitSet, features: dict[str, Features]) -> dict[str, float]:
    """``fitb`` and ``auc`` of a trained model on the set's test questions."""
    ids = [i for i in features if model.knows(data.items[i].slot)]
    vectors = dict(zip(ids, model.embed(_stack(features, ids)), strict=True))
    known = _restrict(data, set(vectors))
    distance = model_distance(model, known, vectors)
    return {"fitb": fitb_accuracy(known, distance), "auc": compat_auc(known, distance)}


def load_with_features(
    path: Path, settings: Settings, items_folder: Path | None = None, on_progress: StageProgress | None = None
) -> tuple[OutfitSet, dict[str, Features]]:
    """The outfit set, and its items' photo features (cached in the data home)."""
    from sveta.outfits.photos import item_features

    data = read_outfits(path, items_folder)
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if on_progress:
            on_progress("photo features", done[0], len(data.items))

    return data, item_features(data, settings, advance)


def _stack(features: dict[str, Features], ids: list[str]) -> Features:
    from sveta.learn.features import Features

    rows = [features[i] for i in ids]
    return Features(*(np.vstack([getattr(r, b) for r in rows]) for b in ("pooled", "mid", "colour", "profile")))


def _restrict(data: OutfitSet, usable: set[str]) -> OutfitSet:
    """The test questions whose every item has a photo the model can place (others cannot be scored)."""
    fitb = [q for q in data.fitb if usable.issuperset(q.question + q.candidates)]
    compat = [(label, ids) for label, ids in data.compat if usable.issuperset(ids)]
    return OutfitSet(data.items, data.train, data.test, fitb, compat, data.source)


def _choices(data: OutfitSet) -> int:
    return max((len(q.candidates) for q in data.fitb), default=1)


def _epochs(on_progress: StageProgress | None, stage: str) -> Progress | None:
    if on_progress is None:
        return None
    return lambda done, total: on_progress(stage, done, total)
