"""Embedding throughput: end to end (read, decode, prepare, model) against the model alone, in the same run.

    .venv/bin/python benchmarks/bench_embed.py [--embedder effnet-lite0+colour] [--n 1024]

Prints a table and writes benchmarks/results/embed-<embedder>.json. The model-alone rate runs `embed_prepared` on inputs
prepared beforehand (ready tensors); the end-to-end rate runs `embed_photos`, which decodes and prepares in worker
threads while the model runs. The brief asks for end to end >= 0.9 x model alone.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from sveta.embed.base import get_embedder
from sveta.embed.pipeline import embed_photos, prepare_photo
from sveta.settings import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "myntra-small" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="effnet-lite0+colour")
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--images", type=Path, default=SHARED)
    args = parser.parse_args()
    settings = Settings()
    embedder = get_embedder(args.embedder, settings)
    paths = sorted(args.images.glob("*.jpg"))[: args.n]
    items = [(i, p) for i, p in enumerate(paths)]
    embedder.embed_prepared([prepare_photo(embedder, paths[0], settings)] * 8)  # warm-up: load and first run

    prepared = [prepare_photo(embedder, p, settings) for p in paths]
    model_rate = _rate(lambda: _model_alone(embedder, prepared, settings.embed_batch_size), len(paths))
    e2e_rate = _rate(lambda: sum(len(b.ids) for b in embed_photos(embedder, items, settings)), len(paths))
    result = {
        "embedder": args.embedder,
        "images": len(paths),
        "cores": os.cpu_count(),
        "batch_size": settings.embed_batch_size,
        "workers": settings.embed_workers,
        "model_alone_per_s": round(model_rate, 1),
        "end_to_end_per_s": round(e2e_rate, 1),
        "ratio": round(e2e_rate / model_rate, 3),
    }
    print(f"{'embedder':24} {'images':>7} {'model alone/s':>14} {'end to end/s':>13} {'ratio':>6}")
    print(f"{args.embedder:24} {len(paths):7d} {model_rate:14.1f} {e2e_rate:13.1f} {result['ratio']:6.3f}")
    out = Path(__file__).parent / "results" / f"embed-{args.embedder.replace('+', '_').replace(':', '_')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


def _model_alone(embedder, prepared, batch):  # type: ignore[no-untyped-def]
    return sum(len(embedder.embed_prepared(prepared[i : i + batch])) for i in range(0, len(prepared), batch))


def _rate(run, n: int) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    run()
    return n / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
