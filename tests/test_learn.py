"""Learning from the catalog on real Myntra photos: labels and split, attribute heads, tuned embedding, tag, train."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sveta.catalog.store import CatalogStore, open_catalog
from sveta.cli import _common, app
from sveta.engines.search import Searcher
from sveta.errors import ConfigError
from sveta.eval.attributes import train_on_folder
from sveta.index.catalog_index import catalog_embedder_spec, open_catalog_index, sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.learn.catalog import train_catalog
from sveta.learn.features import extract
from sveta.learn.heads import UNKNOWN, AttributeModel
from sveta.learn.labels import examples_from_folder, split
from sveta.learn.metrics import weighted_f1
from sveta.learn.store import ModelCache, load_model, model_dir, save_model
from sveta.settings import Settings

TYPES = {"Tshirts": 70, "Shirts": 50, "Casual Shoes": 50, "Handbags": 50, "Watches": 40, "Kurtas": 40}


def _subset(myntra: Path, folder: Path) -> Path:
    """A few hundred real items of six article types: a styles.csv beside symlinked photos."""
    with (myntra / "styles.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    taken: Counter[str] = Counter()
    keep = []
    for row in rows:
        kind = row["articleType"]
        if kind in TYPES and taken[kind] < TYPES[kind] and (myntra / "images" / f"{row['id']}.jpg").is_file():
            taken[kind] += 1
            keep.append(row)
    (folder / "images").mkdir(parents=True)
    with (folder / "styles.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(keep)
    for row in keep:
        (folder / "images" / f"{row['id']}.jpg").symlink_to(myntra / "images" / f"{row['id']}.jpg")
    return folder


@pytest.fixture(scope="module")
def folder(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _subset(myntra, tmp_path_factory.mktemp("learn") / "subset")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # the INT8 training path (SVETA_TRAIN_INT8): every training of this module, the CLI's included, goes through it
    return Settings(data_dir=tmp_path_factory.mktemp("learn-home") / "data", train_int8=True)


@pytest.fixture(scope="module")
def trained(folder: Path, settings: Settings) -> AttributeModel:
    return train_on_folder(folder, settings)


def test_split_is_deterministic_stratified_and_disjoint(folder: Path) -> None:
    examples = examples_from_folder(folder)
    train, test = split(examples)
    again_train, again_test = split(examples)
    assert [e.key for e in train] == [e.key for e in again_train] and [e.key for e in test] == [
        e.key for e in again_test
    ]
    assert not {e.key for e in train} & {e.key for e in test}
    for kind, n in TYPES.items():
        assert sum(e.labels["category"] == kind for e in test) == round(n * 0.2)
    assert examples[0].evidence["category"] == "seller:articleType"


@pytest.mark.slow  # a whole training run; the full suite (CI) runs it
def test_heads_tell_the_article_types_apart_on_held_out_photos(
    folder: Path, settings: Settings, tmp_path: Path
) -> None:
    examples = examples_from_folder(folder)
    train, test = split(examples)
    held_out = tmp_path / "train"
    (held_out / "images").mkdir(parents=True)
    lines = (folder / "styles.csv").read_text(encoding="utf-8").splitlines()
    keys = {str(e.key) for e in train}
    (held_out / "styles.csv").write_text("\n".join([lines[0], *[ln for ln in lines[1:] if ln.split(",")[0] in keys]]))
    for key in keys:
        (held_out / "images" / f"{key}.jpg").symlink_to((folder / "images" / f"{key}.jpg").resolve())
    model = train_on_folder(held_out, settings)
    ids, features = extract([(e.key, e.path, None) for e in test], settings)
    probs = model.probabilities(features)
    truth = [next(e for e in test if e.key == k).labels["category"] for k in ids]
    guess = [model.classes["category"][i] for i in probs["category"].argmax(axis=1)]
    assert weighted_f1(truth, guess) >= 0.8  # six visibly different types; chance is ~0.2
    assert np.allclose(probs["category"].sum(axis=1), 1.0)


def test_prediction_has_confidence_alternatives_and_unknown_below_the_threshold(
    trained: AttributeModel, folder: Path, settings: Settings
) -> None:
    examples = examples_from_folder(folder)[:5]
    _, features = extract([(e.key, e.path, None) for e in examples], settings)
    rows = trained.predict(features, threshold=0.0)
    assert set(rows[0]) == {"category", "colour", "gender", "occasion"}
    answer = rows[0]["category"]
    assert answer.value == answer.alternatives[0][0] and len(answer.alternatives) == 3
    assert answer.alternatives[0][1] >= answer.alternatives[1][1] >= answer.alternatives[2][1]
    assert all(p.value == UNKNOWN for row in trained.predict(features, threshold=1.01) for p in row.values())


def test_model_saves_and_loads_to_the_same_answers(
    trained: AttributeModel, folder: Path, settings: Settings, tmp_path: Path
) -> None:
    examples = examples_from_folder(folder)[:8]
    _, features = extract([(e.key, e.path, None) for e in examples], settings)
    trained.save(tmp_path / "m")
    loaded = AttributeModel.load(tmp_path / "m", settings)
    assert loaded.classes == trained.classes
    np.testing.assert_allclose(loaded.embed(features), trained.embed(features), atol=1e-6)
    (tmp_path / "m" / "model.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="damaged"):
        AttributeModel.load(tmp_path / "m", settings)


def test_the_model_is_trained_on_the_int8_network_and_keeps_it(
    trained: AttributeModel, folder: Path, settings: Settings
) -> None:
    """With SVETA_TRAIN_INT8 features come from the CNN quantised to INT8 (calibrated on training photos): the model
    keeps that network, embeds with it, and its features are cached apart from FP32's."""
    from sveta.embed.quantize import int8_unfit
    from sveta.learn.tuned import TunedEmbedder

    if (unfit := int8_unfit()) is not None:  # trained on FP32 there: test_training_stays_fp32_where_int8_is_unfit
        pytest.skip(f"INT8 is refused on this machine: {unfit}")
    card = trained.card["backbone"]
    assert card["int8"]["calibration"] == "training photos" and trained.backbone is not None
    assert trained.backbone.sha256 == card["sha256"]
    save_model(trained, settings, "int8-check", card=False)
    kept = model_dir(settings, "int8-check") / card["file"]
    assert kept.is_file() and load_model(settings, "int8-check").backbone.path == kept  # type: ignore[union-attr]
    embedder = TunedEmbedder("int8-check", settings)
    assert embedder.base.spec.endswith(f":ft-{card['sha256'][:16]}")  # cached under the network that made them
    assert TunedEmbedder("int8-check", settings, int8=True).base.spec == embedder.base.spec  # not quantised twice
    kept.write_bytes(b"damaged")
    with pytest.raises(ConfigError, match="missing or changed"):
        load_model(settings, "int8-check")
    from sveta.learn.int8_network import int8_network, trained_on

    fp32 = settings.model_copy(update={"train_int8": False})
    assert int8_network(examples_from_folder(folder), fp32) is None and "SVETA_TRAIN_INT8=false" in trained_on(fp32)


