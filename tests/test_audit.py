"""The listing audit, `sveta wardrobe` and `sveta eval audit` on a model trained on real Myntra items."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from sveta.catalog.models import Attribute
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.cli import _common, app
from sveta.engines.audit import audit_catalog, audit_examples, candidates, canonical
from sveta.engines.audit_rules import RULES
from sveta.engines.wardrobe import analyse_wardrobe
from sveta.errors import InputError
from sveta.eval.audit import Condition, corrupt, score
from sveta.images.cache import ImageCache, warm_cache
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.learn.catalog import train_catalog
from sveta.learn.features import Features, extract
from sveta.learn.heads import AttributeModel
from sveta.learn.labels import Example, examples_from_catalog, examples_from_folder
from sveta.learn.store import load_model
from sveta.settings import Settings

TYPES = ("Tshirts", "Shirts", "Casual Shoes", "Watches", "Jeans", "Handbags", "Kurtas", "Tops")
PER_TYPE = 30


@dataclasses.dataclass
class Built:
    settings: Settings
    catalog: CatalogStore
    folder: Path  # the same items as a labelled folder (styles.csv + images/)
    examples: list[Example]  # as labelled before any corruption, row-aligned with features
    features: Features
    model: AttributeModel
    corrupted: dict[int, tuple[str, str, str]]  # product id -> (attribute, wrong value, the photo's value)
    tee_row: int  # the T-shirt relabelled as a watch


def _folder(myntra: Path, folder: Path) -> Path:
    """PER_TYPE items of each of TYPES, laid out like myntra-small (the photos linked, not copied)."""
    with (myntra / "styles.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows, taken = [], dict.fromkeys(TYPES, 0)
        for row in reader:
            kind = row["articleType"]
            if kind in taken and taken[kind] < PER_TYPE and (myntra / "images" / f"{row['id']}.jpg").is_file():
                taken[kind] += 1
                rows.append(row)
    folder.mkdir(parents=True)
    with (folder / "styles.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (folder / "images").symlink_to(myntra / "images", target_is_directory=True)
    return folder


def _surest(
    model: AttributeModel, examples: list[Example], p: dict[str, np.ndarray], attribute: str, value: str
) -> int:
    """The row of the example labelled ``value`` whose photo the model is surest shows it."""
    column = model.classes[attribute].index(value)
    rows = [i for i, e in enumerate(examples) if e.labels.get(attribute) == value]
    return max(rows, key=lambda i: float(p[attribute][i, column]))


def _relabel(catalog: CatalogStore, product_id: int, attribute: str, value: str) -> None:
    where = (Attribute.product_id == product_id, Attribute.name == attribute, Attribute.origin == "seller")
    with catalog.session() as s:
        s.execute(update(Attribute).where(*where).values(value=value))


@pytest.fixture(scope="module")
def built(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    home = tmp_path_factory.mktemp("audit")
    folder = _folder(myntra, home / "items")
    settings = Settings(data_dir=home / "data")
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(folder / "styles.csv", images_dir=myntra / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(folder), records=reader.records(), state=reader.state)
    with ImageCache(settings) as cache:
        warm_cache(catalog, cache)
    train_catalog(catalog, settings, text=False)
    model = load_model(settings)
    examples = examples_from_catalog(catalog)
    ids, features = extract([(e.key, e.path, e.sha256) for e in examples], settings)
    by_key = {e.key: e for e in examples}
    examples = [by_key[k] for k in ids]
    p = model.probabilities(features)
    # Two wrong listings the photo plainly contradicts: a T-shirt sold as a watch, a men's item sold as women's.
    tee_row = _surest(model, examples, p, "category", "Tshirts")
    tee = examples[tee_row]
    man = examples[_surest(model, [e if e is not tee else Example(-1, e.path) for e in examples], p, "gender", "Men")]
    _relabel(catalog, tee.key, "category", "Watches")
    _relabel(catalog, man.key, "gender", "Women")
    corrupted = {tee.key: ("category", "Watches", "T-Shirt"), man.key: ("gender", "Women", "Men")}
    yield Built(settings, catalog, folder, examples, features, model, corrupted, tee_row)
    catalog.engine.dispose()


def test_a_contradicted_listing_is_flagged_with_both_values_and_evidence(built: Built) -> None:
    findings = audit_catalog(built.catalog, built.settings)
    for product_id, (attribute, wrong, truth) in built.corrupted.items():
        found = [f for f in findings if f.product_id == product_id and f.attribute == attribute]
        assert found, f"{attribute} {wrong!r} of product {product_id} not flagged"
        f = found[0]
        assert (f.stated, f.photo_value, f.origin) == (wrong, truth, "seller")
        assert f.evidence in {"articleType", "gender"} and f.title and Path(f.photo).is_file()
        assert f.confidence >= 0.7 and f.stated_probability <= 0.02
        assert f.title_agrees_with == "photo"  # the untouched title names the photo's value: a second witness
    assert [f.confidence for f in findings] == sorted((f.confidence for f in findings), reverse=True)


def test_clean_listings_are_mostly_not_flagged(built: Built) -> None:
    findings = audit_catalog(built.catalog, built.settings)
    false = [f for f in findings if f.product_id not in built.corrupted]
    assert len(false) <= 0.03 * len(built.examples), [(f.title, f.stated, f.photo_value) for f in false]


def test_values_are_compared_after_normalisation_and_unknown_ones_skipped(built: Built) -> None:
    row = built.tee_row
    tee = built.examples[row]
    assert canonical("category", "tee") == canonical("category", "Tshirts") == "T-Shirt"
    for value, flagged in (("tee", False), ("T-Shirt", False), ("Saree", False), ("Watches", True)):
        relabelled = dataclasses.replace(tee, labels={"category": value})
        findings = audit_examples(built.model, [relabelled], built.features.take(np.array([row])))
        assert bool(findings) == flagged, value
    # A listing whose title says the same as its seller is consistent: the photo model is the likelier one wrong.
    consistent = dataclasses.replace(tee, labels={"category": "Watches"}, title="Classic Black Analog Watches")
    assert not audit_examples(built.model, [consistent], built.features.take(np.array([row])))


def test_gender_is_not_judged_on_watches_the_catalog_files_unisex(built: Built) -> None:
    """A third of the watches filed Unisex, no titles: the photo's guess at a watch's gender is no finding."""
    p = built.model.probabilities(built.features)["gender"]
    names = built.model.classes["gender"]
    watches = [i for i, e in enumerate(built.examples) if e.labels.get("category") == "Watches"]
    gendered = [i for i in watches if names[int(p[i].argmax())] in {"Men", "Women"}]
    surest = max(gendered, key=lambda i: float(p[i].max()))  # the watch whose gender the photo is surest of
    wrong = {"Men": "Women", "Women": "Men"}[names[int(p[surest].argmax())]]
    relabel = {i: "Unisex" for i in watches[::3] if i != surest} | {surest: wrong}
    examples = [
        dataclasses.replace(e, title="", labels=e.labels | ({"gender": relabel[i]} if i in relabel else {}))
        for i, e in enumerate(built.examples)
    ]
    eager = dataclasses.replace(RULES["gender"], min_confidence=0.0, max_stated=1.0)  # the photo alone would do
    flagged = audit_examples(built.model, examples, built.features, rule={"gender": eager})
    assert not {f.product_id for f in flagged} & {built.examples[i].key for i in watches}
    blind = dataclasses.replace(eager, max_unisex=1.0, min_agreement=0.0)  # the same rule without the type's witness
    flagged = audit_examples(built.model, examples, built.features, rule={"gender": blind})
    assert built.examples[surest].key in {f.product_id for f in flagged}
    found = candidates(built.model, examples, built.features)
    key = built.examples[surest].key
    watch = next(c for c in found if c.finding.product_id == key and c.finding.attribute == "gender")
    assert watch.type_unisex >= 0.3 > RULES["gender"].max_unisex


def test_the_vectorised_rule_agrees_with_the_rule_on_real_candidates(built: Built) -> None:
    corrupted, truth = corrupt(built.examples)
    found = candidates(built.model, corrupted, built.features)
    condition = Condition.of("fixture", True, found, truth)
    for attribute, rule in RULES.items():
        expected = [c.finding.attribute == attribute and rule.accepts(c) for c in found]
        assert condition.accepted(attribute, rule).tolist() == expected
    assert int(condition.true.sum()) == sum(truth.get(c.finding.product_id) == c.finding.attribute for c in found)


def test_cli_audit_json_and_html(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVETA_DATA_DIR", str(built.settings.data_dir))
    _common._state.clear()
    report = tmp_path / "audit.html"
    result = CliRunner().invoke(app, ["audit", "--json", "--html", str(report), "--limit", "5"])
    _common._state.clear()
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["n_products"] == len(built.examples) and payload["n_findings"] >= 2
    assert 2 <= len(payload["findings"]) <= 5
    assert set(built.corrupted) <= {f["product_id"] for f in payload["findings"]}
    page = report.read_text(encoding="utf-8")
    assert page.count("data:image/jpeg;base64,") == len(payload["findings"])
    assert "Watches" in page and "T-Shirt" in page and "articleType" in page


def test_wardrobe_top_k_and_what_it_lacks(built: Built, tmp_path: Path) -> None:
    p = built.model.probabilities(built.features)["category"]
    best = [built.model.classes["category"][j] for j in p.argmax(axis=1)]
    sure = p.max(axis=1) >= 0.8
    pick = {
        kind: [e.path for e, b, s in zip(built.examples, best, sure, strict=True) if b == kind and s] for kind in TYPES
    }
    photos = tmp_path / "wardrobe"
    photos.mkdir()
    for path in pick["Tshirts"][:3] + pick["Casual Shoes"][:2]:
        (photos / path.name).symlink_to(path)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = analyse_wardrobe([photos], built.settings, k=2)
    assert (result["n_photos"], result["n_tagged"]) == (6, 5)
    assert result["top"]["category"][0] == {"value": "T-Shirt", "count": 3, "share": 0.6}
    assert result["top"]["category"][1]["value"] == "Casual Shoes"
    assert all(len(top) <= 2 for top in result["top"].values())
    assert "bottomwear" in result["lacks"]["groups"] and "topwear" not in result["lacks"]["groups"]
    assert "Jeans" in result["lacks"]["categories"] and "T-Shirt" not in result["lacks"]["categories"]
    assert [Path(u["path"]).name for u in result["unreadable"]] == ["broken.jpg"]
    with pytest.raises(InputError):
        analyse_wardrobe([tmp_path / "nowhere"], built.settings)


def test_cli_wardrobe_json_reports_a_corrupt_photo(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    monkeypatch.setenv("SVETA_DATA_DIR", str(built.settings.data_dir))
    _common._state.clear()
    args = ["wardrobe", str(built.examples[0].path), str(tmp_path / "bad.png"), "--k", "3", "--json"]
    result = CliRunner().invoke(app, args)
    _common._state.clear()
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["n_tagged"] == 1 and payload["unreadable"][0]["path"].endswith("bad.png")


def test_corruption_is_seeded_in_equal_shares_and_really_wrong(built: Built) -> None:
    examples = examples_from_folder(built.folder)
    corrupted, truth = corrupt(examples)
    again, truth_again = corrupt(examples)
    assert truth == truth_again and [e.labels for e in corrupted] == [e.labels for e in again]
    assert len(truth) == round(0.05 * len(examples))
    shares = {a: list(truth.values()).count(a) for a in ("colour", "category", "gender")}
    assert max(shares.values()) - min(shares.values()) <= 1
    before = {e.key: e for e in examples}
    for example in corrupted:
        changed = {a for a in example.labels if example.labels[a] != before[example.key].labels[a]}
        assert changed == ({truth[example.key]} if example.key in truth else set())
        for a in changed:
            assert canonical(a, example.labels[a]) != canonical(a, before[example.key].labels[a])


def test_score_counts_a_flag_on_an_untouched_listing_against_precision(built: Built) -> None:
    e = built.examples[built.tee_row]
    flags = audit_examples(
        built.model,
        [dataclasses.replace(e, labels={"category": "Watches"})],
        built.features.take(np.array([built.tee_row])),
    )
    assert len(flags) == 1
    assert score(flags, {e.key: "category"})["precision"] == 1.0
    assert score(flags, {})["precision"] == 0.0 and score(flags, {e.key: "gender"})["recall"] == 0.0


@pytest.mark.slow
def test_cli_eval_audit(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVETA_DATA_DIR", str(built.settings.data_dir))
    _common._state.clear()
    result = CliRunner().invoke(app, ["eval", "audit", str(built.folder), str(built.folder), "--json"])
    _common._state.clear()
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"precision", "recall", "n_items", "n_corrupted", "n_flagged", "seconds"} <= set(payload)
    assert payload["n_items"] == len(built.examples) and payload["n_corrupted"] == round(0.05 * len(built.examples))
