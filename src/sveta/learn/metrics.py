"""How well a model reads attributes: weighted F1 and accuracy, and their held-out measure after training."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.learn.features import features_of
from sveta.learn.labels import Example, stable_share

if TYPE_CHECKING:
    from sveta.learn.heads import AttributeModel
    from sveta.progress import StageProgress
    from sveta.settings import Settings

THUMBNAIL_METRIC_ITEMS = 600  # thumbnail-like copies of a few hundred held-out products measure robustness enough


def weighted_f1(truth: list[str], guess: list[str]) -> float:
    """F1 per true class, averaged with the class's share of the items (scikit-learn's 'weighted')."""
    labels = sorted(set(truth))
    total = 0.0
    for label in labels:
        tp = sum(t == g == label for t, g in zip(truth, guess, strict=True))
        predicted, actual = guess.count(label), truth.count(label)
        f1 = 2 * tp / (predicted + actual) if predicted + actual else 0.0
        total += f1 * actual
    return total / max(len(truth), 1)


def accuracy(truth: list[str], guess: list[str]) -> float:
    return float(np.mean([t == g for t, g in zip(truth, guess, strict=True)]))


def thumbnail_sample(test: list[Example]) -> list[Example]:
    """The held-out products also measured thumbnail-like (about THUMBNAIL_METRIC_ITEMS of them)."""
    share = THUMBNAIL_METRIC_ITEMS / max(len(test), 1)
    return [e for e in test if stable_share(e.key) < share]


def mean_f1(metrics: dict[str, Any]) -> float:
    """One number to compare two models' held-out metrics by: the mean of their weighted F1s."""
    scores = [v for k, v in metrics.items() if k.endswith("_wf1")]
    return float(np.mean(scores)) if scores else 0.0


def held_out_metrics(
    model: AttributeModel, test: list[Example], settings: Settings, on_progress: StageProgress | None = None
) -> dict[str, Any]:
    """Weighted F1 / accuracy per attribute on the held-out products, as photographed and thumbnail-like."""
    metrics: dict[str, Any] = {}
    by_key = {e.key: e for e in test}
    for degrade, view in ((False, "sharp"), (True, "thumbnail")):
        sample = thumbnail_sample(test) if degrade else test
        ids, features = features_of(sample, settings, degrade, on_progress, model.backbone)
        for attribute, p in model.probabilities(features).items():
            truth = [by_key[k].labels.get(attribute) for k in ids]
            keep = [i for i, t in enumerate(truth) if t]
            if not keep:
                continue
            guess = [model.classes[attribute][j] for j in p[keep].argmax(axis=1)]
            labelled = [str(truth[i]) for i in keep]
            metrics[f"{view}/{attribute}_wf1"] = round(weighted_f1(labelled, guess), 4)
            metrics[f"{view}/{attribute}_acc"] = round(accuracy(labelled, guess), 4)
    return metrics
