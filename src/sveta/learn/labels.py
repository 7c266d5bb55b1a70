"""Training examples with attribute labels, from a catalog or a labelled folder, and their deterministic split."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sveta.catalog.attributes import StoredAttribute, attributes_of, first_cached_photos
from sveta.catalog.store import CatalogStore
from sveta.errors import InputError

# The attributes heads are trained for, in the catalog's names; a folder's styles.csv names them differently.
ATTRIBUTES = ("category", "colour", "gender", "occasion", "pattern", "sleeve_length", "length")
STYLES_COLUMNS = {"category": "articleType", "colour": "baseColour", "gender": "gender", "occasion": "usage"}
ORIGIN_RANK = {"seller": 0, "text": 1}  # a seller's own attribute beats one read from the title
# Attributes read from photos of people (learn/weak_labels.py): they hold for some categories only, so their
# coverage is not measured against the whole catalog, and a photo of another category gets no answer for them.
WEAK_ATTRIBUTES = ("sleeve_length", "length")
MIN_PER_CLASS = 8  # a class with fewer training examples is not learned (its items train the other heads)
TEST_SHARE = 0.2


@dataclass(slots=True)
class Example:
    """One product's photo and what is known about it; ``key`` is the product id (catalog) or style id (folder)."""

    key: int
    path: Path
    sha256: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)  # attribute -> origin:words that gave the label
    title: str = ""


def examples_from_folder(folder: Path) -> list[Example]:
    """Every item of a folder laid out like myntra-small (styles.csv + images/{id}.jpg) with a photo."""
    from sveta.ingest.styles import read_styles

    folder = Path(folder)
    if not (folder / "styles.csv").is_file():
        raise InputError(f"no styles.csv in {folder}", "give a folder laid out like ../shared/datasets/myntra-small")
    rows, _ = read_styles(folder / "styles.csv")
    out = []
    for row in rows:
        path = folder / "images" / f"{row['id']}.jpg"
        if row["id"].isascii() and row["id"].isdigit() and path.is_file():
            labels = {a: row[c].strip() for a, c in STYLES_COLUMNS.items() if row.get(c, "").strip()}
            evidence = {a: f"seller:{STYLES_COLUMNS[a]}" for a in labels}
            out.append(Example(int(row["id"]), path, None, labels, evidence, row["productDisplayName"]))
    return out


def examples_from_catalog(catalog: CatalogStore) -> list[Example]:
    """Each product with a cached photo (its first), labelled by seller attributes, else text attributes."""
    first = {
        p.product_id: Example(p.product_id, Path(p.local_path), p.sha256, title=p.title)
        for p in first_cached_photos(catalog)
    }
    _label(first, attributes_of(catalog, ORIGIN_RANK, ATTRIBUTES))
    return list(first.values())


def _label(examples: dict[int, Example], rows: Iterable[StoredAttribute]) -> None:
    seen: set[tuple[int, str]] = set()
    for row in sorted(rows, key=lambda r: ORIGIN_RANK[r.origin]):
        example = examples.get(row.product_id)
        if example is None or (example.key, row.name) in seen:
            continue
        seen.add((example.key, row.name))
        example.labels[row.name] = row.value
        example.evidence[row.name] = f"{row.origin}:{row.evidence or ''}"


def split(
    examples: Sequence[Example], test_share: float = TEST_SHARE, seed: str = "sveta"
) -> tuple[list[Example], list[Example]]:
    """(train, test): per category, the items whose hashed key is smallest go to test; the same every run."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.labels.get("category", "")].append(example)
    train: list[Example] = []
    test: list[Example] = []
    for members in groups.values():
        members = sorted(members, key=lambda e: _hash(seed, e.key))
        n_test = round(len(members) * test_share) if len(members) >= 5 else 0
        test += members[:n_test]
        train += members[n_test:]
    order = {id(e): i for i, e in enumerate(examples)}
    return sorted(train, key=lambda e: order[id(e)]), sorted(test, key=lambda e: order[id(e)])


def classes(examples: Sequence[Example], attribute: str, min_count: int = MIN_PER_CLASS) -> list[str]:
    """The labels of ``attribute`` with at least ``min_count`` examples, most frequent first."""
    counts = Counter(e.labels[attribute] for e in examples if attribute in e.labels)
    return [label for label, n in counts.most_common() if n >= min_count]


def stable_share(key: int, salt: str = "thumb") -> float:
    """A stable number in [0, 1) per product and salt: the same products are picked on every run."""
    return int(_hash(salt, key)[:8], 16) / 2**32


def _hash(seed: str, key: int) -> str:
    return hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()
