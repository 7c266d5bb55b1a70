"""`sveta train --finetune`: the CNN's last stages trained with the heads on cached inputs, then exported to ONNX."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta._optional import require
from sveta.learn.features import BASE, BLOCKS, Backbone, Features, features_spec
from sveta.learn.heads import AttributeModel
from sveta.learn.labels import Example, stable_share
from sveta.learn.train import Recipe, calibrate, calibration_split, fit, label_matrix, torch_threads
from sveta.progress import StageProgress

if TYPE_CHECKING:
    from sveta.learn.backbone import CutExtractor
    from sveta.learn.finetune_net import FineTuneNet, Tail
    from sveta.settings import Settings

ALL_STAGES = 7  # EfficientNet-Lite0's stages: with the stem, the whole network


@dataclass(frozen=True)
class FineTune:
    """How the backbone is fine-tuned: ``stages`` last stages (None: 1 on CPU, all on a GPU), epochs, learning rates."""

    stages: int | None = None
    epochs: int = 3
    lr: float = 1e-3  # the heads, which start from the frozen recipe's
    backbone_lr: float = 3e-3
    batch: int = 128
    device: str | None = None  # None: cuda when torch sees a GPU, else cpu
    augment: tuple[str, ...] = ("thumb",)  # views cached beside the sharp one, for a share of the photos

    def resolved(self) -> tuple[str, int]:
        import torch

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        return device, self.stages or (1 if device == "cpu" else ALL_STAGES)


@dataclass
class Block:
    """One view's cached network inputs: the augmentation (None: the photo as it is), whose rows, the rows."""

    augment: str | None
    keys: list[int]
    shas: list[str]
    rows: np.ndarray


@dataclass
class FineTuned:
    frozen: AttributeModel  # the frozen recipe on the same photos: the baseline the tuned model must beat
    tuned: AttributeModel
    backbone: Backbone
    kept: list[Example]  # the examples whose photos could be read, row-aligned with the views
    views: dict[str, list[Features]]  # "frozen" / "tuned": each model's training views (sharp, augmented)


def fine_tune(
    examples: Sequence[Example],
    settings: Settings,
    folder: Path,
    ft: FineTune = FineTune(),
    also: Sequence[tuple[Sequence[Example], str | None]] = (),
    on_progress: StageProgress | None = None,
    recipe: Recipe = Recipe(),
    share: float | None = None,
    start: AttributeModel | None = None,
) -> FineTuned:
    """Fit the frozen recipe, then fine-tune it with the CNN's last stages; export the network into ``folder``.

    ``also``: (examples, augmentation) pairs (e.g. a held-out part) whose features both models will need: they are
    computed from the same cached inputs and put in the feature cache, so no photo goes through the CNN twice.
    ``share``: of the photos, those also seen through each augmentation (default SVETA_TRAIN_THUMBNAIL_SHARE).
    """
    require("torch", "train")
    started = time.perf_counter()
    device, stages = ft.resolved()
    from sveta.learn.backbone import CutExtractor

    extractor = CutExtractor(settings, stages)
    share = settings.train_thumbnail_share if share is None else share
    views = [_block(examples, None, extractor, settings, on_progress)]
    for name in ft.augment:
        chosen = [e for e in examples if stable_share(e.key, f"ft-{name}") < share]
        views.append(_block(chosen, name, extractor, settings, on_progress))
    extra = [_block(more, name, extractor, settings, on_progress) for more, name in also]
    with torch_threads(settings):
        result = _fine_tune(
            examples, views, extra, extractor, settings, folder, ft, (device, stages), on_progress, start
        )
    result.tuned.card["backbone"]["total_seconds"] = round(time.perf_counter() - started, 1)
    return result


