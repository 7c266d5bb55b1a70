"""Fitting the type-aware compatibility model: triplets from outfits, a margin loss in each pair's subspace (torch)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from sveta._optional import require
from sveta.errors import InputError
from sveta.learn.features import Features
from sveta.outfits.data import OutfitSet
from sveta.outfits.model import INPUT_BLOCKS, CompatModel
from sveta.progress import Progress

if TYPE_CHECKING:
    import torch

    from sveta.outfits.compat_net import CompatNet
    from sveta.settings import Settings

MIN_OUTFITS = 20


@dataclass(frozen=True)
class OutfitRecipe:
    hidden: int = 512
    embedding: int = 64  # as in Vasileva et al.
    epochs: int = 6  # a few thousand outfits overfit soon: test FITB fell from 0.78 at 6 epochs to 0.59 at 40
    batch: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    dropout: float = 0.5
    margin: float = 0.3
    similarity: float = 0.5  # weight of the type-blind triplet loss on the general embedding (their L_sim)
    mask_l1: float = 5e-4  # sparse masks: each pair of types keeps the dimensions that matter to it
    typed: bool = True
    seed: int = 0


def fit_outfit_model(
    data: OutfitSet,
    features: dict[str, Features],
    settings: Settings,
    recipe: OutfitRecipe = OutfitRecipe(),
    on_epoch: Progress | None = None,
) -> CompatModel:
    """Train on ``data.train``; ``features`` holds each item's photo features (one row)."""
    outfits = [[i for i in o if i in features] for o in data.train]
    outfits = [o for o in outfits if len(o) >= 2]
    if len(outfits) < MIN_OUTFITS:
        raise InputError(
            f"only {len(outfits)} training outfits with two or more readable photos", f"give {MIN_OUTFITS} or more"
        )
    ids = sorted({i for o in outfits for i in o})
    types = sorted({data.items[i].slot for i in ids})
    x = np.vstack([features[i].matrix(INPUT_BLOCKS) for i in ids])
    mu, sd = x.mean(0), x.std(0) + 1e-4
    row = {item: n for n, item in enumerate(ids)}
    slot_code = np.array([types.index(data.items[i].slot) for i in ids])
    require("torch", "train")
    import torch

    from sveta.learn.train import torch_threads

    torch.manual_seed(recipe.seed)
    with torch_threads(settings):
        net = _net(x.shape[1], len(types), recipe)
        xt = torch.from_numpy(((x - mu) / sd).astype(np.float32))
        _optimise(net, xt, [[row[i] for i in o] for o in outfits], slot_code, recipe, on_epoch)
    weights = {"mu": mu.astype(np.float32), "sd": sd.astype(np.float32)}
    params = {"w1": net.fc1.weight, "b1": net.fc1.bias, "w2": net.fc2.weight, "b2": net.fc2.bias, "masks": net.masks}
    weights |= {k: v.detach().numpy().astype(np.float32) for k, v in params.items()}
    card = {"recipe": asdict(recipe), "n_outfits": len(outfits), "n_items": len(ids), "source": data.source}
    return CompatModel(types, weights, recipe.typed, card)


def _net(dim: int, n_types: int, recipe: OutfitRecipe) -> CompatNet:
    from sveta.outfits.compat_net import CompatNet

    n_pairs = n_types * (n_types + 1) // 2 if recipe.typed else 1
    return CompatNet(dim, n_pairs, hidden=recipe.hidden, embedding=recipe.embedding, dropout=recipe.dropout)


def _optimise(
    net: CompatNet,
    xt: torch.Tensor,
    outfits: list[list[int]],
    slot: np.ndarray,
    recipe: OutfitRecipe,
    on_epoch: Progress | None,
) -> None:
    import torch

    rng = np.random.default_rng(recipe.seed)
    by_slot = defaultdict(list)
    for r, s in enumerate(slot):
        by_slot[int(s)].append(r)
    pools = {s: np.array(rows) for s, rows in by_slot.items()}
    pairs = [(a, p) for o in outfits for a in o for p in o if a != p]
    optimiser = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    n_types = int(slot.max()) + 1
    net.train()
    for epoch in range(recipe.epochs):
        order = rng.permutation(len(pairs))
        for start in range(0, len(order), recipe.batch):
            a, p = np.array([pairs[i] for i in order[start : start + recipe.batch]]).T
            n = _negatives(rng, pools, slot[p])
            pair_index = _pair_index(slot[a], slot[p], n_types) if recipe.typed else np.zeros(len(a), np.int64)
            loss = _loss(net, xt, (a, p, n), pair_index, recipe)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if on_epoch:
            on_epoch(epoch + 1, recipe.epochs)
    net.eval()


def _negatives(rng: np.random.Generator, pools: dict[int, np.ndarray], slots: np.ndarray) -> np.ndarray:
    """For each positive, a random training item of its type (the standard negative of Vasileva et al.)."""
    out = np.empty(len(slots), np.int64)
    for s in np.unique(slots):
        where = slots == s
        out[where] = rng.choice(pools[int(s)], int(where.sum()))
    return out


def _pair_index(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """CompatModel.pair, vectorised: the index of the unordered pair (u, v) in the upper triangle."""
    i, j = np.minimum(u, v), np.maximum(u, v)
    return (i * n - i * (i - 1) // 2 + (j - i)).astype(np.int64)


def _loss(
    net: CompatNet,
    xt: torch.Tensor,
    triplets: tuple[np.ndarray, np.ndarray, np.ndarray],
    pair: np.ndarray,
    recipe: OutfitRecipe,
) -> torch.Tensor:
    """Margin loss in each triplet's pair subspace (rows of anchors, positives, negatives), plus the same loss
    type-blind, plus sparse masks."""
    import torch

    a, p, n = triplets
    za, zp, zn = net(xt[np.concatenate([a, p, n])]).split(len(a))
    mask = torch.relu(net.masks[torch.from_numpy(pair)])
    d_pos = ((za - zp) * mask).norm(dim=1)
    d_neg = ((za - zn) * mask).norm(dim=1)
    compat = torch.relu(d_pos - d_neg + recipe.margin).mean()
    general = torch.relu((za - zp).norm(dim=1) - (za - zn).norm(dim=1) + recipe.margin).mean()
    return compat + recipe.similarity * general + recipe.mask_l1 * net.masks.abs().sum(1).mean()
