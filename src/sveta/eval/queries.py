"""`sveta eval queries`: shopper queries on held-out catalogs, hybrid beside vector-only, with a train/val/test split.

A labelled folder is split by a stable hash into train (60%), validation (20%) and test (20%). A throwaway catalog of
the train part is trained as the demo trains; the validation and test parts become catalogs of their own (the
gallery), tagged and indexed with that model. Settings are chosen on validation (``--part val``, ``--tune``); the
test part is for the number reported. The work folder can be kept (``--work``) so later parts reuse the training.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sveta.catalog.queries import ProductCard, all_product_ids, product_cards
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.engines.hybrid import FUSION, Fusion
from sveta.engines.search import Searcher
from sveta.errors import InputError, SvetaError
from sveta.eval.query_sets import KINDS, TEXT_KINDS, Query, answers, photo_queries, text_queries
from sveta.index.base import Filter
from sveta.learn.labels import Example, examples_from_folder, split
from sveta.progress import StageProgress
from sveta.settings import Settings

PARTS = ("val", "test")
K = 10
TITLE_QUERIES = 400  # titles searched for their own product (r1 / r10 / mrr)
TUNE_GRID = [Fusion(keyword=kw, vector=v, attributes=a) for kw in (0.5, 1.0, 2.0) for v in (0.5, 1.0, 2.0)
             for a in (1.5, 3.0, 6.0)]  # fmt: skip


def split_parts(examples: Sequence[Example]) -> dict[str, list[Example]]:
    """train / val / test: 60 / 20 / 20 per category, by a stable hash of the style id (the same every run)."""
    rest, test = split(examples, 0.2, seed="queries-test")
    train, val = split(rest, 0.25, seed="queries-val")
    return {"train": train, "val": val, "test": test}


def evaluate_queries(
    folder: Path,
    settings: Settings,
    *,
    part: str = "test",
    images: str = "images",
    work: Path | None = None,
    tune: bool = False,
    on_progress: StageProgress | None = None,
) -> dict[str, Any]:
    """P@10 per query kind on ``part``'s catalog, hybrid and vector-only; with ``tune``, the fusion grid too."""
    if part not in PARTS:
        raise InputError(f"unknown part {part!r}", f"give one of {', '.join(PARTS)} (train is what is learned on)")
    started = time.perf_counter()
    parts = split_parts(examples_from_folder(folder))
    home = Path(work) if work else Path(tempfile.mkdtemp(prefix="sveta-queries-"))
    try:
        model_home = _trained(folder, images, parts["train"], home / "train", settings, on_progress)
        catalog, part_settings = _gallery(folder, images, parts[part], home / part, model_home, settings, on_progress)
        searcher = Searcher(part_settings, catalog)
        result = _measure(searcher, catalog, on_progress)
        if tune:
            result["tuning"] = _tune(searcher, catalog)
    finally:
        if work is None:
            shutil.rmtree(home, ignore_errors=True)
    result |= {"part": part, "images": images, "n_train": len(parts["train"]), "fusion": _fusion_dict(FUSION)}
    return result | {"seconds": round(time.perf_counter() - started, 1)}


# -- building the catalogs ------------------------------------------------------------------------------------


def _home_settings(settings: Settings, home: Path) -> Settings:
    """Settings for a throwaway data home: its own SQLite catalog and FAISS index, the user's embedding cache."""
    home.mkdir(parents=True, exist_ok=True)
    shared = (settings.data_dir / "embeddings").resolve()
    shared.mkdir(parents=True, exist_ok=True)
    link = home / "embeddings"
    if not link.exists():
        link.symlink_to(shared, target_is_directory=True)  # features are keyed by photo: safe to share
    return settings.model_copy(update={"data_dir": home, "database_url": None, "index_url": ""})


def _ingested(folder: Path, images: str, examples: Sequence[Example], home: Path, settings: Settings) -> CatalogStore:
    """The part's rows of styles.csv in a catalog of their own (done once per work folder)."""
    own = _home_settings(settings, home)
    catalog = open_catalog(own.catalog_url, busy_timeout_s=own.db_busy_timeout_s)
    if not (home / "ingested").exists():
        from sveta.ingest.sources import open_source

        styles = home / "styles.csv"
        _write_rows(folder / "styles.csv", {str(e.key) for e in examples}, styles)
        source = open_source("csv", str(styles), settings=own, name=home.name, images=folder / images, mapping={})
        source.ingest(catalog)
        (home / "ingested").touch()
    return catalog


def _write_rows(styles: Path, ids: set[str], out: Path) -> None:
    with styles.open(newline="", encoding="utf-8", errors="replace") as src, out.open("w", newline="") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        header = next(reader)
        writer.writerow(header)
        for row in reader:
            if row and row[0] in ids and len(row) >= len(header):
                last = len(header) - 1  # a title with commas was split: join it back
                writer.writerow([*row[:last], ",".join(row[last:])])


def _trained(
    folder: Path,
    images: str,
    train: Sequence[Example],
    home: Path,
    settings: Settings,
    on_progress: StageProgress | None,
) -> Settings:
    """The train part's catalog, trained as the demo trains (once per work folder)."""
    from sveta.learn.catalog import train_catalog
    from sveta.learn.store import has_model

    catalog = _ingested(folder, images, train, home, settings)
    own = _home_settings(settings, home)
    if not has_model(own):
        train_catalog(catalog, own, on_progress=on_progress)
    return own


