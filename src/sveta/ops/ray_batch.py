"""Batch embedding on Ray: Ray Data `map_batches` over an actor pool, vectors written to and read from Parquet."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sveta._optional import require
from sveta.embed.base import ImageEmbedder, get_embedder
from sveta.embed.pipeline import EmbeddedBatch, PhotoEmbed, _prepare_batch, _run_model
from sveta.progress import Advance
from sveta.settings import Settings

LOCAL = "local"  # an address meaning: start a Ray on this machine


def build_embedder(spec: str, settings: Settings) -> ImageEmbedder:
    """The embedder a spec names, including the tuned model's feature extractor (``features-v1:...``)."""
    from sveta.learn.features import VERSION, FeatureExtractor

    if spec.startswith(f"{VERSION}:"):
        return FeatureExtractor(settings, degrade=spec.endswith(":thumb"))
    return get_embedder(spec, settings)


class EmbedActor:
    """One per Ray actor: builds the embedder once (onnx on one thread), then embeds batches of (id, path)."""

    def __init__(self, spec: str, settings: Settings) -> None:
        self.settings = settings.model_copy(update={"onnx_threads": 1, "embed_workers": 1})
        self.embedder = build_embedder(spec, self.settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        pa = require("pyarrow", "ray")
        items = list(zip(batch["image_id"].tolist(), batch["path"].tolist(), strict=True))
        result = _run_model(self.embedder, _prepare_batch(self.embedder, items, self.settings), self.settings)
        failed = [i for i, _ in result.failures]
        vectors = np.vstack([result.vectors, np.zeros((len(failed), self.embedder.dim), np.float32)])
        flat = pa.array(vectors.astype(np.float32).ravel(), pa.float32())
        return pa.table(
            {
                "image_id": pa.array(result.ids + failed, pa.int64()),
                "vector": pa.FixedSizeListArray.from_arrays(flat, self.embedder.dim),
                "error": pa.array([""] * len(result.ids) + [r for _, r in result.failures], pa.string()),
            }
        )


def embed_with_ray(
    items: Sequence[tuple[int, Path | str]],
    spec: str,
    settings: Settings,
    address: str | None = None,
    workers: int = 2,
    shards_dir: Path | None = None,
) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
    """Embed (id, path) items on Ray; returns ids sorted, their vectors, and (id, reason) for unreadable photos."""
    ray = require("ray", "ray")
    shards = shards_dir or settings.data_dir / "embeddings" / "ray-shards"
    started = connect(address, workers)
    try:
        _embed_to_parquet(ray, items, spec, settings, workers, shards)
    finally:
        if started:
            ray.shutdown()
    return read_shards(shards)


def connect(address: str | None, workers: int) -> bool:
    """Join the Ray at ``address`` (None or "local": start one with ``workers`` CPUs); True when started here."""
    ray = require("ray", "ray")
    if ray.is_initialized():
        return False
    if address in (None, LOCAL):
        ray.init(num_cpus=workers, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    else:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    return True


def _embed_to_parquet(
    ray: Any, items: Sequence[tuple[int, Path | str]], spec: str, settings: Settings, workers: int, shards: Path
) -> None:
    ray.data.DataContext.get_current().enable_progress_bars = False
    gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    if shards.exists():
        shutil.rmtree(shards)
    dataset = ray.data.from_items([{"image_id": int(i), "path": str(p)} for i, p in items])
    embedded = dataset.map_batches(
        EmbedActor,
        fn_constructor_args=(spec, settings),
        batch_size=settings.embed_batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        num_gpus=gpus,
    )
    embedded.write_parquet(str(shards))


def read_shards(shards: Path) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
    """The vectors in a folder of Parquet shards, sorted by id, and the (id, reason) rows that failed."""
    pq = require("pyarrow.parquet", "ray")
    files = sorted(shards.glob("*.parquet"))
    if not files:
        return [], np.zeros((0, 0), np.float32), []
    table = pq.read_table([str(f) for f in files])
    ids = np.asarray(table.column("image_id").to_numpy(), np.int64)
    column = table.column("vector").combine_chunks()
    vectors = column.flatten().to_numpy().reshape(len(ids), column.type.list_size).astype(np.float32)
    errors = table.column("error").to_pylist()
    failures = sorted((int(i), e) for i, e in zip(ids.tolist(), errors, strict=True) if e)
    keep = np.array([not e for e in errors], dtype=bool)
    order = np.argsort(ids[keep], kind="stable")
    return ids[keep][order].tolist(), vectors[keep][order], failures


def ray_photo_embed(address: str | None = None, workers: int = 2, shards_dir: Path | None = None) -> PhotoEmbed:
    """An ``embed_photos`` replacement for ``embed_cached`` / ``sync_index`` that embeds on Ray."""

    def embed(
        embedder: ImageEmbedder,
        items: Sequence[tuple[int, Path | str]],
        settings: Settings,
        on_progress: Advance | None = None,
    ) -> Iterator[EmbeddedBatch]:
        if not items:
            return
        ids, vectors, failures = embed_with_ray(items, embedder.spec, settings, address, workers, shards_dir)
        if on_progress:
            on_progress(len(items))
        yield EmbeddedBatch(ids, vectors.reshape(len(ids), embedder.dim), failures)

    return embed
