"""The catalog's keyword index: each product's words in SQLite FTS5 or a PostgreSQL tsvector, kept in step with writes.

One table, ``product_keywords`` (migration 0002), holds four weighted fields per product: ``heading`` (title and
brand), ``kind`` (product type and tags), ``traits`` (every attribute value, any origin, as the vocabulary's
canonical name) and ``about`` (the description). On SQLite it is an FTS5 table whose rowid is the product id
(porter stemming over unicode61 without diacritics), ranked by BM25 with field weights; on PostgreSQL a ``tsvector``
column (the ``english`` configuration, the fields as weights A to D) under a GIN index, ranked by ``ts_rank``.

Kept in step by the catalog's own write functions, not by triggers: the upsert path (new, changed and revived
products), photo-attribute writes, the catalog copy and the migration call ``refresh_keywords`` or
``rebuild_keywords`` inside their transaction. Triggers would need the same logic twice in two trigger dialects
(SQLite has no statement-level triggers; an attribute trigger would rewrite a product's document once per row),
and could not name attribute values through the vocabulary, which is Python. Gone-marking writes nothing here: a
gone product's words do not change; ``keyword_search(available_only=True)`` leaves it out, as the vector index's
``in_stock`` filter does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection

from sveta.catalog.models import Attribute, Product
from sveta.vocab.reading import canonical

TABLE = "product_keywords"
PG_CONFIG = "english"  # the text search configuration documents and queries share on PostgreSQL
CHUNK = 500  # product ids per statement: under every database's limit on bound parameters
FIELD_CHARS = 100_000  # a field's text is cut here: PostgreSQL refuses a tsvector over 1 MB
FIELDS = ("heading", "kind", "traits", "about")  # in weight order, highest first
# A word is a run of letters and digits of any script, in documents and queries alike: PostgreSQL's parser would
# otherwise read "Clothing/Outerwear" as one file path and "t-shirt" as a compound that FTS5 splits.
WORD = re.compile(r"[^\W_]+")

_SQLITE_DELETE = text(f"DELETE FROM {TABLE} WHERE rowid IN :ids").bindparams(bindparam("ids", expanding=True))
_SQLITE_INSERT = text(
    f"INSERT INTO {TABLE} (rowid, {', '.join(FIELDS)}) VALUES (:id, :heading, :kind, :traits, :about)"
)
_PG_DELETE = text(f"DELETE FROM {TABLE} WHERE product_id IN :ids").bindparams(bindparam("ids", expanding=True))
_PG_DOCUMENT = " || ".join(
    f"setweight(to_tsvector('{PG_CONFIG}', :{name}), '{weight}')" for name, weight in zip(FIELDS, "ABCD", strict=True)
)
_PG_INSERT = text(f"INSERT INTO {TABLE} (product_id, document) VALUES (:id, {_PG_DOCUMENT})")


def refresh_keywords(conn: Connection, product_ids: Sequence[int]) -> None:
    """Rewrite the keyword documents of ``product_ids`` from their stored rows (call after flushing the writes)."""
    postgres = conn.dialect.name == "postgresql"
    for chunk in _chunks(sorted(set(product_ids))):
        documents = _documents(conn, chunk)
        conn.execute(_PG_DELETE if postgres else _SQLITE_DELETE, {"ids": chunk})
        if documents:
            conn.execute(_PG_INSERT if postgres else _SQLITE_INSERT, documents)


def rebuild_keywords(conn: Connection) -> int:
    """Empty the keyword index and fill it from every product (the migration and a catalog copy); products indexed."""
    conn.execute(text(f"DELETE FROM {TABLE}"))
    ids = list(conn.scalars(select(Product.id).order_by(Product.id)))
    refresh_keywords(conn, ids)
    return len(ids)


def _documents(conn: Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    """One row of field texts per product: what the index reads of it."""
    traits: dict[int, set[str]] = {pid: set() for pid in ids}
    query = select(Attribute.product_id, Attribute.name, Attribute.value).where(Attribute.product_id.in_(ids))
    for pid, name, value in conn.execute(query):
        traits[pid].add(canonical(name, value))
    columns = (Product.id, Product.title, Product.brand, Product.product_type, Product.tags, Product.description)
    return [
        {
            "id": pid,
            "heading": _join(title, brand),
            "kind": _join(product_type, *(tags or [])),
            "traits": _join(*sorted(traits[pid])),
            "about": _join(description),
        }
        for pid, title, brand, product_type, tags, description in conn.execute(
            select(*columns).where(Product.id.in_(ids))
        )
    ]


def _join(*parts: object) -> str:
    return " ".join(word for p in parts if p for word in WORD.findall(str(p)))[:FIELD_CHARS]


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])
