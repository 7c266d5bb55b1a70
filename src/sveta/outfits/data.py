"""Outfit sets: the Polyvore Outfits format and a CSV of (outfit id, product id), read into one shape."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sveta.errors import InputError

# Polyvore's semantic categories -> the outfit slots of outfit_slots.yaml (the model's types are slots).
POLYVORE_SLOTS = {
    "tops": "top",
    "bottoms": "bottom",
    "all-body": "one-piece",
    "outerwear": "outerwear",
    "shoes": "footwear",
    "bags": "bag",
    "jewellery": "jewellery",
    "accessories": "accessory",
    "sunglasses": "accessory",
    "hats": "accessory",
    "scarves": "accessory",
}
SLOT_NAMES = {slot: name for name, slot in reversed(POLYVORE_SLOTS.items())}
FITB_CHOICES = 4  # the blank's item and 3 others, as in Polyvore's fill-in-the-blank test
TEST_SHARE = 0.2  # of a CSV's outfits, by a hash of the outfit id


@dataclass(slots=True)
class Item:
    item_id: str
    image: Path
    slot: str
    title: str = ""


@dataclass(slots=True)
class Question:
    """Fill in the blank: the outfit without one item, and candidates of which ``answer`` is the right one."""

    question: list[str]
    candidates: list[str]
    answer: int = 0


@dataclass
class OutfitSet:
    """Items, train / test outfits (lists of item ids), the FITB questions and the labelled compatibility outfits."""

    items: dict[str, Item]
    train: list[list[str]]
    test: list[list[str]]
    fitb: list[Question] = field(default_factory=list)
    compat: list[tuple[int, list[str]]] = field(default_factory=list)
    source: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "n_items": len(self.items),
            "n_train": len(self.train),
            "n_test": len(self.test),
            "n_fitb": len(self.fitb),
            "n_compat": len(self.compat),
        }


def read_outfits(path: Path, items_folder: Path | None = None, resolve: Resolver | None = None) -> OutfitSet:
    """A Polyvore Outfits folder (train.json / test.json + item metadata) or an (outfit id, product id) CSV."""
    path = Path(path)
    if path.is_dir():
        return read_polyvore(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path, resolver(items_folder, path) if resolve is None else resolve)
    raise InputError(
        f"{path} is neither a Polyvore Outfits folder nor a .csv of outfits",
        "give a folder with train.json, test.json and polyvore_item_metadata.json, or a CSV (outfit_id, product_id)",
    )


def read_polyvore(folder: Path) -> OutfitSet:
    """Polyvore Outfits: {split}.json outfits; metadata, images and the test questions beside them or one level up."""
    meta_path = _beside(folder, "polyvore_item_metadata.json")
    metadata = _json(meta_path)
    images = _beside(folder, "images", required=False) or folder / "images"
    splits = {name: _json(folder / f"{name}.json") for name in ("train", "test")}
    slot_of_index: dict[str, str] = {}
    items: dict[str, Item] = {}
    outfits: dict[str, list[list[str]]] = {}
    for name, sets in splits.items():
        outfits[name] = [_outfit(s, metadata, images, items, slot_of_index, meta_path) for s in _sets(sets, name)]

    def lookup(name: str) -> str | None:  # a test question may name an item of no outfit: read its metadata then
        if name in slot_of_index or name in items:
            return slot_of_index.get(name, name)
        item = _item(name, metadata.get(name), images, meta_path.parent)
        if item is not None:
            items[name] = item
        return name if item is not None else None

    fitb = _polyvore_fitb(folder, lookup)
    compat = _polyvore_compat(folder, lookup)
    data = OutfitSet(items, outfits["train"], outfits["test"], fitb, compat, source=str(folder))
    return data if fitb and compat else with_generated_tests(data)


def _sets(sets: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(sets, list) or not all(isinstance(s, dict) and "items" in s for s in sets):
        raise InputError(f"{name}.json is not a list of {{set_id, items}} outfits", "give Polyvore Outfits files")
    return sets


def _outfit(
    outfit: dict[str, Any],
    metadata: dict[str, Any],
    images: Path,
    items: dict[str, Item],
    slot_of_index: dict[str, str],
    meta_path: Path,
) -> list[str]:
    """One outfit's item ids; items without a known slot or photo are left out (Polyvore has a few)."""
    out = []
    for entry in outfit["items"]:
        item_id = str(entry["item_id"])
        if item_id not in items:
            item = _item(item_id, metadata.get(item_id), images, meta_path.parent)
            if item is None:
                continue
            items[item_id] = item
        slot_of_index[f"{outfit['set_id']}_{entry['index']}"] = item_id
        out.append(item_id)
    return out


def _item(item_id: str, meta: dict[str, Any] | None, images: Path, base: Path) -> Item | None:
    if not meta:
        return None
    slot = POLYVORE_SLOTS.get(str(meta.get("semantic_category", "")).lower())
    image = Path(meta["image"]) if meta.get("image") else images / f"{item_id}.jpg"
    image = image if image.is_absolute() else base / image
    if slot is None or not image.is_file():
        return None
    return Item(item_id, image, slot, str(meta.get("title") or meta.get("url_name") or ""))


