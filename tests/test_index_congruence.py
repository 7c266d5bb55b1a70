"""Every index backend answers the same searches alike: FAISS, Milvus Lite and a real Milvus 2.3 server (the exact
cases) on real embeddings of the shared catalog.

Exact indexes (FAISS flat, Milvus FLAT) must return the same top-10 ids as a float64 brute force and as each
other; approximate ones (HNSW on both) recall@10 >= 0.95 against it; with and without filters. Two results
count as the same when their ids are equal, or, where they differ, their scores tie (equal within TOL at every
rank): float32 sums in another order can swap two neighbours whose cosines are equal to ~1e-7.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sveta.errors import ConfigError
from sveta.index.backends import milvus_target, open_index
from sveta.index.base import Filter, Hit, ItemMeta, VectorIndex
from sveta.index.faiss_index import open_faiss_index
from sveta.index.versions import discard, read_config
from sveta.settings import Settings
from tests.milvus_server import SERVER, unique

PHOTOS, N, QUERIES, K = 300, 3000, 200, 10
TOL = 1e-5
FILTERS = {
    "none": None,
    "category (normalised spelling)": Filter(category=[" tshirts "]),
    "gender": Filter(gender=["Women"]),
    "colour + category": Filter(colour=["Black"], category=["Casual Shoes", "Sports Shoes", "Shirts"]),
    "brand (~1%, scattered)": Filter(brand=["b7"]),
    "price range + available": Filter(price_min=100.0, price_max=200.0, available=True),
    "not available": Filter(available=False),
    "exclude products": Filter(exclude_products=list(range(0, N // 2, 3))),
    "everything": Filter(gender=["Men", "Unisex"], source=["csv", "shopify"], price_max=400.0, available=True),
    "not black nor navy (no colour passes)": Filter(exclude={"colour": ["black", " Navy Blue"]}, price_min=50.0),
}


def needs_milvus(lite: bool = True) -> None:
    pytest.importorskip("pymilvus", reason="the Milvus backend needs pip install 'sveta[milvus]'")
    if lite:
        pytest.importorskip("milvus_lite", reason="the Milvus backend needs pip install 'sveta[milvus]'")


# The exact Milvus indexes compared with FAISS flat: Milvus Lite, and a real Milvus 2.3 standalone server.
EXACT_MILVUS = ["milvus-flat", pytest.param("milvus-server-flat", marks=SERVER)]


@dataclass
class Data:
    vectors: np.ndarray  # N unit vectors: real embeddings of shared photos, replicated with noise
    meta: list[ItemMeta]
    queries: np.ndarray  # held-out replicas


def _styles(myntra: Path) -> dict[int, dict[str, str]]:
    with open(myntra / "styles.csv", encoding="utf-8") as fh:
        return {int(r["id"]): r for r in csv.DictReader(fh)}


def _embed_photos(myntra: Path, home: Path) -> tuple[np.ndarray, list[dict[str, str]]]:
    """effnet-lite0+colour vectors of PHOTOS shared photos spread over the catalog, and their styles rows."""
    from sveta.embed.base import get_embedder
    from sveta.embed.pipeline import embed_cached

    styles = _styles(myntra)
    photos = sorted(p for p in (myntra / "images").glob("*.jpg") if int(p.stem) in styles)
    picked = photos[:: len(photos) // PHOTOS][:PHOTOS]
    settings = Settings(data_dir=home)
    ids, vectors, failures = embed_cached(
        get_embedder("effnet-lite0+colour", settings), [(int(p.stem), p, None) for p in picked], settings
    )
    assert not failures
    return vectors, [styles[i] for i in ids]


def _replicate(base: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n vectors between a real one and one of its 5 nearest, plus noise (as benchmarks/bench_index.py)."""
    rng = np.random.default_rng(seed)
    sims = base @ base.T
    np.fill_diagonal(sims, -9)
    nn = np.argsort(-sims, axis=1)[:, :5]
    src = rng.integers(len(base), size=n)
    lam = rng.uniform(0, 0.5, (n, 1)).astype(np.float32)
    v = (1 - lam) * base[src] + lam * base[nn[src, rng.integers(5, size=n)]]
    v += (0.35 / np.sqrt(base.shape[1])) * rng.standard_normal(v.shape).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32), src


