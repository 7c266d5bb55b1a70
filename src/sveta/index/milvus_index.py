"""Milvus behind the VectorIndex Protocol: a server or embedded Milvus Lite; its config.json stays in the data home."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from sveta._optional import require
from sveta.errors import ConfigError, SvetaError
from sveta.index.base import Filter, Hit, IndexConfig, ItemMeta, as_ids, unit_vectors
from sveta.index.faiss_index import AUTO_DOWN, MAX_EF
from sveta.index.milvus_schema import (
    FIELDS,
    SCHEMA,
    VECTOR,
    GuardedClient,
    check_schema,
    create_collection,
    filter_expr,
    index_params,
    milvus_errors,
    to_hits,
    to_item,
    to_row,
)
from sveta.index.versions import CONFIG, CURRENT, DISCARDED, HINT, has_versions, read_config, read_current, save_version

if TYPE_CHECKING:
    from sveta.index.targets import MilvusTarget
    from sveta.settings import Settings

log = logging.getLogger(__name__)

MAX_TOPK = 16_384  # the largest limit Milvus accepts
BATCH = 2_000  # rows per insert, ids per get: far below gRPC's message limit at 1,500-d
QUERIES = 1_024  # query vectors per search call
CONNECT_S = 10.0  # how long a server's port may take to accept a connection
COUNT_TTL_S = 60.0  # how long a filter's row count (HNSW's ef follows it) is reused
# A filtered HNSW walk widens ef by (rows / allowed rows) ** EF_POWER. Milvus cannot be told to scan the allowed
# rows exactly (what the FAISS index does for selective filters), and a filter that follows the photos (a real
# article type: the query's neighbourhood is all excluded) needs more than 1 / selectivity: at 15% of 3,000 real
# effnet+colour vectors, recall@10 was 0.85 with the power 1, 1.0 with 1.5 (tests/test_index_congruence.py).
EF_POWER = 1.5
# Milvus servers answer a filter that keeps under ~7-10% of the rows by brute force inside the HNSW index
# (knowhere); Milvus Lite walks its FAISS graph with an ID selector whatever the share. At 100k real-like vectors
# a 5% filter that follows the photos got recall@10 0.52 there even at ef 4096 (benchmarks/results/backends-100k.json),
# while its FLAT index answered it exactly and as fast: so on Lite `index_kind=auto` stays FLAT (hnsw when asked).
LITE_AUTO_FLAT = True


class MilvusIndex:
    """VectorIndex over one Milvus collection: FLAT (exact) or HNSW, cosine as inner product of unit vectors.

    Writes reach Milvus at once (other readers see them); ``save`` flushes, switches FLAT / HNSW when
    ``index_kind`` asks, and publishes config.json as a new version in the data home, whose ``CURRENT``
    is what readers (the API) watch.
    """

    def __init__(
        self, path: Path, target: MilvusTarget, config: IndexConfig, settings: Settings, client: Any, collection: str
    ) -> None:
        self.path, self.target, self.config, self.settings = Path(path), target, config, settings
        self.client, self.collection = client, collection
        self._version: str | None = None
        self._dirty = True
        self._counts: dict[str, tuple[float, int]] = {}
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self._count("")

    @property
    def version(self) -> str | None:
        return self._version

    def ids(self) -> np.ndarray:
        parts = [np.array([r["id"] for r in batch], np.int64) for batch in self._scan(["id"])]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids`` (KeyError naming the ids that are not in the index)."""
        ids = as_ids(ids)
        rows = self._get(ids, [VECTOR])
        return np.array([rows[i][VECTOR] for i in ids.tolist()], np.float32).reshape(len(ids), self.config.dim)

    def meta(self, ids: np.ndarray) -> list[ItemMeta]:
        """Stored metadata of ``ids``, equal to what was upserted (KeyError as ``vectors``)."""
        ids = as_ids(ids)
        rows = self._get(ids, FIELDS)
        return [to_item(rows[i]) for i in ids.tolist()]

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, meta: Sequence[ItemMeta]) -> None:
        ids, vectors = as_ids(ids), unit_vectors(vectors, self.config.dim)
        if not len(ids) == len(vectors) == len(meta):
            raise ValueError(f"{len(ids)} ids, {len(vectors)} vectors and {len(meta)} metadata do not match")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("an id appears twice in one upsert")
        with self._lock:
            for start in range(0, len(ids), BATCH):
                end = start + BATCH
                chunk = zip(ids[start:end].tolist(), vectors[start:end], meta[start:end], strict=True)
                self.client.upsert(self.collection, [to_row(i, v, m) for i, v, m in chunk])
            self._changed()

    def remove(self, ids: np.ndarray) -> None:
        ids = as_ids(ids)
        with self._lock:
            for start in range(0, len(ids), BATCH):
                self.client.delete(self.collection, ids=ids[start : start + BATCH].tolist())
            self._changed()

    def _changed(self) -> None:
        self._dirty = True
        self._counts.clear()

    # -- search ------------------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, flt: Filter | None = None, *, distinct_products: bool = True
    ) -> list[list[Hit]]:
        """Top ``k`` per query among the rows ``flt`` allows; k hits whenever k allowed items exist."""
        q = unit_vectors(queries, self.config.dim, "queries")
        results: list[list[Hit]] = [[] for _ in range(len(q))]
        expr, share = filter_expr(flt), self._share(flt)
        if k <= 0 or (share is not None and share[0] == 0):
            return results
        fetch, widen = min(MAX_TOPK, k * 4 if distinct_products else k), 1  # several images per product
        todo = np.arange(len(q))
        while len(todo):
            ef = self._ef(fetch, share, widen)
            pending = []
            for i, rows in zip(todo.tolist(), self._search(q[todo], fetch, expr, ef), strict=True):
                results[i] = to_hits(rows, k, distinct_products)
                more = len(results[i]) < k and len(rows) == fetch < MAX_TOPK  # duplicates of products
                short = share is not None and ef is not None and ef < MAX_EF and len(rows) < min(fetch, share[0])
                if more or short:  # short: the filtered walk found fewer rows than exist; widen it
                    pending.append(i)
            todo, fetch, widen = np.asarray(pending, np.int64), min(MAX_TOPK, fetch * 4), widen * 4
        return results

    def _ef(self, fetch: int, share: tuple[int, int] | None, widen: int) -> int | None:
        """HNSW's ef: a filter that leaves a fraction of the rows needs a wider walk (None: FLAT)."""
        if self.config.kind != "hnsw":
            return None
        scale = 1.0 if share is None else max(1.0, share[1] / share[0])
        return max(fetch, min(MAX_EF, int(max(self.settings.hnsw_ef_search, fetch) * scale**EF_POWER) * widen))

    def _search(self, q: np.ndarray, fetch: int, expr: str, ef: int | None) -> list[list[tuple[int, int, float]]]:
        params = {"metric_type": "IP", "params": {} if ef is None else {"ef": ef}}
        out = []
        for start in range(0, len(q), QUERIES):
            found = self.client.search(
                self.collection,
                data=q[start : start + QUERIES],
                limit=fetch,
                filter=expr,
                output_fields=["product_id"],
                search_params=params,
                anns_field=VECTOR,
            )
            out += [[(int(r["id"]), int(r["entity"]["product_id"]), float(r["distance"])) for r in h] for h in found]
        return out

    def _share(self, flt: Filter | None) -> tuple[int, int] | None:
        """(rows the filter allows, all rows) for a filtered HNSW search, else None; product exclusions not counted."""
        if self.config.kind != "hnsw" or flt is None or flt.is_empty():
            return None
        allowed = self._cached_count(filter_expr(dataclasses.replace(flt, exclude_products=[])))
        return allowed, self._cached_count("")

    def _cached_count(self, expr: str) -> int:
        now, hit = time.monotonic(), self._counts.get(expr)
        if hit is not None and now - hit[0] < COUNT_TTL_S:
            return hit[1]
        count = self._count(expr)
        self._counts[expr] = (now, count)
        return count

    def _count(self, expr: str) -> int:
        return int(self.client.query(self.collection, filter=expr, output_fields=["count(*)"])[0]["count(*)"])

    # -- reading rows --------------------------------------------------------------------------------

    def _get(self, ids: np.ndarray, fields: list[str]) -> dict[int, dict[str, Any]]:
        rows: dict[int, dict[str, Any]] = {}
        wanted = np.unique(ids)
        for start in range(0, len(wanted), BATCH):
            found = self.client.get(self.collection, ids=wanted[start : start + BATCH].tolist(), output_fields=fields)
            rows.update((int(r["id"]), r) for r in found)
        missing = [i for i in wanted.tolist() if i not in rows]
        if missing:
            raise KeyError(f"not in the index: {missing[:10]}")
        return rows

    def _scan(self, fields: list[str]) -> Iterator[list[dict[str, Any]]]:
        if self.target.lite:  # Milvus Lite has no server timestamps; pymilvus warns on every scan
            logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
        it = self.client.query_iterator(self.collection, batch_size=5 * BATCH, output_fields=fields)
        try:
            while True:
                with milvus_errors(self.target.shown):
                    batch = it.next()
                if not batch:
                    break
                yield batch
        finally:
            it.close()

    # -- kind and persistence ------------------------------------------------------------------------

    def _target_kind(self) -> str:
        if self.settings.index_kind != "auto":
            return self.settings.index_kind
        if self.target.lite and LITE_AUTO_FLAT:
            return "flat"
        n, threshold = len(self), self.settings.index_hnsw_threshold
        if self.config.kind == "hnsw":
            return "hnsw" if n >= AUTO_DOWN * threshold else "flat"
        return "hnsw" if n > threshold else "flat"

    def _switch_kind(self, kind: str) -> None:
        started = time.monotonic()
        self.client.release_collection(self.collection)
        self.client.drop_index(self.collection, VECTOR)
        self.client.create_index(self.collection, index_params(self.client, kind, self.settings))
        self.client.load_collection(self.collection)
        self.config.kind = kind
        log.info("Milvus collection %s is now %s (%.1f s)", self.collection, kind, time.monotonic() - started)

    def save(self) -> None:
        """Flush, switch FLAT / HNSW when asked, then publish config.json as a new version (CURRENT switches)."""
        with self._lock:
            kind = self._target_kind()
            if not self._dirty and self._version and kind == self.config.kind:
                return
            if kind != self.config.kind:
                self._switch_kind(kind)
            self.client.flush(self.collection)
            previous = _live_collection(self.path, self.target)
            self.config.count = len(self)
            self.config.params = self._params()
            self._version = save_version(self.path, lambda folder: self.config.save(folder / CONFIG), (CONFIG,))
            self._dirty = False
            if previous not in (None, self.collection) and self.client.has_collection(previous):
                self.client.drop_collection(previous)  # what a rebuild replaced; readers reload to the new one

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"backend": "milvus", "url": self.target.shown, "base": self.target.collection}
        params |= {"collection": self.collection, "index_type": self.config.kind.upper(), "schema": SCHEMA}
        if self.config.kind == "hnsw":
            params |= {"m": self.settings.hnsw_m, "ef_construction": self.settings.hnsw_ef_construction}
        return params

    def reload_if_changed(self) -> bool:
        """Follow a version another process saved (a rebuild may have moved to a new collection)."""
        version = read_current(self.path)
        if version is None or version == self._version:
            return False
        with self._lock:
            if self._dirty:
                log.warning("index at %s changed on disk; not reloaded over unsaved changes", self.path)
                return False
            config = IndexConfig.load(self.path / version / CONFIG)
            config.check(self.config.embedder, self.config.dim, self.config.identity)
            check_schema(self.client, str(config.params["collection"]), config.params, str(self.path))
            self.config, self.collection, self._version = config, str(config.params["collection"]), version
            self.client.load_collection(self.collection)
            self._counts.clear()
        return True

    def close(self) -> None:
        self.client.close()


