"""`sveta train` on the user's catalog: fit, measure on a held-out split, save with a model card, tag every product."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, insert

from sveta.catalog.models import Attribute
from sveta.errors import InputError
from sveta.learn.features import BASE, VERSION, Features, features_of
from sveta.learn.heads import UNKNOWN, AttributeModel
from sveta.learn.labels import Example, examples_from_catalog, split

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.settings import Settings

DEFAULT_NAME = "catalog"
THUMBNAIL_METRIC_ITEMS = 600
TEXT_ATTRIBUTES = ("category", "colour", "gender")  # the text map's auxiliary heads
Progress = Callable[[str, int, int | None], None]


@dataclass
class TrainReport:
    name: str
    model_dir: Path
    n_products: int
    n_train: int
    n_test: int
    metrics: dict[str, Any]
    tagged: int = 0
    text_map: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["model_dir"] = str(self.model_dir)
        return out


def model_dir(settings: Settings, name: str = DEFAULT_NAME) -> Path:
    return settings.models_dir / "tuned" / name


def has_model(settings: Settings, name: str = DEFAULT_NAME) -> bool:
    return (model_dir(settings, name) / "model.npz").is_file()


def load_model(settings: Settings, name: str = DEFAULT_NAME) -> AttributeModel:
    """The trained model ``name`` (loaded once per file version)."""
    path = model_dir(settings, name)
    key = (path, (path / "model.npz").stat().st_mtime_ns if has_model(settings, name) else 0)
    if key not in _LOADED:
        _LOADED.clear()  # one model in memory: a retrained one replaces the old
        _LOADED[key] = AttributeModel.load(path, settings)
    return _LOADED[key]


_LOADED: dict[tuple[Path, int], AttributeModel] = {}


def train_catalog(
    catalog: CatalogStore,
    settings: Settings,
    name: str = DEFAULT_NAME,
    *,
    text: bool = True,
    on_progress: Progress | None = None,
) -> TrainReport:
    """Fit on 80% of the catalog's labelled products, measure on the rest, save, then tag every product."""
    from sveta.index.catalog_index import warm_photos
    from sveta.learn.train import fit

    started = time.perf_counter()
    warm_photos(catalog, settings)
    examples = examples_from_catalog(catalog)
    if len(examples) < 50:
        raise InputError(
            f"the catalog has {len(examples)} products with a downloaded photo; training needs at least 50",
            "ingest a catalog and fetch its photos first: sveta ingest ..., sveta images fetch",
        )
    train, test = split(examples)
    views, train = _views(train, settings, on_progress)
    model = fit(train, views, settings, on_epoch=_stage(on_progress, "training"))
    report = TrainReport(name, model_dir(settings, name), len(examples), len(train), len(test), {})
    if text:
        report.text_map = _attach_text_map(model, train, views, settings, report.notes)
    report.metrics = held_out_metrics(model, test, settings, on_progress)
    _write(model, report, settings)
    report.tagged = tag_products(catalog, model, examples, settings, on_progress)
    report.seconds = round(time.perf_counter() - started, 1)
    return report


def _stage(on_progress: Progress | None, label: str) -> Callable[[int, int], None] | None:
    if on_progress is None:
        return None
    return lambda done, total: on_progress(label, done, total)


def _views(
    examples: list[Example], settings: Settings, on_progress: Progress | None
) -> tuple[list[Features], list[Example]]:
    """The photos as they are, and a thumbnail-like view: degraded copies of a share of them, sharp for the rest.

    The share (SVETA_TRAIN_THUMBNAIL_SHARE) trades build time for robustness on small catalog thumbnails.
    """
    sharp_ids, sharp = features_of(examples, settings, False, on_progress)
    readable = set(sharp_ids)
    kept = [e for e in examples if e.key in readable]
    sharp = sharp.take(np.array([{k: i for i, k in enumerate(sharp_ids)}[e.key] for e in kept]))
    chosen = [e for e in kept if _share_of(e.key) < settings.train_thumbnail_share]
    thumb_ids, thumb = features_of(chosen, settings, True, on_progress)
    matrix = sharp.matrix().copy()
    position = {e.key: i for i, e in enumerate(kept)}
    matrix[[position[k] for k in thumb_ids]] = thumb.matrix()
    return [sharp, Features.from_matrix(matrix)], kept


def _share_of(key: int) -> float:
    """A stable number in [0, 1) per product: the same products get thumbnail-like copies on every run."""
    return int(hashlib.sha1(f"thumb:{key}".encode()).hexdigest()[:8], 16) / 2**32


