"""`sveta look` on real photos: a person's garments found by the offline pose model, a product shot, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sveta.catalog.store import open_catalog
from sveta.cli import _common, app
from sveta.index.catalog_index import sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.learn.catalog import train_catalog
from sveta.look import Looker
from sveta.search import Searcher
from sveta.settings import Settings
from tests.test_learn import _subset

pytest.importorskip("mediapipe", reason="sveta look needs the people extra: pip install 'sveta[people]'")

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "photos"
PERSON = PHOTOS / "person-tank-top-jeans.jpg"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def looker(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Looker:
    if not PERSON.is_file():
        pytest.skip(f"the shared person photo is missing: {PERSON}")
    folder = _subset(myntra, tmp_path_factory.mktemp("look") / "subset")
    settings = Settings(data_dir=tmp_path_factory.mktemp("look-home") / "data")
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(folder / "styles.csv", images_dir=folder / "images")
    run_ingest(catalog, name="subset", kind="csv", location=str(folder), records=reader.records(), state=reader.state)
    train_catalog(catalog, settings, text=False)
    sync_index(catalog, settings, embedder="tuned:catalog", rebuild=True)
    _common.set_settings(settings)
    _common._state["catalog"] = catalog
    return Looker(Searcher(settings, catalog))


def test_person_gives_an_upper_and_a_lower_garment_searched_in_their_groups(looker: Looker) -> None:
    result = looker.look(PERSON, k=3)
    assert result.kind == "person" and result.people == 1
    regions = {g.region: g for g in result.garments}
    assert "upper" in regions
    upper = regions["upper"]
    x0, y0, x1, y1 = upper.box
    assert 0 <= x0 < x1 <= result.size[0] and 0 <= y0 < y1 <= result.size[1]
    assert upper.matches and all(m.card.category in upper.searched for m in upper.matches)
    assert upper.category in ("T-Shirt", "Shirt", "Top", "Kurta", "Sweater", "Sweatshirt", "Kurti", "Tunic", "Jacket")
    assert json.dumps(result.as_dict())  # boxes are coordinates, nothing in the answer is an image


def test_product_shot_is_one_product_region(looker: Looker, myntra: Path) -> None:
    photo = next(p for p in sorted((myntra / "images").glob("*.jpg"))[:50])
    result = looker.look(photo, k=3)
    assert result.kind in ("product", "person")  # Myntra shots are often worn by a model
    assert result.garments and all(g.matches for g in result.garments)


def test_cli_json_and_sheet(looker: Looker, tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["look", str(PERSON), "--k", "2", "--json", "--sheet", str(tmp_path / "s.png")])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    garment = payload["garments"][0]
    assert {"region", "box", "category", "colour", "matches"} <= set(garment)
    assert {"product_id", "title", "score"} <= set(garment["matches"][0])
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_missing_photo_is_a_clear_error(looker: Looker) -> None:
    out = CliRunner().invoke(app, ["look", "/no/such.jpg"])
    assert out.exit_code != 0 and "no such photo" in out.output