def _connect(target: MilvusTarget) -> Any:
    pymilvus = require("pymilvus", "milvus")
    # pymilvus logs every failed call with its traceback before raising it; sveta reports it once, in one line
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    if target.lite:
        require("milvus_lite", "milvus")
        Path(target.uri).parent.mkdir(parents=True, exist_ok=True)
    else:
        _reachable(target)
    try:
        return GuardedClient(pymilvus.MilvusClient(uri=target.uri, token=target.token), target.shown)
    except Exception as exc:  # pymilvus's MilvusException, Milvus Lite's lock held by another process, ...
        reason = " ".join(str(getattr(exc, "message", "") or exc).split())
        hint = "Milvus Lite serves one process at a time: is another sveta using it?" if target.lite else ""
        hint = hint or f"is the Milvus server running and reachable at {target.uri}? (SVETA_INDEX_URL)"
        raise ConfigError(f"cannot open the Milvus index at {target.shown}: {reason}", hint) from exc


def _reachable(target: MilvusTarget) -> None:
    """A server that refuses connections fails at once, not after pymilvus's seconds of retries."""
    where = urlsplit(target.uri)
    try:
        socket.create_connection((where.hostname, where.port), timeout=CONNECT_S).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot open the Milvus index at {target.shown}: {exc.strerror or exc}",
            f"is the Milvus server running and reachable at {target.uri}? (SVETA_INDEX_URL)",
        ) from exc


