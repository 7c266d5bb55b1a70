"""Fitting the attribute model: a multi-task MLP with a supervised-contrastive embedding, then calibration."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sveta._optional import require
from sveta.errors import InputError
from sveta.learn.features import BLOCKS, Features
from sveta.learn.heads import AttributeModel
from sveta.learn.labels import ATTRIBUTES, WEAK_ATTRIBUTES, Example, classes
from sveta.progress import Progress

if TYPE_CHECKING:
    import torch

    from sveta.learn.attribute_net import AttributeNet
    from sveta.settings import Settings

# Colour is what frozen ImageNet features see least: it gets the largest share of the loss.
HEAD_WEIGHTS = {"category": 1.0, "colour": 2.0}
OTHER_HEAD_WEIGHT = 0.5
IGNORE = -100  # torch's ignore_index: the item has no (learnable) label for that attribute
MIN_STEPS = 300
# An attribute few products are labelled with (a sleeve length in 22 titles of 9,583) would give every photo,
# handbags included, an answer learned from a handful of shirts: it gets no head.
MIN_COVERAGE = 0.25
MIN_WEAK = 200  # a weak attribute (read from photos of people, for some categories only) needs this many labels


@dataclass(frozen=True)
class Recipe:
    hidden: int = 1024
    embedding: int = 128
    epochs: int = 18  # 25 before: on val P@10 and F1 moved by at most 0.004 (benchmarks/bench_recipe.py), fit -30%
    batch: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    input_dropout: float = 0.2
    dropout: float = 0.5
    smoothing: float = 0.1
    supcon: float = 1.0
    supcon_tau: float = 0.1
    supcon_type_only: float = 0.25  # a pair sharing the category but not the colour is a weak positive
    calibration_share: float = 0.1
    seed: int = 0


def fit(
    examples: Sequence[Example],
    views: Sequence[Features],
    settings: Settings,
    recipe: Recipe = Recipe(),
    on_epoch: Progress | None = None,
    start: AttributeModel | None = None,
) -> AttributeModel:
    """Train on ``examples`` seen through each of ``views`` (row-aligned Features, e.g. sharp and thumbnail-like).

    With ``start`` (a model trained on another, larger catalog), the network starts from its weights: the shared
    layers as they are, each head's rows for the classes both label sets have, fresh rows for new classes and heads.
    """
    labels = label_matrix(examples, start.classes if start is not None else {})
    if not labels:
        raise InputError(
            f"{len(examples)} products and no attribute with two classes of {_min_hint()}",
            "ingest a catalog whose products have categories (seller columns or words in the titles)",
        )
    held, fit_rows = calibration_split(len(examples), recipe)
    started = time.perf_counter()
    weights = _train(views, labels, fit_rows, settings, recipe, on_epoch, start)
    classes_ = {a: names for a, (names, _) in labels.items()}
    model = AttributeModel(weights, classes_, {a: 1.0 for a in labels})
    model.temperatures = calibrate(model, views, labels, held)
    model.card.update(
        blocks=list(BLOCKS),
        recipe=recipe.__dict__,
        n_train=len(examples),
        train_seconds=round(time.perf_counter() - started, 1),
    )
    return model


def calibration_split(n: int, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """(rows held out to calibrate the confidences, rows trained on): the same every run."""
    rng = np.random.default_rng(recipe.seed)
    held = rng.permutation(n)[: max(1, int(n * recipe.calibration_share))]
    return held, np.setdiff1d(np.arange(n), held)


def label_matrix(examples: Sequence[Example], known: dict[str, list[str]]) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per attribute, its classes and each example's class index. A starting model's classes (``known``) are kept
    although the catalog has few examples of them: a small catalog then inherits what a larger one learned."""
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    for attribute in ATTRIBUTES:
        inherited = known.get(attribute, [])
        names = [*inherited, *(n for n in classes(examples, attribute) if n not in inherited)]
        if len(names) < 2:
            continue
        index = {n: i for i, n in enumerate(names)}
        y = np.array([index.get(e.labels.get(attribute, ""), IGNORE) for e in examples], np.int64)
        if (y != IGNORE).mean() >= MIN_COVERAGE or (attribute in WEAK_ATTRIBUTES and (y != IGNORE).sum() >= MIN_WEAK):
            out[attribute] = (names, y)
    return out


