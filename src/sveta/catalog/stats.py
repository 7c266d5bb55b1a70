"""Catalog statistics (by category, gender, colour, source; frequent title words; cross-tabs) and their charts."""

from __future__ import annotations

import copy
import re
import weakref
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from sveta.catalog.models import CrawlRun, Image, Product, Source, Variant
from sveta.catalog.store import CatalogStore

_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "the",
        "of",
        "for",
        "in",
        "on",
        "with",
        "by",
        "to",
        "from",
        "at",
        "set",
        "&",
        "-",
        "+",
        "/",
    }
    | {"men", "women", "mens", "womens", "boys", "girls", "unisex", "kids"}  # gender has its own breakdown
)
_WORD = re.compile(r"[a-z][a-z'\-]+")
# catalog engine -> (version, stats): weak, so a closed catalog's answer goes with its engine
_CACHE: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], dict[str, Any]]] = weakref.WeakKeyDictionary()


def catalog_stats(catalog: CatalogStore, *, top_words: int = 25) -> dict[str, Any]:
    """One dictionary of counts; keys are a stable interface (``sveta catalog stats --json``).

    Every count is O(catalog), and ``/api/stats`` is read far more often than the catalog changes: the answer is
    kept per catalog and recomputed when ``_version`` (one query over indexed maxima) says the catalog changed.
    """
    with catalog.session() as s:
        version = (_version(s), top_words)
        cached = _CACHE.get(catalog.engine)
        if cached is not None and cached[0] == version:
            return copy.deepcopy(cached[1])
        stats = _counts(s, top_words)
    _CACHE[catalog.engine] = (version, stats)
    return copy.deepcopy(stats)


def _version(s: Any) -> tuple[Any, ...]:
    """What changes whenever a count of ``catalog_stats`` may: products are written with a new ``updated_at``
    (or a new id) by every ingest, gone-marking ends in its crawl run's ``finished_at``, and a photo's status
    changes with its ``fetched_at`` (cached, broken, or pending again after a cache move). Each is an index
    look-up or a read of a small table (not a count by status: PostgreSQL's statistics, taken while every photo
    was pending, make it scan the images)."""
    parts = (
        select(func.max(CrawlRun.id)),
        select(func.max(CrawlRun.finished_at)),
        select(func.count(Source.id)),
        select(func.max(Product.id)),
        select(func.max(Product.updated_at)),
        select(func.max(Image.id)),
        select(func.max(Image.fetched_at)),
    )
    return tuple(s.execute(select(*(p.scalar_subquery() for p in parts))).one())


def _counts(s: Any, top_words: int) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "products": s.scalar(select(func.count(Product.id))) or 0,
        "available": s.scalar(select(func.count(Product.id)).where(Product.available.is_(True))) or 0,
        "gone": s.scalar(select(func.count(Product.id)).where(Product.gone_at.is_not(None))) or 0,
        "variants": s.scalar(select(func.count(Variant.id))) or 0,
        "images": _grouped(s, Image.status),
        "by_category": _grouped(s, Product.category),
        "by_gender": _grouped(s, Product.gender),
        "by_colour": _grouped(s, Product.colour),
        "sources": _sources(s),
    }
    titles = s.scalars(select(Product.title))
    stats["top_title_words"] = _top_words(titles, top_words)
    return stats


def catalog_crosstab(catalog: CatalogStore) -> dict[str, dict[str, dict[str, int]]]:
    """Products per category and gender, and per category and colour (category -> value -> count), each one
    GROUP BY on the database; categories and values commonest first. Keys: ``gender_by_category``,
    ``colour_by_category``."""
    with catalog.session() as s:
        return {
            "gender_by_category": _crossed(s, Product.gender),
            "colour_by_category": _crossed(s, Product.colour),
        }


