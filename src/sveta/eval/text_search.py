"""Text search quality: learn the text map on one labelled folder, then each title of another finds its own photo."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sveta.errors import InputError
from sveta.learn.features import Features, extract
from sveta.learn.labels import Example, examples_from_folder
from sveta.learn.text_map import TEXT_MODEL, train_text_map
from sveta.progress import Advance, Progress
from sveta.settings import Settings

K = 10
AUX_ATTRIBUTES = ("category", "colour", "gender")
_CHUNK = 1024  # query rows scored at once: bounds the score matrix on big test folders


def evaluate_text_search(
    train: Path,
    test: Path,
    settings: Settings,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Train on ``train`` (sharp + thumbnail-like photos), then rank ``test``'s photos for each test title.

    r1 / r10: share of titles whose own photo ranks first / in the top 10; mrr: mean reciprocal rank.
    """
    started = time.perf_counter()
    train_examples, test_examples = _examples(train, 2), _examples(test, K + 1)
    total = 3 * len(train_examples) + 2 * len(test_examples)  # photos twice + titles, then photos + titles
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if on_progress:
            on_progress(done[0], total)

    titles, views, labels = _training_data(train_examples, settings, advance)
    model = train_text_map(titles, views, labels, settings, on_progress=advance)
    ids, features = extract(_items(test_examples), settings, on_progress=advance)
    title_of = {e.key: e.title for e in test_examples}
    ranks = own_ranks(model.embed_queries([title_of[i] for i in ids]), model.embed_images(features))
    advance(len(ids))
    return {
        "r1": round(float(np.mean(ranks < 1)), 4),
        "r10": round(float(np.mean(ranks < K)), 4),
        "mrr": round(float(np.mean(1.0 / (ranks + 1))), 4),
        "n_train": len(titles),
        "n_items": len(ids),
        "gallery": len(ids),  # the photos each title is ranked among: recall falls as the gallery grows
        "text_model": TEXT_MODEL,
        "seconds": round(time.perf_counter() - started, 2),
    }


def own_ranks(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """0-based rank of row i of ``gallery`` among all rows for query i (cosine of unit rows, exact)."""
    ranks = np.empty(len(queries), np.int64)
    for start in range(0, len(queries), _CHUNK):
        scores = queries[start : start + _CHUNK] @ gallery.T
        own = scores[np.arange(len(scores)), np.arange(start, start + len(scores))]
        ranks[start : start + len(scores)] = (scores > own[:, None]).sum(1)
    return ranks


def _examples(folder: Path, minimum: int) -> list[Example]:
    examples = [e for e in examples_from_folder(folder) if e.title.strip()]
    if len(examples) < minimum:
        raise InputError(
            f"{folder} has {len(examples)} titled photos (at least {minimum} needed)",
            "give a folder with styles.csv (productDisplayName) and images/{id}.jpg",
        )
    return examples


def _items(examples: Sequence[Example]) -> list[tuple[int, Path, str | None]]:
    return [(e.key, e.path, e.sha256) for e in examples]


def _training_data(
    examples: list[Example], settings: Settings, advance: Advance
) -> tuple[list[str], list[Features], dict[str, list[str | None]]]:
    """Titles, [sharp, thumbnail-like] features and labels of the training photos that could be read."""
    sharp_ids, sharp = extract(_items(examples), settings, on_progress=advance)
    thumb_ids, thumb = extract(_items(examples), settings, degrade=True, on_progress=advance)
    both = set(sharp_ids) & set(thumb_ids)
    kept = [e for e in examples if e.key in both]
    sharp_row = {k: j for j, k in enumerate(sharp_ids)}
    thumb_row = {k: j for j, k in enumerate(thumb_ids)}
    views = [
        sharp.take(np.array([sharp_row[e.key] for e in kept], np.int64)),
        thumb.take(np.array([thumb_row[e.key] for e in kept], np.int64)),
    ]
    labels: dict[str, list[str | None]] = {a: [e.labels.get(a) for e in kept] for a in AUX_ATTRIBUTES}
    return [e.title for e in kept], views, labels
