"""Complete the look on real Myntra items: formal with formal, sports with sports, no same slot, diverse, CLI."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sveta.catalog.store import CatalogStore, open_catalog
from sveta.cli import _common, app
from sveta.engines.complete import Completer
from sveta.errors import InputError
from sveta.index.catalog_index import open_catalog_index, sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.outfits.arrays import outfit_rules
from sveta.settings import Settings

# (gender, usage, articleType) -> how many: the must-show pieces, their complements, and distractors
WANT = {
    ("Men", "Formal", "Shirts"): 15,
    ("Men", "Formal", "Trousers"): 15,
    ("Men", "Formal", "Formal Shoes"): 15,
    ("Men", "Casual", "Jeans"): 15,
    ("Men", "Casual", "Casual Shoes"): 15,
    ("Men", "Casual", "Shirts"): 10,
    ("Women", "Sports", "Tshirts"): 15,
    ("Women", "Sports", "Track Pants"): 10,
    ("Women", "Sports", "Capris"): 10,
    ("Women", "Sports", "Sports Shoes"): 15,
    ("Women", "Casual", "Heels"): 15,
    ("Women", "Casual", "Skirts"): 10,
    ("Men", "Sports", "Sports Shoes"): 10,
    ("Men", "Casual", "Belts"): 10,
    ("Men", "Formal", "Ties"): 10,
    ("Women", "Casual", "Handbags"): 10,
}

ITEM_KEYS = [
    "product_id", "source_id", "slot", "title", "score", "reason", "category", "colour", "gender", "price",
    "image_path", "parts", "rule", "url", "handle", "currency",
]  # fmt: skip


def _subset(myntra: Path, folder: Path) -> Path:
    with (myntra / "styles.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    taken: Counter[tuple[str, str, str]] = Counter()
    keep = []
    for row in rows:
        key = (row["gender"], row["usage"], row["articleType"])
        if key in WANT and taken[key] < WANT[key] and (myntra / "images" / f"{row['id']}.jpg").is_file():
            taken[key] += 1
            keep.append(row)
    folder.mkdir(parents=True)
    with (folder / "styles.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(keep)
    return folder / "styles.csv"


@pytest.fixture(scope="module")
def built(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, CatalogStore]]:
    home = tmp_path_factory.mktemp("complete")
    settings = Settings(data_dir=home / "data")
    catalog = open_catalog(settings.catalog_url)
    feed = _subset(myntra, home / "feed")
    reader = FeedReader(feed, images_dir=myntra / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    sync_index(catalog, settings)
    yield settings, catalog
    catalog.engine.dispose()


@pytest.fixture(scope="module")
def completer(built: tuple[Settings, CatalogStore]) -> Completer:
    settings, catalog = built
    return Completer(catalog, open_catalog_index(settings, create=False))


def _first(myntra: Path, gender: str, usage: str, article: str, catalog: CatalogStore) -> str:
    with (myntra / "styles.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            wanted = (row["gender"], row["usage"], row["articleType"]) == (gender, usage, article)
            if wanted and catalog.find_product(row["id"]) is not None:
                return row["id"]
    raise AssertionError(f"no {gender} {usage} {article} in the subset")


def test_a_mens_formal_shirt_gets_formal_trousers_and_formal_shoes_first(
    completer: Completer, built: tuple[Settings, CatalogStore], myntra: Path
) -> None:
    shirt = _first(myntra, "Men", "Formal", "Shirts", built[1])
    result = completer.complete(completer.piece_of_product(shirt), k=3)
    assert result.slots[:2] == ["bottom", "footwear"]
    first = {s.slot: s for s in reversed(result.items)}
    assert first["bottom"].card.category == "Trousers" and first["footwear"].card.category == "Formal Shoes"
    assert all(s.card.gender in ("Men", "Unisex") for s in result.items)
    assert all(s.card.category != "Shirt" and s.slot != "top" for s in result.items)
    assert "formal" in first["bottom"].reason


def test_a_womens_sports_top_gets_womens_sports_bottoms_and_sports_shoes(
    completer: Completer, built: tuple[Settings, CatalogStore], myntra: Path
) -> None:
    top = _first(myntra, "Women", "Sports", "Tshirts", built[1])
    result = completer.complete(completer.piece_of_product(top), k=3)
    bottoms = [s for s in result.items if s.slot == "bottom"]
    shoes = [s for s in result.items if s.slot == "footwear"]
    assert bottoms and all(s.card.gender == "Women" and s.card.category in ("Track Pants", "Capris") for s in bottoms)
    assert shoes[0].card.category == "Sports Shoes" and shoes[0].card.gender in ("Women", "Unisex")
    assert all(s.slot != "top" for s in result.items)


def test_picks_are_diverse_and_never_of_the_pieces_slot(completer: Completer) -> None:
    a = completer.arrays
    for row in range(0, len(a), 7):
        piece = completer.piece_of_product(int(a.product_ids[row]))
        result = completer.complete(piece, k=3)
        assert all(s.slot != piece.slot for s in result.items)
        ids = [s.card.product_id for s in result.items]
        assert len(ids) == len(set(ids)) and piece.product_id not in ids
        for slot in result.slots:
            rows = [a.row_of[s.card.product_id] for s in result.items if s.slot == slot]
            if len(rows) == 3:  # three picks of a slot are never three near-copies
                sims = a.vectors[rows] @ a.vectors[rows].T
                assert np.sort(sims[np.triu_indices(3, 1)])[0] < 0.99


def test_every_slot_it_completes_is_a_different_slot() -> None:
    rules = outfit_rules()
    assert rules.slot("Shirt") == "top" and rules.slot("Trousers") == "bottom" and rules.slot("Dress") == "one-piece"
    assert rules.completes["one-piece"][:3] == ["footwear", "bag", "outerwear"]
    assert all(slot not in others for slot, others in rules.completes.items())


def test_the_query_path_is_vectorised(completer: Completer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scoring touches each column once as arrays: no Python loop over products (10k items stay cheap)."""
    a = completer.arrays
    piece = completer.piece_of_product(int(a.product_ids[0]))
    score, parts, kinds = completer.score(piece)
    assert score.shape == kinds.shape == (len(a),) and all(p.shape == (len(a),) for p in parts.values())

    def no_rows(*_: object) -> None:
        raise AssertionError("a query must not read the catalog row by row")

    monkeypatch.setattr("sveta.outfits.arrays._read_catalog", no_rows)
    completer.complete(piece, k=3)  # the arrays were loaded once, before


