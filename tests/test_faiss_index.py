"""The FAISS vector index: exact and HNSW search, filters without recall loss, atomic versioned saves."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sveta.errors import ConfigError
from sveta.index import faiss_index, versions
from sveta.index.base import Filter, ItemMeta, VectorIndex
from sveta.index.faiss_index import FaissIndex, open_faiss_index
from sveta.index.versions import discard, read_config
from sveta.settings import Settings

DIM = 48
REAL = Path("/tmp/sveta-emb/effnet_colour.npy")  # cached real embeddings, used when present
CATEGORIES = ["tops", "dresses", "jeans", "shoes", "bags", "coats", "skirts", "shirts", "hats", "belts"]


def clustered(n: int, dim: int = DIM, seed: int = 0, centres: int = 200) -> np.ndarray:
    """Real-like unit vectors: clusters in a low-dimensional subspace plus a little full-rank noise."""
    fixed, rng = np.random.default_rng(0), np.random.default_rng(seed)  # one space, many draws
    basis, middle = fixed.standard_normal((12, dim)), fixed.standard_normal((centres, 12)) * 2
    offset = np.abs(fixed.standard_normal(dim))  # embeddings share a mean direction, as CNN features do
    labels = rng.integers(centres, size=n)
    x = (middle[labels] + rng.standard_normal((n, 12))) @ basis + offset + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def metas(n: int, images_per_product: int = 3, seed: int = 0) -> list[ItemMeta]:
    rng = np.random.default_rng(seed)
    return [
        ItemMeta(
            product_id=i // images_per_product,
            category=CATEGORIES[int(c)],
            gender=["women", "men"][int(g)],
            colour=f"colour{int(col)}",
            brand=f"brand{int(b)}",  # 100 brands: one brand is a ~1% filter
            source=["shopify", "csv", "myntra"][int(s)],
            price=float(p),
            available=bool(a),
        )
        for i, (c, g, col, b, s, p, a) in enumerate(
            zip(
                rng.integers(10, size=n),
                rng.integers(2, size=n),
                rng.integers(8, size=n),
                rng.integers(100, size=n),
                rng.integers(3, size=n),
                rng.uniform(5, 500, n),
                rng.random(n) < 0.9,
                strict=True,
            )
        )
    ]


def matches(m: ItemMeta, flt: Filter) -> bool:
    return (
        all(
            not getattr(flt, f) or getattr(m, f) in getattr(flt, f)
            for f in ("category", "gender", "colour", "brand", "source")
        )
        and (flt.price_min is None or (m.price is not None and m.price >= flt.price_min))
        and (flt.price_max is None or (m.price is not None and m.price <= flt.price_max))
        and (flt.available is None or m.available == flt.available)
        and m.product_id not in flt.exclude_products
    )


def make(settings: Settings, path: Path, n: int, dim: int = DIM, **kw: object) -> tuple[FaissIndex, np.ndarray]:
    vectors = clustered(n, dim)
    index = open_faiss_index(path, embedder="test-emb", dim=dim, settings=settings.model_copy(update=kw))
    index.upsert(np.arange(n) + 1000, vectors, metas(n))
    return index, vectors


def brute_force(vectors: np.ndarray, meta: list[ItemMeta], q: np.ndarray, flt: Filter, k: int) -> list[int]:
    allowed = np.array([matches(m, flt) for m in meta])
    scores = np.where(allowed, vectors @ q, -np.inf)
    top = np.argsort(-scores, kind="stable")[:k]
    return [int(i) + 1000 for i in top if allowed[i]]


@pytest.fixture
def flat(settings: Settings, tmp_path: Path) -> tuple[FaissIndex, np.ndarray]:
    return make(settings, tmp_path / "ix", 3000, index_kind="flat")


def test_flat_top1_of_a_stored_vector_is_itself(flat: tuple[FaissIndex, np.ndarray]) -> None:
    index, vectors = flat
    assert isinstance(index, VectorIndex)
    hits = index.search(vectors[:50], 1, distinct_products=False)
    assert [h[0].id for h in hits] == list(range(1000, 1050))
    assert all(abs(h[0].score - 1.0) < 1e-4 for h in hits)
    assert np.allclose(index.vectors(np.array([1007, 1003])), vectors[[7, 3]], atol=1e-6)
    with pytest.raises(KeyError):
        index.vectors(np.array([5]))


def test_batch_queries_equal_single_queries(flat: tuple[FaissIndex, np.ndarray]) -> None:
    index, vectors = flat
    batch = index.search(vectors[:8], 5, Filter(gender=["men"]))
    assert batch == [index.search(v, 5, Filter(gender=["men"]))[0] for v in vectors[:8]]


def test_upsert_replaces_and_remove_excludes(flat: tuple[FaissIndex, np.ndarray]) -> None:
    index, vectors = flat
    index.upsert(np.array([1000]), vectors[[1]], [ItemMeta(product_id=777, brand="new")])
    assert len(index) == 3000
    assert np.allclose(index.vectors(np.array([1000])), vectors[1])
    top = index.search(vectors[0], 3, distinct_products=False)[0]
    assert top[0].id != 1000 or top[0].score < 0.999
    assert [h.id for h in index.search(vectors[1], 5, Filter(brand=["new"]))[0]] == [1000]
    index.remove(np.array([1001, 1002, 424242]))  # an unknown id is no error
    assert len(index) == 2998 and 1001 not in index.ids()
    assert all(h.id not in (1001, 1002) for h in index.search(vectors[1], 20, distinct_products=False)[0])


def test_metadata_only_upsert_keeps_the_row(settings: Settings, tmp_path: Path) -> None:
    index, vectors = make(settings, tmp_path / "ix", 500, index_kind="hnsw")
    index.upsert(np.array([1003]), vectors[[3]], [ItemMeta(product_id=1, price=1.0, available=False)])
    index.save()
    assert index.config.params["rows"] == 500  # no dead row, no new graph node
    assert index.search(vectors[3], 1, Filter(price_max=2))[0][0].id == 1003


def test_metadata_round_trips_exactly(flat: tuple[FaissIndex, np.ndarray], settings: Settings) -> None:
    index, vectors = flat
    item = ItemMeta(
        product_id=5,
        category="T-Shirts",
        gender="Men",
        brand="Nike",
        source="csv",
        price=19.99,
        available=False,
        sha256="ab" * 32,
    )
    index.upsert(np.array([1000]), vectors[[0]], [item])
    assert index.meta(np.array([1000, 1001])) == [item, metas(3000)[1]]
    index.save()
    again = open_faiss_index(index.path, embedder="test-emb", dim=DIM, settings=settings)
    assert again.meta(again.ids()) == [item, *metas(3000)[1:]]  # what a catalog sync compares against
    assert again.search(vectors[0], 1, Filter(category=[" t-shirts"], gender=["MEN"]))[0][0].id == 1000
    with pytest.raises(KeyError):
        again.meta(np.array([7]))


def test_discard_starts_the_next_build_empty(flat: tuple[FaissIndex, np.ndarray], settings: Settings) -> None:
    index, _ = flat
    index.save()
    assert read_config(index.path) == index.config and read_config(index.path / "nothing") is None
    discard(index.path)
    reader = open_faiss_index(index.path, embedder="test-emb", dim=DIM, settings=settings, create=False)
    assert len(reader) == 3000  # readers keep serving the live version
    writer = open_faiss_index(index.path, embedder="new-emb", dim=8, settings=settings)
    assert len(writer) == 0 and read_config(index.path).embedder == "test-emb"  # type: ignore[union-attr]
    writer.upsert(np.arange(10), clustered(10, 8), [ItemMeta(product_id=i) for i in range(10)])
    writer.save()
    assert read_config(index.path).embedder == "new-emb"  # type: ignore[union-attr]
    assert sorted(p.name for p in index.path.iterdir()) == ["CURRENT", writer.version]
    with pytest.raises(ConfigError, match="new-emb"):
        reader.reload_if_changed()


def test_save_and_reopen_gives_the_same_results(flat: tuple[FaissIndex, np.ndarray], settings: Settings) -> None:
    index, vectors = flat
    index.remove(np.array([1005]))
    flt = Filter(category=["dresses"], price_min=50, available=True)
    before = index.search(vectors[:20], 10, flt)
    index.save()
    again = open_faiss_index(index.path, embedder="test-emb", dim=DIM, settings=settings, create=False)
    assert np.array_equal(np.sort(again.ids()), np.sort(index.ids())) and 1005 not in again.ids()
    assert np.array_equal(again.vectors(np.array([1010])), index.vectors(np.array([1010])))
    assert again.search(vectors[:20], 10, flt) == before


def test_a_metadata_change_saves_new_metadata_beside_the_same_vector_file(
    flat: tuple[FaissIndex, np.ndarray], settings: Settings
) -> None:
    index, vectors = flat
    index.save()
    first = index.path / str(index.version)
    inode = (first / "index.faiss").stat().st_ino
    ids = np.array([1010, 1011])
    repriced = [ItemMeta(product_id=m.product_id, category=m.category, price=7.0) for m in index.meta(ids)]
    index.upsert(ids, index.vectors(ids), repriced)
    index.save()
    second = index.path / str(index.version)
    assert second != first and not first.exists()  # a new version; the old one pruned
    assert (second / "index.faiss").stat().st_ino == inode  # its vector file linked, not written again
    again = open_faiss_index(index.path, embedder="test-emb", dim=DIM, settings=settings, create=False)
    assert [m.price for m in again.meta(ids)] == [7.0, 7.0]
    assert again.search(vectors[:5], 5) == index.search(vectors[:5], 5)
    index.upsert(np.array([1012]), clustered(1, DIM, seed=9), [ItemMeta(product_id=5000)])  # a new vector
    index.save()
    third = index.path / str(index.version)
    assert (third / "index.faiss").stat().st_ino != inode  # new vectors: written whole
    assert open_faiss_index(index.path, embedder="test-emb", dim=DIM, settings=settings).meta(ids)[0].price == 7.0


def test_similar_excludes_its_own_product_without_masking_every_row(flat: tuple[FaissIndex, np.ndarray]) -> None:
    index, vectors = flat
    meta = metas(3000)
    own = meta[0].product_id
    mask_calls: list[Filter | None] = []
    real_mask = index._live.cols.mask
    index._live.cols.mask = lambda flt: (mask_calls.append(flt), real_mask(flt))[1]  # type: ignore[method-assign]
    hits = index.search(vectors[:1], 10, Filter(exclude_products=[own]))[0]
    assert len(hits) == 10 and own not in {h.product_id for h in hits}
    assert mask_calls[0] is not None and not mask_calls[0].exclude_products
    rest = index.search(vectors[:1], 10, Filter(exclude_products=list(range(1, 51))))[0]  # drop path
    assert len(rest) == 10 and not {h.product_id for h in rest} & set(range(1, 51))
    masked = index.search(vectors[:1], 10, Filter(exclude_products=[own, *range(10_000, 10_100)]))[0]  # > 64: mask
    assert [h.id for h in masked] == [h.id for h in hits]
    by_image = brute_force(vectors, meta, vectors[0], Filter(exclude_products=[own]), 60)
    firsts = [
        i
        for n, i in enumerate(by_image)
        if meta[i - 1000].product_id not in {meta[j - 1000].product_id for j in by_image[:n]}
    ]
    assert [h.id for h in hits] == firsts[:10]


def test_config_json(flat: tuple[FaissIndex, np.ndarray]) -> None:
    index, _ = flat
    index.save()
    version = (index.path / "CURRENT").read_text().strip()
    config = json.loads((index.path / version / "config.json").read_text())
    assert config["embedder"] == "test-emb" and config["dim"] == DIM and config["metric"] == "cosine"
    assert config["kind"] == "flat" and config["count"] == 3000
    assert config["params"]["files"]["index.faiss"] == (index.path / version / "index.faiss").stat().st_size
    assert sorted(p.name for p in (index.path / version).iterdir()) == ["config.json", "index.faiss", "meta.npz"]


@pytest.mark.parametrize(("embedder", "dim"), [("other-emb", DIM), ("test-emb", DIM + 1)])
def test_another_embedder_or_dim_is_refused(
    flat: tuple[FaissIndex, np.ndarray], settings: Settings, embedder: str, dim: int
) -> None:
    index, _ = flat
    index.save()
    with pytest.raises(ConfigError) as err:
        open_faiss_index(index.path, embedder=embedder, dim=dim, settings=settings)
    assert "test-emb" in str(err.value) and embedder in str(err.value) and str(dim) in str(err.value)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _scramble(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


DAMAGE = {
    "truncated index": lambda v: _truncate(v / "index.faiss"),
    "scrambled index": lambda v: _scramble(v / "index.faiss"),
    "truncated meta": lambda v: _truncate(v / "meta.npz"),
    "scrambled meta": lambda v: _scramble(v / "meta.npz"),
    "broken config": lambda v: (v / "config.json").write_text("{not json"),
    "empty CURRENT": lambda v: (v.parent / "CURRENT").write_text(""),
    "garbage CURRENT": lambda v: (v.parent / "CURRENT").write_bytes(b"\x00\xffv1"),
    "missing version": lambda v: shutil.rmtree(v),
    "missing CURRENT": lambda v: (v.parent / "CURRENT").unlink(),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_index_is_a_clear_config_error(settings: Settings, tmp_path: Path, damage: str) -> None:
    index, _ = make(settings, tmp_path / "ix", 300)
    index.save()
    DAMAGE[damage](index.path / index.version)  # type: ignore[operator]
    with pytest.raises(ConfigError) as err:
        open_faiss_index(index.path, embedder="test-emb", dim=DIM, settings=settings)
    assert "sveta index build" in str(err.value)


def test_crash_before_the_switch_leaves_the_old_version(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, vectors = make(settings, tmp_path / "ix", 300)
    index.save()
    old = index.search(vectors[:5], 5)

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("power cut")

    index.remove(index.ids()[:100])
    monkeypatch.setattr(versions, "_switch_current", crash)
    with pytest.raises(OSError, match="power cut"):
        index.save()  # the new version is complete on disk, CURRENT still names the old one
    assert len(list(index.path.glob("v*"))) == 2
    reader = open_faiss_index(index.path, embedder="test-emb", dim=DIM, settings=settings)
    assert len(reader) == 300 and reader.search(vectors[:5], 5) == old

    monkeypatch.setattr(faiss_index.np, "savez", crash)  # a crash while writing the new version
    with pytest.raises(OSError):
        index.save()
    assert not list(index.path.glob("tmp-*"))
    monkeypatch.undo()
    index.save()
    assert [p.name for p in index.path.iterdir() if p.name != "CURRENT"] == [index.version]
    assert len(open_faiss_index(index.path, embedder="test-emb", dim=DIM, settings=settings)) == 200


def test_missing_index_is_created_or_refused(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no index"):
        open_faiss_index(tmp_path / "none", embedder="e", dim=4, settings=settings, create=False)
    empty = open_faiss_index(tmp_path / "none", embedder="e", dim=4, settings=settings)
    assert len(empty) == 0 and empty.search(np.ones(4), 5) == [[]]


def test_reload_if_changed_picks_up_a_new_version(flat: tuple[FaissIndex, np.ndarray], settings: Settings) -> None:
    writer, _ = flat
    writer.save()
    reader = open_faiss_index(writer.path, embedder="test-emb", dim=DIM, settings=settings)
    assert not reader.reload_if_changed()
    writer.remove(np.array([1000]))
    writer.save()
    assert len(reader) == 3000 and reader.reload_if_changed() and len(reader) == 2999


FILTERS = {
    "very selective (1%)": Filter(brand=["brand7"]),
    "selective + price": Filter(category=["shoes"], gender=["women"], price_max=250.0),
    "broad": Filter(gender=["men"], available=True),
    "case and spaces": Filter(category=[" Dresses"], exclude_products=[3, 4, 5]),
}


@pytest.mark.parametrize("name", FILTERS)
def test_flat_filtered_top_k_is_the_brute_force_top_k(flat: tuple[FaissIndex, np.ndarray], name: str) -> None:
    index, vectors = flat
    meta, flt = metas(3000), FILTERS[name]
    if name == "case and spaces":
        flt = Filter(category=["dresses"], exclude_products=[3, 4, 5])
        assert index.search(vectors[:3], 10, FILTERS[name]) == index.search(vectors[:3], 10, flt)
    for q in vectors[100:110]:
        hits = index.search(q, 10, flt, distinct_products=False)[0]
        assert [h.id for h in hits] == brute_force(vectors, meta, q, flt, 10)
        assert len(hits) == 10 and all(matches(meta[h.id - 1000], flt) for h in hits)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_exact_scan_of_category_runs_after_the_layout(settings: Settings, tmp_path: Path, kind: str) -> None:
    index, vectors = make(settings, tmp_path / "ix", 3000, index_kind=kind)
    index.save()  # rows are now grouped by category: a category filter is one or a few slices
    meta = metas(3000)
    for flt in (Filter(category=["coats"]), Filter(category=["coats", "hats", "bags"]), Filter()):
        for q in vectors[:5]:
            hits = index.search(q, 10, flt, distinct_products=False)[0]
            assert [h.id for h in hits] == brute_force(vectors, meta, q, flt, 10)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_an_index_laid_out_by_an_older_version_is_laid_out_again_at_its_next_save(
    settings: Settings, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.index import meta

    def by_category_and_gender(cols: meta.Columns) -> np.ndarray:  # layout 1, before colour was a key
        rows = np.flatnonzero(cols.alive)
        keys = (cols.ids[rows], cols.product[rows], cols.codes["gender"][rows], cols.codes["category"][rows])
        return rows[np.lexsort(keys)]

    flt, settings = (
        Filter(category=["coats"], colour=["colour1", "colour2"]),
        settings.model_copy(update={"index_kind": kind}),
    )
    with monkeypatch.context() as old:
        old.setattr(meta.Columns, "layout_order", by_category_and_gender)
        index, vectors = make(settings, tmp_path / "ix", 3000)
        index.save()
    saved = tmp_path / "ix" / str(versions.read_current(tmp_path / "ix")) / "config.json"
    config = json.loads(saved.read_text())
    del config["params"]["layout"]  # as an older sveta wrote it
    saved.write_text(json.dumps(config))
    runs = faiss_index._runs(index._live.cols.mask(flt))
    assert runs is None or len(runs) > 4  # the two colours are scattered through both genders' coats
    index = open_faiss_index(tmp_path / "ix", embedder="test-emb", dim=DIM, settings=settings)
    assert index._live.sorted_rows == 0 and index.config.kind == kind
    index.save()  # nothing changed, but the rows are laid out in another order
    runs = faiss_index._runs(index._live.cols.mask(flt))
    assert runs is not None and len(runs) <= 4, runs  # coats x (women, men) x (colour1, colour2)
    reopened = open_faiss_index(tmp_path / "ix", embedder="test-emb", dim=DIM, settings=settings)
    assert reopened._live.sorted_rows == 3000 and reopened.config.kind == kind
    for q in vectors[:5]:
        hits = reopened.search(q, 10, flt, distinct_products=False)[0]
        assert [h.id for h in hits] == brute_force(vectors, metas(3000), q, flt, 10)
    before = versions.read_current(tmp_path / "ix")
    reopened.save()  # laid out in the current order and unchanged: nothing to write
    assert versions.read_current(tmp_path / "ix") == before


def _real_vectors(myntra: Path, settings: Settings, n: int) -> np.ndarray:
    """The benchmark's cached real embeddings when present, else n shared photos embedded now (~10 s)."""
    if REAL.is_file():
        return np.asarray(np.load(REAL)[:6000], dtype=np.float32)
    from sveta.embed.base import get_embedder
    from sveta.embed.pipeline import embed_cached

    photos = sorted((myntra / "images").glob("*.jpg"))[:n]
    items = [(int(p.stem), p, None) for p in photos]
    return embed_cached(get_embedder("effnet-lite0+colour", settings), items, settings)[1]


