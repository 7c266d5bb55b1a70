"""A large JPEG to the model's square: decoded in full, or at a DCT scale of at least twice the square's side.

    .venv/bin/python benchmarks/bench_decode.py       # ~1 min; writes benchmarks/results/decode.json

The photos are the two real uploads of ../shared/fixtures/photos (1086x1448 and 1122x1402, what a phone or a shop
sends) and 100 catalog photos enlarged 6x (224 -> 1344 px, re-encoded at quality 90). Each is prepared both ways in one
process, alternately, and embedded by effnet-lite0: the milliseconds to the prepared square (median per photo), and
the cosine between the two ways' vectors (1.0: the same vector).
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sveta.embed.base import get_embedder
from sveta.images.prepare import load_image, standardise
from sveta.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OUT = Path(__file__).parent / "results" / "decode.json"
REPEATS = 5


def _enlarged(path: Path, factor: int = 6) -> bytes:
    img = Image.open(path).convert("RGB")
    out = io.BytesIO()
    img.resize((img.width * factor, img.height * factor), Image.Resampling.BICUBIC).save(out, "JPEG", quality=90)
    return out.getvalue()


def _prepared(data: bytes, size: int, at_least: int | None) -> tuple[float, Image.Image]:
    started = time.perf_counter()
    square = standardise(load_image(data, max_pixels=100_000_000, at_least=at_least), size)
    return 1000 * (time.perf_counter() - started), square


def _compare(photos: list[bytes], embedder: Any, size: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"full": [], "draft": []}
    cosines = []
    for data in photos:
        runs: dict[str, list[float]] = {"full": [], "draft": []}
        squares: dict[str, Image.Image] = {}
        for _ in range(REPEATS):  # alternated: a slow second falls on both
            for way, at_least in (("full", None), ("draft", 2 * size)):
                ms, squares[way] = _prepared(data, size, at_least)
                runs[way].append(ms)
        for way in times:
            times[way].append(float(np.median(runs[way])))
        vectors = embedder.embed_prepared([embedder.prepare(squares[w]) for w in ("full", "draft")])
        cosines.append(float(vectors[0] @ vectors[1]))
    full, draft = float(np.median(times["full"])), float(np.median(times["draft"]))
    return {
        "photos": len(photos),
        "full_ms": round(full, 2),
        "draft_ms": round(draft, 2),
        "speedup": round(full / draft, 2),
        "cosine_min": round(min(cosines), 4),
        "cosine_mean": round(float(np.mean(cosines)), 4),
    }


def main() -> None:
    settings = Settings()
    embedder = get_embedder("effnet-lite0", settings)
    uploads = [p.read_bytes() for p in sorted((SHARED / "fixtures" / "photos").glob("*.jpg"))]
    catalog = sorted((SHARED / "datasets" / "myntra-small" / "images").glob("*.jpg"))[::95][:100]
    result = {
        "uploads": _compare(uploads, embedder, settings.image_size),
        "catalog_enlarged_6x": _compare([_enlarged(p) for p in catalog], embedder, settings.image_size),
    }
    for name, row in result.items():
        print(name, row, file=sys.stderr)
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
