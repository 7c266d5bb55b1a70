"""Wardrobe extension ideas on real Myntra photos the catalog has never seen, with a model trained on the catalog."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sveta.catalog.store import CatalogStore, open_catalog
from sveta.cli import _common, app
from sveta.engines.complete import NEAR_COPY, Completer
from sveta.engines.search import Searcher
from sveta.engines.wardrobe_ideas import PER_CATEGORY, completion, extension_ideas, ranked_rows, read_pieces
from sveta.index.catalog_index import sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.learn.catalog import train_catalog
from sveta.settings import Settings
from tests.test_complete import _subset  # the same small catalog: formal, casual and sports pieces and complements

pytestmark = pytest.mark.slow  # trains the photo model on its catalog (about a minute on 2 cores)

IDEA_KEYS = [
    "product_id", "source_id", "slot", "title", "category", "colour", "n_completes", "completes", "score", "reason",
    "price", "image_path",
]  # fmt: skip


@dataclasses.dataclass
class Built:
    settings: Settings
    catalog: CatalogStore
    completer: Completer
    searcher: Searcher
    shirts: list[Path]  # two men's formal shirts, and a pair of men's formal trousers, none of them in the catalog
    trousers: Path


@pytest.fixture(scope="module")
def built(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    home = tmp_path_factory.mktemp("wardrobe-ideas")
    settings = Settings(data_dir=home / "data")
    catalog = open_catalog(settings.catalog_url)
    feed = _subset(myntra, home / "feed")
    reader = FeedReader(feed, images_dir=myntra / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    train_catalog(catalog, settings, text=False)
    sync_index(catalog, settings, embedder="tuned:catalog")  # as `sveta train` leaves it
    searcher = Searcher(settings, catalog)
    completer = Completer(catalog, searcher.index)
    shirts = _unseen(myntra, catalog, "Shirts", 2)
    yield Built(settings, catalog, completer, searcher, shirts, _unseen(myntra, catalog, "Trousers", 1)[0])
    catalog.engine.dispose()


def _unseen(myntra: Path, catalog: CatalogStore, article: str, n: int) -> list[Path]:
    """The first n men's formal ``article`` photos of myntra-small that are not in the catalog: a user's own."""
    with (myntra / "styles.csv").open(encoding="utf-8") as handle:
        rows = [
            r
            for r in csv.DictReader(handle)
            if (r["gender"], r["usage"], r["articleType"]) == ("Men", "Formal", article)
        ]
    photos = [myntra / "images" / f"{r['id']}.jpg" for r in rows if catalog.find_product(r["id"]) is None]
    return [p for p in photos if p.is_file()][:n]


def test_two_formal_shirts_get_formal_bottoms_and_shoes_never_a_top(built: Built) -> None:
    result = extension_ideas(built.completer, built.searcher, built.shirts, n=10)
    assert [(p.category, p.slot, p.gender) for p in result.pieces] == [("Shirt", "top", "Men")] * 2
    ideas = result.ideas
    assert len(ideas) >= 6 and not result.skipped
    assert all(i.slot != "top" and i.card.category != "Shirt" for i in ideas)  # the slot every piece fills
    assert all(i.card.gender in ("Men", "Unisex") for i in ideas)
    first = {i.slot: i for i in reversed(ideas)}
    assert first["bottom"].card.category == "Trousers" and first["footwear"].card.category == "Formal Shoes"
    assert first["bottom"].n_completes == 2 and first["bottom"].completes == [str(p) for p in built.shirts]
    assert first["bottom"].reason.startswith("goes with 2 of your 2 pieces:") and "formal" in first["bottom"].reason
    counts = [i.n_completes for i in ideas]
    assert counts == sorted(counts, reverse=True) and counts[0] == 2


def test_an_item_completing_more_pieces_ranks_first_and_plenty_owned_categories_drop_out(built: Built) -> None:
    pieces, _ = read_pieces(built.completer, built.searcher, [*built.shirts, built.trousers])
    assert [p.category for p in pieces] == ["Shirt", "Shirt", "Trousers"]
    a = built.completer.arrays
    scores, member = completion(built.completer, pieces)
    rows = ranked_rows(a, pieces, scores, member)
    counts = member[:, rows].sum(axis=0)
    assert counts[0] == 3 and np.all(np.diff(counts) <= 0)  # shoes or an accessory: with both shirts and the trousers
    means = np.array([scores[member[:, r], r].mean() for r in rows])
    assert all(means[i] >= means[i + 1] - 1e-6 for i in range(len(rows) - 1) if counts[i] == counts[i + 1])
    shirt = a.categories.get("Shirt")
    both_shirts = [i for i, r in enumerate(rows) if member[:2, r].all()]
    only_trousers = [i for i, r in enumerate(rows) if a.category[r] == shirt]  # a shirt completes the trousers only
    assert both_shirts and only_trousers and max(both_shirts) < min(only_trousers)
    plenty = [*pieces[:2], dataclasses.replace(pieces[0], label="third shirt"), pieces[2]]
    scores, member = completion(built.completer, plenty)
    assert shirt not in a.category[ranked_rows(a, plenty, scores, member)]  # three shirts are plenty


def test_ideas_are_diverse(built: Built) -> None:
    photos = [*built.shirts, built.trousers]
    ideas = extension_ideas(built.completer, built.searcher, photos, n=12).ideas
    a = built.completer.arrays
    pieces, _ = read_pieces(built.completer, built.searcher, photos)
    raw = ranked_rows(a, pieces, *completion(built.completer, pieces))[:12]
    assert max(Counter(a.category[raw].tolist()).values()) > PER_CATEGORY  # undiversified: copies of one kind
    assert 8 <= len(ideas) <= 12 and len({i.card.product_id for i in ideas}) == len(ideas)
    assert max(Counter(i.card.category for i in ideas).values()) <= PER_CATEGORY
    assert len({(i.card.category, i.card.colour) for i in ideas}) == len(ideas)
    rows = [a.row_of[i.card.product_id] for i in ideas]
    sims = a.vectors[rows] @ a.vectors[rows].T
    assert sims[np.triu_indices(len(rows), 1)].max() <= NEAR_COPY
    assert {"footwear", "bottom", "top"} <= {i.slot for i in ideas}


def test_a_file_that_is_no_photo_is_reported_not_fatal(built: Built, tmp_path: Path) -> None:
    notes, broken = tmp_path / "notes.txt", tmp_path / "broken.jpg"
    notes.write_text("not a photo", encoding="utf-8")
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = extension_ideas(built.completer, built.searcher, [notes, built.shirts[0], broken], n=3)
    assert [s["path"] for s in result.skipped] == [str(notes), str(broken)]
    assert all("not a readable image" in s["error"] for s in result.skipped)
    assert len(result.pieces) == 1 and len(result.ideas) == 3
    assert all(i.reason.startswith("goes with 1 of your 1 piece:") for i in result.ideas)
    nothing = extension_ideas(built.completer, built.searcher, [notes], n=3)
    assert (nothing.pieces, nothing.ideas, len(nothing.skipped)) == ([], [], 1)


def test_cli_wardrobe_ideas_json(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVETA_DATA_DIR", str(built.settings.data_dir))
    _common._state.clear()
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    photos = [str(p) for p in (*built.shirts, built.trousers, bad)]
    runner = CliRunner()
    result = runner.invoke(app, ["wardrobe", *photos, "--ideas", "4", "--json"])
    plain = runner.invoke(app, ["wardrobe", *photos, "--json"])
    _common._state.clear()
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    keys = {"model", "n_photos", "n_tagged", "top", "lacks", "photos", "unreadable"}
    assert set(json.loads(plain.stdout.strip().splitlines()[-1])) == keys
    assert set(payload) == keys | {"ideas", "ideas_skipped"} and payload["n_tagged"] == 3
    assert len(payload["ideas"]) == 4 and all(list(i) == IDEA_KEYS for i in payload["ideas"])  # keys, in order
    assert payload["ideas"][0]["n_completes"] == 3 and payload["ideas_skipped"][0]["path"] == str(bad)
    assert "ideas for 3 pieces" in result.output
