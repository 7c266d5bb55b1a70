"""Embedding many photos: decoding and preparation run in worker threads while the model runs."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sveta.embed.base import ImageEmbedder
from sveta.errors import SvetaError
from sveta.progress import Advance
from sveta.settings import Settings

_PREFETCH = 2  # batches decoded ahead of the model: enough to hide decoding, little memory
DECODE_MARGIN = 2  # a JPEG is decoded at no less than this many times the model's square (load_image's at_least)


@dataclass
class EmbeddedBatch:
    ids: list[int]
    vectors: np.ndarray
    failures: list[tuple[int, str]] = field(default_factory=list)  # (id, reason): unreadable photos


# How (id, path) items become batches of vectors: embed_photos here, or e.g. ray_batch.ray_photo_embed
PhotoEmbed = Callable[
    [ImageEmbedder, Sequence[tuple[int, Path | str]], Settings, Advance | None], Iterable[EmbeddedBatch]
]


def prepare_photo(embedder: ImageEmbedder, source: Path | str | bytes, settings: Settings) -> Any:
    """Read, standardise (EXIF, alpha, pad to square, resize) and prepare one photo for ``embedder``."""
    from sveta.images.prepare import load_image, standardise

    # decoded at twice the square's side at least: resampled from there, the square is as sharp as from the full size
    path = Path(source) if isinstance(source, str) else source
    image = load_image(path, max_pixels=settings.image_max_pixels, at_least=DECODE_MARGIN * settings.image_size)
    return embedder.prepare(standardise(image, settings.image_size))


def embed_photos(
    embedder: ImageEmbedder,
    items: Sequence[tuple[int, Path | str]],
    settings: Settings,
    on_progress: Advance | None = None,
) -> Iterator[EmbeddedBatch]:
    """Yield embedded batches of (id, path) items; a photo that cannot be read is reported, never fatal."""
    size = settings.embed_batch_size
    batches = [items[i : i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(settings.embed_workers, thread_name_prefix="sveta-decode") as pool:
        pending: deque[Future[list[tuple[int, Any]]]] = deque()
        for batch in batches[:_PREFETCH]:
            pending.append(pool.submit(_prepare_batch, embedder, batch, settings))
        for index in range(len(batches)):
            prepared = pending.popleft().result()
            if index + _PREFETCH < len(batches):
                pending.append(pool.submit(_prepare_batch, embedder, batches[index + _PREFETCH], settings))
            yield _run_model(embedder, prepared, settings)
            if on_progress:
                on_progress(len(prepared))


def _prepare_batch(
    embedder: ImageEmbedder, batch: Sequence[tuple[int, Path | str]], settings: Settings
) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    for item_id, path in batch:
        try:
            out.append((item_id, prepare_photo(embedder, path, settings)))
        except SvetaError as exc:
            out.append((item_id, exc))
        except OSError as exc:  # a file removed or unreadable since it was listed
            out.append((item_id, SvetaError(f"cannot read {path}: {exc}")))
    return out


def _run_model(embedder: ImageEmbedder, prepared: list[tuple[int, Any]], settings: Settings) -> EmbeddedBatch:
    good = [(i, p) for i, p in prepared if not isinstance(p, SvetaError)]
    failures = [(i, str(p)) for i, p in prepared if isinstance(p, SvetaError)]
    if not good:
        return EmbeddedBatch([], np.zeros((0, embedder.dim), np.float32), failures)
    vectors = embedder.embed_prepared([p for _, p in good])
    return EmbeddedBatch([i for i, _ in good], vectors, failures)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


SAVE_EVERY = 4096


CHUNK = 20_000  # items embedded (or read from the cache) and projected at a time: memory stays flat with the catalog


def embed_cached(
    embedder: ImageEmbedder,
    items: Sequence[tuple[int, Path, str | None]],
    settings: Settings,
    on_progress: Advance | None = None,
    embed: PhotoEmbed | None = None,
) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
    """Embed (id, path, sha256 or None) items, reusing vectors cached for the same photo and embedder.

    Chunk by chunk into one preallocated matrix: a million photos of a tuned embedder never hold their base
    features all at once (1,400 floats each: 5.6 GB, and as much again per copy)."""
    out = np.empty((len(items), embedder.dim), np.float32)
    ids: list[int] = []
    failures: list[tuple[int, str]] = []
    caches: dict[str, Any] = {}
    for start in range(0, len(items), CHUNK):
        chunk_ids, vectors, failed = _embed_chunk(
            embedder, items[start : start + CHUNK], settings, on_progress, embed, caches
        )
        out[len(ids) : len(ids) + len(chunk_ids)] = vectors
        ids += chunk_ids
        failures += failed
    for cache in caches.values():
        cache.save()
    return ids, out[: len(ids)], failures


def _embed_chunk(
    embedder: ImageEmbedder,
    items: Sequence[tuple[int, Path, str | None]],
    settings: Settings,
    on_progress: Advance | None,
    embed: PhotoEmbed | None,
    caches: dict[str, Any],
) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
    base = getattr(embedder, "base", None)
    if base is not None and hasattr(embedder, "project"):  # a projection of another embedder's cached vectors
        base_ids, base_vectors, base_failures = _embed_chunk(base, items, settings, on_progress, embed, caches)
        return base_ids, embedder.project(base_vectors), base_failures
    cache = _cache(embedder, settings, caches)
    keyed = [(i, p, sha or file_sha256(p)) for i, p, sha in items]
    known = {i: v for i, _, sha in keyed if (v := cache.get(sha)) is not None}
    if on_progress and known:
        on_progress(len(known))
    todo = [(i, p) for i, p, sha in keyed if i not in known]
    sha_of = {i: sha for i, _, sha in keyed}
    failures: list[tuple[int, str]] = []
    unsaved = 0
    for batch in (embed or embed_photos)(embedder, todo, settings, on_progress):
        cache.put([sha_of[i] for i in batch.ids], batch.vectors)
        known.update(zip(batch.ids, batch.vectors, strict=True))
        failures.extend(batch.failures)
        unsaved += len(batch.ids)
        if unsaved >= SAVE_EVERY:  # an interrupted build keeps most of its work
            cache.save()
            unsaved = 0
    ids = [i for i, _, _ in keyed if i in known]
    vectors = np.stack([known[i] for i in ids]) if ids else np.zeros((0, embedder.dim), np.float32)
    return ids, vectors.astype(np.float32, copy=False), failures


def _cache(embedder: ImageEmbedder, settings: Settings, caches: dict[str, Any]) -> Any:
    """One cache per embedder for the whole call: its file is read once, not once per chunk."""
    from sveta.embed.cache import EmbeddingCache

    identity = cache_identity(embedder)
    if identity not in caches:
        caches[identity] = EmbeddingCache(settings.data_dir / "embeddings", identity, embedder.dim)
    return caches[identity]


def cache_identity(embedder: ImageEmbedder) -> str:
    """What makes the vectors: the spec, plus the weights of a composed embedder (new weights, new vectors)."""
    if identity := getattr(embedder, "identity", None):
        return str(identity)
    weights = getattr(embedder, "weights", None)
    if not weights:
        return embedder.spec
    return embedder.spec + "@" + ",".join(f"{w:g}" for w in weights)  # as compose.spec_identity spells it
