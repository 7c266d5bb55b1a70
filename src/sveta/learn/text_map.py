"""Text search without CLIP: a two-tower map of titles and photo features into one space (torch to train, numpy to use).

Text side: an offline sentence embedding of the title (``e5-small``) beside its attribute words: a multi-hot of the
gender / colour / category phrases it contains (from attributes.yaml and the training labels) and an idf bag of title
words. Photo side: the CNN's pooled features beside the colour histogram. Each side goes through one linear layer
into a shared 256-d space, trained with a symmetric InfoNCE loss (CLIP's) plus attribute heads on both sides.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sveta._optional import require
from sveta.embed.base import TextEmbedder, get_text_embedder, l2_normalise
from sveta.errors import ConfigError, InputError
from sveta.learn.recent import RecentQueries
from sveta.progress import Advance

QUERY_CACHE = 4096  # recent queries whose vectors a text map keeps (about 3 KB each)

if TYPE_CHECKING:
    from sveta.learn.features import Features
    from sveta.settings import Settings

TEXT_MODEL = "e5-small"
PHRASE_ATTRIBUTES = ("gender", "colour", "category")
IGNORE = -100  # the label of an item an attribute head does not learn from
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Recipe:
    """The research recipe's knobs (title -> photo r10 0.84 sharp / 0.83 thumbnails on a Myntra test split)."""

    dim: int = 256
    epochs: int = 20
    batch: int = 512
    lr: float = 2e-3
    weight_decay: float = 0.01
    temperature: float = 0.07  # initial value; learned
    aux_weight: float = 0.3
    block_drop: float = 0.3  # share of titles trained without their attribute words: robust to other languages
    attr_weight: float = 1.0
    colour_weight: float = 0.5
    min_df: int = 3  # a title word must occur in this many training titles to get a column


RECIPE = Recipe()
MIN_STEPS = 200


def tokens(text: str) -> list[str]:
    """Casefolded words; a hyphenated word also counts joined ("T-Shirts" -> t, shirts, tshirts)."""
    words = _WORD.findall(text.casefold())
    if "-" in text:
        words += [w for w in _WORD.findall(text.casefold().replace("-", "")) if w not in words]
    return words


