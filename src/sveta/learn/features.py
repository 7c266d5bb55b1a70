"""What the learned models see of a photo: CNN pooled + mid-level features and two colour descriptors, cached."""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.embed.base import l2_normalise
from sveta.embed.effnet import DIM, EffNetEmbedder
from sveta.embed.quantize import SUFFIX, int8_unfit
from sveta.errors import ConfigError
from sveta.images.colour import HIST_DIM, PROFILE_DIM, colour_histogram, colour_profile
from sveta.progress import Advance, StageProgress

if TYPE_CHECKING:
    from PIL import Image

    from sveta.learn.labels import Example
    from sveta.progress import StageProgress
    from sveta.settings import Settings

BASE = "effnet-lite0"
MID_DIM = 112 + 192 + 320
BLOCKS = {"pooled": DIM, "mid": MID_DIM, "colour": HIST_DIM, "profile": PROFILE_DIM}
VERSION = "features-v1"  # bump when any block changes: cached features are keyed by it


@dataclass(slots=True)
class Features:
    """Row-aligned feature blocks: pooled / mid / colour unit-norm rows, profile = histogram + quantiles."""

    pooled: np.ndarray
    mid: np.ndarray
    colour: np.ndarray
    profile: np.ndarray

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> Features:
        edges = np.cumsum([0, *BLOCKS.values()])
        return cls(*(matrix[:, a:b] for a, b in itertools.pairwise(edges)))

    def matrix(self, blocks: Sequence[str] = tuple(BLOCKS)) -> np.ndarray:
        return np.hstack([getattr(self, b) for b in blocks]).astype(np.float32)

    def take(self, rows: np.ndarray) -> Features:
        return Features(self.pooled[rows], self.mid[rows], self.colour[rows], self.profile[rows])


@dataclass(frozen=True)
class Backbone:
    """A model's own copy of the CNN (fine-tuned, or quantised to INT8): its ONNX file and that file's SHA-256."""

    path: Path
    sha256: str
    int8: bool = False  # quantised: it runs accurately only where ``sveta.embed.quantize.int8_unfit`` allows


def features_spec(backbone: Backbone | None = None, int8: str = "") -> str:
    """What names a photo's features in the cache: the feature version and the network that made them.

    ``int8``: the checksum of the quantised network when the features come from its INT8 copy.
    """
    return f"{VERSION}:{BASE}" + (f":ft-{backbone.sha256[:16]}" if backbone else "") + (f":int8-{int8}" if int8 else "")


class FeatureExtractor:
    """An ImageEmbedder-shaped extractor (so ``embed_cached`` caches it); ``degrade`` imitates thumbnails.

    Rows are the concatenated blocks, not one unit vector: this is not a search embedder.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        degrade: bool = False,
        augment: str | None = None,
        backbone: Backbone | None = None,
        int8: bool = False,
    ) -> None:
        """``augment``: a name in AUGMENTATIONS (``degrade`` is "thumb"); ``backbone``: a fine-tuned network;
        ``int8``: run the network quantised (``sveta.embed.quantize``), its features cached apart from FP32's."""
        if backbone is not None and backbone.int8 and (unfit := int8_unfit()) is not None:
            # every user of a model's network (search, look, audit, tagging) reads its features through here
            raise ConfigError(
                f"the model's network {backbone.path.name} is INT8, which would lose accuracy here: {unfit}",
                "train the model again on this machine (sveta train): training here stays on FP32",
            )
        self.cnn = EffNetEmbedder(BASE + (SUFFIX if int8 else ""), settings, backbone.path if backbone else None)
        self.augment = "thumb" if degrade else augment
        quantised = self.cnn.identity.partition("@")[2] if int8 else ""
        self.spec = features_spec(backbone, quantised) + (f":{self.augment}" if self.augment else "")
        self.dim = sum(BLOCKS.values())

    def prepare(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.augment:
            image = AUGMENTATIONS[self.augment](image)
        return self.cnn.prepare(image), colour_histogram(image), colour_profile(image)

    def embed_prepared(self, items: Sequence[Any]) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dim), np.float32)
        pooled, mid = self.cnn.embed_with_mid([item[0] for item in items])
        colour = np.stack([item[1] for item in items])
        profile = np.stack([item[2] for item in items])
        return np.hstack([l2_normalise(pooled), l2_normalise(mid), colour, profile]).astype(np.float32)


def extract(
    items: Sequence[tuple[int, Path, str | None]],
    settings: Settings,
    *,
    degrade: bool = False,
    on_progress: Advance | None = None,
    backbone: Backbone | None = None,
    int8: bool = False,
) -> tuple[list[int], Features]:
    """Features of (key, photo, sha256 or None) items, cached in the data home; unreadable photos are left out."""
    from sveta.embed.pipeline import embed_cached

    extractor = FeatureExtractor(settings, degrade=degrade, backbone=backbone, int8=int8)
    ids, matrix, _failures = embed_cached(extractor, items, settings, on_progress)
    return ids, Features.from_matrix(matrix)


def features_of(
    examples: Sequence[Example],
    settings: Settings,
    degrade: bool = False,
    on_progress: StageProgress | None = None,
    backbone: Backbone | None = None,
) -> tuple[list[int], Features]:
    """``extract`` for training examples, reporting (stage, done, total) to a staged progress bar."""
    label = "features (thumbnail-like)" if degrade else "features"
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if on_progress:
            on_progress(label, done[0], len(examples))

    items = [(e.key, e.path, e.sha256) for e in examples]
    return extract(items, settings, degrade=degrade, on_progress=advance, backbone=backbone)


def thumbnail_like(image: Image.Image) -> Image.Image:
    """A catalog thumbnail's look, for training on any catalog: squashed a little, ~70 px, JPEG, scaled back up.

    Seeded by the pixels, so a photo always degrades the same way (and its cached features stay valid).
    """
    from PIL import Image as PILImage

    rng = np.random.default_rng(int.from_bytes(hashlib.sha1(image.tobytes()).digest()[:8], "little"))
    width, height = image.size
    keep = round(width * rng.uniform(0.72, 1.0))  # thumbs are 3:4 shown square: less side padding
    image = image.crop(((width - keep) // 2, 0, (width - keep) // 2 + keep, height))
    small_h = int(rng.integers(60, 91))
    small = image.resize((round(small_h * rng.uniform(0.7, 0.8)), small_h), PILImage.Resampling.BICUBIC)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=int(rng.integers(60, 91)))
    with PILImage.open(io.BytesIO(buffer.getvalue())) as jpeg:
        return jpeg.convert("RGB").resize((width, height), PILImage.Resampling.BICUBIC)


def mirrored(image: Image.Image) -> Image.Image:
    """A mirrored, slightly cropped copy with brightness and contrast jitter that never shifts hue.

    Seeded by the pixels like ``thumbnail_like``. Hue is what a colour label names, so only the lightness and
    spread of every channel change together (one factor for all three).
    """
    from PIL import Image as PILImage
    from PIL import ImageEnhance

    rng = np.random.default_rng(int.from_bytes(hashlib.sha1(image.tobytes()).digest()[8:16], "little"))
    width, height = image.size
    keep = rng.uniform(0.85, 1.0)
    w, h = round(width * keep), round(height * keep)
    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    image = image.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT).crop((x, y, x + w, y + h))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.85, 1.15))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.85, 1.15))
    return image.resize((width, height), PILImage.Resampling.BICUBIC)


AUGMENTATIONS = {"thumb": thumbnail_like, "mirror": mirrored}  # the cached views training may add
