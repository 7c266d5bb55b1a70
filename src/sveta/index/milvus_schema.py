"""The Milvus collection sveta writes: its fields, index parameters, rows <-> ItemMeta, a Filter as an expression."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sveta._optional import require
from sveta.index.base import Filter, Hit, ItemMeta
from sveta.index.meta import TEXT_FIELDS

if TYPE_CHECKING:
    from sveta.settings import Settings

VECTOR, KEY = "vector", "_key"  # a text field's casefolded copy, the one filters compare
FIELDS = ["product_id", *TEXT_FIELDS, "price", "available", "sha256"]
TEXT_LEN = 1_024
BIGGEST = float(np.finfo(np.float64).max)


def _norm(value: str) -> str:
    return value.strip().casefold()  # as the FAISS index's filters: "Red " matches "red"


def to_row(i: int, vector: np.ndarray, m: ItemMeta) -> dict[str, Any]:
    row: dict[str, Any] = {"id": i, VECTOR: vector, "product_id": int(m.product_id), "sha256": m.sha256}
    row |= {"price": None if m.price is None else float(m.price), "available": bool(m.available)}
    for f in TEXT_FIELDS:
        value = getattr(m, f)
        row[f], row[f + KEY] = value, None if value is None else _norm(value)
    return row


def to_item(row: dict[str, Any]) -> ItemMeta:
    price = row["price"]
    return ItemMeta(
        product_id=int(row["product_id"]),
        **{f: row[f] for f in TEXT_FIELDS},
        price=None if price is None else float(price),
        available=bool(row["available"]),
        sha256=row["sha256"] or None,
    )


def to_hits(rows: list[tuple[int, int, float]], k: int, distinct: bool) -> list[Hit]:
    hits, seen = [], set()
    for i, product, score in rows:
        if distinct and product in seen:
            continue
        seen.add(product)
        hits.append(Hit(i, product, score))
        if len(hits) == k:
            break
    return hits


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def _number(x: float) -> str:
    return repr(float(np.clip(x, -BIGGEST, BIGGEST)))


def filter_expr(flt: Filter | None) -> str:
    """The Milvus boolean expression of ``flt`` ("" for none); a missing value never matches a condition on it."""
    if flt is None:
        return ""
    parts = []
    for f in TEXT_FIELDS:
        wanted = getattr(flt, f)
        if wanted:
            parts.append(f"{f}{KEY} in [{', '.join(_quote(_norm(v)) for v in wanted)}]")
    if flt.price_min is not None:
        parts.append(f"price >= {_number(flt.price_min)}")
    if flt.price_max is not None:
        parts.append(f"price <= {_number(flt.price_max)}")
    if flt.available is not None:
        parts.append(f"available == {'true' if flt.available else 'false'}")
    if flt.exclude_products:
        parts.append(f"product_id not in [{', '.join(str(int(p)) for p in flt.exclude_products)}]")
    for f, unwanted in flt.exclude.items():
        if f in TEXT_FIELDS and unwanted:
            parts.append(f"{f}{KEY} not in [{', '.join(_quote(_norm(v)) for v in unwanted)}]")
    return " and ".join(parts)


def index_params(client: Any, kind: str, settings: Settings) -> Any:
    params = client.prepare_index_params()
    if kind == "hnsw":
        hnsw = {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction}
        params.add_index(field_name=VECTOR, index_type="HNSW", metric_type="IP", params=hnsw)
    else:
        params.add_index(field_name=VECTOR, index_type="FLAT", metric_type="IP")
    return params


def create_collection(client: Any, name: str, dim: int, kind: str, settings: Settings) -> None:
    data_type = require("pymilvus", "milvus").DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", data_type.INT64, is_primary=True)
    schema.add_field(VECTOR, data_type.FLOAT_VECTOR, dim=dim)
    schema.add_field("product_id", data_type.INT64)
    for f in TEXT_FIELDS:
        schema.add_field(f, data_type.VARCHAR, max_length=TEXT_LEN, nullable=True)
        schema.add_field(f + KEY, data_type.VARCHAR, max_length=TEXT_LEN, nullable=True)
    schema.add_field("price", data_type.DOUBLE, nullable=True)
    schema.add_field("available", data_type.BOOL)
    schema.add_field("sha256", data_type.VARCHAR, max_length=128, nullable=True)
    params = index_params(client, kind, settings)
    client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