def _attach_text_map(
    model: AttributeModel, train: list[Example], views: list[Features], settings: Settings, notes: list[str]
) -> bool:
    from sveta.errors import ConfigError

    try:
        from sveta.learn.text_map import train_text_map

        labels = {a: [e.labels.get(a) for e in train] for a in TEXT_ATTRIBUTES}
        model.text_map = train_text_map([e.title for e in train], views, labels, settings)
    except ConfigError as exc:  # no text model installed: image search and tagging still work
        notes.append(f"no text search: {exc.message} ({exc.hint})")
        return False
    return True


def held_out_metrics(
    model: AttributeModel, test: list[Example], settings: Settings, on_progress: Progress | None = None
) -> dict[str, Any]:
    """Weighted F1 / accuracy per attribute on the held-out products, as photographed and thumbnail-like."""
    from sveta.eval.attributes import weighted_f1

    metrics: dict[str, Any] = {}
    for degrade, view in ((False, "sharp"), (True, "thumbnail")):
        # thumbnail-like copies of a few hundred held-out products measure robustness well enough
        sample = [e for e in test if _share_of(e.key) < THUMBNAIL_METRIC_ITEMS / max(len(test), 1)] if degrade else test
        ids, features = features_of(sample, settings, degrade, on_progress)
        by_key = {e.key: e for e in test}
        for attribute, p in model.probabilities(features).items():
            truth = [by_key[k].labels.get(attribute) for k in ids]
            keep = [i for i, t in enumerate(truth) if t]
            if not keep:
                continue
            guess = [model.classes[attribute][j] for j in p[keep].argmax(axis=1)]
            labelled = [str(truth[i]) for i in keep]
            metrics[f"{view}/{attribute}_wf1"] = round(weighted_f1(labelled, guess), 4)
            metrics[f"{view}/{attribute}_acc"] = round(
                float(np.mean([t == g for t, g in zip(labelled, guess, strict=True)])), 4
            )
    return metrics


def _write(model: AttributeModel, report: TrainReport, settings: Settings) -> None:
    model.card.update(
        name=report.name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        embedder=f"tuned:{report.name}",
        features=f"{VERSION}:{BASE}",
        labels=model.classes,
        metrics=report.metrics,
        n_test=report.n_test,
        text_map=report.text_map,
    )
    model.card["model_id"] = secrets.token_hex(6)  # every training is a new model, even with the same seed
    model.save(report.model_dir)
    (report.model_dir / "card.json").write_text(json.dumps(model.card, indent=2, default=str) + "\n")
    (report.model_dir / "card.md").write_text(model_card_markdown(model.card))


def model_card_markdown(card: dict[str, Any]) -> str:
    lines = [
        f"# Model card: tuned:{card['name']}",
        "",
        f"- trained {card['created']} on {card['n_train']} products, measured on {card['n_test']} held-out ones",
        f"- features: {card['features']} (frozen ImageNet EfficientNet-Lite0 + colour descriptors)",
        f"- use: `SVETA_EMBEDDER=tuned:{card['name']}`, `sveta tag`, `sveta audit`; text map: {card['text_map']}",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in sorted(card["metrics"].items())],
        "",
        "## Labels",
        *[f"- {a} ({len(v)}): {', '.join(v)}" for a, v in card["labels"].items()],
        "",
    ]
    return "\n".join(lines)


def tag_products(
    catalog: CatalogStore,
    model: AttributeModel,
    examples: list[Example],
    settings: Settings,
    on_progress: Progress | None = None,
) -> int:
    """Store each product's photo-predicted attributes (origin ``image``, with the model version)."""
    ids, features = features_of(examples, settings, False, on_progress)
    predictions = model.predict(features, settings.tag_min_confidence)
    version = f"tuned:{model.card.get('name', DEFAULT_NAME)}@{model.card.get('model_id', '')}"
    rows = [
        {
            "product_id": pid,
            "name": attribute,
            "value": p.value,
            "origin": "image",
            "confidence": p.confidence,
            "evidence": json.dumps(p.alternatives),
            "model_version": version,
        }
        for pid, row in zip(ids, predictions, strict=True)
        for attribute, p in row.items()
        if p.value != UNKNOWN
    ]
    with catalog.session() as s:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            s.execute(delete(Attribute).where(Attribute.origin == "image", Attribute.product_id.in_(chunk)))
        if rows:
            s.execute(insert(Attribute), rows)
    return len(ids)