def _fine_tune(
    examples: Sequence[Example],
    views: list[Block],
    extra: list[Block],
    extractor: CutExtractor,
    settings: Settings,
    folder: Path,
    ft: FineTune,
    where: tuple[str, int],
    on_progress: StageProgress | None,
    start_model: AttributeModel | None = None,
    recipe: Recipe = Recipe(),
) -> FineTuned:
    import torch

    from sveta.embed.effnet import load_torch_features
    from sveta.learn.finetune_net import Tail, first_trained_block

    torch.manual_seed(recipe.seed)
    network = load_torch_features(BASE).to(where[0])
    start = first_trained_block(network, where[1])
    tail = Tail(network, start, whole=where[1] == ALL_STAGES)
    kept = [e for e in examples if e.key in set(views[0].keys)]
    before = [features_from(tail, extractor, b.rows, where[0]) for b in [*views, *extra]]
    on_epoch = _stage(on_progress, "training heads")
    frozen = fit(kept, _aligned(kept, views, before[: len(views)]), settings, recipe, on_epoch, start_model)
    began = time.perf_counter()
    net = _train_jointly(tail, frozen, kept, views, extractor, ft, where[0], recipe, on_progress)
    after = [features_from(tail, extractor, b.rows, where[0]) for b in [*views, *extra]]
    tuned = _tuned_model(net, frozen, kept, _aligned(kept, views, after[: len(views)]), recipe)
    seconds = time.perf_counter() - began
    backbone, gap = _export(network.cpu(), folder, kept[:8], settings)
    for block, old, new in zip([*views, *extra], before, after, strict=True):
        suffix = f":{block.augment}" if block.augment else ""
        _put(settings, features_spec() + suffix, block.shas, old)
        _put(settings, features_spec(backbone) + suffix, block.shas, new)
    tuned.backbone = backbone
    tuned.card["backbone"] = _card(backbone, network, start, where, ft, gap, seconds)
    views_of = {k: _aligned(kept, views, m[: len(views)]) for k, m in (("frozen", before), ("tuned", after))}
    return FineTuned(frozen, tuned, backbone, kept, views_of)


def _card(
    backbone: Backbone, network: Any, start: int, where: tuple[str, int], ft: FineTune, gap: float, seconds: float
) -> dict[str, Any]:
    whole = where[1] == ALL_STAGES
    return {
        "file": backbone.path.name,
        "sha256": backbone.sha256,
        "base": BASE,
        "stages": where[1],
        "trained": ("stem, " if whole else "") + f"blocks {start}-{len(network._blocks) - 1}, head conv + BN",
        "device": where[0],
        "epochs": ft.epochs,
        "lr": {"heads": ft.lr, "backbone": ft.backbone_lr},
        "views": ["sharp", *ft.augment],
        "onnx_check_max_diff": round(gap, 7),
        "seconds": round(seconds, 1),
    }


def _block(
    examples: Sequence[Example],
    augment: str | None,
    extractor: CutExtractor,
    settings: Settings,
    on_progress: StageProgress | None,
) -> Block:
    from sveta.embed.pipeline import embed_cached, file_sha256
    from sveta.learn.backbone import CutExtractor

    label = f"network inputs ({augment or 'sharp'})"
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if on_progress:
            on_progress(label, done[0], len(examples))

    items = [(e.key, e.path, e.sha256 or file_sha256(e.path)) for e in examples]
    view = CutExtractor(settings, extractor.stages, augment) if augment else extractor
    ids, matrix, _ = embed_cached(view, items, settings, advance)
    sha = {key: digest for key, _, digest in items}
    return Block(augment, ids, [str(sha[k]) for k in ids], matrix)


def features_from(tail: Tail, extractor: CutExtractor, rows: np.ndarray, device: str = "cpu") -> np.ndarray:
    """The learning features (Features' matrix layout) of cached rows through ``tail``."""
    import torch

    from sveta.embed.base import l2_normalise

    out = []
    tail.eval()
    with torch.no_grad():
        for chunk in range(0, len(rows), 256):
            prefix, colour, cut = extractor.split(rows[chunk : chunk + 256])
            pooled, mid = tail(torch.from_numpy(np.ascontiguousarray(cut)).to(device))
            mid_all = np.hstack([prefix, mid.cpu().numpy()])
            out.append(np.hstack([l2_normalise(pooled.cpu().numpy()), l2_normalise(mid_all), colour]))
    return np.vstack(out).astype(np.float32) if out else np.zeros((0, sum(BLOCKS.values())), np.float32)


