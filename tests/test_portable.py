"""Portable models: a real trained model exported to one file, imported elsewhere, and every bad file refused."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sveta.catalog.store import open_catalog
from sveta.cli import _common, app
from sveta.errors import ConfigError, InputError
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.learn.catalog import train_catalog
from sveta.learn.portable import MANIFEST, export_model, import_model, load_portable
from sveta.learn.store import load_model, model_dir
from sveta.settings import Settings
from tests import test_learn
from tests.test_learn import _subset

SMALL = {"Tshirts": 25, "Casual Shoes": 20, "Handbags": 20}  # 65 products: enough to train, quick to fit


@pytest.fixture(scope="module")
def trained(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A real catalog of three article types, trained (no text map: the file format is what is tested)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_learn, "TYPES", SMALL)
        folder = _subset(myntra, tmp_path_factory.mktemp("portable") / "subset")
    settings = Settings(data_dir=tmp_path_factory.mktemp("portable-home") / "data", train_thumbnail_share=0.0)
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(folder / "styles.csv", images_dir=folder / "images")
    run_ingest(catalog, name="subset", kind="csv", location=str(folder), records=reader.records(), state=reader.state)
    train_catalog(catalog, settings, text=False)
    catalog.engine.dispose()
    return settings


@pytest.fixture(scope="module")
def exported(trained: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "catalog.sveta-model"
    export_model(trained, "catalog", out)
    return out


def _home(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "elsewhere")


def test_round_trip_gives_the_same_model(trained: Settings, exported: Path, tmp_path: Path, myntra: Path) -> None:
    other = _home(tmp_path)
    manifest = import_model(other, exported)
    assert manifest["installed_as"] == "catalog" and manifest["features"] == "features-v1:effnet-lite0"
    assert load_model(other).card == load_model(trained).card
    photo = next((myntra / "images").glob("*.jpg"))
    assert _predictions(photo, trained) == _predictions(photo, other)
    graph = next(other.models_dir.glob("effnet-*.onnx"))  # the backbone came with it, checked
    assert (graph.parent / (graph.name + ".sha256")).read_text().split()[0] == manifest["files"][graph.name]


def _predictions(photo: Path, settings: Settings) -> list[tuple[str, str, float]]:
    from sveta.learn.tagging import tag_photos

    tags = tag_photos([photo], settings)[0]
    return [(name, p.value, round(p.confidence, 6)) for name, p in sorted(tags.items())]


def test_import_under_another_name_and_replace(exported: Path, tmp_path: Path) -> None:
    other = _home(tmp_path)
    import_model(other, exported, "shop")
    card = json.loads((model_dir(other, "shop") / "card.json").read_text())
    assert card["name"] == "shop" and card["embedder"] == "tuned:shop"
    with pytest.raises(InputError, match="a model named 'shop' exists") as caught:
        import_model(other, exported, "shop")
    assert "--force" in caught.value.hint
    assert import_model(other, exported, "shop", force=True)["installed_as"] == "shop"
    with pytest.raises(InputError, match="bad model name"):
        import_model(other, exported, "../escape")


def _rewrite(source: Path, out: Path, *, manifest: dict[str, object] | None = None, replace: str | None = None) -> Path:
    """A copy of the model file with another manifest, or one member's bytes changed."""
    with zipfile.ZipFile(source) as z, zipfile.ZipFile(out, "w") as w:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == MANIFEST and manifest is not None:
                data = json.dumps(manifest).encode()
            if info.filename == replace:
                data = data[:-1] + bytes([data[-1] ^ 1])
            w.writestr(info.filename, data)
    return out


def _manifest(file: Path) -> dict[str, object]:
    with zipfile.ZipFile(file) as z:
        manifest: dict[str, object] = json.loads(z.read(MANIFEST))
    return manifest


def test_damaged_newer_and_foreign_files_are_refused(exported: Path, tmp_path: Path) -> None:
    other = _home(tmp_path)
    damaged = _rewrite(exported, tmp_path / "damaged", replace="model.npz")
    with pytest.raises(InputError, match=r"damaged: model\.npz does not match its checksum"):
        import_model(other, damaged)
    newer = _rewrite(exported, tmp_path / "newer", manifest=_manifest(exported) | {"format_version": 2})
    with pytest.raises(ConfigError, match="format 2") as caught:
        import_model(other, newer)
    assert "upgrade sveta" in caught.value.hint
    foreign = _rewrite(exported, tmp_path / "foreign", manifest=_manifest(exported) | {"features": "v9:convnext"})
    with pytest.raises(ConfigError, match="v9:convnext"):
        import_model(other, foreign)
    smuggled = _manifest(exported)
    smuggled["files"] = {**smuggled["files"], "../../etc/passwd": "0" * 64}  # type: ignore[dict-item]
    with pytest.raises(InputError, match="unexpected files"):
        import_model(other, _rewrite(exported, tmp_path / "smuggled", manifest=smuggled))
    (tmp_path / "junk").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a sveta model file"):
        import_model(other, tmp_path / "junk")
    assert not model_dir(other, "catalog").exists()  # nothing refused was installed