@dataclass(slots=True)
class TitleWords:
    """Attribute words of titles: phrase multi-hot (unit) beside an idf bag of frequent title words (unit)."""

    columns: list[str]  # "attribute=value" of each phrase column
    phrases: dict[str, list[int]]  # joined words of a phrase -> its columns
    vocab: dict[str, int]
    idf: np.ndarray
    _prefixes: frozenset[str] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        self._prefixes = frozenset(k[:n] for k in self.phrases for n in range(1, len(k) + 1))

    @classmethod
    def fit(cls, titles: Sequence[str], labels: Mapping[str, Sequence[str | None]] | None, min_df: int) -> TitleWords:
        columns, phrases = _vocabulary_phrases()
        for attribute, values in sorted((labels or {}).items()):
            for value in sorted({v for v in values if v}):
                key = "".join(tokens(value))
                if key and key not in phrases:  # a seller value the vocabulary does not know gets its own column
                    columns.append(f"{attribute}={value}")
                    for variant in {key, key + "s", key + "es", key.removesuffix("s")} - set(phrases):
                        phrases[variant] = [len(columns) - 1]
        df = Counter(t for title in titles for t in set(tokens(title)))
        kept = sorted(t for t, n in df.items() if n >= min_df)
        idf = np.array([np.log((1 + len(titles)) / (1 + df[t])) + 1 for t in kept], np.float32)
        return cls(columns, phrases, {t: j for j, t in enumerate(kept)}, idf)

    @property
    def dim(self) -> int:
        return len(self.columns) + len(self.vocab)

    def __call__(self, titles: Sequence[str]) -> np.ndarray:
        found = np.zeros((len(titles), len(self.columns)), np.float32)
        bag = np.zeros((len(titles), len(self.vocab)), np.float32)
        for row, title in enumerate(titles):
            words = tokens(title)
            found[row, self._phrase_columns(words)] = 1.0
            bag[row, [self.vocab[w] for w in words if w in self.vocab]] = 1.0
        return np.hstack([l2_normalise(found), l2_normalise(bag * self.idf)])

    def _phrase_columns(self, words: list[str]) -> list[int]:
        out: list[int] = []
        for start in range(len(words)):
            key = ""
            for word in words[start:]:
                key += word
                if key not in self._prefixes:
                    break
                out += self.phrases.get(key, [])
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        pairs = [(k, c) for k, cols in sorted(self.phrases.items()) for c in cols]
        return {
            "columns": np.array(self.columns, dtype=str),
            "phrase_keys": np.array([k for k, _ in pairs], dtype=str),
            "phrase_columns": np.array([c for _, c in pairs], dtype=np.int32),
            "vocab": np.array(sorted(self.vocab, key=self.vocab.__getitem__), dtype=str),
            "idf": self.idf.astype(np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> TitleWords:
        phrases: dict[str, list[int]] = {}
        for key, column in zip(arrays["phrase_keys"].tolist(), arrays["phrase_columns"].tolist(), strict=True):
            phrases.setdefault(str(key), []).append(int(column))
        vocab = {str(t): j for j, t in enumerate(arrays["vocab"].tolist())}
        return cls([str(c) for c in arrays["columns"].tolist()], phrases, vocab, arrays["idf"].astype(np.float32))


def _vocabulary_phrases() -> tuple[list[str], dict[str, list[int]]]:
    """One column per canonical gender / colour / category value; all its synonyms' keys point at it."""
    from sveta.vocab.attributes import vocabulary

    vocab = vocabulary()
    columns = [f"{a}={v}" for a in PHRASE_ATTRIBUTES for v in vocab.attributes[a].values]
    index = {name: j for j, name in enumerate(columns)}
    phrases: dict[str, list[int]] = {}
    for key, entries in vocab.phrases.items():
        hits = sorted({index[f"{a}={v}"] for a, v in entries if v is not None and f"{a}={v}" in index})
        if hits:
            phrases[key] = hits
    return columns, phrases


@dataclass(slots=True)
class TextMap:
    """Titles / queries and photos in one unit-vector space; numpy only (the text model loads on first query)."""

    text_model: str
    words: TitleWords
    weights: dict[str, np.ndarray]  # {text,image}_{mean,weight,bias}
    attr_weight: float
    colour_weight: float
    settings: Settings
    _embedder: TextEmbedder | None = field(default=None, repr=False)
    _recent: RecentQueries = field(default_factory=lambda: RecentQueries(QUERY_CACHE), repr=False)

    @property
    def dim(self) -> int:
        return int(self.weights["text_weight"].shape[0])

    def embed_images(self, features: Features) -> np.ndarray:
        """(n, dim) unit rows for photos' features (an index of these answers text queries)."""
        return _tower(self.weights, "image", image_input(features, self.colour_weight))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) unit rows for queries or titles, in the photos' space; a query asked lately is not encoded
        again (the text model is most of a text search's time, and shoppers repeat the top queries)."""
        if len(texts) == 1 and (known := self._recent.get(texts[0])) is not None:
            return known
        if self._embedder is None:
            self._embedder = get_text_embedder(self.text_model, self.settings)
        rows = self.embed_text_vectors(self._embedder.embed_texts(list(texts)), texts)
        if len(texts) == 1:
            self._recent.put(texts[0], rows)
        return rows

    def embed_text_vectors(self, vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """``embed_queries`` for texts whose ``text_model`` vectors are already known."""
        return _tower(self.weights, "text", text_input(vectors, self.words, texts, self.attr_weight))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (no pickle) to store, e.g. under a prefix inside another model's npz."""
        config = {"text_model": self.text_model, "attr_weight": self.attr_weight, "colour_weight": self.colour_weight}
        words = {f"words.{k}": v for k, v in self.words.to_arrays().items()}
        return {"config": np.array(json.dumps(config)), **words, **dict(self.weights)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], settings: Settings) -> TextMap:
        try:
            config = json.loads(str(arrays["config"]))
            words = TitleWords.from_arrays({k[6:]: v for k, v in arrays.items() if k.startswith("words.")})
            weights = {k: np.asarray(arrays[k]) for k in _WEIGHT_KEYS}
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"not a stored text map ({exc})", "store it with TextMap.to_arrays()") from exc
        return cls(config["text_model"], words, weights, config["attr_weight"], config["colour_weight"], settings)


_WEIGHT_KEYS = tuple(f"{side}_{part}" for side in ("text", "image") for part in ("mean", "weight", "bias"))


def image_input(features: Features, colour_weight: float) -> np.ndarray:
    return np.hstack([l2_normalise(features.pooled), colour_weight * l2_normalise(features.colour)])


def text_input(vectors: np.ndarray, words: TitleWords, texts: Sequence[str], attr_weight: float) -> np.ndarray:
    return np.hstack([vectors.astype(np.float32), attr_weight * words(texts)]).astype(np.float32)


def _tower(weights: Mapping[str, np.ndarray], side: str, x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32) - weights[f"{side}_mean"]
    return l2_normalise(x @ weights[f"{side}_weight"].T + weights[f"{side}_bias"])


def embed_titles(
    embedder: TextEmbedder,
    titles: Sequence[str],
    on_progress: Advance | None = None,
    chunk: int = 256,
    cache_dir: Path | None = None,
) -> np.ndarray:
    """The text model's vectors of many titles, in chunks so that a progress bar can move; cached per title."""
    import hashlib

    from sveta.embed.cache import EmbeddingCache

    cache = EmbeddingCache(cache_dir, f"text:{embedder.spec}", embedder.dim) if cache_dir else None
    keys = [hashlib.sha256(t.encode()).hexdigest() for t in titles]
    copies = Counter(keys)  # a title repeated in the catalog is embedded once
    known = {k: v for k in set(keys) if cache is not None and (v := cache.get(k)) is not None}
    todo = list(dict.fromkeys(t for t, k in zip(titles, keys, strict=True) if k not in known))
    if on_progress and known:
        on_progress(sum(copies[k] for k in known))
    for start in range(0, len(todo), chunk):
        batch = todo[start : start + chunk]
        vectors = embedder.embed_texts(batch)
        batch_keys = [hashlib.sha256(t.encode()).hexdigest() for t in batch]
        known.update(zip(batch_keys, vectors, strict=True))
        if cache is not None:  # not `if cache`: an empty cache has len 0, and was never written
            cache.put(batch_keys, vectors)
        if on_progress:
            on_progress(sum(copies[k] for k in batch_keys))
    if cache is not None:
        cache.save()
    return np.stack([known[k] for k in keys]) if keys else np.zeros((0, embedder.dim), np.float32)


def train_text_map(
    titles: Sequence[str],
    views: Sequence[Features],
    labels: Mapping[str, Sequence[str | None]] | None,
    settings: Settings,
    *,
    seed: int = 0,
    recipe: Recipe = RECIPE,
    text_model: str = TEXT_MODEL,
    on_progress: Advance | None = None,
) -> TextMap:
    """Learn the map from (title, photo) pairs; ``views`` are row-aligned features (e.g. sharp and thumbnail-like).

    ``labels`` (attribute -> one value or None per title) train auxiliary heads and add phrase columns;
    ``on_progress`` is called with the number of titles embedded so far, chunk by chunk.
    """
    _check(titles, views, labels)
    words = TitleWords.fit(titles, labels, recipe.min_df)
    embedder = get_text_embedder(text_model, settings)
    text = text_input(
        embed_titles(embedder, titles, on_progress, cache_dir=settings.data_dir / "embeddings"),
        words,
        titles,
        recipe.attr_weight,
    )
    images = [image_input(v, recipe.colour_weight) for v in views]
    targets = _targets(labels or {}, len(titles))
    weights = _fit(text, images, targets, embedder.dim, recipe, seed, settings)
    return TextMap(text_model, words, weights, recipe.attr_weight, recipe.colour_weight, settings, embedder)


def _check(titles: Sequence[str], views: Sequence[Features], labels: Mapping[str, Sequence[str | None]] | None) -> None:
    if len(titles) < 2 or not views:
        raise InputError(f"{len(titles)} titles, {len(views)} photo views", "train on at least two titled photos")
    lengths = {len(v.pooled) for v in views} | {len(v) for v in (labels or {}).values()}
    if lengths != {len(titles)}:
        raise InputError("titles, photo views and labels differ in length", "give row-aligned titles and features")


def _targets(labels: Mapping[str, Sequence[str | None]], n: int) -> dict[str, np.ndarray]:
    """Class ids per attribute (IGNORE where unknown); attributes with fewer than two classes are left out."""
    out = {}
    for attribute, values in sorted(labels.items()):
        classes = {v: j for j, v in enumerate(sorted({v for v in values if v}))}
        if len(classes) >= 2:
            out[attribute] = np.array([classes[v] if v else IGNORE for v in values], np.int64)
    return out


def _fit(
    text: np.ndarray,
    images: list[np.ndarray],
    targets: dict[str, np.ndarray],
    words_from: int,
    recipe: Recipe,
    seed: int,
    settings: Settings,
) -> dict[str, np.ndarray]:
    from sveta.learn.train import torch_threads

    require("torch", "train")
    with torch_threads(settings):
        return _fit_torch(text, images, targets, words_from, recipe, seed)


def _fit_torch(
    text: np.ndarray,
    images: list[np.ndarray],
    targets: dict[str, np.ndarray],
    words_from: int,
    recipe: Recipe,
    seed: int,
) -> dict[str, np.ndarray]:
    import torch
    from torch import nn
    from torch.nn import functional

    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    generator = torch.Generator().manual_seed(seed)
    n = len(text)
    text_mean = text.mean(0)
    image_mean = np.mean([v.mean(0) for v in images], axis=0).astype(np.float32)
    text_t = torch.from_numpy(text - text_mean)
    views_t = torch.stack([torch.from_numpy(v - image_mean) for v in images])
    # a title without its attribute words is all zeros there, i.e. minus the mean once centred
    absent = torch.from_numpy(-text_mean[words_from:])
    text_tower, image_tower = nn.Linear(text.shape[1], recipe.dim), nn.Linear(images[0].shape[1], recipe.dim)
    heads = {k: nn.Linear(recipe.dim, int(y.max()) + 1) for k, y in targets.items()}
    ys = {k: torch.from_numpy(y) for k, y in targets.items()}
    logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / recipe.temperature))))
    params = [*text_tower.parameters(), *image_tower.parameters(), logit_scale]
    params += [p for head in heads.values() for p in head.parameters()]
    optimiser = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    # a small catalog still gets MIN_STEPS updates: 20 epochs of 240 titles would be 20 steps, an untrained map
    epochs = max(recipe.epochs, -(-MIN_STEPS // -(-n // recipe.batch)))
    steps = epochs * -(-n // recipe.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=recipe.lr, total_steps=steps, pct_start=0.1)
    for _epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(n))
        view = torch.from_numpy(rng.randint(len(images), size=n))  # sharp or thumbnail, per photo and epoch
        for start in range(0, n, recipe.batch):
            batch = order[start : start + recipe.batch]
            x_text = text_t[batch].clone()
            drop = torch.rand(len(batch), generator=generator) < recipe.block_drop
            x_text[drop, words_from:] = absent
            z_text = functional.normalize(text_tower(x_text), dim=-1)
            z_image = functional.normalize(image_tower(views_t[view[batch], batch]), dim=-1)
            logits = logit_scale.clamp(max=float(np.log(100.0))).exp() * z_text @ z_image.T
            same = torch.arange(len(batch))
            loss = 0.5 * (functional.cross_entropy(logits, same) + functional.cross_entropy(logits.T, same))
            for name, head in heads.items():
                y = ys[name][batch]
                if bool((y != IGNORE).any()):  # a batch with no label at all would give a NaN loss
                    # heads see unit vectors: x10 gives their logits a usable range
                    pair = functional.cross_entropy(head(z_image) * 10, y, ignore_index=IGNORE)
                    pair = pair + functional.cross_entropy(head(z_text) * 10, y, ignore_index=IGNORE)
                    loss = loss + recipe.aux_weight * 0.5 * pair
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    out = {"text_mean": text_mean, "image_mean": image_mean}
    for side, tower in (("text", text_tower), ("image", image_tower)):
        out[f"{side}_weight"] = tower.weight.detach().numpy().copy()
        out[f"{side}_bias"] = tower.bias.detach().numpy().copy()
    return {k: v.astype(np.float32) for k, v in out.items()}