def _live_collection(path: Path, target: MilvusTarget) -> str | None:
    """The collection the live config.json names on this Milvus, None when there is none."""
    try:
        config = read_config(path)
    except SvetaError:
        return None
    if config is None or config.params.get("url") != target.shown:
        return None
    return str(config.params.get("collection") or "") or None


def open_milvus_index(
    path: Path,
    target: MilvusTarget,
    *,
    embedder: str,
    dim: int,
    settings: Settings,
    create: bool = True,
    identity: str = "",
) -> MilvusIndex:
    """The Milvus index whose config.json is at ``path`` (ConfigError if built by another embedder), or a new one.

    After ``discard(path)`` a writer (``create``) gets a new empty collection, which replaces the live
    one when it is saved; readers keep the live one until then.
    """
    path = Path(path)
    if settings.index_metric != "cosine":
        raise ConfigError("the Milvus index supports the cosine metric only", "unset SVETA_INDEX_METRIC")
    fresh = create and (path / DISCARDED).exists()
    version = None if fresh else read_current(path)
    if version is not None:
        config = IndexConfig.load(path / version / CONFIG)
        config.check(embedder, dim, identity)
        return _existing(path, target, config, version, settings)
    if not fresh and has_versions(path):
        raise ConfigError(f"the index at {path} has versions but no {CURRENT} file naming the live one", HINT)
    if not (fresh or create):
        raise ConfigError(f"there is no index at {path}", "build one with `sveta index build`")
    kind = "hnsw" if settings.index_kind == "hnsw" else "flat"
    config = IndexConfig(embedder, dim, "cosine", kind, identity=identity or embedder)
    return _new(path, target, config, settings, fresh)