def _gallery(
    folder: Path,
    images: str,
    examples: Sequence[Example],
    home: Path,
    trained: Settings,
    settings: Settings,
    on_progress: StageProgress | None,
) -> tuple[CatalogStore, Settings]:
    """A held-out part's catalog with the trained model: tagged from its photos and indexed."""
    from sveta.index.catalog_index import sync_index
    from sveta.learn.labels import examples_from_catalog
    from sveta.learn.store import load_model
    from sveta.learn.tagging import tag_products

    catalog = _ingested(folder, images, examples, home, settings)
    own = _home_settings(settings, home)
    if not (home / "models").exists():
        shutil.copytree(trained.models_dir, home / "models")
        tag_products(catalog, load_model(own), examples_from_catalog(catalog), own, on_progress)
    sync_index(catalog, own)
    return catalog, own


# -- measuring ------------------------------------------------------------------------------------------------


def _cards(catalog: CatalogStore) -> list[ProductCard]:
    ids = all_product_ids(catalog)
    cards = product_cards(catalog, ids)
    return [cards[i] for i in ids if i in cards]


def _measure(searcher: Searcher, catalog: CatalogStore, on_progress: StageProgress | None) -> dict[str, Any]:
    cards = _cards(catalog)
    queries = text_queries(cards) + photo_queries(cards)
    hybrid = _scores(searcher, queries, hybrid=True, on_progress=on_progress)
    vector = _scores(searcher, queries, hybrid=False, on_progress=on_progress)
    counts = {kind: sum(q.kind == kind for q in queries) for kind in KINDS}
    result: dict[str, Any] = {kind: _mean(hybrid, kind) for kind in KINDS}
    result["vector_only"] = {kind: _mean(vector, kind) for kind in KINDS}
    result["n_queries"] = counts
    result["gallery"] = len(searcher.index)
    result["n_products"] = len(cards)
    result["text_search"] = _title_search(searcher, cards)
    return result


def _scores(
    searcher: Searcher, queries: Sequence[Query], *, hybrid: bool, on_progress: StageProgress | None = None
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for n, query in enumerate(queries, 1):
        matches = _run(searcher, query, hybrid)
        out[query.kind].append(sum(answers(card, query) for card in matches[:K]) / K)
        if on_progress:
            on_progress("hybrid queries" if hybrid else "vector-only queries", n, len(queries))
    return out


def _run(searcher: Searcher, query: Query, hybrid: bool) -> list[ProductCard]:
    if query.kind in TEXT_KINDS:
        return [m.card for m in searcher.search_text(query.text, K, None, None, hybrid=hybrid).matches]
    assert query.photo is not None and query.product_id is not None
    own = Filter(exclude_products=[query.product_id])
    if hybrid:
        return [m.card for m in searcher.search_photo(query.photo, K, own, "auto", text=query.text).matches]
    # vector-only photo + words: the photo's and the words' vectors averaged (a weighted multimodal query)
    photo = searcher.embed_photo(query.photo)
    words = searcher.embedder.embed_texts([query.text])[0]  # type: ignore[attr-defined]
    both = (photo + words) / np.linalg.norm(photo + words)
    return [m.card for m in searcher.search_vectors(both[None, :], query.text, K, own, "auto").matches]


def _title_search(searcher: Searcher, cards: Sequence[ProductCard]) -> dict[str, Any]:
    """Each of up to TITLE_QUERIES titles searches the gallery: the rank of its own product, hybrid and vector-only."""
    titled = [c for c in cards if c.title.strip()]
    titled = titled[:: max(1, len(titled) // TITLE_QUERIES)][:TITLE_QUERIES]  # spread over the catalog
    out: dict[str, Any] = {"gallery": len(searcher.index), "n_queries": len(titled), "k": K}
    for label, hybrid in (("hybrid", True), ("text_map", False)):
        ranks = [_own_rank(searcher, c, hybrid) for c in titled]
        found = np.array([r for r in ranks if r is not None] + [K] * ranks.count(None), np.float64)
        out[label] = {
            "r1": round(float(np.mean(found < 1)), 4),
            "r10": round(float(np.mean(found < K)), 4),
            "mrr10": round(float(np.mean(np.where(found < K, 1.0 / (found + 1), 0.0))), 4),
        }
    return out


def _own_rank(searcher: Searcher, card: ProductCard, hybrid: bool) -> int | None:
    try:
        matches = searcher.search_text(card.title, K, None, None, hybrid=hybrid).matches
    except SvetaError:
        return None
    ids = [m.card.product_id for m in matches]
    return ids.index(card.product_id) if card.product_id in ids else None


def _tune(searcher: Searcher, catalog: CatalogStore) -> list[dict[str, Any]]:
    """Mean P@10 over the kinds for each fusion of the grid, best first (run on the validation part only)."""
    cards = _cards(catalog)
    queries = text_queries(cards) + photo_queries(cards)
    rows = []
    for fusion in TUNE_GRID:
        searcher.fusion = fusion
        scores = _scores(searcher, queries, hybrid=True)
        per_kind = {kind: _mean(scores, kind) for kind in KINDS}
        known = [v for v in per_kind.values() if v is not None]
        rows.append({**_fusion_dict(fusion), **per_kind, "mean": round(float(np.mean(known)), 4) if known else 0.0})
    searcher.fusion = FUSION
    return sorted(rows, key=lambda r: -r["mean"])


def _mean(scores: dict[str, list[float]], kind: str) -> float | None:
    return round(float(np.mean(scores[kind])), 4) if scores[kind] else None


def _fusion_dict(fusion: Fusion) -> dict[str, Any]:
    return {"keyword": fusion.keyword, "vector": fusion.vector, "attributes": fusion.attributes, "rrf_k": fusion.rrf_k}


__all__ = ["PARTS", "evaluate_queries", "split_parts"]