def _crossed(s: Any, column: Any) -> dict[str, dict[str, int]]:
    rows = s.execute(select(Product.category, column, func.count()).group_by(Product.category, column)).all()
    totals: Counter[str] = Counter()
    cells: dict[str, dict[str, int]] = {}
    for category, value, count in rows:
        key = category if category is not None else "unknown"
        totals[key] += count
        cells.setdefault(key, {})[value if value is not None else "unknown"] = count
    return {key: dict(sorted(cells[key].items(), key=lambda kv: (-kv[1], kv[0]))) for key, _ in _ranked(totals)}


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _grouped(s: Any, column: Any) -> dict[str, int]:
    rows = s.execute(select(column, func.count()).group_by(column).order_by(func.count().desc(), column))
    return {(key if key is not None else "unknown"): count for key, count in rows}


def _sources(s: Any) -> dict[str, dict[str, Any]]:
    counts = dict(s.execute(select(Product.source_id, func.count()).group_by(Product.source_id)).all())
    result = {}
    for source in s.scalars(select(Source).order_by(Source.name)):
        last = s.scalar(select(CrawlRun).where(CrawlRun.source_id == source.id).order_by(CrawlRun.id.desc()).limit(1))
        result[source.name] = {
            "kind": source.kind,
            "location": source.location,
            "products": counts.get(source.id, 0),
            "last_run": None
            if last is None
            else {
                "status": last.status,
                "finished_at": last.finished_at and last.finished_at.isoformat(),
                "new": last.new,
                "changed": last.changed,
                "unchanged": last.unchanged,
                "gone": last.gone,
            },
        }
    return result


def _top_words(titles: Any, n: int) -> dict[str, int]:
    counter: Counter[str] = Counter()
    for title in titles:
        counter.update(w for w in _WORD.findall(title.lower()) if w not in _STOPWORDS)
    return dict(counter.most_common(n))


def plot_stats(stats: dict[str, Any], out_dir: Path, *, top: int = 25) -> list[Path]:
    """Write one PNG bar chart per breakdown; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    charts = {
        "by_category": "Products by category",
        "by_gender": "Products by gender",
        "by_colour": "Products by colour",
        "top_title_words": "Most frequent title words",
    }
    written = []
    for key, title in charts.items():
        items = list(stats[key].items())[:top]
        fig, ax = plt.subplots(figsize=(8, max(2.5, 0.3 * len(items) + 1)))
        ax.barh([str(k) for k, _ in reversed(items)], [v for _, v in reversed(items)], color="#4c72b0")
        ax.set_title(f"{title} ({stats['products']} products)")
        ax.set_xlabel("count")
        written.append(_save(plt, fig, out_dir / f"{key}.png"))
    return written


def plot_crosstab(crosstab: dict[str, dict[str, dict[str, int]]], out_dir: Path, *, top: int = 25) -> list[Path]:
    """One heatmap PNG per cross-tab (the ``top`` commonest categories by the ``top`` commonest values), each cell
    the count, shaded by its share of the category's row; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key, table in crosstab.items():
        categories = list(table)[:top]
        totals: Counter[str] = Counter()
        for row in table.values():
            totals.update(row)
        values = [name for name, _ in _ranked(totals)][:top]
        counts = np.array([[table[c].get(v, 0) for v in values] for c in categories], dtype=float)
        if not counts.size:
            continue
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(max(4, 0.55 * len(values) + 3), max(2.5, 0.32 * len(categories) + 1.5)))
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(values)), values, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(categories)), categories, fontsize=8)
        for (i, j), n in np.ndenumerate(counts):
            if n:
                ax.text(
                    j,
                    i,
                    f"{int(n)}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if shares[i, j] > 0.6 else "black",
                )
        what = key.split("_by_")[0]
        ax.set_title(f"{what.capitalize()} per category (shade: share of the category)")
        written.append(_save(plt, fig, out_dir / f"{key}.png"))
    return written


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)  # pyplot keeps every open figure alive otherwise
    return path
