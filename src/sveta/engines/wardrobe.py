"""A set of photos through the trained model: its top categories, colours and occasions, and what it lacks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sveta.errors import InputError
from sveta.learn.store import DEFAULT_NAME

if TYPE_CHECKING:
    from sveta.learn.heads import AttributeModel, Prediction
    from sveta.settings import Settings

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
SUMMARISED = ("category", "colour", "occasion")
# "Common" is the model's own view of the catalog: its category classes are ordered most frequent first, and
# every one of them had at least MIN_PER_CLASS products; a group is common when one of its categories is a class.
COMMON_CATEGORIES = 10


def collect_photos(paths: Sequence[Path]) -> list[Path]:
    """The photos named, and those in the folders named (recursively, hidden files skipped), in a stable order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = (p for p in sorted(path.rglob("*")) if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
            out += [p for p in found if not any(part.startswith(".") for part in p.relative_to(path).parts)]
        elif path.is_file():
            out.append(path)  # named explicitly: tried whatever its suffix, and reported if it is no photo
        else:
            raise InputError(f"no such file or folder: {path}", "give photo files or folders of photos")
    if not out:
        raise InputError("no photos found", f"give photo files or folders with {', '.join(PHOTO_SUFFIXES)} files")
    return list(dict.fromkeys(out))


def analyse_wardrobe(paths: Sequence[Path], settings: Settings, k: int = 3, name: str = DEFAULT_NAME) -> dict[str, Any]:
    """Tag every photo; the top-k values per attribute (unknown answers left out) and the common categories and
    category groups no photo shows. An unreadable photo is listed under ``unreadable``, never fatal."""
    from sveta.learn.store import load_model

    model = load_model(settings, name)
    photos = collect_photos(paths)
    tagged, unreadable = tag_files(model, photos, settings)
    shown = {p["attributes"]["category"]["value"] for p in tagged if "category" in p["attributes"]}
    return {
        "model": f"tuned:{model.card.get('name', name)}@{model.card.get('model_id', '')}",
        "n_photos": len(photos),
        "n_tagged": len(tagged),
        "top": {a: top_values([p["attributes"].get(a, {}).get("value") for p in tagged], k) for a in SUMMARISED},
        "lacks": lacks(model, shown),
        "photos": tagged,
        "unreadable": unreadable,
    }


def tag_files(
    model: AttributeModel, photos: Sequence[Path], settings: Settings
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(each readable photo with its known answers, each unreadable photo with the reason)."""
    from sveta.embed.pipeline import embed_photos
    from sveta.learn.features import FeatureExtractor, Features

    tagged: list[dict[str, Any]] = []
    unreadable: list[dict[str, str]] = []
    extractor = FeatureExtractor(settings, backbone=model.backbone)
    for batch in embed_photos(extractor, list(enumerate(photos)), settings):
        unreadable += [{"path": str(photos[i]), "error": reason} for i, reason in batch.failures]
        if not batch.ids:
            continue
        rows = model.predict(Features.from_matrix(batch.vectors), settings.tag_min_confidence)
        tagged += [{"path": str(photos[i]), "attributes": _known(row)} for i, row in zip(batch.ids, rows, strict=True)]
    return tagged, unreadable


def top_values(values: Sequence[str | None], k: int) -> list[dict[str, Any]]:
    """The k most frequent known values, with their count and their share of all the photos tagged."""
    counts = Counter(v for v in values if v)
    return [{"value": v, "count": n, "share": round(n / len(values), 4)} for v, n in counts.most_common(k)]


def lacks(model: AttributeModel, shown: set[str]) -> dict[str, list[str]]:
    """The catalog's most frequent categories, and the groups of its categories, that no photo shows."""
    from sveta.vocab.reading import canonical, category_group

    classes = list(dict.fromkeys(canonical("category", c) for c in model.classes.get("category", [])))
    shown_groups = {category_group(c) for c in shown} - {None}
    groups = [g for g in dict.fromkeys(category_group(c) for c in classes) if g]
    return {
        "categories": [c for c in classes[:COMMON_CATEGORIES] if c not in shown],
        "groups": [g for g in groups if g not in shown_groups],
    }


def _known(row: dict[str, Prediction]) -> dict[str, dict[str, Any]]:
    """A photo's answers above the tag threshold, in the catalog's canonical names."""
    from sveta.learn.heads import UNKNOWN
    from sveta.vocab.reading import canonical

    return {
        a: {"value": canonical(a, p.value), "confidence": round(float(p.confidence), 4)}
        for a, p in row.items()
        if p.value != UNKNOWN
    }
