"""Training epochs against quality: the tuned model fitted for fewer epochs, on val (choices) or test (once).

    .venv/bin/python benchmarks/make_split.py ../shared/datasets/myntra-small /tmp/split3 --three
    nice -n 10 .venv/bin/python benchmarks/bench_recipe.py --split /tmp/split3 --part val --epochs 25,18,12
    nice -n 10 .venv/bin/python benchmarks/bench_recipe.py --split /tmp/split3 --part test --epochs 25,18  # once

The fit is one of the longest steps of the demo build. This fits the model on the train part as `sveta train`
does (sharp features and the thumbnail-like view of SVETA_TRAIN_THUMBNAIL_SHARE of the photos, FP32 network) for
each epoch count, in one process, and measures on the part, sharp and thumbnail-like: P@10 of type, type + colour
and gender by exact cosine (each photo queries the other photos of its part) and weighted F1 of type, colour, gender
and usage. Writes benchmarks/results/recipe.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.bench_int8: the same P@10 as the INT8 comparison

from benchmarks.bench_int8 import _retrieval  # noqa: E402

from sveta.learn.catalog import _views  # noqa: E402
from sveta.learn.features import features_of  # noqa: E402
from sveta.learn.heads import AttributeModel  # noqa: E402
from sveta.learn.labels import STYLES_COLUMNS, Example, examples_from_folder  # noqa: E402
from sveta.learn.metrics import weighted_f1  # noqa: E402
from sveta.learn.train import Recipe, fit  # noqa: E402
from sveta.settings import Settings  # noqa: E402

OUT = Path(__file__).parent / "results" / "recipe.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=Path("/tmp/split3"))
    parser.add_argument("--part", choices=("val", "test"), required=True)
    parser.add_argument("--epochs", default="25,18,12")
    parser.add_argument("--home", type=Path, default=Path("/tmp/int8-bench"), help="data home (feature caches)")
    args = parser.parse_args()
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if args.part == "test" and "val" not in results:
        raise SystemExit("run --part val first: test is looked at once, after every choice")
    settings = Settings(data_dir=args.home)
    train = examples_from_folder(args.split / "train")
    views, kept = _views(train, settings, None)
    parts = {f: examples_from_folder(args.split / f) for f in (args.part, f"{args.part}-thumbs")}
    out: dict[str, Any] = {"n_train": len(kept)}
    for epochs in (int(e) for e in args.epochs.split(",")):
        started = time.perf_counter()
        model = fit(kept, views, settings, replace(Recipe(), epochs=epochs))
        out[f"epochs={epochs}"] = {"fit_s": round(time.perf_counter() - started, 1)} | {
            name: _measure(model, examples, settings) for name, examples in parts.items()
        }
    results[args.part] = out
    print(json.dumps(out, indent=2))
    OUT.write_text(json.dumps(results, indent=2) + "\n")


def _measure(model: AttributeModel, examples: list[Example], settings: Settings) -> dict[str, Any]:
    keys, features = features_of(examples, settings)
    by_key = {e.key: e for e in examples}
    rows = [by_key[k] for k in keys]
    out: dict[str, Any] = _retrieval({"part": rows}, {"part": model.embed(features)})["part"]
    probs = model.probabilities(features)
    for attribute, column in STYLES_COLUMNS.items():
        truth = [e.labels.get(attribute, "") for e in rows]
        guess = [model.classes[attribute][i] for i in probs[attribute].argmax(axis=1)]
        out[f"{column}_wf1"] = round(weighted_f1(truth, guess), 4)
    out["mean_wf1"] = round(statistics.mean(v for k, v in out.items() if k.endswith("_wf1")), 4)
    return out


if __name__ == "__main__":
    main()