def _aligned(kept: Sequence[Example], views: list[Block], matrices: list[np.ndarray]) -> list[Features]:
    """The frozen recipe's two views: every photo sharp, and the same with the augmented copies swapped in."""
    position = {k: i for i, k in enumerate(views[0].keys)}
    sharp = matrices[0][[position[e.key] for e in kept]]
    mixed = sharp.copy()
    mine = {e.key: i for i, e in enumerate(kept)}
    for block, matrix in zip(views[1:], matrices[1:], strict=False):
        pairs = [(mine[k], j) for j, k in enumerate(block.keys) if k in mine]
        mixed[[a for a, _ in pairs]] = matrix[[b for _, b in pairs]]
    return [Features.from_matrix(sharp), Features.from_matrix(mixed)]


def _stage(on_progress: StageProgress | None, label: str) -> Any:
    return (lambda done, total: on_progress(label, done, total)) if on_progress else None


def _train_jointly(
    tail: Tail,
    frozen: AttributeModel,
    kept: Sequence[Example],
    views: list[Block],
    extractor: CutExtractor,
    ft: FineTune,
    device: str,
    recipe: Recipe,
    on_progress: StageProgress | None,
) -> FineTuneNet:
    from sveta.learn.finetune_loop import Batches, train_jointly

    labels = label_matrix(kept, frozen.classes)
    _, fit_rows = calibration_split(len(kept), recipe)
    row_of = {kept[i].key: i for i in fit_rows}  # the calibration rows stay unseen, as in the frozen recipe
    y = np.stack([ys for _, ys in labels.values()], 1)
    batches = Batches.of(views, row_of, y, extractor)
    on_epoch = _stage(on_progress, "fine-tuning")
    return train_jointly(tail, frozen, list(labels), batches, ft, device, recipe, on_epoch)


def _tuned_model(
    net: FineTuneNet, frozen: AttributeModel, kept: Sequence[Example], views: list[Features], recipe: Recipe
) -> AttributeModel:
    heads = net.heads
    weights = {"mu": frozen.weights["mu"], "sd": frozen.weights["sd"]}
    params = {"fc_w": heads.fc.weight, "fc_b": heads.fc.bias, "emb_w": heads.emb.weight, "emb_b": heads.emb.bias}
    for attribute, head in zip(frozen.classes, heads.heads, strict=True):
        params |= {f"head/{attribute}/w": head.weight, f"head/{attribute}/b": head.bias}
    weights |= {k: v.detach().cpu().numpy().astype(np.float32) for k, v in params.items()}
    model = AttributeModel(weights, dict(frozen.classes), dict(frozen.temperatures), dict(frozen.card))
    held, _ = calibration_split(len(kept), recipe)
    model.temperatures = calibrate(model, views, label_matrix(kept, frozen.classes), held)
    return model


def _export(network: Any, folder: Path, sample: Sequence[Example], settings: Settings) -> tuple[Backbone, float]:
    from sveta.embed.pipeline import prepare_photo
    from sveta.learn.backbone import export_backbone
    from sveta.learn.features import FeatureExtractor

    extractor = FeatureExtractor(settings)
    pixels = np.stack([prepare_photo(extractor, e.path, settings)[0] for e in sample])
    return export_backbone(network.eval(), folder, pixels)


def _put(settings: Settings, spec: str, keys: list[str], rows: np.ndarray) -> None:
    from sveta.embed.cache import EmbeddingCache

    if not keys:
        return
    cache = EmbeddingCache(settings.data_dir / "embeddings", spec, rows.shape[1])
    cache.put(keys, rows)
    cache.save()
