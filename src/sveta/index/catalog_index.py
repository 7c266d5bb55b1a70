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
    current = _current_meta(index)
    wanted = {r.image_id: r for r in rows}
    gone = np.array([i for i in current if i not in wanted], dtype=np.int64)
    if len(gone):
        index.remove(gone)
    report.removed = len(gone)
    stale = [r for r in rows if r.image_id not in current or current[r.image_id].sha256 != r.sha256]
    moved = [r for r in rows if r.image_id in current and r not in stale and _meta(r) != current[r.image_id]]
    report.unchanged = len(rows) - len(stale) - len(moved)
    if moved:
        ids = np.array([r.image_id for r in moved], dtype=np.int64)
        index.upsert(ids, index.vectors(ids), [_meta(r) for r in moved])
    report.meta_updated = len(moved)
    _embed_into(index, stale, settings, report, on_progress, embed)


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


def _current_meta(index: VectorIndex) -> dict[int, ItemMeta]:
    ids = index.ids()
    return dict(zip(ids.tolist(), index.meta(ids), strict=True)) if len(ids) else {}


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
