"""Outfit metrics: fill-in-the-blank accuracy and compatibility AUC, for the trained model or a baseline."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sveta.outfits.data import OutfitSet
from sveta.outfits.model import CompatModel

# distance(item a, item b) for the items of a set: smaller goes better together
Distance = Callable[[str, str], float]


def fitb_accuracy(data: OutfitSet, distance: Distance) -> float:
    """Share of questions whose right answer has the smallest summed distance to the rest of the outfit."""
    right = 0
    usable = 0
    for q in data.fitb:
        if not q.question:
            continue
        totals = np.array([sum(distance(i, c) for i in q.question) for c in q.candidates])
        usable += 1
        right += int(np.argmin(totals) == q.answer and np.sum(totals == totals.min()) == 1)
    return right / usable if usable else float("nan")


def compat_auc(data: OutfitSet, distance: Distance) -> float:
    """Area under the ROC curve of outfit scores (minus the mean pair distance), good outfits against bad ones."""
    labels, scores = [], []
    for label, ids in data.compat:
        pairs = [(a, b) for n, a in enumerate(ids) for b in ids[n + 1 :]]
        if pairs:
            labels.append(label)
            scores.append(-float(np.mean([distance(a, b) for a, b in pairs])))
    return auc(np.array(labels), np.array(scores))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half: the chance a random positive outscores a random negative."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def model_distance(model: CompatModel, data: OutfitSet, vectors: dict[str, np.ndarray]) -> Distance:
    """Distance in the subspace of the two items' slots."""

    def distance(a: str, b: str) -> float:
        ua, ub = data.items[a].slot, data.items[b].slot
        return float(model.distance(vectors[a], ua, vectors[b][None, :], ub)[0])

    return distance


def cosine_distance(vectors: dict[str, np.ndarray]) -> Distance:
    """The baseline: 1 - cosine of the untrained photo features (unit rows)."""

    def distance(a: str, b: str) -> float:
        return 1.0 - float(vectors[a] @ vectors[b])

    return distance