def test_scoring_only_the_completing_slots_gives_their_scores_unchanged(completer: Completer) -> None:
    """complete scores the candidates alone (at a million products, not the catalog): the same numbers."""
    from sveta.outfits.arrays import outfit_rules

    a = completer.arrays
    top = next(r for r in range(len(a)) if a.slots.values[a.slot[r]] == "top" and a.has_vector[r])
    piece = completer.piece_of_product(int(a.product_ids[top]))
    slots = [s for s in outfit_rules().completes[piece.slot] if s != piece.slot]
    full, full_parts, full_kinds = completer.score(piece)
    some, parts, kinds = completer.score(piece, slots)
    mine = np.isin(a.slot, [a.slots.get(s) for s in slots]) & np.isfinite(full)
    assert mine.any() and np.isinf(some[~mine]).all() and np.allclose(some[mine], full[mine], atol=1e-6)
    assert all(np.allclose(parts[n][mine], full_parts[n][mine], atol=1e-6) for n in full_parts)
    assert np.array_equal(kinds[mine], full_kinds[mine])
    rows = np.flatnonzero(a.has_vector)[::7]
    v = a.vectors[rows[0]]
    assert np.allclose(a.vectors.dot(rows, v), (a.vectors @ v)[rows], atol=1e-6)


@pytest.mark.parametrize("share", [1.0, 0.5, 0.15])
def test_style_dot_products_over_many_rows_read_runs_in_place_with_the_same_numbers(
    completer: Completer, monkeypatch: pytest.MonkeyPatch, share: float
) -> None:
    """Runs of stored rows are multiplied in place, short ones gathered: the same numbers as the whole product."""
    from sveta.outfits import style_vectors as sv

    monkeypatch.setattr(sv, "SPAN_FROM", 1)
    monkeypatch.setattr(sv, "MIN_SPAN", 4)
    monkeypatch.setattr(sv, "MAX_GAP", 1)
    a = completer.arrays
    usable = np.flatnonzero(a.has_vector)
    rows = np.random.default_rng(1).choice(usable, int(share * len(usable)), replace=False)
    marked = np.zeros(a.vectors.shape[0], bool)
    marked[a.vectors._rows[rows]] = True
    starts, stops = sv._spans(marked)
    assert (stops - starts >= 4).any() and (share == 1.0 or (stops - starts < 4).any())  # both kinds, but all
    v = a.vectors[rows[0]]
    assert np.allclose(a.vectors.dot(rows, v), (a.vectors @ v)[rows], atol=1e-6)


def test_runs_of_marked_rows_join_across_small_gaps() -> None:
    from sveta.outfits.style_vectors import MAX_GAP, _rows_in, _spans

    marked = np.zeros(50, bool)
    marked[[0, 1, 2, 3 + MAX_GAP, 30, 31, 49]] = True  # a gap of MAX_GAP joins; a wider one splits
    starts, stops = _spans(marked)
    assert starts.tolist() == [0, 30, 49] and stops.tolist() == [4 + MAX_GAP, 32, 50]
    assert _rows_in(starts, stops).tolist() == [*range(0, 4 + MAX_GAP), 30, 31, 49]
    assert [x.tolist() for x in _spans(np.zeros(5, bool))] == [[], []]