def _metas(src: np.ndarray, styles: list[dict[str, str]], seed: int) -> list[ItemMeta]:
    """Category, gender and colour of the source photo; brand, source, price and stock drawn at random."""
    rng = np.random.default_rng(seed)
    brands, sources = rng.integers(100, size=len(src)), rng.integers(3, size=len(src))
    prices, stock = rng.uniform(5, 500, len(src)), rng.random(len(src))
    return [
        ItemMeta(
            product_id=i // 2,  # two images per product
            category=styles[s]["articleType"],
            gender=styles[s]["gender"],
            colour=styles[s]["baseColour"] or None,
            brand=f"b{brands[i]}",
            source=("csv", "shopify", "folder")[sources[i]],
            price=None if i % 20 == 0 else round(float(prices[i]), 2),
            available=bool(stock[i] < 0.9),
        )
        for i, s in enumerate(src.tolist())
    ]


@pytest.fixture(scope="module")
def data(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Data:
    base, styles = _embed_photos(myntra, tmp_path_factory.mktemp("embed") / "data")
    vectors, src = _replicate(base, N, seed=1)
    queries, _ = _replicate(base, QUERIES, seed=2)
    return Data(vectors, _metas(src, styles, seed=3), queries)


def _settings(home: Path, url: str = "", **kw: object) -> Settings:
    return Settings(data_dir=home, index_url=url, hnsw_m=16, hnsw_ef_construction=100, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def backends(data: Data, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, VectorIndex]]:
    needs_milvus()
    out: dict[str, VectorIndex] = {}
    for name, url in [("faiss", ""), ("milvus", "milvus-lite:milvus")]:
        for kind in ("flat", "hnsw"):
            settings = _settings(tmp_path_factory.mktemp(f"{name}-{kind}"), url, index_kind=kind)
            index = open_index(settings, embedder="effnet-lite0+colour", dim=data.vectors.shape[1])
            index.upsert(np.arange(N, dtype=np.int64), data.vectors, data.meta)
            index.save()
            out[f"{name}-{kind}"] = index
            if name == "milvus":
                lite_graphs(index)
    yield out
    for index in out.values():
        getattr(index, "close", lambda: None)()


@pytest.fixture(scope="module")
def server_flat(data: Data, tmp_path_factory: pytest.TempPathFactory, milvus_address: str) -> Iterator[VectorIndex]:
    """The FLAT index of the same rows on the session's Milvus 2.3 server."""
    needs_milvus(lite=False)
    url = f"milvus://{milvus_address}/{unique('congruence')}"
    settings = _settings(tmp_path_factory.mktemp("server-flat"), url, index_kind="flat")
    index = open_index(settings, embedder="effnet-lite0+colour", dim=data.vectors.shape[1])
    index.upsert(np.arange(N, dtype=np.int64), data.vectors, data.meta)
    index.save()
    yield index
    index.client.drop_collection(index.collection)  # type: ignore[attr-defined]
    index.close()  # type: ignore[attr-defined]


def exact_milvus(request: pytest.FixtureRequest, backends: dict[str, VectorIndex], name: str) -> VectorIndex:
    return request.getfixturevalue("server_flat") if name == "milvus-server-flat" else backends[name]


def lite_graphs(index: VectorIndex) -> list[str]:
    """The index type behind each flushed segment, once Milvus Lite's background worker has built them all.

    Milvus Lite flushes at once and builds segment graphs in a thread; until then it scans those segments
    exactly, which would flatter the HNSW recall. Its internals are read here, in the test only.
    """
    from milvus_lite.server_manager import server_manager_instance

    _, db, _ = server_manager_instance._servers[index.target.uri]  # type: ignore[attr-defined]
    collection = db.get_collection(index.collection)  # type: ignore[attr-defined]
    collection._wait_for_bg()
    return [type(segment.index).__name__ for segment in collection._segments_snapshot()]


def _norm(value: str) -> str:
    return value.strip().casefold()


def allowed(meta: list[ItemMeta], flt: Filter | None) -> np.ndarray:
    def ok(m: ItemMeta) -> bool:
        if flt is None:
            return True
        for f in ("category", "gender", "colour", "brand", "source"):
            wanted, value = getattr(flt, f), getattr(m, f)
            if wanted and (value is None or _norm(value) not in {_norm(w) for w in wanted}):
                return False
        price_ok = (flt.price_min is None or (m.price is not None and m.price >= flt.price_min)) and (
            flt.price_max is None or (m.price is not None and m.price <= flt.price_max)
        )
        stock_ok = flt.available is None or m.available == flt.available
        unwanted = any(
            getattr(m, f) is not None and _norm(getattr(m, f)) in {_norm(v) for v in values}
            for f, values in flt.exclude.items()
        )
        return price_ok and stock_ok and not unwanted and m.product_id not in flt.exclude_products

    return np.array([ok(m) for m in meta])


def truth(data: Data, flt: Filter | None) -> list[list[Hit]]:
    """The exact top K by a float64 brute force."""
    mask = allowed(data.meta, flt)
    scores = np.where(mask, data.queries.astype(np.float64) @ data.vectors.T.astype(np.float64), -np.inf)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return [
        [Hit(int(r), data.meta[r].product_id, float(s[r])) for r in row if mask[r]]
        for row, s in zip(top, scores, strict=True)
    ]


def same(a: list[Hit], b: list[Hit]) -> str:
    """'ids' when the ids are equal, 'tie' when they differ only among equal scores, else 'differ'."""
    close = len(a) == len(b) and all(abs(x.score - y.score) < TOL for x, y in zip(a, b, strict=True))
    if close and [h.id for h in a] == [h.id for h in b]:
        return "ids"
    return "tie" if close else "differ"


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("milvus_name", EXACT_MILVUS)
def test_exact_backends_return_the_same_top_10(
    request: pytest.FixtureRequest, backends: dict[str, VectorIndex], data: Data, milvus_name: str, name: str
) -> None:
    flt = FILTERS[name]
    expected = truth(data, flt)
    assert all(len(t) == K for t in expected)  # every filter leaves at least K rows
    faiss = backends["faiss-flat"].search(data.queries, K, flt, distinct_products=False)
    milvus = exact_milvus(request, backends, milvus_name).search(data.queries, K, flt, distinct_products=False)
    verdicts = [same(f, m) for f, m in zip(faiss, milvus, strict=True)]
    counts = f"same ids {verdicts.count('ids')}/{QUERIES}, tied {verdicts.count('tie')}"
    print(f"congruence exact {milvus_name} {name!r}: {counts}")
    assert verdicts.count("differ") == 0
    assert verdicts.count("ids") >= 0.99 * QUERIES  # ties at the 10th rank are rare on real embeddings
    assert all(same(f, t) != "differ" for f, t in zip(faiss, expected, strict=True))
    assert all(same(m, t) != "differ" for m, t in zip(milvus, expected, strict=True))


@pytest.mark.parametrize("name", ["none", "gender", "exclude products"])
@pytest.mark.parametrize("milvus_name", EXACT_MILVUS)
def test_distinct_products_agree(
    request: pytest.FixtureRequest, backends: dict[str, VectorIndex], data: Data, milvus_name: str, name: str
) -> None:
    faiss = backends["faiss-flat"].search(data.queries, K, FILTERS[name])
    milvus = exact_milvus(request, backends, milvus_name).search(data.queries, K, FILTERS[name])
    assert all(len({h.product_id for h in hits}) == K for hits in milvus)
    assert all(same(f, m) != "differ" for f, m in zip(faiss, milvus, strict=True))


def recall(found: list[list[Hit]], expected: list[list[Hit]]) -> float:
    hits = sum(len({h.id for h in f} & {h.id for h in t}) for f, t in zip(found, expected, strict=True))
    return hits / sum(len(t) for t in expected)


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("backend", ["faiss-hnsw", "milvus-hnsw"])
def test_hnsw_recall_at_10(backends: dict[str, VectorIndex], data: Data, backend: str, name: str) -> None:
    flt = FILTERS[name]
    found = backends[backend].search(data.queries, K, flt, distinct_products=False)
    mask = allowed(data.meta, flt)
    assert all(len(hits) == K and all(mask[h.id] for h in hits) for hits in found)
    print(f"congruence {backend} {name!r}: recall@10 {recall(found, truth(data, flt)):.4f} over {QUERIES} queries")
    assert recall(found, truth(data, flt)) >= 0.95


def test_a_short_filtered_walk_is_widened_until_k_are_found(
    backends: dict[str, VectorIndex], data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.index import milvus_index

    index: Any = backends["milvus-hnsw"]
    monkeypatch.setattr(milvus_index, "EF_POWER", 0.0)  # no widening for the filter's share up front
    monkeypatch.setattr(index, "settings", index.settings.model_copy(update={"hnsw_ef_search": 10}))
    efs: list[int] = []
    search = index._search
    monkeypatch.setattr(index, "_search", lambda q, fetch, expr, ef: efs.append(ef) or search(q, fetch, expr, ef))
    found = index.search(data.queries, K, FILTERS["brand (~1%, scattered)"], distinct_products=False)
    assert all(len(hits) == K for hits in found) and efs[0] == 10 and efs[-1] > efs[0]


def test_milvus_lite_answers_through_its_graphs(backends: dict[str, VectorIndex]) -> None:
    index = backends["milvus-hnsw"]
    described = index.client.describe_index(index.collection, "vector")  # type: ignore[attr-defined]
    assert described["index_type"] == "HNSW" and index.config.kind == "hnsw" and index.config.params["m"] == 16
    graphs = lite_graphs(index)
    assert graphs and set(graphs) == {"FaissHnswIndex"}
    assert set(lite_graphs(backends["milvus-flat"])) <= {"BruteForceIndex", "NoneType"}


# -- the Milvus backend on its own -----------------------------------------------------------------------


@pytest.fixture
def small(data: Data, tmp_path: Path) -> Iterator[tuple[Settings, VectorIndex]]:
    needs_milvus()
    settings = _settings(tmp_path / "data", "milvus-lite:milvus", index_kind="flat")
    index = open_index(settings, embedder="e", dim=data.vectors.shape[1], identity="e@1")
    index.upsert(np.arange(300, dtype=np.int64), data.vectors[:300], data.meta[:300])
    yield settings, index
    getattr(index, "close", lambda: None)()


def test_milvus_deletes_upserts_and_incremental_saves(small: tuple[Settings, VectorIndex], data: Data) -> None:
    settings, index = small
    v = data.vectors
    assert len(index) == 300 and index.meta(np.arange(300)) == data.meta[:300]
    assert np.allclose(index.vectors(np.array([7, 3])), v[[7, 3]], atol=1e-6)
    with pytest.raises(KeyError, match="5000"):
        index.vectors(np.array([3, 5000]))
    index.save()
    first, version = read_config(settings.index_dir), index.version  # type: ignore[attr-defined]
    assert first is not None and first.count == 300 and first.params["backend"] == "milvus"
    index.upsert(np.array([0]), v[[1]], [ItemMeta(product_id=777, brand="New ")])  # replaced: vector and meta
    index.remove(np.array([1, 2, 424242]))  # an unknown id is no error
    index.upsert(np.arange(300, 400, dtype=np.int64), v[300:400], data.meta[300:400])  # new rows
    assert len(index) == 398 and not {1, 2} & set(index.ids().tolist())
    assert [h.id for h in index.search(v[1], 5, Filter(brand=["new"]))[0]] == [0]
    assert all(h.id not in (1, 2) for h in index.search(v[1], 20, distinct_products=False)[0])
    index.save()
    reopened = open_index(settings, embedder="e", dim=v.shape[1], create=False, identity="e@1")
    assert reopened.config.count == 398 and reopened.version == index.version != version  # type: ignore[attr-defined]
    assert reopened.meta(np.array([0])) == [ItemMeta(product_id=777, brand="New ")]
    assert reopened.search(v[:20], 10) == index.search(v[:20], 10)
    assert reopened.search(v[5], 3, Filter(brand=["no such brand"])) == [[]]


def test_filter_expressions_quote_what_people_type(small: tuple[Settings, VectorIndex], data: Data) -> None:
    from sveta.index.milvus_schema import filter_expr

    flt = Filter(brand=['Levi\'s "Red"\\ '], price_min=1e-05, available=False, exclude_products=[3, 4])
    assert filter_expr(flt) == (
        'brand_key in ["=levi\'s \\"red\\"\\\\"] and has_price == true and price >= 1e-05 and available == false '
        "and product_id not in [3, 4]"
    )  # a present value's key starts with "=": a missing one ("") never matches
    assert filter_expr(None) == filter_expr(Filter()) == ""
    _, index = small
    index.upsert(np.array([5]), data.vectors[[5]], [ItemMeta(product_id=5, brand='Levi\'s "Red"\\', price=None)])
    assert [h.id for h in index.search(data.vectors[5], 3, Filter(brand=[' levi\'s "red"\\']))[0]] == [5]
    assert all(h.id != 5 for h in index.search(data.vectors[5], 50, Filter(price_max=1e9))[0])  # no price: out


def test_milvus_config_json_is_checked_as_faiss_does(small: tuple[Settings, VectorIndex], data: Data) -> None:
    settings, index = small
    index.save()
    dim = data.vectors.shape[1]
    with pytest.raises(ConfigError, match="built with embedder 'e'"):
        open_index(settings, embedder="other", dim=dim)
    with pytest.raises(ConfigError, match=f"\\({dim}-d\\), not 'e' \\(12-d\\)"):
        open_index(settings, embedder="e", dim=12)
    with pytest.raises(ConfigError, match="weights"):
        open_index(settings, embedder="e", dim=dim, identity="e@2")
    with pytest.raises(ConfigError, match="names 'other'"):
        open_index(settings.model_copy(update={"index_url": "milvus://localhost:19530/other"}), embedder="e", dim=dim)


def test_switching_backend_is_refused_until_a_rebuild(small: tuple[Settings, VectorIndex], data: Data) -> None:
    settings, index = small
    index.save()
    faiss_settings = settings.model_copy(update={"index_url": ""})
    with pytest.raises(ConfigError, match="lives in Milvus") as caught:
        open_index(faiss_settings, embedder="e", dim=data.vectors.shape[1], create=False)
    assert "SVETA_INDEX_URL=milvus-lite:" in (caught.value.hint or "")
    discard(settings.index_dir)  # sveta index build --rebuild
    faiss = open_index(faiss_settings, embedder="e", dim=data.vectors.shape[1])
    assert len(faiss) == 0
    faiss.upsert(np.arange(10, dtype=np.int64), data.vectors[:10], data.meta[:10])
    faiss.save()
    with pytest.raises(ConfigError, match="embedded FAISS index"):
        open_index(settings, embedder="e", dim=data.vectors.shape[1])


def test_rebuild_fills_a_new_collection_and_drops_the_old_on_save(
    small: tuple[Settings, VectorIndex], data: Data
) -> None:
    settings, index = small
    index.save()
    old = index.collection  # type: ignore[attr-defined]
    discard(settings.index_dir)
    fresh = open_index(settings, embedder="e", dim=data.vectors.shape[1], identity="e@1")
    assert len(fresh) == 0 and len(index) == 300  # readers keep the live collection meanwhile
    fresh.upsert(np.arange(50, dtype=np.int64), data.vectors[:50], data.meta[:50])
    fresh.save()
    assert not fresh.client.has_collection(old)  # type: ignore[attr-defined]
    assert index.reload_if_changed() and len(index) == 50  # type: ignore[attr-defined]


def test_auto_kind_switches_at_the_threshold(data: Data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As FAISS does, on a Milvus server; Milvus Lite's auto stays FLAT (its filtered HNSW walk has no exact path)."""
    needs_milvus()
    from sveta.index import milvus_index

    settings = _settings(tmp_path / "data", "milvus-lite:m", index_hnsw_threshold=200)
    index = open_index(settings, embedder="e", dim=data.vectors.shape[1])
    index.upsert(np.arange(250, dtype=np.int64), data.vectors[:250], data.meta[:250])
    index.save()
    assert index.config.kind == "flat"  # Lite
    monkeypatch.setattr(milvus_index, "LITE_AUTO_FLAT", False)  # the server's rule
    index.save()
    assert index.config.kind == "hnsw" and index.config.params["index_type"] == "HNSW"
    assert index.search(data.vectors[17], 1, distinct_products=False)[0][0].id == 17
    index.remove(np.arange(100, dtype=np.int64))  # 150 left: below 90% of the threshold
    index.save()
    assert index.config.kind == "flat" and index.config.count == 150


def test_index_url_schemes(tmp_path: Path) -> None:
    home = tmp_path / "data"
    assert milvus_target(_settings(home)) is None
    lite = milvus_target(_settings(home, "milvus-lite:idx"))
    assert lite is not None and lite.lite and lite.uri == str((home / "idx.db").resolve())
    server = milvus_target(_settings(home, "milvus://root:s3cret@db.example:19531/catalog_v2"))
    assert server is not None and not server.lite and server.uri == "http://db.example:19531"
    assert server.token == "root:s3cret" and "s3cret" not in server.shown and server.collection == "catalog_v2"
    with pytest.raises(ConfigError, match="'qdrant://x/y'") as caught:
        open_index(_settings(home, "qdrant://x/y"), embedder="e", dim=4)
    hint = caught.value.hint or ""
    assert "milvus-lite:PATH" in hint and "milvus://HOST:PORT/COLLECTION" in hint
    with pytest.raises(ConfigError, match="collection name"):
        milvus_target(_settings(home, "milvus://localhost:19530"))


def test_a_missing_extra_names_the_pip_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # import pymilvus now raises ImportError
    with pytest.raises(ConfigError, match="'pymilvus'") as caught:
        open_index(_settings(tmp_path / "data", "milvus-lite:m"), embedder="e", dim=4)
    assert caught.value.hint == "run: pip install 'sveta[milvus]'"


def test_milvus_refuses_the_l1_metric(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cosine metric only"):
        open_index(_settings(tmp_path / "data", "milvus-lite:m", index_metric="l1"), embedder="e", dim=4)


def test_faiss_default_is_unchanged(data: Data, tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    index = open_index(settings, embedder="e", dim=data.vectors.shape[1])
    reference = open_faiss_index(tmp_path / "ref", embedder="e", dim=data.vectors.shape[1], settings=settings)
    for ix in (index, reference):
        ix.upsert(np.arange(100, dtype=np.int64), data.vectors[:100], data.meta[:100])
    assert type(index) is type(reference) and index.search(data.queries, 5) == reference.search(data.queries, 5)


@pytest.mark.parametrize("where", ["lite", pytest.param("server", marks=SERVER)])
def test_catalog_sync_and_search_through_milvus(
    request: pytest.FixtureRequest, myntra: Path, tmp_path: Path, where: str
) -> None:
    """SVETA_INDEX_URL alone moves the catalog's index: build, an incremental no-op update, a photo search."""
    needs_milvus(lite=where == "lite")
    url = "milvus-lite:index"
    if where == "server":
        url = f"milvus://{request.getfixturevalue('milvus_address')}/{unique('sync')}"
    from sveta.catalog.store import open_catalog
    from sveta.engines.search import Searcher
    from sveta.index.catalog_index import open_catalog_index, sync_index
    from sveta.ingest.feeds import FeedReader
    from sveta.ingest.pipeline import run_ingest

    settings = Settings(data_dir=tmp_path / "data", index_url=url)
    feed = tmp_path / "styles.csv"
    feed.write_text("\n".join((myntra / "styles.csv").read_text(encoding="utf-8").splitlines()[:41]) + "\n")
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(feed, images_dir=myntra / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    report = sync_index(catalog, settings)
    assert (report.embedded, report.count, report.kind) == (40, 40, "flat")
    again = sync_index(catalog, settings)
    assert (again.embedded, again.meta_updated, again.unchanged) == (0, 0, 40)
    assert type(open_catalog_index(settings, create=False)).__name__ == "MilvusIndex"
    assert (settings.data_dir / "index.db").is_dir() == (where == "lite")
    product = catalog.find_product("10000")
    result = Searcher(settings, catalog).search_photo(myntra / "images" / "10000.jpg", k=5, category=None)
    assert product is not None and result.matches[0].card.product_id == product.id
    catalog.engine.dispose()