def test_cli_export_and_import(trained: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "m.sveta-model"
    _common.set_settings(trained)
    try:
        exported = runner.invoke(app, ["model", "export", "catalog", str(out), "--json"])
        assert exported.exit_code == 0, exported.output
        assert json.loads(exported.output.strip().splitlines()[-1])["name"] == "catalog"
        _common.set_settings(_home(tmp_path))
        imported = runner.invoke(app, ["model", "import", str(out), "--json"])
        assert imported.exit_code == 0, imported.output
        again = runner.invoke(app, ["model", "import", str(out)])
        assert again.exit_code != 0 and "exists" in again.output and "Traceback" not in again.output
        missing = runner.invoke(app, ["model", "export", "nothing", str(tmp_path / "x")])
        assert missing.exit_code != 0 and "no trained model named 'nothing'" in missing.output
    finally:
        _common.set_settings(Settings())


def test_arrays_survive_the_trip(trained: Settings, exported: Path, tmp_path: Path) -> None:
    other = _home(tmp_path)
    import_model(other, exported)
    with np.load(model_dir(trained) / "model.npz") as a, np.load(model_dir(other) / "model.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


@pytest.mark.slow  # two training runs; the full suite (CI) runs it
def test_training_twice_gives_the_same_model(trained: Settings, tmp_path: Path) -> None:
    """Seeded, with the thread count fixed: the same catalog and settings give the same weights and metrics."""
    again = trained.model_copy(update={"data_dir": tmp_path / "again", "database_url": trained.catalog_url})
    catalog = open_catalog(again.catalog_url)
    try:
        train_catalog(catalog, again, text=False)
    finally:
        catalog.engine.dispose()
    first, second = (json.loads((model_dir(s) / "card.json").read_text()) for s in (trained, again))
    assert {k: round(v, 4) for k, v in first["metrics"].items()} == {
        k: round(v, 4) for k, v in second["metrics"].items()
    }
    assert first["model_id"] != second["model_id"]  # each training is still a model of its own
    with np.load(model_dir(trained) / "model.npz") as a, np.load(model_dir(again) / "model.npz") as b:
        weights = [k for k in a.files if k != "meta"]  # meta holds the card: its model id and time differ
        assert weights and all(np.array_equal(a[k], b[k]) for k in weights)
        meta_a, meta_b = (json.loads(str(m["meta"])) for m in (a, b))
        assert (meta_a["classes"], meta_a["temperatures"]) == (meta_b["classes"], meta_b["temperatures"])
        same = ("labels", "metrics", "recipe", "blocks", "features")
        assert {k: first[k] for k in same} == {k: second[k] for k in same}


def test_train_from_a_model_file(trained: Settings, exported: Path, tmp_path: Path) -> None:
    """A catalog trained from another's model records where it started, and its heads start from those weights."""
    start = load_portable(trained, exported)
    warm = trained.model_copy(update={"data_dir": tmp_path / "warm", "database_url": trained.catalog_url})
    catalog = open_catalog(warm.catalog_url)
    try:
        report = train_catalog(catalog, warm, "warm", text=False, start=start)
    finally:
        catalog.engine.dispose()
    card = json.loads((model_dir(warm, "warm") / "card.json").read_text())
    assert card["started_from"]["model_id"] == _manifest(exported)["model_id"]
    assert report.metrics["sharp/category_wf1"] >= 0.8, report.metrics


def test_warm_start_copies_known_classes_only(trained: Settings, exported: Path) -> None:
    from sveta.learn.train import Recipe, make_net, warm_start

    start = load_portable(trained, exported)
    known = start.classes["category"]
    classes = {"category": [known[1], "Sarees", known[0]]}  # a class the start never saw, in the middle
    net = make_net(start.weights["fc_w"].shape[1], [3], Recipe())
    fresh = net.heads[0].weight[1].detach().numpy().copy()
    warm_start(net, start, classes)
    head = net.heads[0].weight.detach().numpy()
    w = start.weights["head/category/w"]
    assert np.array_equal(head[0], w[1]) and np.array_equal(head[2], w[0])
    assert np.array_equal(head[1], fresh)  # the new class keeps its fresh weights
    assert np.array_equal(net.fc.weight.detach().numpy(), start.weights["fc_w"])


def test_train_from_a_bad_file_is_a_clear_error(trained: Settings, tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 not really")
    _common.set_settings(trained)
    try:
        result = CliRunner().invoke(app, ["train", "--from", str(tmp_path / "junk"), "--no-index"])
    finally:
        _common.set_settings(Settings())
    said = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code != 0 and "not a sveta model file" in said and "Traceback" not in said