def _existing(path: Path, target: MilvusTarget, config: IndexConfig, version: str, settings: Settings) -> MilvusIndex:
    base, collection = config.params.get("base"), str(config.params.get("collection", ""))
    if base != target.collection:
        raise ConfigError(
            f"the index in {path} is the Milvus collection {base!r}, SVETA_INDEX_URL names {target.collection!r}",
            "set SVETA_INDEX_URL back, or rebuild into the new one: sveta index build --rebuild",
        )
    client = _connect(target)
    if not client.has_collection(collection):
        raise ConfigError(f"the Milvus collection {collection!r} that {path} names is missing at {target.shown}", HINT)
    check_schema(client, collection, config.params, str(path))
    client.load_collection(collection)
    index = MilvusIndex(path, target, config, settings, client, collection)
    index._version, index._dirty = version, False
    return index


def _new(path: Path, target: MilvusTarget, config: IndexConfig, settings: Settings, fresh: bool) -> MilvusIndex:
    client = _connect(target)
    name = target.collection
    if client.has_collection(name):
        if not fresh:
            raise ConfigError(
                f"the Milvus collection {name!r} at {target.shown} exists, but {path} holds no index naming it",
                "build beside it (it is left as it is): sveta index build --rebuild; or name another collection",
            )
        name = f"{name}_{secrets.token_hex(4)}"  # the live one keeps serving until this one is saved
    create_collection(client, name, config.dim, config.kind, settings)
    return MilvusIndex(path, target, config, settings, client, name)
