"""INT8 against FP32 EfficientNet-Lite0 in the same run: throughput, P@10 and attribute weighted F1.

    .venv/bin/python benchmarks/make_split.py ../shared/datasets/myntra-small /tmp/split3 --three
    nice -n 10 .venv/bin/python benchmarks/bench_int8.py --split /tmp/split3 --stage choose    # settings, on val
    nice -n 10 .venv/bin/python benchmarks/bench_int8.py --split /tmp/split3 --stage confirm   # F1 + speed, on val
    nice -n 10 .venv/bin/python benchmarks/bench_int8.py --split /tmp/split3 --stage tuned     # tuned:NAME, on val
    nice -n 10 .venv/bin/python benchmarks/bench_int8.py --split /tmp/split3 --stage test      # once, at the end
    nice -n 10 .venv/bin/python benchmarks/bench_int8.py --split /tmp/split3 --stage trained          # on val
    nice -n 10 .venv/bin/python benchmarks/bench_int8.py --split /tmp/split3 --stage trained-test     # once

Every INT8 model is calibrated on photos of the train part only (seeded draw), prepared as the embedder prepares
them. ``choose`` quantises each candidate setting and measures it on val (sharp and thumbnails): P@10 of type,
type + colour and gender (each photo queries every other photo of its part: the gallery is the part less one),
the cosine to the FP32 vector, and the model-alone rate against FP32's, interleaved. The best setting must then be
``sveta.embed.quantize.DEFAULT``; ``confirm`` checks that it is and adds attribute weighted F1 (heads trained on the
train part's features of the same network, sharp + thumbnail-like, as ``sveta eval attributes`` trains) and the end
to end rate (read, decode, prepare, model). ``tuned`` trains the tuned embedding on train (FP32 features, as
``sveta eval attributes`` does) and serves it as ``tuned:NAME`` and as ``tuned-int8:NAME`` (the same heads over the
INT8 network's features): P@10 and weighted F1 on val. ``test`` repeats ``confirm`` and ``tuned`` on test, once.
``trained`` trains the tuned embedding twice on train, on FP32 features and on INT8 features (SVETA_TRAIN_INT8),
each served over its own network: P@10 and weighted F1 on val; ``trained-test`` the
same on test, once. Each stage writes its part of benchmarks/results/int8.json (FP32 and INT8 always in the same run).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from sveta.embed.effnet import EffNetEmbedder
from sveta.embed.pipeline import embed_photos, prepare_photo
from sveta.embed.quantize import DEFAULT, Quantisation
from sveta.learn.labels import STYLES_COLUMNS, Example, examples_from_folder
from sveta.settings import Settings

OUT = Path(__file__).parent / "results" / "int8.json"
CANDIDATES = {
    "qdq-pc-u8-minmax-n200": Quantisation(),
    "qop-pc-u8-minmax-n200": Quantisation(qdq=False),
    "qdq-pc-u8-percentile-n200": Quantisation(method="percentile"),
    "qdq-pc-u8-minmax-n50": Quantisation(photos=50),
    "qdq-pt-u8-minmax-n200": Quantisation(per_channel=False),
}
P10 = {"p10_type": ("category",), "p10_type_colour": ("category", "colour"), "p10_gender": ("gender",)}
SPEED_N = 256  # photos per throughput round (the model alone and end to end)
ROUNDS = 3  # FP32 and INT8 take turns, so load from other processes falls on both


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=Path("/tmp/split3"))
    stages = ("choose", "confirm", "tuned", "test", "trained", "trained-test")
    parser.add_argument("--stage", choices=stages, required=True)
    parser.add_argument("--home", type=Path, default=Path("/tmp/int8-bench"), help="data home (model, caches)")
    args = parser.parse_args()
    settings = Settings(data_dir=args.home)
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    started = time.perf_counter()
    if args.stage == "choose":
        results["val_choose"] = choose(args.split, settings)
    elif args.stage == "tuned":
        results["val_tuned"] = tuned(args.split, "val", settings)
    elif args.stage.startswith("trained"):
        part = "test" if args.stage == "trained-test" else "val"
        if part == "test" and "val_trained" not in results:
            raise SystemExit("run --stage trained first: test is looked at once, after every choice")
        results[f"{part}_trained"] = trained(args.split, part, settings)
    else:
        part = "val" if args.stage == "confirm" else "test"
        if args.stage == "test" and "val_confirm" not in results:
            raise SystemExit("run --stage confirm first: test is looked at once, after every choice")
        results[f"{part}_confirm" if part == "val" else "test"] = confirm(args.split, part, settings)
    results["machine"] = {"cores": os.cpu_count(), "onnx_threads": settings.onnx_threads or os.cpu_count()}
    print(json.dumps(results, indent=2))
    print(f"{time.perf_counter() - started:.0f} s")
    OUT.write_text(json.dumps(results, indent=2) + "\n")


def calibration(split: Path, quant: Quantisation) -> list[Path]:
    """The train photos an INT8 model is calibrated on: a seeded draw, as from a catalog."""
    paths = sorted((split / "train" / "images").glob("*.jpg"))
    return random.Random(quant.seed).sample(paths, quant.photos)


def int8(split: Path, settings: Settings, quant: Quantisation) -> EffNetEmbedder:
    return EffNetEmbedder("effnet-lite0-int8", settings, quant=quant, calibration=calibration(split, quant))


def prepared(embedder: EffNetEmbedder, examples: list[Example], settings: Settings) -> np.ndarray:
    return np.stack([prepare_photo(embedder, e.path, settings) for e in examples])


def choose(split: Path, settings: Settings) -> dict[str, Any]:
    fp32 = EffNetEmbedder("effnet-lite0", settings)
    parts = {name: examples_from_folder(split / name) for name in ("val", "val-thumbs")}
    inputs = {name: prepared(fp32, examples, settings) for name, examples in parts.items()}
    reference = {name: fp32.embed_prepared(list(x)) for name, x in inputs.items()}
    out: dict[str, Any] = {"fp32": _retrieval(parts, reference)}
    for name, quant in CANDIDATES.items():
        started = time.perf_counter()
        model = int8(split, settings, quant)
        built = time.perf_counter() - started
        vectors = {part: model.embed_prepared(list(x)) for part, x in inputs.items()}
        cosine = (vectors["val"] * reference["val"]).sum(axis=1)
        speed = _model_alone(fp32, model, list(inputs["val"][:SPEED_N]))
        out[name] = _retrieval(parts, vectors) | speed | {"quantise_s": round(built, 1)}
        out[name]["cosine_to_fp32"] = {
            "mean": _r(cosine.mean()),
            "p1": _r(np.percentile(cosine, 1)),
            "min": _r(cosine.min()),
        }
        print(name, json.dumps(out[name]))
    return out


def confirm(split: Path, part: str, settings: Settings) -> dict[str, Any]:
    """FP32 against the default INT8 setting on ``part`` (val or test), sharp and thumbnails."""
    fp32 = EffNetEmbedder("effnet-lite0", settings)
    model = int8(split, settings, DEFAULT)
    parts = {name: examples_from_folder(split / name) for name in (part, f"{part}-thumbs")}
    result: dict[str, Any] = {"setting": DEFAULT.tag(), "int8_identity": model.identity}
    for label, embedder in (("fp32", fp32), ("int8", model)):
        vectors = {name: embedder.embed_prepared(list(prepared(embedder, ex, settings))) for name, ex in parts.items()}
        result[label] = _retrieval(parts, vectors) | {
            "attributes": _attributes(split, parts, settings, label == "int8")
        }
    photos = [(i, e.path) for i, e in enumerate(parts[part][:SPEED_N])]
    result["speed"] = _model_alone(fp32, model, list(prepared(fp32, parts[part][:SPEED_N], settings)))
    result["speed"] |= _end_to_end(fp32, model, photos, settings)
    result["delta"] = _delta(result["fp32"], result["int8"])
    if part == "test":
        result["tuned"] = tuned(split, part, settings)
    return result


def tuned(split: Path, part: str, settings: Settings) -> dict[str, Any]:
    """The tuned embedding trained on train (FP32 features), served over FP32 and over INT8 features of ``part``."""
    from sveta.eval.attributes import folder_model
    from sveta.eval.retrieval import evaluate_retrieval
    from sveta.learn.metrics import weighted_f1

    settings = settings.model_copy(update={"train_int8": False})  # trained on FP32 features, served over both
    name, model = folder_model(split / "train", settings)
    out: dict[str, Any] = {"model": name}
    for label, spec in (("fp32", f"tuned:{name}"), ("int8", f"tuned-int8:{name}")):
        row: dict[str, Any] = {"spec": spec}
        for folder in (part, f"{part}-thumbs"):
            found = evaluate_retrieval(split / folder, settings, spec)
            row[folder] = {"gallery": found["n_items"] - 1} | {m: found[m] for m in P10}
            examples = examples_from_folder(split / folder)
            keys, features = features_of_int8(examples, settings, False, label == "int8")
            probs, by_key = model.probabilities(features), {e.key: e for e in examples}
            for attribute, column in STYLES_COLUMNS.items():
                truth = [by_key[k].labels.get(attribute, "") for k in keys]
                guess = [model.classes[attribute][i] for i in probs[attribute].argmax(axis=1)]
                row[folder][f"{column}_wf1"] = _r(weighted_f1(truth, guess))
        out[label] = row
    out["delta"] = {
        f: {m: _r(out["int8"][f][m] - out["fp32"][f][m]) for m in out["fp32"][f]} for f in (part, f"{part}-thumbs")
    }
    return out


def trained(split: Path, part: str, settings: Settings) -> dict[str, Any]:
    """The tuned embedding trained on FP32 features and trained on INT8 features (SVETA_TRAIN_INT8),
    each served over the network it was trained on: P@10 and weighted F1 on ``part``, sharp and thumbnails."""
    from sveta.eval.attributes import folder_model
    from sveta.eval.retrieval import evaluate_retrieval
    from sveta.learn.features import features_of
    from sveta.learn.metrics import weighted_f1

    out: dict[str, Any] = {}
    for label, flag in (("fp32", False), ("int8", True)):
        home = settings.model_copy(update={"train_int8": flag})
        started = time.perf_counter()
        name, model = folder_model(split / "train", home)
        row: dict[str, Any] = {"spec": f"tuned:{name}", "network": model.card.get("backbone") or "FP32"}
        row["train_s"] = _r(time.perf_counter() - started, 1)  # 0 when a run before trained it
        for folder in (part, f"{part}-thumbs"):
            found = evaluate_retrieval(split / folder, home, f"tuned:{name}")
            row[folder] = {"gallery": found["n_items"] - 1} | {m: found[m] for m in P10}
            examples = examples_from_folder(split / folder)
            keys, features = features_of(examples, home, backbone=model.backbone)
            probs, by_key = model.probabilities(features), {e.key: e for e in examples}
            for attribute, column in STYLES_COLUMNS.items():
                truth = [by_key[k].labels.get(attribute, "") for k in keys]
                guess = [model.classes[attribute][i] for i in probs[attribute].argmax(axis=1)]
                row[folder][f"{column}_wf1"] = _r(weighted_f1(truth, guess))
            f1s = [v for k, v in row[folder].items() if k.endswith("_wf1")]
            row[folder]["mean_wf1"] = _r(statistics.mean(f1s))
        out[label] = row
    out["delta"] = {
        f: {m: _r(out["int8"][f][m] - out["fp32"][f][m]) for m in out["fp32"][f]} for f in (part, f"{part}-thumbs")
    }
    return out


def _retrieval(parts: dict[str, list[Example]], vectors: dict[str, np.ndarray]) -> dict[str, Any]:
    """P@10 of each part by exact cosine: every photo queries all the other photos of its part."""
    out: dict[str, Any] = {}
    for name, examples in parts.items():
        scores = vectors[name] @ vectors[name].T
        np.fill_diagonal(scores, -np.inf)
        top = np.argsort(-scores, axis=1)[:, :10]
        row: dict[str, Any] = {"gallery": len(examples) - 1, "queries": len(examples)}
        for metric, attrs in P10.items():
            labels = [tuple(e.labels.get(a, "") for a in attrs) for e in examples]
            same = [[labels[j] == labels[i] for j in top[i]] for i in range(len(examples))]
            row[metric] = _r(np.mean(same))
        out[name] = row
    return out


def _attributes(split: Path, parts: dict[str, list[Example]], settings: Settings, quantised: bool) -> dict[str, Any]:
    """Weighted F1 per attribute of heads fitted on the train part's features of the same network."""
    from sveta.learn.metrics import weighted_f1
    from sveta.learn.train import fit

    train = examples_from_folder(split / "train")
    views = [features_of_int8(train, settings, degrade, quantised) for degrade in (False, True)]
    common = set(views[0][0]) & set(views[1][0])
    kept = [e for e in train if e.key in common]
    rows = [np.array([{k: i for i, k in enumerate(keys)}[e.key] for e in kept]) for keys, _ in views]
    model = fit(kept, [f.take(r) for (_, f), r in zip(views, rows, strict=True)], settings)
    out: dict[str, Any] = {"n_train": len(kept)}
    for name, examples in parts.items():
        keys, features = features_of_int8(examples, settings, False, quantised)
        probs, by_key = model.probabilities(features), {e.key: e for e in examples}
        scores = {}
        for attribute, column in STYLES_COLUMNS.items():
            if attribute in probs:
                truth = [by_key[k].labels.get(attribute, "") for k in keys]
                guess = [model.classes[attribute][i] for i in probs[attribute].argmax(axis=1)]
                scores[f"{column}_wf1"] = _r(weighted_f1(truth, guess))
        scores["mean_wf1"] = _r(statistics.mean(scores.values()))
        out[name] = scores
    return out


