"""Fine-tuning the CNN's last stages on a small real catalog: exported graph, cached features, card, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sveta.catalog.store import open_catalog
from sveta.cli import _common, app
from sveta.errors import ConfigError
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.learn.features import extract, features_spec
from sveta.learn.finetune import FineTune, fine_tune
from sveta.learn.heads import AttributeModel
from sveta.learn.labels import examples_from_folder
from sveta.learn.store import load_model, model_dir
from sveta.settings import Settings
from tests import test_learn
from tests.test_learn import _subset

SMALL = {"Tshirts": 24, "Casual Shoes": 20, "Handbags": 20}
QUICK = FineTune(stages=1, epochs=1, batch=32)


@pytest.fixture(scope="module")
def folder(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_learn, "TYPES", SMALL)
        return _subset(myntra, tmp_path_factory.mktemp("finetune") / "subset")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("finetune-home") / "data", onnx_threads=2)


@pytest.fixture(scope="module")
def tuned(folder: Path, home: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("tuned")
    return out, fine_tune(examples_from_folder(folder), home, out, QUICK, share=0.5)


@pytest.mark.slow  # fine-tuning trains the CNN's tail: the whole suite (CI) runs these
def test_the_exported_network_is_fine_tuned_and_matches_torch(tuned: tuple[Path, object], home: Settings) -> None:
    folder, result = tuned
    backbone = result.backbone  # type: ignore[attr-defined]
    card = result.tuned.card["backbone"]  # type: ignore[attr-defined]
    assert backbone.path.parent == folder and backbone.path.name == card["file"]
    assert card["stages"] == 1 and card["trained"] == "blocks 15-15, head conv + BN" and card["device"] == "cpu"
    assert card["onnx_check_max_diff"] <= 2e-3
    assert features_spec(backbone) != features_spec()  # its features are cached apart from the frozen CNN's


@pytest.mark.slow  # fine-tuning trains the CNN's tail: the whole suite (CI) runs these
def test_cached_features_are_what_the_exported_graph_computes(
    tuned: tuple[Path, object], folder: Path, home: Settings, tmp_path: Path
) -> None:
    """Training filled the cache from the torch tail; a fresh data home runs the ONNX graph: they agree."""
    _, result = tuned
    backbone = result.backbone  # type: ignore[attr-defined]
    items = [(e.key, e.path, None) for e in examples_from_folder(folder)[:6]]
    _, cached = extract(items, home, backbone=backbone)
    fresh = home.model_copy(update={"data_dir": tmp_path / "fresh"})
    _, computed = extract(items, fresh, backbone=backbone)
    assert np.abs(cached.matrix() - computed.matrix()).max() < 2e-3
    _, frozen = extract(items, fresh)
    assert np.abs(frozen.pooled - computed.pooled).max() > 1e-3  # the network did change


@pytest.mark.slow  # fine-tuning trains the CNN's tail: the whole suite (CI) runs these
def test_a_model_keeps_its_network_and_refuses_a_changed_one(tuned: tuple[Path, object], tmp_path: Path) -> None:
    _, result = tuned
    model: AttributeModel = result.tuned  # type: ignore[attr-defined]
    settings = Settings(data_dir=tmp_path / "home")
    model.save(tmp_path / "model")
    loaded = AttributeModel.load(tmp_path / "model", settings)
    assert loaded.backbone is not None and loaded.backbone.sha256 == model.card["backbone"]["sha256"]
    with (tmp_path / "model" / model.card["backbone"]["file"]).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ConfigError, match="fine-tuned network"):
        AttributeModel.load(tmp_path / "model", settings)


@pytest.mark.slow  # fine-tuning trains the CNN's tail: the whole suite (CI) runs these
def test_fine_tuning_twice_gives_the_same_network(
    tuned: tuple[Path, object], folder: Path, home: Settings, tmp_path: Path
) -> None:
    _, first = tuned
    again = fine_tune(examples_from_folder(folder), home, tmp_path, QUICK, share=0.5)
    assert again.backbone.sha256 == first.backbone.sha256  # type: ignore[attr-defined]
    weights = first.tuned.weights  # type: ignore[attr-defined]
    assert all(np.array_equal(weights[k], again.tuned.weights[k]) for k in weights)


@pytest.mark.slow  # fine-tuning trains the CNN's tail: the whole suite (CI) runs these
def test_the_whole_network_path_runs_on_cpu(folder: Path, tmp_path: Path) -> None:
    """What a GPU runs (every stage, the stem included), on a tiny catalog on the CPU."""
    settings = Settings(data_dir=tmp_path / "home", onnx_threads=2)
    examples = examples_from_folder(folder)[:24]
    result = fine_tune(examples, settings, tmp_path / "out", FineTune(stages=7, epochs=1, batch=8), share=0.0)
    card = result.tuned.card["backbone"]
    assert card["stages"] == 7 and card["trained"].startswith("stem, blocks 0-15")
    assert card["onnx_check_max_diff"] <= 2e-3


def test_the_device_defaults_to_the_gpu_when_torch_sees_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    assert FineTune().resolved() == ("cpu", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert FineTune().resolved() == ("cuda", 7)
    assert FineTune(stages=2, device="cpu").resolved() == ("cpu", 2)


@pytest.mark.slow
def test_train_finetune_keeps_the_better_model_and_says_so(folder: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", onnx_threads=2, train_thumbnail_share=0.25)
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(folder / "styles.csv", images_dir=folder / "images")
    run_ingest(catalog, name="subset", kind="csv", location=str(folder), records=reader.records(), state=reader.state)
    catalog.engine.dispose()
    _common.set_settings(settings)
    try:
        run = CliRunner().invoke(app, ["train", "--finetune", "--epochs", "1", "--no-text", "--json"])
        assert run.exit_code == 0, run.output
        report = json.loads(run.output.strip().splitlines()[-1])
        tagged = CliRunner().invoke(app, ["tag", str(next((folder / "images").glob("*.jpg"))), "--json"])
    finally:
        _common.set_settings(Settings())
    scores = report["finetune"]["held_out_mean_wf1"]
    card = json.loads((model_dir(settings) / "card.json").read_text())
    kept_tuned = scores["tuned"] > scores["frozen"]
    assert ("backbone" in card) == kept_tuned and card["finetune"]["kept"].startswith(
        "fine-tuned" if kept_tuned else "frozen"
    )
    assert (load_model(settings).backbone is not None) == kept_tuned
    assert len(list(model_dir(settings).glob("backbone-*.onnx"))) == int(kept_tuned)
    assert tagged.exit_code == 0 and "category" in json.loads(tagged.output.strip().splitlines()[-1])["attributes"]


def test_finetune_options_need_finetune(tmp_path: Path) -> None:
    _common.set_settings(Settings(data_dir=tmp_path / "data"))
    try:
        run = CliRunner().invoke(app, ["train", "--stages", "2"])
        bad = CliRunner().invoke(app, ["train", "--finetune", "--device", "tpu"])
    finally:
        _common.set_settings(Settings())
    assert run.exit_code != 0 and "--finetune" in run.output
    assert bad.exit_code != 0 and "--device cpu" in bad.output


@pytest.mark.slow  # fine-tuning trains the CNN's tail: the whole suite (CI) runs these
def test_a_fine_tuned_model_travels_with_its_network(
    tuned: tuple[Path, object], home: Settings, tmp_path: Path
) -> None:
    from sveta.learn.portable import export_model, import_model
    from sveta.learn.store import save_model

    _, result = tuned
    model: AttributeModel = result.tuned  # type: ignore[attr-defined]
    model.card.update(name="ft", created="2026-12-06T00:00:00+00:00", features="features-v1:effnet-lite0")
    model.card.update(n_train=1, n_test=1, metrics={}, labels=model.classes, text_map=False, model_id="abc")
    save_model(model, home, "ft")
    out = tmp_path / "ft.sveta-model"
    manifest = export_model(home, "ft", out)
    assert model.card["backbone"]["file"] in manifest["files"]
    elsewhere = Settings(data_dir=tmp_path / "elsewhere")
    import_model(elsewhere, out)
    moved = load_model(elsewhere, "ft")
    assert moved.backbone is not None and moved.backbone.sha256 == model.card["backbone"]["sha256"]
