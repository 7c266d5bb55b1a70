"""INT8 EfficientNet-Lite: the FP32 ONNX graph statically quantised by onnxruntime, calibrated on catalog photos."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
import random
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta._optional import require
from sveta.errors import ConfigError

if TYPE_CHECKING:
    from sveta.settings import Settings

SUFFIX = "-int8"  # effnet-lite0-int8 is effnet-lite0's graph, quantised
MIN_PHOTOS = 16  # fewer calibration photos than this give activation ranges of one narrow look
_CALIBRATION_BATCH = 16
_LOCK = threading.Lock()
# x86-64 instructions that add u8 x s8 products in 32 bits; without them onnxruntime's u8s8 kernels add pairs of
# products in 16 bits (vpmaddubsw), which saturate: measured here (AVX2, no VNNI), INT8 vectors fell to a mean
# cosine of 0.88 to FP32's, against 0.99 on a CPU with VNNI. reduce_range (7-bit weights) gave 0.97, u8u8 0.995 at
# a seventh of FP32's speed: neither is worth running instead of FP32.
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class Quantisation:
    """How the graph is quantised: each field is a choice made on the validation part (benchmarks/bench_int8.py)."""

    photos: int = 200  # calibration photos drawn (seeded) from the catalog when the caller names none
    per_channel: bool = True  # one weight scale per output channel (depthwise convs need it)
    qdq: bool = True  # QuantizeLinear/DequantizeLinear pairs (onnxruntime fuses them), else QLinear* operators
    activations: str = "u8"  # u8: asymmetric uint8 activations; s8: symmetric int8
    method: str = "minmax"  # calibration: minmax | percentile | entropy
    optimise: bool = True  # onnxruntime's pre-processing first: folds the dynamic padding the Q/DQ pairs would split
    seed: int = 0

    def tag(self) -> str:
        """The settings in a file name: a change of any of them is another cached model."""
        layout = "qdq" if self.qdq else "qop"
        scale = "pc" if self.per_channel else "pt"
        pre = "" if self.optimise else "-raw"
        return f"{layout}-{scale}-{self.activations}-{self.method}{pre}-n{self.photos}-s{self.seed}"


# Chosen on val (benchmarks/results/int8.json "val_choose"): per-tensor scales lose 0.02 P@10 on thumbnails, the
# per-channel variants tie within 0.002, percentile calibration costs 7x the time for nothing measurable.
DEFAULT = Quantisation()


@functools.cache
def int8_unfit() -> str | None:
    """Why this CPU would run INT8 inaccurately, in words, or None (then INT8 is as close to FP32 as measured)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        cpuinfo = None  # not Linux: its kernels are not known to saturate
    return unfit_reason(platform.machine(), cpuinfo)


def unfit_reason(machine: str, cpuinfo: str | None) -> str | None:
    """``int8_unfit`` for a machine name and a /proc/cpuinfo text (None: unknown, taken as fit)."""
    if machine.lower() not in ("x86_64", "amd64") or cpuinfo is None:
        return None
    lines = re.findall(r"^flags\s*:(.*)$", cpuinfo, re.MULTILINE)  # one per core, alike
    if set(lines[0].split() if lines else ()) & set(VNNI_FLAGS):
        return None
    return (
        "this CPU has no VNNI (AVX512-VNNI, AVX-VNNI or AMX): onnxruntime's INT8 products saturate on it, and INT8 "
        "vectors fall to a cosine of about 0.88 to FP32's"
    )


def base_spec(spec: str) -> str:
    """``effnet-lite0-int8`` -> ``effnet-lite0``; a spec without the suffix is returned as it is."""
    return spec.removesuffix(SUFFIX)


def int8_path(fp32: Path, fp32_sha256: str, quant: Quantisation) -> Path:
    """Beside the FP32 file, named by its checksum and the settings: new weights or settings, a new file."""
    return fp32.with_name(f"{fp32.stem}-int8-{quant.tag()}-{fp32_sha256[:16]}.onnx")


def ensure_int8(
    fp32: Path, fp32_sha256: str, photos: Callable[[], Sequence[np.ndarray]], quant: Quantisation = DEFAULT
) -> Path:
    """The quantised copy of ``fp32``, made once from the prepared calibration ``photos`` and then reused."""
    from sveta.embed.effnet import is_valid

    path = int8_path(fp32, fp32_sha256, quant)
    with _LOCK:
        if not is_valid(path):
            quantise(fp32, path, photos(), quant)
    return path