def _train(
    views: Sequence[Features],
    labels: dict[str, tuple[list[str], np.ndarray]],
    rows: np.ndarray,
    settings: Settings,
    recipe: Recipe,
    on_epoch: Progress | None,
    start: AttributeModel | None = None,
) -> dict[str, np.ndarray]:
    require("torch", "train")
    import torch

    torch.manual_seed(recipe.seed)
    with torch_threads(settings):
        return _fit_net(views, labels, rows, recipe, on_epoch, start)


@contextmanager
def torch_threads(settings: Settings) -> Iterator[None]:
    """Train on the configured thread count (0: one per core), then give the process its own setting back.

    Call it once ``require("torch", ...)`` has said how to install torch where it is missing.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(settings.onnx_threads or os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _fit_net(
    views: Sequence[Features],
    labels: dict[str, tuple[list[str], np.ndarray]],
    rows: np.ndarray,
    recipe: Recipe,
    on_epoch: Progress | None,
    start: AttributeModel | None = None,
) -> dict[str, np.ndarray]:
    import torch

    x = np.vstack([v.matrix()[rows] for v in views])
    mu, sd = (x.mean(0), x.std(0) + 1e-4) if start is None else (start.weights["mu"], start.weights["sd"])
    xt = torch.from_numpy(((x - mu) / sd).astype(np.float32))
    yt = torch.from_numpy(np.stack([np.tile(y[rows], len(views)) for _, y in labels.values()], 1))
    net = make_net(xt.shape[1], [len(n) for n, _ in labels.values()], recipe)
    if start is not None:
        warm_start(net, start, {a: names for a, (names, _) in labels.items()})
    _optimise(net, xt, yt, list(labels), recipe, on_epoch)
    params = {"fc_w": net.fc.weight, "fc_b": net.fc.bias, "emb_w": net.emb.weight, "emb_b": net.emb.bias}
    for attribute, head in zip(labels, net.heads, strict=True):
        params |= {f"head/{attribute}/w": head.weight, f"head/{attribute}/b": head.bias}
    weights = {"mu": mu.astype(np.float32), "sd": sd.astype(np.float32)}
    return weights | {k: v.detach().numpy().astype(np.float32) for k, v in params.items()}


def warm_start(net: AttributeNet, start: AttributeModel, classes: dict[str, list[str]]) -> None:
    """Copy ``start``'s shared layers, and for each head the rows of the classes both models know."""
    import torch

    w = start.weights
    if w["fc_w"].shape != tuple(net.fc.weight.shape) or w["emb_w"].shape != tuple(net.emb.weight.shape):
        raise InputError(
            f"the starting model's layers ({w['fc_w'].shape}) do not fit this recipe ({tuple(net.fc.weight.shape)})",
            "start from a model trained with the same recipe and features",
        )
    with torch.no_grad():
        for layer, name in ((net.fc, "fc"), (net.emb, "emb")):
            layer.weight.copy_(torch.from_numpy(w[f"{name}_w"]))
            layer.bias.copy_(torch.from_numpy(w[f"{name}_b"]))
        for (attribute, names), head in zip(classes.items(), net.heads, strict=True):
            known = {c: i for i, c in enumerate(start.classes.get(attribute, []))}
            for row, name in enumerate(names):
                if name in known:
                    head.weight[row] = torch.from_numpy(w[f"head/{attribute}/w"][known[name]])
                    head.bias[row] = float(w[f"head/{attribute}/b"][known[name]])


def make_net(dim: int, sizes: list[int], recipe: Recipe) -> AttributeNet:
    from sveta.learn.attribute_net import AttributeNet

    return AttributeNet(
        dim,
        sizes,
        hidden=recipe.hidden,
        embedding=recipe.embedding,
        input_dropout=recipe.input_dropout,
        dropout=recipe.dropout,
    )


