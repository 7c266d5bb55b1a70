"""The scale benchmark's results: merged into one JSON file by backend and size, and shown as growth tables."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any


def load_results(path: Path) -> dict[str, Any]:
    """Everything measured so far: backend -> size -> measures (empty before the first run)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def merge_result(path: Path, backend: str, n: int, result: dict[str, Any]) -> None:
    """Results by backend and size: a run at other sizes keeps the earlier ones."""
    data = load_results(path)
    data.setdefault(backend, {})[str(n)] = _rounded(result)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


ROWS = [
    ("ingest ms/product", "ingest_ms_per_product"),
    ("ingest products/s", "ingest_products_per_s"),
    ("index build s", "index_build_s"),
    ("re-sync unchanged s", "resync_unchanged_s"),
    ("re-sync 1%/0.5% s", "resync_changed_s"),
    ("index update s", "index_update_s"),
    ("stats p50/p99 ms", "stats"),
    ("product page p50/p99 ms", "product_page"),
    ("keyword p50/p99 ms", "keyword_search"),
    ("keyword as hybrid sends it p50/p99 ms", "keyword_as_sent"),
    ("hybrid text p50/p99 ms", "hybrid_search"),
    ("similar p50/p99 ms", "similar"),
    ("photo p50/p99 ms", "photo_search"),
    ("photo (index) p50/p99 ms", "photo_search_index_only"),
    ("complete load s", "complete_load_s"),
    ("complete p50/p99 ms", "complete"),
    ("serve RSS MB", "serve_rss_mb"),
    ("serve peak RSS MB", "serve_hwm_mb"),
    ("disk bytes/product", "disk_bytes_per_product"),
]


def table(backend: str, results: dict[str, Any]) -> str:
    """Rows: measures; columns: each size, then the growth ratio from each size to the next (latencies: of p50 / p99;
    the p50 ratio is the steadier one on shared cores)."""
    sizes = sorted(results, key=int)
    head = ["measure", *(f"{int(s):,}" for s in sizes), *(f"x {a}->{b}" for a, b in itertools.pairwise(sizes))]
    lines = [f"{backend}", " | ".join(head)]
    for label, key in ROWS:
        values = [results[s].get(key) for s in sizes]
        cells = [_cell(v) for v in values]
        ratios = [_ratio(a, b) for a, b in itertools.pairwise(values)]
        lines.append(" | ".join([label, *cells, *ratios]))
    return "\n".join(lines)


def _ratio(a: Any, b: Any) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        return f"{_ratio(a['p50_ms'], b['p50_ms'])} / {_ratio(a['p99_ms'], b['p99_ms'])}"
    return f"{b / a:.2f}" if a and b else "-"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return f"{value['p50_ms']:.1f} / {value['p99_ms']:.1f}"
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
