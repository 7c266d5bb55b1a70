"""Garments cut from photos of people, as `sveta look` cuts them: INT8-trained against FP32-trained models.

    .venv/bin/python benchmarks/make_split.py ../shared/datasets/myntra-small /tmp/split3 --three
    nice -n 10 .venv/bin/python benchmarks/bench_int8_crops.py --split /tmp/split3 --part val    # every choice
    nice -n 10 .venv/bin/python benchmarks/bench_int8_crops.py --split /tmp/split3 --part test   # once, at the end

The catalog measurements of bench_int8.py query with whole product photos. `sveta look` queries with a garment cut
from a photo of a person, a different input. Many labelled photos are of a model wearing the item. For each such photo
of the part, this finds the person (MediaPipe pose + mask, as `sveta look` does), cuts the region the item's
category is worn in (a top: upper, a bottom: lower, a dress: full, shoes: feet) as `sveta look` masks it, and asks two
models trained on the train part (``bench_int8.py --stage trained`` trains the same two): on FP32 features and on INT8
features (SVETA_TRAIN_INT8), each over its own network.

- ``category_acc``: the category head's best category among those the region allows (as `sveta look` restricts them)
  is the photo's own.
- ``colour_acc``: the colour head's best colour is the photo's own.
- ``p10_type``: of the 10 nearest product photos of the part (the photo itself left out) among the region's
  categories, the share of the photo's own category (what `sveta look` lists, and the neighbours its votes read).

Writes benchmarks/results/int8_crops.json: both models on the same crops, and the differences. Its first results
were measured on an AVX2-only CPU before sveta refused INT8 there (INT8 products saturate without VNNI: see
``sveta.embed.quantize.int8_unfit``); on such a CPU it now stops, since training would stay FP32 on both sides.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from sveta.embed.quantize import int8_unfit
from sveta.engines.look import REGION_GROUPS, _masked_crop
from sveta.eval.attributes import folder_model
from sveta.images.people import PoseFinder, Region, person_regions
from sveta.images.prepare import load_image, standardise, to_rgb
from sveta.learn.features import FeatureExtractor, Features, features_of
from sveta.learn.heads import AttributeModel
from sveta.learn.labels import Example, examples_from_folder
from sveta.settings import Settings
from sveta.vocab.reading import canonical, category_group

OUT = Path(__file__).parent / "results" / "int8_crops.json"
WHITE = (255, 255, 255)
SLOT = {group: region for region, groups in REGION_GROUPS.items() for group in groups}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=Path("/tmp/split3"))
    parser.add_argument("--part", choices=("val", "test"), required=True)
    parser.add_argument("--home", type=Path, default=Path("/tmp/int8-bench"), help="data home (models, caches)")
    args = parser.parse_args()
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if args.part == "test" and "val" not in results:
        raise SystemExit("run --part val first: test is looked at once, after every choice")
    if (unfit := int8_unfit()) is not None:
        raise SystemExit(f"INT8 is refused on this machine, so both models would be FP32: {unfit}")
    started = time.perf_counter()
    settings = Settings(data_dir=args.home)
    examples = examples_from_folder(args.split / args.part)
    crops = garment_crops(examples, settings)
    results[args.part] = compare(args.split, examples, crops, settings)
    results[args.part]["seconds"] = round(time.perf_counter() - started)
    print(json.dumps(results[args.part], indent=2))
    OUT.write_text(json.dumps(results, indent=2) + "\n")


def garment_crops(examples: list[Example], settings: Settings) -> list[tuple[Example, str, Image.Image]]:
    """(photo, region, crop) for each photo of a worn item where a person is found and the item's region cut."""
    pose, out = PoseFinder(), []
    for example in examples:
        group = category_group(canonical("category", example.labels.get("category", "")) or "")
        region_name = SLOT.get(group or "")
        if region_name is None:
            continue
        image = to_rgb(ImageOps.exif_transpose(load_image(example.path, max_pixels=settings.image_max_pixels)))
        people = pose.find(image, max_people=1)
        regions: list[Region] = person_regions(people[0], image.size) if people else []
        region = next((r for r in regions if r.name == region_name), None)
        if region is not None:
            out.append((example, region_name, _masked_crop(image, region)))
    return out


def compare(
    split: Path, examples: list[Example], crops: list[tuple[Example, str, Image.Image]], settings: Settings
) -> dict[str, Any]:
    out: dict[str, Any] = {"photos": len(examples), "crops": len(crops)}
    out["crops_by_region"] = {r: sum(1 for _, n, _ in crops if n == r) for r in REGION_GROUPS}
    for label, flag in (("fp32", False), ("int8", True)):
        home = settings.model_copy(update={"train_int8": flag})
        name, model = folder_model(split / "train", home)
        out[label] = {"spec": f"tuned:{name}", "network": model.card.get("backbone") or "FP32"}
        out[label] |= _scores(model, examples, crops, home)
    metrics = ("category_acc", "colour_acc", "p10_type")
    out["delta"] = {m: round(out["int8"][m] - out["fp32"][m], 4) for m in metrics}
    return out


def _scores(
    model: AttributeModel, examples: list[Example], crops: list[tuple[Example, str, Image.Image]], settings: Settings
) -> dict[str, float]:
    keys, gallery_features = features_of(examples, settings, backbone=model.backbone)
    gallery = model.embed(gallery_features)
    by_key = {e.key: e for e in examples}
    kinds = np.array([canonical("category", by_key[k].labels.get("category", "")) or "" for k in keys])
    slots = np.array([SLOT.get(category_group(kind) or "", "") for kind in kinds])
    extractor = FeatureExtractor(settings, backbone=model.backbone)
    size = settings.image_size
    prepared = [extractor.prepare(standardise(crop, size, background=WHITE)) for _, _, crop in crops]
    features = Features.from_matrix(extractor.embed_prepared(prepared))
    heads, vectors = model.probabilities(features), model.embed(features)
    names = [canonical("category", c) or c for c in model.classes["category"]]
    row_of = {k: i for i, k in enumerate(keys)}
    right_kind, right_colour, precision = [], [], []
    for n, (example, region, _) in enumerate(crops):
        kind = canonical("category", example.labels["category"])
        allowed = np.array([SLOT.get(category_group(c) or "", "") == region for c in names])
        right_kind.append(names[int(np.argmax(np.where(allowed, heads["category"][n], -1.0)))] == kind)
        colour = example.labels.get("colour")
        if colour and "colour" in heads:
            right_colour.append(model.classes["colour"][int(np.argmax(heads["colour"][n]))] == colour)
        scores = np.where(slots == region, gallery @ vectors[n], -np.inf)
        if example.key in row_of:
            scores[row_of[example.key]] = -np.inf
        top = np.argsort(-scores)[:10]
        precision.append(float(np.mean(kinds[top] == kind)))
    return {
        "category_acc": round(float(np.mean(right_kind)), 4),
        "colour_acc": round(float(np.mean(right_colour)), 4),
        "p10_type": round(float(np.mean(precision)), 4),
    }


if __name__ == "__main__":
    main()
