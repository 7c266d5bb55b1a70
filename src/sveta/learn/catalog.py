"""`sveta train` on the user's catalog: fit, measure on a held-out split, save with a model card, tag every product."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.errors import InputError
from sveta.images.cache import warm_photos
from sveta.learn.features import BASE, VERSION, Features, features_of
from sveta.learn.heads import AttributeModel
from sveta.learn.labels import Example, examples_from_catalog, split, stable_share
from sveta.learn.metrics import held_out_metrics
from sveta.learn.store import DEFAULT_NAME, model_dir, save_model
from sveta.learn.tagging import tag_products
from sveta.progress import Progress, StageProgress

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.progress import StageProgress
    from sveta.settings import Settings

TEXT_ATTRIBUTES = ("category", "colour", "gender")  # the text map's auxiliary heads


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


def train_catalog(
    catalog: CatalogStore,
    settings: Settings,
    name: str = DEFAULT_NAME,
    *,
    text: bool = True,
    on_progress: StageProgress | None = None,
    start: AttributeModel | None = None,
) -> TrainReport:
    """Fetch missing photos, fit on 80% of the labelled products, measure on the rest, save, tag every product."""
    from sveta.learn.train import fit

    started = time.perf_counter()
    warm_photos(catalog, settings)  # training reads cached photos only; a broken one is recorded, never fatal
    examples = examples_from_catalog(catalog)
    if len(examples) < 50:
        raise InputError(
            f"the catalog has {len(examples)} products with a downloaded photo; training needs at least 50",
            "ingest a catalog and fetch its photos first: sveta ingest ..., sveta images fetch",
        )
    train, test = split(examples)
    views, train = _views(train, settings, on_progress)
    model = fit(train, views, settings, on_epoch=_stage(on_progress, "training"), start=start)
    if start is not None:
        model.card["started_from"] = start.card.get("started_from") or {"model_id": start.card.get("model_id")}
    report = TrainReport(name, model_dir(settings, name), len(examples), len(train), len(test), {})
    if text:
        report.text_map = _attach_text_map(model, train, views, settings, report.notes)
    report.metrics = held_out_metrics(model, test, settings, on_progress)
    _write(model, report, settings)
    report.tagged = tag_products(catalog, model, examples, settings, on_progress)
    report.seconds = round(time.perf_counter() - started, 1)
    return report


def _stage(on_progress: StageProgress | None, label: str) -> Progress | None:
    if on_progress is None:
        return None
    return lambda done, total: on_progress(label, done, total)


def _views(
    examples: list[Example], settings: Settings, on_progress: StageProgress | None
) -> tuple[list[Features], list[Example]]:
    """The photos as they are, and a thumbnail-like view: degraded copies of a share of them, sharp for the rest.

    The share (SVETA_TRAIN_THUMBNAIL_SHARE) trades build time for robustness on small catalog thumbnails.
    """
    sharp_ids, sharp = features_of(examples, settings, False, on_progress)
    readable = set(sharp_ids)
    kept = [e for e in examples if e.key in readable]
    sharp = sharp.take(np.array([{k: i for i, k in enumerate(sharp_ids)}[e.key] for e in kept]))
    chosen = [e for e in kept if stable_share(e.key) < settings.train_thumbnail_share]
    thumb_ids, thumb = features_of(chosen, settings, True, on_progress)
    matrix = sharp.matrix().copy()
    position = {e.key: i for i, e in enumerate(kept)}
    matrix[[position[k] for k in thumb_ids]] = thumb.matrix()
    return [sharp, Features.from_matrix(matrix)], kept


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
    save_model(model, settings, report.name)
