"""The Milvus collection sveta writes: fields, index parameters, rows <-> ItemMeta, filters, errors as sveta's."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta._optional import require
from sveta.errors import ConfigError
from sveta.index.base import Filter, Hit, ItemMeta
from sveta.index.meta import TEXT_FIELDS

if TYPE_CHECKING:
    from sveta.settings import Settings

# 1: nullable fields (Milvus 2.5+ only); 2: none, so that Milvus 2.3 to 2.6 and Milvus Lite all take it
SCHEMA = 2
REBUILD = "rebuild it: sveta index build --rebuild"
VECTOR, KEY = "vector", "_key"  # a text field's casefolded copy, the one filters compare
PRESENT = "="  # a key starts with it when the value exists, so that a missing value's "" never equals one
NO_PRICE = -1.0  # the price of a row without one; has_price tells them apart
KEYS = [f + KEY for f in TEXT_FIELDS]
FIELDS = ["product_id", *TEXT_FIELDS, *KEYS, "price", "has_price", "available", "sha256"]
TEXT_LEN = 1_024
BIGGEST = float(np.finfo(np.float64).max)


def _key(value: str) -> str:
    return PRESENT + value.strip().casefold()  # as the FAISS index's filters: "Red " matches "red"


def _price(m: ItemMeta) -> float | None:
    return None if m.price is None or math.isnan(m.price) else float(m.price)  # NaN: no price, as in FAISS


def to_row(i: int, vector: np.ndarray, m: ItemMeta) -> dict[str, Any]:
    row: dict[str, Any] = {"id": i, VECTOR: vector, "product_id": int(m.product_id), "sha256": m.sha256 or ""}
    price = _price(m)
    row |= {"price": NO_PRICE if price is None else price, "has_price": price is not None}
    row["available"] = bool(m.available)
    for f in TEXT_FIELDS:
        value = getattr(m, f)
        row[f], row[f + KEY] = ("", "") if value is None else (value, _key(value))
    return row


def to_item(row: dict[str, Any]) -> ItemMeta:
    return ItemMeta(
        product_id=int(row["product_id"]),
        **{f: row[f] if row[f + KEY] else None for f in TEXT_FIELDS},
        price=float(row["price"]) if row["has_price"] else None,
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


def _keys(values: list[str]) -> str:
    return "[" + ", ".join(_quote(_key(v)) for v in values) + "]"


def filter_expr(flt: Filter | None) -> str:
    """The Milvus boolean expression of ``flt`` ("" for none), answering as the FAISS index's mask does.

    A missing value (key "") never matches a wanted one and passes an exclusion; a missing price is outside
    every price range.
    """
    if flt is None:
        return ""
    parts = [f"{f}{KEY} in {_keys(getattr(flt, f))}" for f in TEXT_FIELDS if getattr(flt, f)]
    if flt.price_min is not None or flt.price_max is not None:
        parts.append("has_price == true")
    if flt.price_min is not None:
        parts.append(f"price >= {_number(flt.price_min)}")
    if flt.price_max is not None:
        parts.append(f"price <= {_number(flt.price_max)}")
    if flt.available is not None:
        parts.append(f"available == {'true' if flt.available else 'false'}")
    if flt.exclude_products:
        parts.append(f"product_id not in [{', '.join(str(int(p)) for p in flt.exclude_products)}]")
    parts += [f"{f}{KEY} not in {_keys(v)}" for f, v in flt.exclude.items() if f in TEXT_FIELDS and v]
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
    """A collection of schema SCHEMA: no nullable field (missing texts are "", a missing price has_price false)."""
    data_type = require("pymilvus", "milvus").DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", data_type.INT64, is_primary=True)
    schema.add_field(VECTOR, data_type.FLOAT_VECTOR, dim=dim)
    schema.add_field("product_id", data_type.INT64)
    for f in TEXT_FIELDS:
        schema.add_field(f, data_type.VARCHAR, max_length=TEXT_LEN)
    for f in KEYS:
        schema.add_field(f, data_type.VARCHAR, max_length=TEXT_LEN + len(PRESENT))
    schema.add_field("price", data_type.DOUBLE)
    schema.add_field("has_price", data_type.BOOL)
    schema.add_field("available", data_type.BOOL)
    schema.add_field("sha256", data_type.VARCHAR, max_length=128)
    params = index_params(client, kind, settings)
    client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")


def check_schema(client: Any, collection: str, params: dict[str, Any], where: str) -> None:
    """ConfigError unless the collection is the one this sveta writes (an older sveta's needs a rebuild)."""
    built = params.get("schema", 1)
    if built != SCHEMA:
        raise ConfigError(
            f"the Milvus index in {where} has schema {built}, this sveta reads schema {SCHEMA} (no nullable "
            "fields, for Milvus 2.3 to 2.6 and Milvus Lite)",
            REBUILD,
        )
    fields = {f["name"] for f in client.describe_collection(collection)["fields"]}
    if fields != {"id", VECTOR, *FIELDS}:
        shown = ", ".join(sorted(fields ^ {"id", VECTOR, *FIELDS}))
        raise ConfigError(f"the Milvus collection {collection!r} does not have sveta's fields: {shown} differ", REBUILD)


class GuardedClient:
    """A MilvusClient whose every call fails as sveta's ConfigError naming the server, never as a raw exception."""

    def __init__(self, client: Any, shown: str) -> None:
        self.raw, self.shown = client, shown

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.raw, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with milvus_errors(self.shown):
                return attr(*args, **kwargs)

        return call


@contextmanager
def milvus_errors(shown: str) -> Iterator[None]:
    """Milvus's and gRPC's exceptions inside the block as one ConfigError with a hint."""
    pymilvus, grpc = require("pymilvus", "milvus"), require("grpc", "milvus")
    try:
        yield
    except pymilvus.MilvusException as exc:
        raise _error(shown, str(exc.message or type(exc).__name__)) from exc
    except grpc.RpcError as exc:
        raise _error(shown, str(getattr(exc, "details", lambda: "")() or exc)) from exc


def _error(shown: str, reason: str) -> ConfigError:
    reason = " ".join(reason.split())
    if "connect" in reason.casefold() or "unavailable" in reason.casefold():
        hint = f"is the Milvus server running and reachable? SVETA_INDEX_URL names {shown}"
    else:
        hint = f"see the Milvus server's log; if the index was built by another sveta or Milvus: {REBUILD}"
    return ConfigError(f"Milvus at {shown} failed: {reason}", hint)