def quantise(fp32: Path, target: Path, photos: Sequence[np.ndarray], quant: Quantisation) -> None:
    """Write ``target`` atomically (temp file, rename), then its ``.sha256`` sidecar, like the FP32 export."""
    from sveta.embed.effnet import checksum_path, sha256_file, write_atomic

    if len(photos) < MIN_PHOTOS:
        raise ConfigError(
            f"{len(photos)} photos to calibrate the INT8 model on; it needs at least {MIN_PHOTOS}",
            "ingest and fetch the catalog's photos first (sveta ingest, sveta images fetch), or use the FP32 embedder",
        )
    checksum_path(target).unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _quantise_to(fp32, tmp, photos, quant)
        digest = sha256_file(tmp)
        tmp.chmod(0o644)
        os.replace(tmp, target)
        write_atomic(checksum_path(target), f"{digest}  {target.name}\n")
    finally:
        tmp.unlink(missing_ok=True)


def _quantise_to(fp32: Path, target: Path, photos: Sequence[np.ndarray], quant: Quantisation) -> None:
    ort = require("onnxruntime", None)
    require("onnx", "export")  # onnxruntime's quantiser rewrites the graph with it
    from onnxruntime import quantization as q

    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "percentile": q.CalibrationMethod.Percentile,
        "entropy": q.CalibrationMethod.Entropy,
    }
    if quant.method not in methods or quant.activations not in ("u8", "s8"):
        raise ConfigError(f"bad INT8 settings {quant}", "method: minmax|percentile|entropy; activations: u8|s8")
    activation = q.QuantType.QUInt8 if quant.activations == "u8" else q.QuantType.QInt8
    # the quantiser and its sessions log a warning per unused constant: keep the user's terminal clean
    with tempfile.TemporaryDirectory(prefix="sveta-quant-") as scratch, _quiet(ort):
        source = fp32
        if quant.optimise:
            source = Path(scratch) / "optimised.onnx"
            q.quant_pre_process(str(fp32), str(source))
        q.quantize_static(
            str(source),
            str(target),
            # the histogram calibrators stack every batch's tensors: their batches must all be one size
            _Reader(photos, _CALIBRATION_BATCH if quant.method == "minmax" else 1),
            quant_format=q.QuantFormat.QDQ if quant.qdq else q.QuantFormat.QOperator,
            per_channel=quant.per_channel,
            activation_type=activation,
            weight_type=q.QuantType.QInt8,
            calibrate_method=methods[quant.method],
            extra_options={"ActivationSymmetric": quant.activations == "s8"},
            calibration_providers=["CPUExecutionProvider"],
        )


@contextlib.contextmanager
def _quiet(ort: Any) -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    ort.set_default_logger_severity(3)  # errors only
    root.setLevel(logging.ERROR)  # the quantiser warns through the root logger
    try:
        yield
    finally:
        root.setLevel(level)
        ort.set_default_logger_severity(2)


class _Reader:
    """onnxruntime's CalibrationDataReader over prepared photos: uint8 (n, size, size, 3) batches."""

    def __init__(self, photos: Sequence[np.ndarray], size: int) -> None:
        from sveta.embed.effnet import INPUT

        batches = (photos[i : i + size] for i in range(0, len(photos), size))
        self._feeds: Iterator[dict[str, np.ndarray]] = iter([{INPUT: np.stack(b)} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # pragma: no cover - onnxruntime asks only when it calibrates twice
        raise NotImplementedError


def catalog_photos(settings: Settings, count: int, seed: int = 0) -> list[Path]:
    """``count`` photos of the catalog, drawn with ``seed`` from its cached images (none when it has no database)."""
    if settings.database_url is None and not (settings.data_dir / "catalog.db").is_file():
        return []  # no catalog yet: opening one would create an empty database
    from sqlalchemy.exc import SQLAlchemyError

    from sveta.catalog.store import open_catalog

    # no migration: whoever built the catalog migrated it, and an embedder must not change a database
    store = open_catalog(settings.catalog_url, migrate=False, keyword_index=False)
    try:
        paths = sorted({row.local_path for row in store.indexable_images() if row.local_path})
    except SQLAlchemyError:
        return []  # an empty or unreachable database: no photos (the caller says what to do)
    finally:
        store.engine.dispose()
    existing = [Path(p) for p in paths if Path(p).is_file()]
    return random.Random(seed).sample(existing, min(count, len(existing)))


def prepared_photos(prepare: Callable[[Path], np.ndarray], paths: Sequence[Path]) -> list[np.ndarray]:
    """The calibration photos exactly as the embedder sees them; an unreadable one is left out."""
    from sveta.errors import SvetaError

    out = []
    for path in paths:
        try:
            out.append(prepare(path))
        except (SvetaError, OSError):
            continue
    return out