def _polyvore_fitb(folder: Path, lookup: Callable[[str], str | None]) -> list[Question]:
    """fill_in_blank_test.json: entries name set_index references (or item ids); the right answer is the one from
    the question's own set (Polyvore's rule), else the one its ``answer`` field names."""
    path = folder / "fill_in_blank_test.json"
    if not path.is_file():
        return []
    out = []
    for q in _json(path):
        question = [lookup(str(r)) for r in q["question"]]
        candidates = [lookup(str(r)) for r in q["answers"]]
        own_set = str(q["question"][0]).rsplit("_", 1)[0] if q["question"] else ""
        same = [n for n, r in enumerate(q["answers"]) if str(r).rsplit("_", 1)[0] == own_set and "_" in str(r)]
        answer = same[0] if same else int(q.get("answer", 0))
        if all(question) and all(candidates):
            out.append(Question([str(x) for x in question], [str(x) for x in candidates], answer))
    return out


def _polyvore_compat(folder: Path, lookup: Callable[[str], str | None]) -> list[tuple[int, list[str]]]:
    """compatibility_test.txt: a label (1 / 0), then the outfit's set_index (or item id) references."""
    path = folder / "compatibility_test.txt"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        label, *names = line.split()
        ids = [lookup(n) for n in names]
        if ids and all(ids):
            out.append((int(label), [str(i) for i in ids]))
    return out


def _beside(folder: Path, name: str, required: bool = True) -> Path:
    for candidate in (folder / name, folder.parent / name):
        if candidate.exists():
            return candidate
    if not required:
        return Path()
    raise InputError(f"no {name} in {folder} or its parent", "give a Polyvore Outfits folder (e.g. disjoint/)")


def _json(path: Path) -> Any:
    if not path.is_file():
        raise InputError(
            f"no {path.name} in {path.parent}", "give a Polyvore Outfits folder with train.json, test.json"
        )
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc})", "check the file; re-download or rebuild it") from None


Resolver = Callable[[str], Item | None]


def read_csv(path: Path, resolve: Resolver) -> OutfitSet:
    """A CSV whose first two columns are outfit id and product id; 20% of outfits (by hash) are the test split."""
    outfits: dict[str, list[str]] = defaultdict(list)
    items: dict[str, Item] = {}
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.reader(handle):
            if len(row) < 2 or not row[1].strip() or row[0].strip().lower() in {"outfit_id", "outfit", "set_id"}:
                continue
            product = row[1].strip()
            item = items.get(product) or resolve(product)
            if item is not None:
                items[product] = item
                outfits[row[0].strip()].append(product)
    whole = {k: v for k, v in outfits.items() if len(v) >= 2}
    if not whole:
        raise InputError(f"{path}: no outfit of two or more known products", "check the product ids and the photos")
    test = {k for k in whole if _test_share(k)}
    data = OutfitSet(items, [v for k, v in whole.items() if k not in test], [v for k, v in whole.items() if k in test])
    data.source = str(path)
    return with_generated_tests(data)


def _test_share(key: str) -> bool:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < TEST_SHARE


def resolver(items_folder: Path | None, csv_path: Path) -> Resolver:
    """Products of a CSV: a labelled folder's styles.csv + images/ (given, or beside the CSV)."""
    folder = items_folder or csv_path.parent
    if not (folder / "styles.csv").is_file():
        raise InputError(
            f"no styles.csv for the products of {csv_path.name}",
            "give --items FOLDER, a folder laid out like ../shared/datasets/myntra-small",
        )
    from sveta.learn.labels import examples_from_folder
    from sveta.outfits.arrays import outfit_rules

    rules = outfit_rules()
    table = {}
    for example in examples_from_folder(folder):
        slot = rules.slot(_category(example.labels.get("category")))
        if slot:
            table[str(example.key)] = Item(str(example.key), example.path, slot, example.title)
    return table.get


def _category(article_type: str | None) -> str | None:
    from sveta.vocab.reading import normalize_value

    return normalize_value("category", article_type) if article_type else None


def with_generated_tests(data: OutfitSet, seed: int = 0) -> OutfitSet:
    """Polyvore's procedure where no test questions came with the set: per test outfit, one FITB question whose
    other candidates are random items of the blank's slot, and one negative outfit of random items, slot for slot."""
    rng = random.Random(seed)
    test_items = {i for o in data.test for i in o}
    by_slot: dict[str, list[str]] = defaultdict(list)
    for item_id in sorted(test_items):
        by_slot[data.items[item_id].slot].append(item_id)
    fitb, compat = [], []
    for outfit in data.test:
        blank = rng.randrange(len(outfit))
        pool = [i for i in by_slot[data.items[outfit[blank]].slot] if i not in outfit]
        if len(pool) >= FITB_CHOICES - 1:
            candidates = [outfit[blank], *rng.sample(pool, FITB_CHOICES - 1)]
            rng.shuffle(candidates)  # the right answer's place carries no hint
            question = outfit[:blank] + outfit[blank + 1 :]
            fitb.append(Question(question, candidates, candidates.index(outfit[blank])))
        compat.append((1, outfit))
        compat.append((0, [rng.choice(by_slot[data.items[i].slot]) for i in outfit]))
    data.fitb = data.fitb or fitb
    data.compat = data.compat or compat
    return data