def test_real_embeddings_filtered_search_loses_nothing(myntra: Path, settings: Settings, tmp_path: Path) -> None:
    vectors = _real_vectors(myntra, settings, 800)
    index = open_faiss_index(tmp_path / "ix", embedder="e", dim=vectors.shape[1], settings=settings)
    meta = metas(len(vectors))
    index.upsert(np.arange(len(vectors)) + 1000, vectors, meta)
    flt = Filter(category=["tops"], gender=["women"])
    for q in vectors[:10]:
        assert [h.id for h in index.search(q, 10, flt, distinct_products=False)[0]] == brute_force(
            vectors, meta, q, flt, 10
        )


@pytest.fixture(scope="module")
def hnsw(tmp_path_factory: pytest.TempPathFactory) -> tuple[FaissIndex, np.ndarray]:
    """20k clustered vectors; auto picks HNSW above a lowered threshold."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"), index_hnsw_threshold=5000, hnsw_m=16, hnsw_ef_construction=64
    )
    index, vectors = make(settings, settings.index_dir, 20_000)
    assert index.config.kind == "flat"  # switching happens on save
    index.save()
    assert index.config.kind == "hnsw"
    return index, vectors


def recall(index: FaissIndex, vectors: np.ndarray, queries: np.ndarray, flt: Filter) -> float:
    meta, found = metas(len(vectors)), 0
    for q in queries:
        truth = set(brute_force(vectors, meta, q, flt, 10))
        hits = index.search(q, 10, flt, distinct_products=False)[0]
        assert len(hits) == 10 and all(matches(meta[h.id - 1000], flt) for h in hits)
        found += len(truth & {h.id for h in hits})
    return found / (10 * len(queries))


def test_hnsw_recall_at_10(hnsw: tuple[FaissIndex, np.ndarray]) -> None:
    index, vectors = hnsw
    queries = clustered(100, seed=9)
    assert recall(index, vectors, queries, Filter()) >= 0.95


@pytest.mark.parametrize("name", ["very selective (1%)", "selective + price", "broad"])
def test_hnsw_filtered_search_fills_k_on_the_graph_path(
    hnsw: tuple[FaissIndex, np.ndarray], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    index, vectors = hnsw
    monkeypatch.setattr(faiss_index, "EXACT_ROW_COST", 10**9)  # never the exact scan: walk the graph
    assert recall(index, vectors, clustered(30, seed=9), FILTERS[name]) >= 0.9


def test_k_hits_whenever_k_exist(hnsw: tuple[FaissIndex, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    index, vectors = hnsw
    monkeypatch.setattr(faiss_index, "EXACT_ROW_COST", 10**9)
    meta = metas(len(vectors))
    rare = [i for i, m in enumerate(meta) if m.brand == "brand3" and m.colour == "colour1"]
    flt = Filter(brand=["brand3"], colour=["colour1"])
    hits = index.search(vectors[0], len(rare) + 5, flt, distinct_products=False)[0]
    assert sorted(h.id for h in hits) == sorted(i + 1000 for i in rare)  # all of them, not fewer
    assert index.search(vectors[0], 5, Filter(brand=["no such brand"])) == [[]]


def test_a_short_walk_widens_only_while_that_is_cheaper_than_the_scan(
    hnsw: tuple[FaissIndex, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A walk stuck among near-copies comes back short: it is widened while a wider walk costs less than
    scanning, then the scan answers (before, four ever-wider walks ran first, the last past MAX_EF)."""
    index, vectors = hnsw
    efs: list[int] = []
    ann = index._ann

    def stuck(idx: object, q: np.ndarray, fetch: int, sel: object, ef: int) -> tuple[np.ndarray, np.ndarray]:
        efs.append(ef)
        scores, rows = ann(idx, q, fetch, sel, ef)
        rows[:, fetch // 2 :] = -1  # half of what was asked for: as a walk that cannot leave a clique
        return scores, rows

    monkeypatch.setattr(index, "_ann", stuck)
    hits = index.search(vectors[5], 10, Filter(), distinct_products=False)[0]
    assert [h.id for h in hits] == brute_force(vectors, metas(len(vectors)), vectors[5], Filter(), 10)
    exact_cost = faiss_index.EXACT_ROW_COST * len(vectors)
    assert len(efs) >= 2 and all(b == 4 * a for a, b in itertools.pairwise(efs))
    assert faiss_index.HNSW_EF_COST * efs[-1] < exact_cost <= faiss_index.HNSW_EF_COST * 4 * efs[-1]


def test_distinct_products_and_exclude_products(settings: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    base = clustered(400)
    vectors = np.repeat(base, 4, axis=0) + 0.01 * rng.standard_normal((1600, DIM)).astype(np.float32)
    index = open_faiss_index(tmp_path / "ix", embedder="e", dim=DIM, settings=settings)
    index.upsert(np.arange(1600), vectors, [ItemMeta(product_id=i // 4) for i in range(1600)])
    raw = index.search(base[7], 8, distinct_products=False)[0]
    assert {h.product_id for h in raw[:4]} == {7}
    hits = index.search(base[7], 8)[0]
    assert len(hits) == 8 and len({h.product_id for h in hits}) == 8 and hits[0].product_id == 7
    hits = index.search(base[7], 8, Filter(exclude_products=[7]))[0]
    assert len(hits) == 8 and 7 not in {h.product_id for h in hits}


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_l1_metric(settings: Settings, tmp_path: Path, kind: str) -> None:
    index, vectors = make(settings, tmp_path / "ix", 2000, index_metric="l1", index_kind=kind)
    index.save()
    assert index.config.metric == "l1"
    for q in vectors[:10]:
        distances = np.abs(vectors - q).sum(axis=1)
        hits = index.search(q, 5, distinct_products=False)[0]
        assert [h.id for h in hits] == [int(i) + 1000 for i in np.argsort(distances)[:5]]
        assert np.allclose([h.score for h in hits], -np.sort(distances)[:5], atol=1e-4)


def test_auto_switches_kind_at_the_threshold(settings: Settings, tmp_path: Path) -> None:
    index, vectors = make(settings, tmp_path / "ix", 150, index_hnsw_threshold=100)
    index.save()
    assert index.config.kind == "hnsw"
    index.remove(np.arange(1000, 1055))  # 95 left: within the 10% margin, stays HNSW
    index.save()
    assert index.config.kind == "hnsw" and index.config.params["rows"] == 95  # dead rows compacted
    index.remove(np.arange(1055, 1075))
    index.save()
    assert index.config.kind == "flat" and len(index) == 75
    assert index.search(vectors[100], 1, distinct_products=False)[0][0].id == 1100


def test_tombstones_are_masked_then_compacted(settings: Settings, tmp_path: Path) -> None:
    index, vectors = make(settings, tmp_path / "ix", 1000, index_kind="hnsw")
    index.save()
    index.remove(np.arange(1000, 1300))
    assert all(h.id >= 1300 for h in index.search(vectors[:300], 3, distinct_products=False)[0])
    index.save()
    assert index.config.params["rows"] == 700 and index.config.count == 700


def test_bad_input_is_refused(flat: tuple[FaissIndex, np.ndarray]) -> None:
    index, vectors = flat
    with pytest.raises(ValueError, match="48-d"):
        index.upsert(np.array([1]), np.ones((1, 7)), [ItemMeta(product_id=1)])
    with pytest.raises(ValueError, match="twice"):
        index.upsert(np.array([1, 1]), vectors[:2], [ItemMeta(product_id=1)] * 2)
    with pytest.raises(ValueError, match="zero"):
        index.search(np.zeros(DIM), 3)


def test_threads_come_from_settings_and_a_single_query_uses_one(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert Settings().index_threads == 3  # OpenMP's own variable stays the default, read by the settings
    index, vectors = make(settings, tmp_path / "ix", 200, index_threads=2)
    calls: list[int] = []
    monkeypatch.setattr(index.faiss, "omp_set_num_threads", calls.append)
    index.search(vectors[:1], 3)
    assert calls and set(calls) == {1}
    calls.clear()
    index.search(vectors[:5], 3)
    assert calls and set(calls) == {2}