def test_style_vectors_are_the_index_own_rows_not_a_copy(
    completer: Completer, built: tuple[Settings, CatalogStore]
) -> None:
    """Each product's style vector is its first photo's stored vector, read from the index's memory in place."""
    a, index = completer.arrays, completer.arrays.vectors._index
    assert index is not None
    stored, _ = index.stored_view(np.zeros(0, np.int64))
    products, first = index.first_photos()
    rows = [a.row_of[int(p)] for p in products]
    assert np.array_equal(a.vectors[rows], index.vectors(first)) and a.has_vector[rows].all()
    assert np.shares_memory(a.vectors._view(), stored) and not stored.flags.writeable
    assert a.vectors[rows[0]].flags.writeable  # a copy: the caller may change it, the index stays
    v = index.vectors(first[:1])[0]
    dense = np.zeros(a.vectors.shape, np.float32)
    dense[rows] = index.vectors(first)
    assert np.allclose(a.vectors @ v, dense @ v, atol=1e-6) and a.vectors.shape == (len(a), index.config.dim)
    assert list(a.row_of) == a.product_ids.tolist() and -1 not in a.row_of and a.row_of.get(-1) is None
    assert [a.colour_names[r] for r in rows[:5]] == [a.colour_codes.values[a.colour[r]] or None for r in rows[:5]]


def test_style_vectors_follow_their_index_when_it_changes_in_the_process(tmp_path: Path) -> None:
    from sveta.index.base import ItemMeta
    from sveta.index.faiss_index import open_faiss_index
    from sveta.outfits.style_vectors import StyleVectors

    settings = Settings(data_dir=tmp_path, index_kind="flat")
    index = open_faiss_index(tmp_path / "ix", embedder="e", dim=8, settings=settings)
    vectors = np.eye(8, dtype=np.float32)
    index.upsert(np.arange(8), vectors[:8], [ItemMeta(product_id=10 + i // 2) for i in range(8)])  # 2 photos each
    style = StyleVectors(index, np.array([9, 10, 11, 12, 13], np.int64))  # product 9 has no photo
    assert np.array_equal(style[[1, 2]], vectors[[0, 2]]) and not style[0].any() and style.has.tolist()[0] is False
    index.upsert(np.arange(8, 4008), np.tile(vectors, (500, 1)), [ItemMeta(product_id=99)] * 4000)  # reallocates
    index.remove(np.array([2]))
    index.save()  # compacts and reorders the rows
    assert np.array_equal(style[[1, 4]], vectors[[0, 6]]) and not style[2].any()  # product 11's first photo gone
    assert np.array_equal(style @ vectors[6], np.array([0, 0, 0, 0, 1], np.float32))


def test_unknown_product_is_a_clear_error(completer: Completer) -> None:
    with pytest.raises(InputError, match="no product 'nope-999'"):
        completer.piece_of_product("nope-999")


def test_cli_complete_json_and_sheet(
    built: tuple[Settings, CatalogStore], myntra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, catalog = built
    monkeypatch.setenv("SVETA_DATA_DIR", str(settings.data_dir))
    _common._state.clear()
    runner = CliRunner()
    shirt = _first(myntra, "Men", "Formal", "Shirts", catalog)
    sheet = tmp_path / "look.png"
    result = runner.invoke(app, ["complete", shirt, "--k", "2", "--json", "--sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["items"] and all(list(i) == ITEM_KEYS for i in payload["items"])
    assert sheet.read_bytes()[:4] == b"\x89PNG"
    photo = runner.invoke(app, ["complete", str(myntra / "images" / f"{shirt}.jpg"), "--json"])
    assert photo.exit_code == 0, photo.output
    assert json.loads(photo.stdout.strip().splitlines()[-1])["piece"]["slot"] == "top"
    missing = runner.invoke(app, ["complete", "nope-999"])
    assert missing.exit_code != 0 and "no product" in missing.output and "Traceback" not in missing.output
    _common._state.clear()


def test_a_trained_outfit_model_joins_the_score(
    built: tuple[Settings, CatalogStore], myntra: Path, tmp_path: Path
) -> None:
    from sveta.eval.outfits import train_outfit_model
    from sveta.outfits.synthetic import build_outfit_set

    settings, catalog = built
    index = open_catalog_index(settings, create=False)
    assert Completer(catalog, index, settings).learned is None  # no model trained: the rules alone
    build_outfit_set(myntra, tmp_path / "outfits", n_outfits=250, seed=2)
    train_outfit_model(tmp_path / "outfits", settings)
    try:
        _learned_part_checks(Completer(catalog, index, settings), myntra)
    finally:  # the other tests see the rules alone
        (settings.data_dir / "models/outfits/compat/card.json").unlink()


def _learned_part_checks(completer: Completer, myntra: Path) -> None:
    assert completer.learned is not None
    shirt = completer.piece_of_product(_first(myntra, "Men", "Formal", "Shirts", completer.catalog))
    assert shirt.outfit_vector is not None
    _, parts, _ = completer.score(shirt)
    learned = parts["learned"]
    assert learned.min() >= 0 and learned.max() <= 1
    a = completer.arrays
    category = np.array([a.categories.values[c] for c in a.category])
    # photos of formal trousers sit nearer a formal shirt, in the top-bottom subspace, than women's track pants
    assert learned[category == "Trousers"].mean() > learned[category == "Track Pants"].mean() + 0.2
    result = completer.complete(shirt, k=3)
    first = {s.slot: s for s in reversed(result.items)}
    assert first["bottom"].card.category == "Trousers" and "learned" in result.items[0].parts
