"""The catalog's own index: open it, and bring it up to date with the catalog (embedding only what changed)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sveta.catalog.store import CatalogStore, IndexableImage
from sveta.embed.base import ImageEmbedder, get_embedder
from sveta.embed.compose import spec_identity
from sveta.embed.pipeline import PhotoEmbed, embed_cached
from sveta.errors import ConfigError
from sveta.images.cache import warm_photos
from sveta.index.base import IndexConfig, ItemMeta, VectorIndex
from sveta.progress import Progress
from sveta.settings import TUNED_MODEL, Settings


@dataclass
class SyncReport:
    embedder: str
    kind: str = ""
    count: int = 0
    embedded: int = 0
    meta_updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    fetch: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = len(self.failed)
        return data


def index_config(settings: Settings) -> IndexConfig | None:
    """The config of the catalog's index, or None when there is none yet."""
    from sveta.index.versions import read_config

    return read_config(settings.index_dir)


def catalog_embedder_spec(settings: Settings) -> str:
    """The embedder the catalog's index uses, else the one settings name for new indexes."""
    config = index_config(settings)
    return config.embedder if config else new_index_spec(settings)


def new_index_spec(settings: Settings) -> str:
    """The embedder a new index gets: SVETA_EMBEDDER when set, else the trained model, else the default."""
    if "embedder" not in settings.model_fields_set and settings.has_tuned_model(TUNED_MODEL):
        return f"tuned:{TUNED_MODEL}"  # once trained, the catalog's own embedding is the default
    return settings.embedder


def embedder_identity(spec: str, settings: Settings, embedder: ImageEmbedder | None = None) -> str:
    """What makes a spec's vectors: a composition's weights, a tuned model's version (``tuned:NAME@model_id``)."""
    if spec.startswith("tuned"):  # the trained model's version is in its file: the embedder, which loads it, knows
        return str(getattr(embedder or get_embedder(spec, settings), "identity", spec))
    return spec_identity(spec, settings.embed_weights)


def open_catalog_index(settings: Settings, *, embedder: str | None = None, create: bool = True) -> VectorIndex:
    """The catalog's index on the backend SVETA_INDEX_URL selects (FAISS in the data home by default)."""
    from sveta.index.backends import open_index

    spec = embedder or catalog_embedder_spec(settings)
    config = index_config(settings)
    if config is None and not create:
        raise ConfigError("the catalog has no index yet", "build it: sveta index build")
    built: ImageEmbedder | None  # built once, and only for a new index's dim or a tuned model's version
    if config and config.embedder == spec:
        dim = config.dim
        built = get_embedder(spec, settings) if spec.startswith("tuned") else None
    else:
        built = get_embedder(spec, settings)
        dim = built.dim
    identity = embedder_identity(spec, settings, built)
    return open_index(settings, embedder=spec, dim=dim, create=create, identity=identity)


def sync_index(
    catalog: CatalogStore,
    settings: Settings,
    *,
    embedder: str | None = None,
    rebuild: bool = False,
    fetch: bool = True,
    on_progress: Progress | None = None,
    embed: PhotoEmbed | None = None,
) -> SyncReport:
    """Fetch missing photos, embed new or changed ones, update metadata, drop what left the catalog, save.

    ``embed`` replaces only the embedding of photos not cached yet (e.g. ``ray_batch.ray_photo_embed``).
    """
    started = time.perf_counter()
    spec = embedder or catalog_embedder_spec(settings)
    report = SyncReport(embedder=spec)
    if fetch:
        report.fetch = warm_photos(catalog, settings)
    if rebuild:
        _discard(settings.index_dir)
    index = open_catalog_index(settings, embedder=spec, create=True)
    rows = catalog.indexable_images()
    _apply(index, rows, settings, report, on_progress, embed)
    index.save()
    report.kind, report.count = index.config.kind, len(index)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _apply(
    index: VectorIndex,
    rows: list[IndexableImage],
    settings: Settings,
    report: SyncReport,
    on_progress: Progress | None,
    embed: PhotoEmbed | None = None,
) -> None:
    """Remove what left the catalog, update changed metadata, embed new or re-shot photos: compared as columns,
    so an unchanged catalog of a million photos costs a few numpy passes, not a million Python comparisons."""
    wanted = _catalog_columns(rows)
    held = np.sort(index.ids())
    gone = np.setdiff1d(held, wanted["id"], assume_unique=True)
    if len(gone):
        index.remove(gone)
    report.removed = len(gone)
    pos = np.minimum(np.searchsorted(held, wanted["id"]), max(len(held) - 1, 0))
    known = held[pos] == wanted["id"] if len(held) else np.zeros(len(rows), bool)
    stored = _stored_columns(index, wanted["id"][known])
    fresh = np.zeros(len(rows), bool)
    fresh[known] = stored["sha"] == wanted["sha"][known]
    moved = np.zeros(len(rows), bool)
    moved[fresh] = _differs(stored, wanted, fresh[known], fresh)
    stale = [rows[i] for i in np.flatnonzero(~fresh)]
    report.unchanged = int(np.count_nonzero(fresh & ~moved))
    if moved.any():
        ids = wanted["id"][moved]
        index.upsert(ids, index.vectors(ids), [_meta(rows[i]) for i in np.flatnonzero(moved)])
    report.meta_updated = int(np.count_nonzero(moved))
    _embed_into(index, stale, settings, report, on_progress, embed)