def test_training_stays_fp32_where_int8_is_unfit(
    folder: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SVETA_TRAIN_INT8 on a CPU where INT8 products saturate: no INT8 network, and the report says why."""
    from sveta.embed import quantize
    from sveta.learn.int8_network import int8_network, trained_on

    monkeypatch.setattr(quantize, "int8_unfit", lambda: "this CPU has no VNNI (test)")
    assert int8_network(examples_from_folder(folder), settings) is None
    assert trained_on(settings) == "FP32 features: this CPU has no VNNI (test)"


def test_an_int8_trained_model_is_refused_where_int8_is_unfit(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trained on INT8 on a CPU with VNNI, served on one without: a clear error, not vectors far from the index."""
    from sveta.embed.effnet import sha256_file
    from sveta.learn import features
    from sveta.learn.backbone import backbone_of

    network = tmp_path / "backbone-x.onnx"
    network.write_bytes(b"an INT8 graph")
    info = {"file": network.name, "sha256": sha256_file(network)}
    quantised = backbone_of({"backbone": info | {"int8": {"calibration": "training photos"}}}, tmp_path)
    assert quantised is not None and quantised.int8  # the card says what the network is
    assert not backbone_of({"backbone": info}, tmp_path).int8  # type: ignore[union-attr]  # a fine-tuned FP32 one
    monkeypatch.setattr(features, "int8_unfit", lambda: "this CPU has no VNNI (test)")
    with pytest.raises(ConfigError) as err:
        features.FeatureExtractor(settings, backbone=quantised)
    assert "no VNNI" in err.value.message and "sveta train" in (err.value.hint or "")
    assert features.FeatureExtractor(settings).spec == "features-v1:effnet-lite0"  # the frozen FP32 CNN runs anywhere


def test_model_cache_loads_once_per_file_version(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    cache = ModelCache()
    with pytest.raises(ConfigError, match="no trained model"):
        cache.get(settings)
    model = AttributeModel({"mu": np.zeros(2, np.float32)}, {}, {}, {"model_id": "first"})
    save_model(model, settings, card=False)
    held = cache.get(settings)
    assert cache.get(settings) is held and held.card["model_id"] == "first"
    model.card["model_id"] = "second"
    save_model(model, settings, card=False)
    stamp = (model_dir(settings) / "model.npz").stat().st_mtime_ns + 10**9  # a later version, whatever the clock
    os.utime(model_dir(settings) / "model.npz", ns=(stamp, stamp))
    assert cache.get(settings).card["model_id"] == "second"


def test_tuned_embedding_groups_by_type_better_than_chance(
    trained: AttributeModel, folder: Path, settings: Settings
) -> None:
    examples = examples_from_folder(folder)
    ids, features = extract([(e.key, e.path, None) for e in examples], settings)
    vectors = trained.embed(features)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    kinds = np.array([next(e for e in examples if e.key == k).labels["category"] for k in ids])
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -9)
    top = np.argsort(-sims, axis=1)[:, :10]
    assert (kinds[top] == kinds[:, None]).mean() >= 0.8


# -- on a catalog: sveta train, tag, index with the tuned embedding, text search -------------------------------


@pytest.fixture(scope="module")
def catalog(folder: Path, settings: Settings) -> Iterator[CatalogStore]:
    store = open_catalog(settings.catalog_url)
    reader = FeedReader(folder / "styles.csv", images_dir=folder / "images")
    run_ingest(store, name="subset", kind="csv", location=str(folder), records=reader.records(), state=reader.state)
    yield store
    store.engine.dispose()


@pytest.fixture(scope="module")
def cli(settings: Settings, catalog: CatalogStore) -> Iterator[CliRunner]:
    _common.set_settings(settings)
    _common._state["catalog"] = catalog
    yield CliRunner()
    _common._state.clear()


@pytest.mark.slow  # a whole training run; the full suite (CI) runs it
def test_sveta_train_tags_every_product_indexes_with_the_tuned_embedding_and_searches_text(
    cli: CliRunner, settings: Settings, catalog: CatalogStore, shared: Path
) -> None:
    result = cli.invoke(app, ["train", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n_train"] + report["n_test"] == sum(TYPES.values()) and report["tagged"] == sum(TYPES.values())
    assert report["metrics"]["sharp/category_wf1"] >= 0.7 and report["text_map"] is True
    card = json.loads((settings.models_dir / "tuned" / "catalog" / "card.json").read_text())
    assert card["embedder"] == "tuned:catalog" and "Handbags" in card["labels"]["category"]
    assert catalog_embedder_spec(settings) == "tuned:catalog"

    handbag = cli.invoke(app, ["tag", str(shared / "fixtures" / "photos" / "product-handbag.jpg"), "--json"])
    assert handbag.exit_code == 0, handbag.output
    answer = json.loads(handbag.stdout.strip().splitlines()[-1])["attributes"]["category"]
    assert answer["value"] == "Handbags" and answer["confidence"] >= 0.5

    searcher = Searcher(settings, catalog)
    first = catalog.indexable_images()[0]
    top = searcher.search_photo(first.local_path, k=3, category=None).matches[0]
    assert top.card.product_id == first.product_id
    watches = searcher.search_text("men's analogue watch", k=5)
    assert sum(m.card.category == "Watch" for m in watches.matches) >= 4  # cards carry the canonical category
    bags = searcher.search_text("black leather handbag for women", k=5)
    assert bags.matches[0].card.category == "Handbag"


@pytest.mark.slow  # the fast suite stays under 10 minutes; the whole suite runs it
def test_retraining_makes_the_old_index_a_clear_error(settings: Settings, catalog: CatalogStore) -> None:
    if catalog_embedder_spec(settings) != "tuned:catalog":
        train_catalog(catalog, settings, text=False)
        sync_index(catalog, settings, embedder="tuned:catalog", rebuild=True)
    before = load_model(settings).card["model_id"]
    train_catalog(catalog, settings, text=False)
    assert load_model(settings).card["model_id"] != before
    with pytest.raises(ConfigError, match="trained model is now") as caught:
        open_catalog_index(settings, create=False)
    assert "sveta index build --rebuild" in (caught.value.hint or "")


def test_recent_queries_keep_the_latest_and_hand_out_read_only_rows() -> None:
    from sveta.learn.recent import RecentQueries

    recent = RecentQueries(2)
    recent.put("red dress", np.ones((1, 3), np.float32))
    recent.put("blue jeans", np.zeros((1, 3), np.float32))
    assert recent.get("red dress") is not None  # now the most recent
    recent.put("white shoes", np.zeros((1, 3), np.float32))
    assert recent.get("blue jeans") is None and recent.get("white shoes") is not None
    rows = recent.get("red dress")
    assert rows is not None and not rows.flags.writeable
