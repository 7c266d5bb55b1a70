"""The weak labels (sveta.learn.weak_labels) against a hand-checked sample, their coverage, MediaPipe's ms per photo.

    python benchmarks/weak_labels_check.py             # accuracy of today's weak labels on the hand-checked sample
    python benchmarks/weak_labels_check.py --write     # ... and write them (weak, accuracy, n) into the results file
    python benchmarks/weak_labels_check.py --coverage  # weak labels per category over the whole demo catalog
    python benchmarks/weak_labels_check.py --time 200  # ms per photo: MediaPipe pose, then the pixel rules

The sample lives in benchmarks/results/weak-labels-check.json: per attribute, entries {"id", "category", "weak",
"hand"}, where "hand" is what a person saw in the photo (null: could not tell). Weak labels are cached in the data
home (SVETA_DATA_DIR), so only the first run pays for MediaPipe.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from PIL import Image

from sveta.learn.labels import Example, examples_from_folder
from sveta.learn.weak_labels import LENGTH, SLEEVE, applicable, person_labels, weak_labels
from sveta.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "weak-labels-check.json"
ATTRIBUTES = (SLEEVE, LENGTH)


def demo_examples(settings: Settings) -> list[Example]:
    if settings.shared_dir is None:
        raise SystemExit("no ../shared folder: set SVETA_SHARED_DIR")
    return examples_from_folder(settings.shared_dir / "datasets" / "myntra-small")


def accuracy(sample: dict[str, Any], weak: dict[int, dict[str, str]]) -> dict[str, Any]:
    """Per attribute: the share of the weak labels (today's) that the hand agrees with, overall and per weak class."""
    out: dict[str, Any] = {"accuracy": {}, "n": {}, "abstained": {}, "by_class": {}}
    for attribute in ATTRIBUTES:
        entries = sample.get(attribute, [])
        for entry in entries:
            entry["weak"] = weak.get(entry["id"], {}).get(attribute)
        judged = [e for e in entries if e["weak"] and e.get("hand")]
        right = [e for e in judged if e["weak"] == e["hand"]]
        out["n"][attribute] = len(judged)
        out["abstained"][attribute] = sum(1 for e in entries if not e["weak"])
        out["accuracy"][attribute] = round(len(right) / len(judged), 3) if judged else None
        classes: dict[str, list[bool]] = defaultdict(list)
        for entry in judged:
            classes[entry["weak"]].append(entry["weak"] == entry["hand"])
        out["by_class"][attribute] = {k: f"{sum(v)}/{len(v)}" for k, v in sorted(classes.items())}
    return out


def coverage(examples: list[Example], weak: dict[int, dict[str, str]]) -> dict[str, Any]:
    """Per attribute and category: how many items take it, and how many got each weak value."""
    table: dict[str, dict[str, Counter[str]]] = {a: defaultdict(Counter) for a in ATTRIBUTES}
    for example in examples:
        category = example.labels.get("category", "")
        for attribute in applicable(category):
            table[attribute][category]["items"] += 1
            table[attribute][category][weak.get(example.key, {}).get(attribute, "abstained")] += 1
    out: dict[str, Any] = {"items": len(examples)}
    for attribute, per_category in table.items():
        labelled = sum(c["items"] - c["abstained"] for c in per_category.values())
        out[attribute] = {"labelled": labelled, "by_category": {k: dict(v) for k, v in sorted(per_category.items())}}
    return out


def timing(examples: list[Example], photos: int) -> dict[str, Any]:
    """Mean ms per photo of MediaPipe's pose (model loaded) and of the pixel rules, on a seeded sample."""
    from sveta.images.body_cover import lab_pixels
    from sveta.images.people import PoseFinder

    chosen = [e for e in examples if applicable(e.labels.get("category", ""))]
    chosen = random.Random(0).sample(chosen, min(photos, len(chosen)))
    finder = PoseFinder()
    pose = rules = 0.0
    for example in chosen:
        image = Image.open(example.path).convert("RGB")
        start = time.perf_counter()
        people = finder.find(image, max_people=1)
        middle = time.perf_counter()
        if people:
            person_labels(people[0], lab_pixels(image))
        pose, rules = pose + middle - start, rules + time.perf_counter() - middle
    n = len(chosen)
    return {"photos": n, "pose_ms": round(1000 * pose / n, 1), "rules_ms": round(1000 * rules / n, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write today's weak labels and accuracy into the file")
    parser.add_argument("--coverage", action="store_true", help="count weak labels over the whole demo catalog")
    parser.add_argument("--time", type=int, default=0, metavar="N", help="time MediaPipe and the rules on N photos")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    settings = Settings()
    examples = demo_examples(settings)
    sample = json.loads(args.results.read_text())
    ids = {e["id"] for a in ATTRIBUTES for e in sample.get(a, [])}
    todo = examples if args.coverage else [e for e in examples if e.key in ids]
    weak = weak_labels(todo, settings)
    sample |= accuracy(sample, weak)
    report = {k: sample[k] for k in ("accuracy", "n", "abstained", "by_class")}
    if args.coverage:
        sample["coverage"] = coverage(examples, weak)
        report["coverage"] = {a: sample["coverage"][a]["labelled"] for a in ATTRIBUTES}
    if args.time:
        sample["timing"] = report["timing"] = timing(examples, args.time)
    print(json.dumps(report, indent=1))
    if args.write:
        args.results.write_text(json.dumps(sample, indent=1) + "\n")


if __name__ == "__main__":
    main()
