"""Outfit sets and the compatibility model: Polyvore / CSV loading, the synthetic test set, metrics, training, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sveta.cli import _common, app
from sveta.errors import ConfigError, InputError
from sveta.outfits.data import read_outfits
from sveta.outfits.metrics import auc, fitb_accuracy
from sveta.outfits.synthetic import _pieces, build_outfit_set, clashing, fitting
from sveta.settings import Settings

runner = CliRunner()

# Real Myntra ids: a men's formal look (shirt, trousers, shoes), a women's sports look, and spares.
SHIRT, TROUSERS, FORMAL_SHOES = "10381", "10257", "10285"
SPORTS_TEE, TRACK_PANTS = "10003", "10147"


@pytest.fixture(scope="module")
def outfit_set(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("outfits") / "set"
    build_outfit_set(myntra, out, n_outfits=300, seed=1)
    return out


def _polyvore(folder: Path, myntra: Path, fitb: list[dict[str, object]] | None = None) -> Path:
    """A tiny Polyvore Outfits folder in the original layout: metadata and images/ one level above disjoint/."""
    (folder / "images").mkdir(parents=True)
    meta = {}
    slots = {SHIRT: "tops", TROUSERS: "bottoms", FORMAL_SHOES: "shoes", SPORTS_TEE: "tops", TRACK_PANTS: "bottoms"}
    for item_id, category in slots.items():
        (folder / "images" / f"{item_id}.jpg").symlink_to(myntra / "images" / f"{item_id}.jpg")
        meta[item_id] = {"semantic_category": category, "url_name": f"item {item_id}"}
    meta["999"] = {"semantic_category": "tops"}  # no photo: left out, never fatal
    (folder / "polyvore_item_metadata.json").write_text(json.dumps(meta))
    split = folder / "disjoint"
    split.mkdir()
    look = {"set_id": "a", "items": [{"item_id": SHIRT, "index": 1}, {"item_id": TROUSERS, "index": 2}]}
    look["items"].append({"item_id": FORMAL_SHOES, "index": 3})
    sports = {"set_id": "b", "items": [{"item_id": SPORTS_TEE, "index": 1}, {"item_id": TRACK_PANTS, "index": 2}]}
    (split / "train.json").write_text(json.dumps([look]))
    (split / "test.json").write_text(json.dumps([sports, look | {"set_id": "c"}]))
    questions = fitb or [{"question": ["c_1", "c_3"], "answers": ["b_2", "c_2"], "blank_position": 2}]
    (split / "fill_in_blank_test.json").write_text(json.dumps(questions))
    (split / "compatibility_test.txt").write_text("1 c_1 c_2 c_3\n0 b_1 c_2 999\n0 c_1 b_2\n")
    return split


def test_polyvore_outfits_are_read_with_their_questions(myntra: Path, tmp_path: Path) -> None:
    data = read_outfits(_polyvore(tmp_path, myntra), None)
    assert data.train == [[SHIRT, TROUSERS, FORMAL_SHOES]]
    assert data.test == [[SPORTS_TEE, TRACK_PANTS], [SHIRT, TROUSERS, FORMAL_SHOES]]
    assert {i: data.items[i].slot for i in (SHIRT, TROUSERS, FORMAL_SHOES)} == {
        SHIRT: "top",
        TROUSERS: "bottom",
        FORMAL_SHOES: "footwear",
    }
    (q,) = data.fitb
    assert q.question == [SHIRT, FORMAL_SHOES] and q.candidates == [TRACK_PANTS, TROUSERS]
    assert q.answer == 1  # the answer from the question's own set, wherever it stands
    # the line naming item 999 (no photo) cannot be scored and is dropped; the others keep their labels
    assert data.compat == [(1, [SHIRT, TROUSERS, FORMAL_SHOES]), (0, [SHIRT, TRACK_PANTS])]


def test_polyvore_without_questions_gets_generated_ones(myntra: Path, tmp_path: Path) -> None:
    split = _polyvore(tmp_path, myntra)
    (split / "fill_in_blank_test.json").unlink()
    (split / "compatibility_test.txt").unlink()
    data = read_outfits(split, None)
    assert [label for label, _ in data.compat] == [1, 0, 1, 0]
    for _label, ids in data.compat:  # a negative keeps the positive's slots, slot for slot
        assert len(ids) in (2, 3) and all(i in data.items for i in ids)


def test_broken_outfit_files_get_a_clear_error(myntra: Path, tmp_path: Path) -> None:
    split = _polyvore(tmp_path, myntra)
    (split / "train.json").write_text("<html><body>Not Found</body></html>")
    with pytest.raises(InputError, match=r"train\.json is not valid JSON"):
        read_outfits(split, None)
    (split / "train.json").write_text(json.dumps({"set_id": "x"}))
    with pytest.raises(InputError, match="not a list of"):
        read_outfits(split, None)
    with pytest.raises(InputError, match=r"neither a Polyvore Outfits folder nor a \.csv"):
        read_outfits(tmp_path / "outfits.txt", None)


def test_a_csv_of_outfits_reads_products_from_a_labelled_folder(myntra: Path, tmp_path: Path) -> None:
    rows = ["outfit_id,product_id"]
    for n in range(40):
        rows += [f"o{n},{SHIRT}", f"o{n},{TROUSERS}", f"o{n},{FORMAL_SHOES}"]
    rows += ["lonely,10003", "bad,not-a-product", "bad,also-not"]
    path = tmp_path / "outfits.csv"
    path.write_text("\n".join(rows) + "\n")
    data = read_outfits(path, myntra)
    assert len(data.train) + len(data.test) == 40  # one-item and unknown-product outfits are left out
    assert 0 < len(data.test) < 20 and data.items[FORMAL_SHOES].slot == "footwear"
    with pytest.raises(InputError, match=r"no styles\.csv"):
        read_outfits(path, tmp_path)


def test_auc_and_fitb_on_known_answers() -> None:
    labels = np.array([1, 1, 0, 0])
    assert auc(labels, np.array([0.9, 0.8, 0.1, 0.2])) == 1.0
    assert auc(labels, np.array([0.1, 0.2, 0.9, 0.8])) == 0.0
    assert auc(labels, np.zeros(4)) == 0.5
    assert auc(labels, np.array([0.9, 0.1, 0.5, 0.2])) == 0.5


def test_fitb_counts_a_tie_as_wrong(myntra: Path, tmp_path: Path) -> None:
    data = read_outfits(_polyvore(tmp_path, myntra), None)
    assert fitb_accuracy(data, lambda a, b: 0.0) == 0.0  # a model that cannot tell gets no credit for order
    assert fitb_accuracy(data, lambda a, b: 0.0 if TROUSERS in (a, b) else 1.0) == 1.0
    assert fitb_accuracy(data, lambda a, b: 0.0 if TRACK_PANTS in (a, b) else 1.0) == 0.0


def test_the_synthetic_set_follows_the_rules_and_keeps_items_disjoint(outfit_set: Path, myntra: Path) -> None:
    data = read_outfits(outfit_set, None)
    assert len(data.train) == 240 and len(data.test) == 60
    assert not {i for o in data.train for i in o} & {i for o in data.test for i in o}
    pieces = {p.item_id: p for p in _pieces(myntra)}
    for outfit in data.train[:50] + data.test:
        look = [pieces[i] for i in outfit]
        assert len({p.slot for p in look}) == len(look)
        assert all(fitting([p], [q for q in look if q is not p]) for p in look)  # every piece goes with the rest
    for q in data.fitb:
        look = [pieces[i] for i in q.question]
        wrong = [pieces[c] for n, c in enumerate(q.candidates) if n != q.answer]
        assert len(q.candidates) == 4 and clashing(wrong, look) == wrong
    assert {label for label, _ in data.compat} == {0, 1}


@pytest.mark.slow  # the fast suite stays under 10 minutes; the whole suite runs it
def test_eval_outfits_learns_compatibility_from_photos(outfit_set: Path, tmp_path: Path) -> None:
    _common.set_settings(Settings(data_dir=tmp_path / "data"))
    result = runner.invoke(app, ["eval", "outfits", str(outfit_set), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output.strip().splitlines()[-1])
    assert {"fitb", "auc", "fitb_baseline", "auc_baseline", "fitb_untyped", "n_fitb"} <= set(got)
    assert got["n_fitb"] >= 50 and got["chance_fitb"] == 0.25
    # photos alone carry the rules' gender, occasion and colour: well above chance, and above raw features
    assert got["fitb"] >= 0.5 and got["auc"] >= 0.7
    assert got["fitb"] > got["fitb_baseline"] + 0.1 and got["auc"] > got["auc_baseline"] + 0.1


def test_outfits_train_keeps_a_model_that_loads(outfit_set: Path, tmp_path: Path) -> None:
    from sveta.outfits.model import load_outfit_model

    settings = Settings(data_dir=tmp_path / "data")
    _common.set_settings(settings)
    assert load_outfit_model(settings.data_dir) is None
    result = runner.invoke(app, ["outfits", "train", str(outfit_set), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output.strip().splitlines()[-1])
    model = load_outfit_model(settings.data_dir)
    assert model is not None and model.model_id == got["model_id"]
    assert {"top", "bottom", "footwear"} <= set(model.types)
    assert model.card["test"] == {"fitb": got["fitb"], "auc": got["auc"]}
    (settings.data_dir / "models/outfits/compat/weights.npz").write_bytes(b"half written")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_outfit_model(settings.data_dir)
    result = runner.invoke(app, ["outfits", "train", str(tmp_path / "nothing-here")])
    assert result.exit_code == InputError.exit_code and "neither a Polyvore Outfits folder" in result.output
