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
from sveta.learn.features import BASE, VERSION, Backbone, Features, features_of
from sveta.learn.heads import AttributeModel
from sveta.learn.int8_network import int8_network, trained_on
from sveta.learn.labels import Example, examples_from_catalog, split, stable_share
from sveta.learn.metrics import held_out_metrics
from sveta.learn.store import DEFAULT_NAME, model_dir, save_model
from sveta.learn.tagging import tag_products
from sveta.progress import Progress, StageProgress

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.learn.finetune import FineTune
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
    finetune: dict[str, Any] | None = None  # with --finetune: which model was kept, both models' scores
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step
    cpu_steps: dict[str, float] = field(default_factory=dict)  # CPU seconds per step, all threads (cores busy)
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
    finetune: FineTune | None = None,
) -> TrainReport:
    """Fetch missing photos, fit on 80% of the labelled products, measure on the rest, save, tag every product.

    With ``finetune``, the CNN's last stages are trained too; the fine-tuned model is kept only when it beats the
    frozen recipe on the held-out products (the card says which was kept, with both models' metrics).
    """
    clock = Clock()
    warm_photos(catalog, settings)  # training reads cached photos only; a broken one is recorded, never fatal
    examples = examples_from_catalog(catalog)
    clock.lap("photos")
    # in order, not beside the features: MediaPipe keeps both cores busy too (137 CPU seconds in 70 s for the demo),
    # and reading the two at once saved 21 s of 233, within the demo build's run-to-run noise
    weak = _weak_labels(examples, settings, on_progress)
    clock.lap("weak_labels")
    if len(examples) < 50:
        raise InputError(
            f"the catalog has {len(examples)} products with a downloaded photo; training needs at least 50",
            "ingest a catalog and fetch its photos first: sveta ingest ..., sveta images fetch",
        )
    train, test = split(examples)
    model, views, train, metrics = _learn(train, test, settings, name, finetune, start, on_progress, clock)
    report = TrainReport(name, model_dir(settings, name), len(examples), len(train), len(test), {})
    report.finetune = model.card.get("finetune")
    if finetune is None and start is None and settings.train_int8 and (why := trained_on(settings)):
        report.notes.append(f"trained on {why}")
    model.card["weak_labels"] = weak
    if text:
        report.text_map = _attach_text_map(model, train, views, settings, report.notes)
        clock.lap("text_map")
    report.metrics = metrics or held_out_metrics(model, test, settings, on_progress)
    clock.lap("held_out_metrics")
    _write(model, report, settings)
    report.tagged = tag_products(catalog, model, examples, settings, on_progress)
    clock.lap("tagging")
    report.seconds, report.steps, report.cpu_steps = clock.total(), clock.steps, clock.cpu
    return report


