"""Attribute tagging quality: train on one labelled folder, weighted F1 and accuracy per attribute on another."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.errors import InputError
from sveta.learn.features import Features, features_of
from sveta.learn.heads import AttributeModel
from sveta.learn.int8_network import int8_network, trained_on
from sveta.learn.labels import STYLES_COLUMNS, Example, examples_from_folder

if TYPE_CHECKING:
    from sveta.learn.finetune import FineTune
from sveta.learn.metrics import accuracy, weighted_f1
from sveta.progress import StageProgress
from sveta.settings import Settings


def train_on_folder(
    train: Path,
    settings: Settings,
    on_progress: StageProgress | None = None,
    start: AttributeModel | None = None,
    finetune: FineTune | None = None,
    folder: Path | None = None,
) -> AttributeModel:
    """The attribute model fitted on every item of ``train``: its photos as they are and thumbnail-like.

    With ``finetune``, the CNN's last stages are trained too and the network is written into ``folder``.
    """
    from sveta.learn.train import fit

    examples = examples_from_folder(train)
    if len(examples) < 20:
        raise InputError(f"{train} has {len(examples)} labelled photos", "give a folder with styles.csv and images/")
    if finetune is not None and folder is not None:
        from sveta.learn.finetune import fine_tune

        return fine_tune(examples, settings, folder, finetune, on_progress=on_progress, share=1.0).tuned
    quantised = int8_network(examples, settings) if start is None or start.backbone is None else None
    backbone = quantised[0] if quantised else start.backbone if start is not None else None
    views = [features_of(examples, settings, degrade, on_progress, backbone) for degrade in (False, True)]
    keep = _common_keys(examples, views)
    kept = [e for e in examples if e.key in keep[0]]
    on_epoch = (lambda done, total: on_progress("training", done, total)) if on_progress else None
    views_kept = [v[1].take(k) for v, k in zip(views, keep[1], strict=True)]
    model = fit(kept, views_kept, settings, on_epoch=on_epoch, start=start)
    model.backbone = backbone
    if quantised is not None:
        model.card["backbone"] = quantised[1]
    return model


def folder_model(
    train: Path,
    settings: Settings,
    on_progress: StageProgress | None = None,
    start: AttributeModel | None = None,
    finetune: FineTune | None = None,
) -> tuple[str, AttributeModel]:
    """The model trained on a labelled folder, trained once and kept in the data home (keyed by the folder's content).

    Evaluations on several test folders (sharp, thumbnails) then share one training, as a user's would.
    """
    import hashlib

    from sveta.learn.features import VERSION
    from sveta.learn.store import has_model, load_model, model_dir, save_model
    from sveta.learn.train import Recipe

    styles = Path(train) / "styles.csv"
    content = hashlib.sha256(styles.read_bytes()).hexdigest() if styles.is_file() else ""
    begin = start.card.get("started_from", {}).get("model_id") if start is not None else None
    key = f"{Path(train).resolve()}|{content}|{VERSION}|{Recipe()}" + (f"|from {begin}" if begin else "")
    key += f"|{finetune}" if finetune is not None else ""
    key += "|int8" if finetune is None and not trained_on(settings) else ""  # trained on the INT8 network
    name = "eval-" + hashlib.sha1(key.encode()).hexdigest()[:10]
    if has_model(settings, name):
        return name, load_model(settings, name)
    model = train_on_folder(train, settings, on_progress, start, finetune, model_dir(settings, name))
    model.card.update(name=name, model_id=name, embedder=f"tuned:{name}", trained_on=str(train))
    save_model(model, settings, name, card=False)
    return name, load_model(settings, name)


def save_folder_model(
    train: Path, settings: Settings, on_progress: StageProgress | None = None, finetune: FineTune | None = None
) -> str:
    """The embedder spec of the tuned embedding trained on a labelled folder (see ``folder_model``)."""
    return f"tuned:{folder_model(train, settings, on_progress, finetune=finetune)[0]}"


def evaluate_attributes(
    train: Path,
    test: Path,
    settings: Settings,
    plot_dir: Path | None = None,
    on_progress: StageProgress | None = None,
    start: AttributeModel | None = None,
    finetune: FineTune | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    _, model = folder_model(train, settings, on_progress, start, finetune)
    examples = examples_from_folder(test)
    keys, features = features_of(examples, settings, False, on_progress, model.backbone)
    probs = model.probabilities(features)
    by_key = {e.key: e for e in examples}
    result: dict[str, Any] = {}
    for attribute, column in STYLES_COLUMNS.items():
        if attribute not in probs:
            continue
        truth = [by_key[k].labels.get(attribute, "") for k in keys]
        guess = [model.classes[attribute][i] for i in probs[attribute].argmax(axis=1)]
        result[f"{column}_wf1"] = round(weighted_f1(truth, guess), 4)
        result[f"{column}_acc"] = round(accuracy(truth, guess), 4)
        if plot_dir is not None:
            plot_confusion(truth, guess, plot_dir / f"confusion-{column}.png", column)
    result.update(n_train=model.card["n_train"], n_items=len(keys), seconds=round(time.perf_counter() - started, 1))
    result["backbone"] = model.card.get("backbone") or "frozen"
    return result


def _common_keys(examples: list[Example], views: list[tuple[list[int], Features]]) -> tuple[set[int], list[np.ndarray]]:
    """Keys every view could read, and each view's rows for them in example order."""
    keep = set.intersection(*(set(keys) for keys, _ in views))
    order = [e.key for e in examples if e.key in keep]
    rows = [np.array([{k: i for i, k in enumerate(keys)}[k] for k in order], np.int64) for keys, _ in views]
    return keep, rows


def plot_confusion(truth: list[str], guess: list[str], path: Path, title: str, top: int = 20) -> None:
    """A row-normalised confusion matrix of the ``top`` most frequent true classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label, _ in __import__("collections").Counter(truth).most_common(top)]
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)))
    for t, g in zip(truth, guess, strict=True):
        if t in index and g in index:
            matrix[index[t], index[g]] += 1
    matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1 + 0.45 * len(labels), 1 + 0.45 * len(labels)))
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted from the photo")
    ax.set_ylabel("seller's label")
    ax.set_title(f"{title}: share of each true class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