def _optimise(
    net: AttributeNet,
    xt: torch.Tensor,
    yt: torch.Tensor,
    attributes: list[str],
    recipe: Recipe,
    on_epoch: Progress | None,
) -> None:
    import torch

    optimiser = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    per_epoch = -(-len(xt) // recipe.batch)
    epochs = max(recipe.epochs, -(-MIN_STEPS // per_epoch))  # a small catalog still gets enough updates
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, recipe.lr, total_steps=epochs * per_epoch, pct_start=0.1)
    ce = torch.nn.CrossEntropyLoss(label_smoothing=recipe.smoothing, ignore_index=IGNORE)
    generator = torch.Generator().manual_seed(recipe.seed)
    net.train()
    for epoch in range(epochs):
        for batch in torch.randperm(len(xt), generator=generator).split(recipe.batch):
            logits, embedding = net(xt[batch])
            loss = multi_task_loss(ce, logits, embedding, yt[batch], attributes, recipe)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        if on_epoch:
            on_epoch(epoch + 1, epochs)
    net.eval()


def multi_task_loss(
    ce: torch.nn.CrossEntropyLoss,
    logits: list[torch.Tensor],
    embedding: torch.Tensor,
    y: torch.Tensor,
    attributes: list[str],
    recipe: Recipe,
) -> torch.Tensor:
    """The heads' weighted cross-entropies plus the supervised-contrastive term on the embedding."""
    import torch

    weights = [HEAD_WEIGHTS.get(a, OTHER_HEAD_WEIGHT) for a in attributes]
    terms = [w * _masked_ce(ce, out, y[:, i]) for i, (w, out) in enumerate(zip(weights, logits, strict=True))]
    loss = sum(terms, torch.zeros((), device=embedding.device))
    pair = [attributes.index(a) if a in attributes else None for a in ("category", "colour")]
    if recipe.supcon and pair[0] is not None:
        colour = y[:, pair[1]] if pair[1] is not None else y[:, pair[0]]
        loss = loss + recipe.supcon * _supcon(embedding, y[:, pair[0]], colour, recipe)
    return loss


def _masked_ce(ce: torch.nn.CrossEntropyLoss, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # a batch where no item has this label would make CrossEntropyLoss return NaN
    return ce(logits, y) if bool((y != IGNORE).any()) else logits.sum() * 0.0


def _supcon(embedding: torch.Tensor, category: torch.Tensor, colour: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """Supervised contrastive loss: a pair sharing category and colour is a positive, category alone a weak one."""
    import torch

    e = torch.nn.functional.normalize(embedding, dim=1)
    eye = torch.eye(len(e), dtype=torch.bool, device=e.device)
    logp = torch.log_softmax((e @ e.T / recipe.supcon_tau).masked_fill(eye, -1e9), dim=1)
    known = (category != IGNORE)[:, None] & (category != IGNORE)[None]
    same_type = (category[:, None] == category[None]) & known
    same_both = same_type & (colour[:, None] == colour[None]) & (colour != IGNORE)[:, None]
    w = same_type.float() * recipe.supcon_type_only + same_both.float() * (1 - recipe.supcon_type_only)
    w = w.masked_fill(eye, 0)
    has = w.sum(1) > 0
    if not bool(has.any()):
        return embedding.sum() * 0.0
    return -((w * logp).sum(1)[has] / w.sum(1)[has]).mean()


def calibrate(
    model: AttributeModel, views: Sequence[Features], labels: dict[str, tuple[list[str], np.ndarray]], rows: np.ndarray
) -> dict[str, float]:
    """One temperature per head minimising the held-out log loss: confidences then mean what they say."""
    z = [model.hidden(v.take(rows)) for v in views]
    out = {}
    for attribute, (_, y) in labels.items():
        w, b = model.weights[f"head/{attribute}/w"], model.weights[f"head/{attribute}/b"]
        logits = np.vstack([h @ w.T + b for h in z])
        target = np.tile(y[rows], len(views))
        keep = target != IGNORE
        out[attribute] = _best_temperature(logits[keep], target[keep]) if keep.any() else 1.0
    return out


def _best_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    def nll(t: float) -> float:
        s = logits / t
        s = s - s.max(axis=1, keepdims=True)
        return float(-(s[np.arange(len(y)), y] - np.log(np.exp(s).sum(axis=1))).mean())

    return float(min(np.exp(np.linspace(np.log(0.3), np.log(5.0), 60)), key=nll))


def _min_hint() -> str:
    from sveta.learn.labels import MIN_PER_CLASS

    return f">= {MIN_PER_CLASS} products"