def features_of_int8(examples: list[Example], settings: Settings, degrade: bool, quantised: bool) -> Any:
    from sveta.learn.features import extract

    return extract([(e.key, e.path, e.sha256) for e in examples], settings, degrade=degrade, int8=quantised)


def _model_alone(fp32: EffNetEmbedder, model: EffNetEmbedder, items: list[np.ndarray]) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"fp32": [], "int8": []}
    fp32.embed_prepared(items[:8]), model.embed_prepared(items[:8])  # warm-up
    for _ in range(ROUNDS):
        for label, embedder in (("fp32", fp32), ("int8", model)):
            started = time.perf_counter()
            embedder.embed_prepared(items)
            rates[label].append(len(items) / (time.perf_counter() - started))
    fp, q = statistics.median(rates["fp32"]), statistics.median(rates["int8"])
    return {"model_alone_fp32_per_s": _r(fp, 1), "model_alone_int8_per_s": _r(q, 1), "model_alone_ratio": _r(q / fp, 3)}


def _end_to_end(fp32: EffNetEmbedder, model: EffNetEmbedder, photos: list[Any], settings: Settings) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(ROUNDS):
        for label, embedder in (("fp32", fp32), ("int8", model)):
            started = time.perf_counter()
            done = sum(len(batch.ids) for batch in embed_photos(embedder, photos, settings))
            rates[label].append(done / (time.perf_counter() - started))
    fp, q = statistics.median(rates["fp32"]), statistics.median(rates["int8"])
    return {"end_to_end_fp32_per_s": _r(fp, 1), "end_to_end_int8_per_s": _r(q, 1), "end_to_end_ratio": _r(q / fp, 3)}


def _delta(fp32: dict[str, Any], int8: dict[str, Any]) -> dict[str, Any]:
    """INT8 less FP32 for every P@10 and weighted F1 (negative: INT8 is worse)."""
    out: dict[str, Any] = {}
    for part, row in fp32.items():
        if part == "attributes":
            continue
        out[part] = {m: _r(int8[part][m] - row[m]) for m in P10}
        f1, f1_q = fp32["attributes"][part], int8["attributes"][part]
        out[part] |= {m: _r(f1_q[m] - f1[m]) for m in f1}
    return out


def _r(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


if __name__ == "__main__":
    main()
