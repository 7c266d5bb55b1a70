"""Retrieval quality on a labelled folder: precision@10 for the same type, type + colour, and gender."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sveta.embed.base import get_embedder
from sveta.embed.pipeline import embed_cached
from sveta.errors import InputError
from sveta.index.base import ItemMeta
from sveta.ingest.styles import read_styles
from sveta.progress import Progress
from sveta.settings import Settings

K = 10


def evaluate_retrieval(
    folder: Path, settings: Settings, embedder: str, on_progress: Progress | None = None
) -> dict[str, Any]:
    """Embed every item of ``folder`` into a throwaway exact index; each item queries all the others."""
    started = time.perf_counter()
    items = _labelled_items(folder)
    model = get_embedder(embedder, settings)
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if on_progress:
            on_progress(done[0], len(items))

    ids, vectors, _failures = embed_cached(model, [(i, p, None) for i, p, _ in items], settings, advance)
    labels = {i: row for i, _, row in items}
    neighbours = _neighbours(ids, vectors, settings, embedder)
    result = _precision(ids, neighbours, labels)
    result.update(n_items=len(ids), embedder=embedder, seconds=round(time.perf_counter() - started, 2))
    return result


def _labelled_items(folder: Path) -> list[tuple[int, Path, dict[str, str]]]:
    rows, _malformed = read_styles(folder / "styles.csv")
    images = folder / "images"
    items = [(int(r["id"]), images / f"{r['id']}.jpg", r) for r in rows if r["id"].isascii() and r["id"].isdigit()]
    items = [item for item in items if item[1].is_file()]
    if len(items) <= K:
        raise InputError(
            f"{folder} has {len(items)} labelled photos", "give a folder with styles.csv and images/{id}.jpg"
        )
    return items


def _neighbours(ids: list[int], vectors: np.ndarray, settings: Settings, embedder: str) -> list[list[int]]:
    """Top-K other items of each item, from an exact throwaway index of the project's own kind."""
    from sveta.index.faiss_index import open_faiss_index

    exact = settings.model_copy(update={"index_kind": "flat"})
    with tempfile.TemporaryDirectory(prefix="sveta-eval-") as tmp:
        index = open_faiss_index(Path(tmp), embedder=embedder, dim=vectors.shape[1], settings=exact)
        index.upsert(np.array(ids, dtype=np.int64), vectors, [ItemMeta(product_id=i) for i in ids])
        hits = index.search(vectors, K + 1, None)
    return [[h.product_id for h in row if h.product_id != own][:K] for own, row in zip(ids, hits, strict=True)]


def _precision(ids: list[int], neighbours: list[list[int]], labels: dict[int, dict[str, str]]) -> dict[str, Any]:
    keys = {
        "p10_type": ("articleType",),
        "p10_type_colour": ("articleType", "baseColour"),
        "p10_gender": ("gender",),
    }
    result: dict[str, Any] = {}
    for name, columns in keys.items():
        same = [
            sum(all(labels[n][c] == labels[i][c] for c in columns) for n in row) / max(len(row), 1)
            for i, row in zip(ids, neighbours, strict=True)
        ]
        result[name] = round(float(np.mean(same)), 4)
    return result