class Clock:
    """Seconds per step of a training, and the CPU seconds of the process's threads in it, for its report."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.last_cpu = time.process_time()
        self.steps: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.steps[step], self.cpu[step] = round(now - self.last, 1), round(cpu - self.last_cpu, 1)
        self.last, self.last_cpu = now, cpu

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 1)


def _learn(
    train: list[Example],
    test: list[Example],
    settings: Settings,
    name: str,
    finetune: FineTune | None,
    start: AttributeModel | None,
    on_progress: StageProgress | None,
    clock: Clock,
) -> tuple[AttributeModel, list[Features], list[Example], dict[str, Any] | None]:
    """The model and its training views (and, fine-tuned, its held-out metrics, already measured)."""
    from sveta.learn.train import fit

    if finetune is not None:
        model, views, train, metrics = _fine_tuned(train, test, settings, name, finetune, on_progress, start)
        clock.lap("features_and_finetune")
    else:
        backbone = start.backbone if start is not None else None  # a fine-tuned start: its network sees the photos
        quantised = int8_network(train, settings) if backbone is None else None
        if quantised is not None:  # the INT8 copy of the CNN: features at about twice the rate, kept by the model
            backbone = quantised[0]
            clock.lap("int8_network")
        views, train = _views(train, settings, on_progress, backbone)
        clock.lap("features")
        model = fit(train, views, settings, on_epoch=_stage(on_progress, "training"), start=start)
        clock.lap("fit")
        model.backbone, metrics = backbone, None
        if quantised is not None:
            model.card["backbone"] = quantised[1]
        elif backbone is not None and start is not None:
            model.card["backbone"] = dict(start.card["backbone"], inherited=True)
    if start is not None:
        model.card["started_from"] = start.card.get("started_from") or {"model_id": start.card.get("model_id")}
    return model, views, train, metrics


def _weak_labels(examples: list[Example], settings: Settings, on_progress: StageProgress | None) -> dict[str, Any]:
    """Sleeve lengths (and dress lengths) read from photos of people, for products no seller or title labels.

    At most SVETA_WEAK_LABEL_PHOTOS photos are read (the same ones every run; cached per photo). Without MediaPipe
    the model is trained without them.
    """
    from sveta.errors import ConfigError
    from sveta.learn.weak_labels import METHOD, VERSION, applicable, weak_labels

    takers = [e for e in examples if applicable(e.labels.get("category", ""))]
    chosen = sorted(takers, key=lambda e: stable_share(e.key, "weak"))[: settings.weak_label_photos]
    try:
        found = weak_labels(chosen, settings, _stage(on_progress, "weak labels (pose)"))
    except ConfigError as exc:
        return {"skipped": f"{exc.message} ({exc.hint})"}
    by_key = {e.key: e for e in chosen}
    added: dict[str, int] = {}
    for key, labels in found.items():
        for attribute, value in labels.items():
            if attribute not in by_key[key].labels:
                by_key[key].labels[attribute] = value
                by_key[key].evidence[attribute] = f"image:{VERSION}"
                added[attribute] = added.get(attribute, 0) + 1
    return {"method": METHOD, "photos_read": len(chosen), "labels_added": added}


def _fine_tuned(
    train: list[Example],
    test: list[Example],
    settings: Settings,
    name: str,
    finetune: FineTune,
    on_progress: StageProgress | None,
    start: AttributeModel | None = None,
) -> tuple[AttributeModel, list[Features], list[Example], dict[str, Any]]:
    """Both recipes from one pass over the photos; the better on the held-out products is kept."""
    from sveta.learn.finetune import fine_tune
    from sveta.learn.metrics import mean_f1, thumbnail_sample

    also = [(test, None), (thumbnail_sample(test), "thumb")]
    result = fine_tune(train, settings, model_dir(settings, name), finetune, also, on_progress, start=start)
    scores = {k: held_out_metrics(m, test, settings) for k, m in (("frozen", result.frozen), ("tuned", result.tuned))}
    kept = "tuned" if mean_f1(scores["tuned"]) > mean_f1(scores["frozen"]) else "frozen"
    model = result.tuned if kept == "tuned" else result.frozen
    model.card["finetune"] = {
        "kept": "fine-tuned" if kept == "tuned" else "frozen (fine-tuning did not beat it on the held-out part)",
        "held_out_mean_wf1": {k: round(mean_f1(v), 4) for k, v in scores.items()},
        "frozen_metrics": scores["frozen"],
        "fine_tuned_metrics": scores["tuned"],
        "network": result.tuned.card["backbone"],
    }
    if kept == "frozen":
        model.card.pop("backbone", None)
    return model, result.views[kept], result.kept, scores[kept]


def _stage(on_progress: StageProgress | None, label: str) -> Progress | None:
    if on_progress is None:
        return None
    return lambda done, total: on_progress(label, done, total)


def _views(
    examples: list[Example], settings: Settings, on_progress: StageProgress | None, backbone: Backbone | None = None
) -> tuple[list[Features], list[Example]]:
    """The photos as they are, and a thumbnail-like view: degraded copies of a share of them, sharp for the rest.

    The share (SVETA_TRAIN_THUMBNAIL_SHARE) trades build time for robustness on small catalog thumbnails.
    """
    sharp_ids, sharp = features_of(examples, settings, False, on_progress, backbone)
    readable = set(sharp_ids)
    kept = [e for e in examples if e.key in readable]
    sharp = sharp.take(np.array([{k: i for i, k in enumerate(sharp_ids)}[e.key] for e in kept]))
    chosen = [e for e in kept if stable_share(e.key) < settings.train_thumbnail_share]
    thumb_ids, thumb = features_of(chosen, settings, True, on_progress, backbone)
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
