"""`sveta look` on real photos: a person's garments found by the offline pose model, a product shot, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sveta.catalog.store import open_catalog
from sveta.cli import _common, app
from sveta.engines.look import Looker, legs_covered
from sveta.engines.search import Searcher
from sveta.images.colour import rgb_to_lab
from sveta.images.people import Person, PoseFinder, Region, person_regions
from sveta.index.base import Filter
from sveta.index.catalog_index import sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.learn.catalog import train_catalog
from sveta.settings import Settings
from sveta.vocab.attributes import vocabulary
from tests import test_learn
from tests.test_learn import _subset

pytest.importorskip("mediapipe", reason="sveta look needs the people extra: pip install 'sveta[people]'")

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "photos"
PERSON = PHOTOS / "person-tank-top-jeans.jpg"
pytestmark = pytest.mark.slow
# tops and bottoms, so that both of the person's garments have categories to be found in
LOOK_TYPES = {"Tshirts": 50, "Tops": 50, "Shirts": 30, "Jeans": 50, "Trousers": 30, "Shorts": 30, "Skirts": 20}
LOOK_TYPES |= {"Leggings": 16, "Capris": 15, "Track Pants": 20}
BLUES = ("Blue", "Navy Blue", "Turquoise Blue")
MATCH_KEYS = [
    "product_id",
    "title",
    "score",
    "source_id",
    "category",
    "colour",
    "image_path",
    "gender",
]  # in the JSON's order


def build_look_home(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A real catalog of tops and bottoms for men and women, trained and indexed, set as the CLI's catalog."""
    if not PERSON.is_file():
        pytest.skip(f"the shared person photo is missing: {PERSON}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_learn, "TYPES", LOOK_TYPES)
        folder = _subset(myntra, tmp_path_factory.mktemp("look") / "subset")
    settings = Settings(data_dir=tmp_path_factory.mktemp("look-home") / "data")
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(folder / "styles.csv", images_dir=folder / "images")
    run_ingest(catalog, name="subset", kind="csv", location=str(folder), records=reader.records(), state=reader.state)
    train_catalog(catalog, settings, text=False)
    sync_index(catalog, settings, embedder="tuned:catalog", rebuild=True)
    _common.set_settings(settings)
    _common._state["catalog"] = catalog
    return settings


@pytest.fixture(scope="module")
def looker(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Looker:
    settings = build_look_home(myntra, tmp_path_factory)
    return Looker(Searcher(settings, _common.catalog()))


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


def test_filters_narrow_every_garments_matches_in_its_own_categories(looker: Looker) -> None:
    plain = looker.look(PERSON, k=3)
    women = looker.look(PERSON, k=3, filters=Filter(gender=["Women"]))
    assert "filters" not in plain.as_dict() and women.as_dict()["filters"] == {"gender": ["Women"]}
    assert [(g.region, g.category, g.searched) for g in women.garments] == [
        (g.region, g.category, g.searched) for g in plain.garments
    ]  # the filter picks among matches; it tags nothing
    for garment in women.garments:
        assert garment.matches and all(m.card.gender == "Women" for m in garment.matches)
        assert all(m.card.category in garment.searched for m in garment.matches)
    jeans = looker.look(PERSON, k=3, filters=Filter(category=["jeans"]))  # a synonym, as a user types it
    assert all(m.card.category == "Jeans" for g in jeans.garments for m in g.matches)
    assert jeans.as_dict()["filters"] == {"category": ["jeans"]}


def test_seated_person_in_jeans_gives_blue_bottoms_from_the_legs(looker: Looker) -> None:
    """Seated, arms on the lap, only a strip of jeans: still a bottom, blue, searched among bottoms."""
    result = looker.look(PERSON, k=3)
    regions = {g.region: g for g in result.garments}
    lower, upper = regions["lower"], regions["upper"]
    groups = vocabulary().attributes["category"].groups
    assert groups.get(lower.category or "") == "bottomwear"
    assert lower.colour in BLUES  # faded denim, not the hands on it
    assert lower.matches and all(groups.get(m.card.category or "") == "bottomwear" for m in lower.matches)
    x0, y0, x1, y1 = lower.box
    assert y0 > upper.box[1] and y1 <= result.size[1]
    assert x1 - x0 < result.size[0]  # the legs' reach, not the whole row the person mask spans


def test_pose_finder_finds_the_person_and_leaves_mediapipe_as_it_was() -> None:
    """The protobuf fix lives in sveta's own Pose subclass: other MediaPipe users in the process keep the original."""
    if not PERSON.is_file():
        pytest.skip(f"the shared person photo is missing: {PERSON}")
    from mediapipe.python import solution_base

    original = solution_base.SolutionBase._modify_calculator_options
    people = PoseFinder().find(Image.open(PERSON))
    assert len(people) == 1 and people[0].seen((11, 12))
    assert solution_base.SolutionBase._modify_calculator_options is original
    assert not hasattr(solution_base, "_sveta_patched")


def test_lower_box_keeps_to_the_legs_and_knees_tell_covered_from_bare() -> None:
    """A standing figure with hands out at hip height: the lower box leaves them out; jeans cover the knees."""
    width, height = 400, 800
    mask = np.zeros((height, width), bool)
    mask[100:780, 150:250] = True  # body and legs
    mask[380:420, 20:380] = True  # arms held out at hip height
    points = np.zeros((33, 3), np.float32)
    for i, (x, y) in {11: (170, 150), 12: (230, 150), 23: (180, 400), 24: (220, 400)}.items():
        points[i] = (x, y, 1.0)
    for i, (x, y) in {25: (180, 580), 26: (220, 580), 27: (180, 760), 28: (220, 760)}.items():
        points[i] = (x, y, 1.0)
    lower = next(r for r in person_regions(Person(points, mask), (width, height)) if r.name == "lower")
    assert lower.box[0] > 60 and lower.box[2] < 340 and len(lower.knees) == 2  # the arms reach 20 and 380
    denim = np.full((height, width, 3), (70, 100, 150), np.uint8)
    assert _covered(denim, lower) is True
    bare = denim.copy()
    bare[500:800] = (225, 180, 150)  # shorts: skin below the thighs
    assert _covered(bare, lower) is False


def _covered(pixels: np.ndarray, region: Region) -> bool | None:
    garment = rgb_to_lab(pixels[420:480, 160:240])
    return legs_covered(Image.fromarray(pixels), region, garment)


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
    assert list(garment["matches"][0]) == MATCH_KEYS
    assert (tmp_path / "s.png").stat().st_size > 1000
    assert "filters" not in payload
    women = CliRunner().invoke(app, ["look", str(PERSON), "--k", "2", "--gender", "Women", "--in-stock", "--json"])
    assert women.exit_code == 0, women.output
    assert json.loads(women.stdout.strip().splitlines()[-1])["filters"] == {"gender": ["Women"], "available": True}


def test_missing_photo_is_a_clear_error(looker: Looker) -> None:
    out = CliRunner().invoke(app, ["look", "/no/such.jpg"])
    assert out.exit_code != 0 and "no such photo" in out.output
