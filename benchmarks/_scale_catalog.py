"""Realistic catalogs of any size from the shared Myntra rows, and the scratch data homes they are measured in."""

from __future__ import annotations

import csv
import json
import random
import shutil
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sveta.catalog.records import ProductRecord, VariantRecord
from sveta.ingest.feeds import FeedMapping, FeedReader

APPAREL_SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
SHOE_SIZES = ["6", "7", "8", "9", "10", "11"]
FREE_SIZE = ["Onesize"]
# Median price (INR) per master category; prices are drawn log-normally around it, as a real catalog spreads
FEATURES = "features-v1_effnet-lite0.npz"  # the tuned embedder's base features, cached per photo sha256
MEDIAN_PRICE = {"Apparel": 1200.0, "Footwear": 2500.0, "Accessories": 900.0, "Personal Care": 400.0}


@dataclass(frozen=True)
class Row:
    """One usable row of styles.csv: its photo and the attributes the photo shows."""

    id: str
    gender: str
    master: str
    article: str
    colour: str
    season: str
    usage: str
    title: str
    photo: Path


def read_rows(myntra: Path) -> list[Row]:
    """The rows of ``myntra``/styles.csv that have a title and a photo in images/."""
    photos = {p.stem: p.resolve() for p in (myntra / "images").glob("*.jpg")}
    rows = []
    with (myntra / "styles.csv").open(newline="", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            title = (r.get("productDisplayName") or "").strip()
            if r["id"] in photos and title and r.get("articleType"):
                rows.append(
                    Row(
                        r["id"],
                        r["gender"],
                        r["masterCategory"],
                        r["articleType"],
                        r["baseColour"] or "",
                        r["season"] or "",
                        r["usage"] or "",
                        title,
                        photos[r["id"]],
                    )
                )
    return rows


class CatalogMaker:
    """Products made from real rows: the photo and attributes of one row, a title recombined from others."""

    def __init__(self, rows: list[Row], seed: int = 0) -> None:
        self.rows, self.rng = rows, random.Random(seed)
        self.brands = sorted({r.title.split()[0] for r in rows})
        self.by_article: dict[str, list[Row]] = defaultdict(list)
        for r in rows:
            self.by_article[r.article].append(r)

    def product(self, number: int) -> dict[str, Any]:
        """The feed row of product ``number``: a JSONL object ``sveta ingest`` reads (variants ride along)."""
        rng, base = self.rng, self.rng.choice(self.rows)
        title = self._title(base)
        price = self._price(base.master)
        return {
            "id": f"s{number:07d}",
            "title": title,
            "brand": title.split()[0],
            "description": f"{title}. {base.usage or 'Everyday'} wear for {base.season or 'every season'}.",
            "price": price,
            "currency": "INR",
            "image": str(base.photo),
            "gender": base.gender,
            "articleType": base.article,
            "baseColour": base.colour,
            "season": base.season,
            "usage": base.usage,
            "tags": ",".join(t for t in (base.usage, base.season, base.master) if t),
            "variants": self._variants(number, base.master, price, rng.randint(1, 5)),
        }

    def _title(self, base: Row) -> str:
        """A brand from any row, the descriptive words of another row of the same type, the base's colour and type."""
        donor = self.rng.choice(self.by_article[base.article])
        words = donor.title.split()[1:]
        drop = {*base.colour.lower().split(), *donor.colour.lower().split()}
        middle = [w for w in words[:-1] if w.lower() not in drop]
        tail = words[-1:] or [base.article]
        return " ".join([self.rng.choice(self.brands), *middle, *base.colour.split(), *tail])

    def _price(self, master: str) -> float:
        median = MEDIAN_PRICE.get(master, 800.0)
        raw = median * self.rng.lognormvariate(0.0, 0.6)
        return float(max(99, round(raw / 100) * 100 - 1))  # shop prices end in 99

    def _variants(self, number: int, master: str, price: float, n: int) -> list[dict[str, Any]]:
        sizes = SHOE_SIZES if master == "Footwear" else APPAREL_SIZES if master == "Apparel" else FREE_SIZE
        chosen = sizes[: min(n, len(sizes))]
        bigger = [0.0, 0.0, 0.0, 100.0, 200.0, 200.0]  # the largest sizes sometimes cost more
        return [
            {
                "id": f"s{number:07d}-{size}",
                "size": size,
                "sku": f"SKU{number:07d}{size}",
                "price": price + bigger[i],
                "available": self.rng.random() > 0.1,
            }
            for i, size in enumerate(chosen)
        ]


def write_feed(path: Path, rows: list[Row], n: int, seed: int = 0) -> Path:
    """A JSONL feed of ``n`` products (seeded: the same n and seed give the same file)."""
    maker = CatalogMaker(rows, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            out.write(json.dumps(maker.product(i), ensure_ascii=False) + "\n")
    return path


def write_changed_feed(source: Path, path: Path, changed: float, gone: float, seed: int = 1) -> dict[str, int]:
    """``source`` with a share ``gone`` of its products left out and a share ``changed`` repriced (a new price)."""
    rng = random.Random(seed)
    counts = {"kept": 0, "changed": 0, "gone": 0}
    with source.open(encoding="utf-8") as lines, path.open("w", encoding="utf-8") as out:
        for line in lines:
            draw = rng.random()
            if draw < gone:
                counts["gone"] += 1
                continue
            if draw < gone + changed:
                row = json.loads(line)
                row["price"] = float(row["price"]) + 100.0
                for variant in row["variants"]:
                    variant["price"] += 100.0
                line = json.dumps(row, ensure_ascii=False) + "\n"
                counts["changed"] += 1
            else:
                counts["kept"] += 1
            out.write(line)
    return counts


class ScaleFeedReader(FeedReader):
    """The scale feed's reader, whose records get their variants: CSV / JSONL feeds carry none, so the benchmark
    adds them (the row's digest covers them: they are in the line). A subclass, not a wrapper round each row: a
    wrapper's objects per row made Python's full collections of an unchanged re-sync twice as many."""

    def _record(self, row: Mapping[str, Any], mapping: FeedMapping, external_id: str) -> ProductRecord:
        record = super()._record(row, mapping, external_id)
        record.variants = [
            VariantRecord(
                external_id=v["id"],
                title=v["size"],
                options={"Size": v["size"]},
                size=v["size"],
                sku=v["sku"],
                price=v["price"],
                available=v["available"],
                position=i,
            )
            for i, v in enumerate(record.raw.get("variants") or [])
        ]
        return record


def sample_queries(rows: list[Row], n: int, seed: int = 2) -> list[str]:
    """Shopper queries from the rows' own words: colour + type, brand + type, gender + usage + type."""
    rng = random.Random(seed)
    queries = []
    for _ in range(n):
        r = rng.choice(rows)
        shapes = [
            f"{r.colour} {r.article}",
            f"{r.title.split()[0]} {r.article}",
            f"{r.gender} {r.usage} {r.article}",
            f"{r.colour} {r.gender} {r.article} under 2000",
        ]
        queries.append(rng.choice(shapes).lower().strip())
    return queries


# -- data homes ------------------------------------------------------------------------------------------


def base_home(demo: Path, base: Path) -> Path:
    """A copy of what the demo home has that a new catalog's index needs: the trained models, the feature cache."""
    if (base / "embeddings" / FEATURES).is_file():
        return base
    if not (demo / "embeddings" / FEATURES).is_file():
        raise SystemExit(f"{demo} has no embedding cache {FEATURES}: give an indexed demo home with --demo")
    (base / "embeddings").mkdir(parents=True, exist_ok=True)
    shutil.copy2(demo / "embeddings" / FEATURES, base / "embeddings" / FEATURES)
    (base / "models" / "tuned").mkdir(parents=True, exist_ok=True)
    shutil.copytree(demo / "models" / "tuned" / "catalog", base / "models" / "tuned" / "catalog")
    for model in (demo / "models").glob("*.onnx*"):
        shutil.copy2(model, base / "models" / model.name)
    return base


def link_base(base: Path, home: Path) -> None:
    """The home's models and feature cache are symbolic links to the base copy (a save replaces a link, never
    writes through it: the cache is written by rename)."""
    home.mkdir(parents=True)
    for part in ("embeddings", "models"):
        (home / part).mkdir()
        for item in (base / part).iterdir():
            (home / part / item.name).symlink_to(item.resolve())
