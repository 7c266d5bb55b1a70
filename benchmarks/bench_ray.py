"""In-process `embed_photos` against Ray Data with local workers, in the same run: photos a second, max |diff|.

    .venv/bin/python benchmarks/bench_ray.py --n 9583 --workers 2     # the whole demo catalog, ~3 min on 2 cores

The Ray time counts starting the actors, Parquet shards written and read back; starting Ray itself is reported
apart (`ray_init_s`) and in `ray_total_photos_per_s`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

from sveta.embed.base import get_embedder
from sveta.embed.pipeline import embed_photos
from sveta.ops.ray_batch import connect, embed_with_ray
from sveta.settings import Settings

RESULTS = Path(__file__).parent / "results"
SPEC = "effnet-lite0"


def in_process(items: list[tuple[int, Path]], settings: Settings) -> tuple[float, dict[int, np.ndarray]]:
    embedder = get_embedder(SPEC, settings)
    started = time.perf_counter()
    vectors: dict[int, np.ndarray] = {}
    for batch in embed_photos(embedder, items, settings):
        vectors.update(zip(batch.ids, batch.vectors, strict=True))
    return time.perf_counter() - started, vectors


def with_ray(
    items: list[tuple[int, Path]], settings: Settings, workers: int
) -> tuple[float, float, list[int], np.ndarray]:
    started = time.perf_counter()
    connect(None, workers)
    init = time.perf_counter() - started
    started = time.perf_counter()
    ids, vectors, _ = embed_with_ray(items, SPEC, settings, None, workers, settings.data_dir / "shards")
    seconds = time.perf_counter() - started
    ray.shutdown()
    return init, seconds, ids, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="photos embedded by each")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors (and local Ray CPUs)")
    parser.add_argument("--photos", type=Path, default=Path("../shared/datasets/myntra-small/images"))
    parser.add_argument("--models", type=Path, default=Path("/tmp/demo-full/models"), help="an exported ONNX")
    parser.add_argument("--out", type=Path, default=RESULTS / "ray.json")
    args = parser.parse_args()
    items = [(int(p.stem), p) for p in sorted(args.photos.glob("*.jpg"))[: args.n]]
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(data_dir=Path(home))
        if (args.models / "effnet-lite0-u8-mid.onnx").is_file():
            shutil.copytree(args.models, settings.models_dir, ignore=shutil.ignore_patterns("tuned", "outfits"))
        get_embedder(SPEC, settings)  # the ONNX export, if any, is not timed
        local_s, local = in_process(items, settings)
        init_s, ray_s, ids, vectors = with_ray(items, settings, args.workers)
    diff = float(np.abs(vectors - np.stack([local[i] for i in ids])).max())
    result = {
        "embedder": SPEC,
        "photos": len(items),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "ray": ray.__version__,
        "ray_workers": args.workers,
        "in_process_s": round(local_s, 2),
        "in_process_photos_per_s": round(len(items) / local_s, 1),
        "ray_init_s": round(init_s, 2),
        "ray_s": round(ray_s, 2),
        "ray_photos_per_s": round(len(items) / ray_s, 1),
        "ray_total_photos_per_s": round(len(items) / (init_s + ray_s), 1),
        "ids_equal": ids == sorted(local),
        "max_abs_diff": diff,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