META_FIELDS = ("product", "category", "gender", "colour", "brand", "source", "available")


def _catalog_columns(rows: list[IndexableImage]) -> dict[str, np.ndarray]:
    """The catalog's side of the comparison, as the index stores it (price rounded to float32, NaN for none)."""
    out = {"id": np.fromiter((r.image_id for r in rows), np.int64, len(rows))}
    out["product"] = np.fromiter((r.product_id for r in rows), np.int64, len(rows))
    out["sha"] = np.array([(r.sha256 or "").encode() for r in rows], "S64")
    price = np.array([np.nan if r.price is None else r.price for r in rows], np.float64)
    out["price"] = price.astype(np.float32).astype(np.float64)
    out["available"] = np.fromiter((bool(r.available) for r in rows), bool, len(rows))
    for name in ("category", "gender", "colour", "brand", "source"):
        out[name] = np.array([getattr(r, name) for r in rows], object)
    return out


def _stored_columns(index: VectorIndex, ids: np.ndarray) -> dict[str, np.ndarray]:
    """The index's side: FAISS gives its columns as they are; another backend through its ItemMeta."""
    columns = getattr(index, "meta_columns", None)
    if columns is not None:
        return dict(columns(ids))
    meta = index.meta(ids) if len(ids) else []
    out = {"sha": np.array([(m.sha256 or "").encode() for m in meta], "S64")}
    out["price"] = np.array([np.nan if m.price is None else m.price for m in meta], np.float64)
    for name in META_FIELDS:
        out[name] = np.array([getattr(m, "product_id" if name == "product" else name) for m in meta], object)
    return out


def _differs(
    stored: dict[str, np.ndarray], wanted: dict[str, np.ndarray], of_stored: np.ndarray, of_wanted: np.ndarray
) -> np.ndarray:
    """Per row (``of_stored`` of the stored rows against ``of_wanted`` of the catalog's): any metadata differs."""
    a, b = stored["price"][of_stored], wanted["price"][of_wanted]
    out = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    for name in META_FIELDS:
        out |= np.asarray(stored[name][of_stored] != wanted[name][of_wanted], bool)
    return out


def _embed_into(
    index: VectorIndex,
    rows: list[IndexableImage],
    settings: Settings,
    report: SyncReport,
    on_progress: Progress | None,
    embed: PhotoEmbed | None = None,
) -> None:
    if not rows:
        return
    embedder = get_embedder(index.config.embedder, settings)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if on_progress:
            on_progress(done, len(rows))

    items = [(r.image_id, Path(r.local_path), r.sha256) for r in rows]
    ids, vectors, failures = embed_cached(embedder, items, settings, advance, embed)
    by_id = {r.image_id: r for r in rows}
    index.upsert(np.array(ids, dtype=np.int64), vectors, [_meta(by_id[i]) for i in ids])
    report.embedded, report.failed = len(ids), failures


def _meta(r: IndexableImage) -> ItemMeta:
    price = None if r.price is None else float(np.float32(r.price))  # as the index stores it: compares equal
    return ItemMeta(
        product_id=r.product_id,
        category=r.category,
        gender=r.gender,
        colour=r.colour,
        brand=r.brand,
        source=r.source,
        price=price,
        available=r.available,
        sha256=r.sha256,
    )


def _discard(path: Path) -> None:
    """Forget the live index so the next open starts empty (old files go on the next save)."""
    from sveta.index.versions import discard

    discard(path)
