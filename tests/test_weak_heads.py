"""Weak attributes (sleeve length read from photos of people) get a head, and answer only where they apply."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sveta.learn.features import BLOCKS, Features
from sveta.learn.heads import AttributeModel
from sveta.learn.labels import Example
from sveta.learn.train import MIN_COVERAGE, MIN_WEAK, label_matrix


def _examples(n_shirts: int, n_bags: int) -> list[Example]:
    out = []
    for i in range(n_shirts + n_bags):
        labels = {"category": "Shirts" if i < n_shirts else "Handbags"}
        if i < n_shirts:
            labels["sleeve_length"] = "Short Sleeves" if i % 2 else "Long Sleeves"
        out.append(Example(i, Path(f"{i}.jpg"), labels=labels))
    return out


def test_a_weak_attribute_gets_a_head_below_the_coverage_rule() -> None:
    examples = _examples(MIN_WEAK, 4 * MIN_WEAK)  # 20% of the catalog: a seller attribute this rare gets none
    assert MIN_WEAK / len(examples) < MIN_COVERAGE
    assert "sleeve_length" in label_matrix(examples, {})
    assert "sleeve_length" not in label_matrix(_examples(MIN_WEAK - 1, 4 * MIN_WEAK), {})


def _model(category_logits: list[float]) -> AttributeModel:
    dim = sum(BLOCKS.values())
    weights = {
        "mu": np.zeros(dim, np.float32),
        "sd": np.ones(dim, np.float32),
        "fc_w": np.zeros((4, dim), np.float32),
        "fc_b": np.ones(4, np.float32),
        "emb_w": np.zeros((2, 4), np.float32),
        "emb_b": np.zeros(2, np.float32),
        "head/category/w": np.zeros((2, 4), np.float32),
        "head/category/b": np.array(category_logits, np.float32),
        "head/sleeve_length/w": np.zeros((2, 4), np.float32),
        "head/sleeve_length/b": np.array([3.0, 0.0], np.float32),
    }
    classes = {"category": ["Shirts", "Handbags"], "sleeve_length": ["Short Sleeves", "Long Sleeves"]}
    return AttributeModel(weights, classes, {"category": 1.0, "sleeve_length": 1.0})


def test_sleeve_length_is_answered_for_a_shirt_and_not_for_a_handbag() -> None:
    features = Features.from_matrix(np.zeros((1, sum(BLOCKS.values())), np.float32))
    shirt = _model([3.0, 0.0]).predict(features, 0.5)[0]
    bag = _model([0.0, 3.0]).predict(features, 0.5)[0]
    assert shirt["sleeve_length"].value == "Short Sleeves"
    assert "sleeve_length" not in bag and bag["category"].value == "Handbags"


@pytest.mark.slow
def test_train_reads_sleeves_from_photos_and_tags_a_shirt_but_not_a_handbag(
    myntra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.catalog.store import open_catalog
    from sveta.ingest.feeds import FeedReader
    from sveta.ingest.pipeline import run_ingest
    from sveta.learn import train
    from sveta.learn.catalog import train_catalog
    from sveta.learn.tagging import tag_photos
    from sveta.settings import Settings
    from tests import test_learn
    from tests.test_learn import _subset

    monkeypatch.setattr(test_learn, "TYPES", {"Tshirts": 70, "Shirts": 60, "Handbags": 40})
    folder = _subset(myntra, tmp_path / "subset")
    monkeypatch.setattr(train, "MIN_WEAK", 40)  # a small catalog: fewer labels than a shop's would give
    settings = Settings(data_dir=tmp_path / "data", weak_label_photos=130, train_thumbnail_share=0.0)
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(folder / "styles.csv", images_dir=folder / "images")
    run_ingest(catalog, name="subset", kind="csv", location=str(folder), records=reader.records(), state=reader.state)
    report = train_catalog(catalog, settings, text=False)
    catalog.engine.dispose()
    card = json.loads((report.model_dir / "card.json").read_text())
    assert card["weak_labels"]["labels_added"]["sleeve_length"] >= 40 and "MediaPipe" in card["weak_labels"]["method"]
    assert "sleeve_length" in card["labels"] and "sharp/sleeve_length_wf1" in report.metrics
    shirt = next(p for p in (folder / "images").glob("*.jpg") if _type(folder, p) == "Shirts")
    bag = next(p for p in (folder / "images").glob("*.jpg") if _type(folder, p) == "Handbags")
    answers = tag_photos([shirt, bag], settings)
    assert answers[0]["sleeve_length"].value in card["labels"]["sleeve_length"] + ["unknown"]
    assert "sleeve_length" not in answers[1]


def _type(folder: Path, photo: Path) -> str:
    for line in (folder / "styles.csv").read_text(encoding="utf-8").splitlines():
        if line.split(",")[0] == photo.stem:
            return line.split(",")[4]
    return ""
